"""``xpnn bench``: the timing loops, the results file, the command line. No time is asserted."""

from __future__ import annotations

import numpy as np
import pytest

from xpnn import bench
from xpnn.bench import _timing
from xpnn.bench.cases import Case, Stage, _step_layer_stages, torch_conv, xpnn_conv
from xpnn.cli import main


def test_each_side_runs_in_its_own_loops_and_the_pair_is_repeated(monkeypatch):
    calls = []
    clock = iter(np.arange(0.0, 1e4, 0.01))
    monkeypatch.setattr(_timing.time, "perf_counter", lambda: next(clock))
    ours, ref = _timing.time_pair(
        lambda: calls.append("ours"),
        lambda: calls.append("ref"),
        lambda r: r,
        pairs=2,
        repeat=3,
        min_loop_seconds=0.0,
    )
    # warm-up + calibration + 3 loops of 1 call, per side, per pair; never interleaved
    assert calls == ["ours"] * 5 + ["ref"] * 5 + ["ours"] * 5 + ["ref"] * 5
    assert ours > 0 and ref > 0


def test_the_loop_is_long_enough_for_the_clock():
    count = []
    per_call = _timing.time_per_call(lambda: count.append(1), lambda r: r, repeat=2,
                                     min_loop_seconds=0.01)  # fmt: skip
    assert len(count) > 10 and 0 < per_call < 0.01


def _fake_results():
    case = Case("conv fwd+bwd", "x(1,1,2,2)", "float32", "ref", None, None, None, None, 2.0)
    other = Case("step", "tiny", "float64", "ref", None, None, None, None)
    return bench.Results(
        "numpy",
        quick=True,
        rows=[bench.Row(case, 3e-3, 1e-3), bench.Row(other, 1e-3, 1e-3)],
    )


def test_report_marks_each_target(tmp_path):
    lines = bench.report(_fake_results())
    table = [line for line in lines if line.startswith("| conv") or line.startswith("| step")]
    assert "| 3.00 | <= 2 | **no** |" in table[0]
    assert table[1].endswith("| 1.00 |  |  |")
    assert any("BLAS" in line for line in lines)


def test_a_run_replaces_only_its_backends_section(tmp_path):
    path = tmp_path / "RESULTS.md"
    results = _fake_results()
    bench.write_section(path, results)
    results.backend = "jax"
    bench.write_section(path, results)
    results.backend = "numpy"
    results.rows[0].ours = 1e-3
    bench.write_section(path, results)
    text = path.read_text()
    assert text.count("<!-- bench:numpy -->") == 1 and text.count("<!-- bench:jax -->") == 1
    numpy_section = text.split("<!-- bench:numpy -->")[1].split("<!-- /bench:numpy -->")[0]
    jax_section = text.split("<!-- bench:jax -->")[1]
    assert "| 1.00 | <= 2 | yes |" in numpy_section
    assert "| 3.00 | <= 2 | **no** |" in jax_section


def test_both_sides_of_the_conv_case_compute_the_same_gradient():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)), np.ones(4)
    param = {"stride": 2, "pad": 1}
    dout = rng.standard_normal((2, 4, 3, 3))
    ours = xpnn_conv(x, w, b, param, dout)()
    theirs = torch_conv(x, w, b, param, dout)()
    np.testing.assert_allclose(ours[0], theirs.numpy(), rtol=1e-12, atol=1e-12)
    assert isinstance(theirs, torch.Tensor)


def test_cli_refuses_a_plot_without_the_scaling_runs(capsys):
    pytest.importorskip("torch")
    assert main(["bench", "--quick", "--plot", "x.png"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--plot needs the scaling runs" in err


def test_cli_runs_and_writes_the_table(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run(backend, *, quick, progress, only):
        calls.append((backend, quick, only))
        return _fake_results()

    monkeypatch.setattr(bench, "run", fake_run)
    if pytest.importorskip("torch") is None:  # pragma: no cover
        return
    out = tmp_path / "RESULTS.md"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    assert calls == [("numpy", True, None)]
    assert "<!-- bench:numpy -->" in out.read_text()
    assert "| conv fwd+bwd |" in capsys.readouterr().out


def _missed_with_stages():
    results = _fake_results()
    row = results.rows[0]
    row.case.limit = "Limited by the test."
    row.case.stages = (
        Stage("forward", None, None),
        Stage("one pass (the yardstick)", None, None, yardstick=True),
    )
    row.stages = [
        bench.TimedStage("forward", 1e-3, 0.5e-3),
        bench.TimedStage("one pass (the yardstick)", 0.5e-3, 0.25e-3, yardstick=True),
    ]
    return results


def test_report_profiles_each_missed_target():
    lines = bench.report(_missed_with_stages())
    text = "\n".join(lines)
    assert "### Where the time goes, for each target not met" in text
    assert (
        "**conv fwd+bwd, x(1,1,2,2), float32: 3.00x (target <= 2).** Limited by the test." in text
    )
    assert "| the whole case | 3.00 | 1.00 | 3.00 |" in lines
    assert "| forward | 1.00 | 0.50 | 2.00 |" in lines
    # backward = whole case - forward, on each side: 2.00 ms against 0.50 ms
    assert any(line.startswith("| the rest: backward") and line.endswith("| 2.00 | 0.50 | 4.00 |")
               for line in lines)  # fmt: skip
    assert "costs 6.0 passes, the reference's 4.0." in text
    assert "Where the time goes" not in "\n".join(bench.report(_fake_results()))


def test_only_missed_targets_are_profiled_and_not_in_quick_runs(monkeypatch):
    timed = []

    def fake_pair(ours, reference, *args, **kwargs):
        timed.append(ours)
        return ours(), reference()

    def case(name, ours, target):
        stage = Stage(name + " stage", lambda: (timed.append(name + " stage"), 1.0)[1],
                      lambda: 1.0)  # fmt: skip
        return Case(name, "", "float64", "ref", lambda: ours, lambda: 1.0, None, None, target,
                    stages=(stage,))  # fmt: skip

    fake_cases = []

    def make_cases(backend):
        fake_cases[:] = [case("slow", 3.0, 2.0), case("fast", 1.0, 2.0),
                         case("untargeted", 3.0, None)]  # fmt: skip
        return iter(fake_cases)

    monkeypatch.setattr(bench, "time_pair", fake_pair)
    monkeypatch.setattr(bench, "cases", make_cases)
    monkeypatch.setattr(bench, "_naive_vs_fast", lambda progress: {})
    monkeypatch.setattr(bench, "_conv_memory", lambda progress: [])
    monkeypatch.setattr(bench, "_scaling", lambda progress: [])
    results = bench.run("numpy", progress=lambda line: None)
    assert [row.stages for row in results.rows] == [
        [bench.TimedStage("slow stage", 1.0, 1.0)], [], []]  # fmt: skip
    assert all(case.stages == () for case in fake_cases)  # their arrays are let go
    assert "slow stage" in timed
    timed.clear()
    quick = bench.run("numpy", quick=True, progress=lambda line: None)
    assert all(row.stages == [] for row in quick.rows) and "slow stage" not in timed


def test_both_sides_of_each_step_stage_compute_the_same_gradient():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)

    def randn(*shape):
        return rng.standard_normal(shape)

    def tensor(a, grad=True):
        return torch.from_numpy(a).requires_grad_(grad)

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 7, padding=3))
    stages = list(_step_layer_stages(net, lambda *a: list(a), tensor, randn))
    assert len(stages) == 4
    for stage in stages:
        ours, theirs = stage.ours(), stage.reference().numpy()
        if isinstance(ours, tuple):  # conv: (None, dw, db); affine: (dx, dw, db)
            ours = ours[1] if ours[0] is None else ours[0]
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10, err_msg=stage.name)


def test_no_backward_is_derived_where_the_forward_is_not_part_of_the_whole_case():
    results = _missed_with_stages()
    results.rows[0].case.forward_in_whole = False  # a jax.jit case returning gradients only
    text = "\n".join(bench.report(results))
    assert "the rest: backward" not in text and "XLA drops the forward computation" in text
    results = _missed_with_stages()
    results.rows[0].stages[0] = bench.TimedStage("forward", 4e-3, 0.5e-3)  # noise: > 3 ms
    text = "\n".join(bench.report(results))
    assert "the rest: backward" not in text
    assert "On xpnn's side the forward alone measured no faster than the whole case" in text


# --------------------------------------------------------------------------- sequence rows


def test_both_sides_of_the_lstm_case_compute_the_same_gradients(monkeypatch):
    """xpnn's LSTM and torch.nn.LSTM loaded with its weights (gates reordered) give the
    same dx from the same dh, at small shapes."""
    pytest.importorskip("torch")
    from xpnn.bench import sequence

    monkeypatch.setattr(sequence, "LSTM_SHAPE", {"n": 3, "steps": 4, "dim": 5, "hidden": 6})
    host = sequence._lstm_arrays(np.random.default_rng(0), "float64", 4)
    dx = sequence.xpnn_lstm(*host.values())()[0]
    theirs = sequence._torch_lstm(host, "cpu")()
    np.testing.assert_allclose(dx, theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_both_sides_of_each_lstm_stage_compute_the_same_thing(monkeypatch):
    """The stages of the LSTM row (shown when its target is missed): the forward pass
    gives torch.nn.LSTM's hidden states, and the products alone are the same products on
    both sides, with the LSTM's shapes: the projection, 2T step products, dx, dWx, dWh."""
    pytest.importorskip("torch")
    from xpnn.bench import sequence

    shape = {"n": 3, "steps": 4, "dim": 7, "hidden": 5}
    monkeypatch.setattr(sequence, "LSTM_SHAPE", shape)
    host = sequence._lstm_arrays(np.random.default_rng(0), "float64", 4)
    forward, products = sequence._lstm_stages(lambda *a: list(a), host, "cpu")
    assert forward.name == "forward"
    np.testing.assert_allclose(forward.ours()[0], forward.reference().numpy(), rtol=1e-10)
    assert products.name == "the matrix products alone, 0.0 GFLOP"
    ours, theirs = products.ours(), products.reference()
    assert len(ours) == len(theirs) == 2 * shape["steps"] + 4
    assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs]
    n, steps = shape["n"], shape["steps"]
    assert ours[0].shape == (n * steps, 20)  # x Wx
    assert {p.shape for p in ours[1 : steps + 1]} == {(n, 20)}  # h Wh
    assert {p.shape for p in ours[steps + 1 : 2 * steps + 1]} == {(n, 5)}  # da Wh^T
    assert [p.shape for p in ours[-3:]] == [(n * steps, 7), (7, 20), (5, 20)]  # dx dWx dWh
    for a, b in zip(ours, theirs, strict=True):  # the same operands reach both libraries
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-12)


def test_the_torch_captioner_computes_the_captioning_rnn_s_loss(monkeypatch):
    """The reference of the captioning step, with the xpnn model's weights, has its loss."""
    torch = pytest.importorskip("torch")
    from xpnn.bench import sequence
    from xpnn.classifiers import CaptioningRNN
    from xpnn.layers.rnn import torch_gate_order

    small = {"n": 4, "steps": 5, "input_dim": 6, "wordvec": 3, "hidden": 4, "vocabulary": 9}
    monkeypatch.setattr(sequence, "CAPTIONING", small)
    rng = np.random.default_rng(1)
    captions = sequence._captions(rng)
    assert (captions[:, 0] == 1).all() and (captions == 0).any() and (captions == 2).any()
    features = rng.standard_normal((4, 6))
    model = CaptioningRNN(sequence._vocabulary(), 6, 3, 4, cell_type="lstm", dtype="float64",
                          seed=0, backend="numpy")  # fmt: skip
    net = sequence.torch_captioner(torch.float64, "cpu")
    p = {k: torch.from_numpy(v) for k, v in model.params.items()}
    with torch.no_grad():
        net.proj.weight.copy_(p["W_proj"].T)
        net.proj.bias.copy_(p["b_proj"])
        net.embed.weight.copy_(p["W_embed"])
        net.lstm.weight_ih_l0.copy_(torch_gate_order(p["Wx"]).T)
        net.lstm.weight_hh_l0.copy_(torch_gate_order(p["Wh"]).T)
        net.lstm.bias_ih_l0.copy_(torch_gate_order(p["b"]))
        net.lstm.bias_hh_l0.zero_()
        net.vocab.weight.copy_(p["W_vocab"].T)
        net.vocab.bias.copy_(p["b_vocab"])
    theirs = sequence.torch_captioning_loss(net, torch.from_numpy(features),
                                            torch.from_numpy(captions))  # fmt: skip
    assert float(theirs.detach()) == pytest.approx(
        float(model.loss(features, captions)[0]), rel=1e-12
    )


def test_the_jax_compile_case_compiles_a_new_function_each_call(monkeypatch):
    jax = pytest.importorskip("jax")
    from xpnn.bench import sequence

    monkeypatch.setattr(sequence, "LSTM_SHAPE", {"n": 2, "steps": 3, "dim": 3, "hidden": 2})
    (case,) = sequence.jax_cases("float32")
    assert case.target == 1.5 and "T=128" in case.shape
    first, second = case.ours(), case.ours()
    assert isinstance(first, jax.stages.Compiled) and first is not second


def test_only_times_the_rows_it_names(monkeypatch, capsys):
    """``--only lstm``: the LSTM rows and nothing else (no naive, memory or scaling runs);
    refused with --out, which would write a partial section."""
    pytest.importorskip("torch")
    timed = []

    def fake_pair(ours, reference, *args, **kwargs):
        timed.append(ours)
        return 2e-3, 1e-3

    monkeypatch.setattr(bench, "time_pair", fake_pair)
    monkeypatch.setattr(bench, "_naive_vs_fast", lambda progress: pytest.fail("naive ran"))
    from xpnn.bench import sequence

    monkeypatch.setattr(sequence, "LSTM_SHAPE", {"n": 2, "steps": 3, "dim": 4, "hidden": 5})
    results = bench.run("numpy", progress=lambda line: None, only="LSTM")
    assert [row.case.op for row in results.rows] == ["lstm fwd+bwd", "lstm fwd+bwd"]
    # each row misses its target at the fake 2x, so its two stages are timed after it
    assert len(timed) == 2 * 3 and not results.naive
    assert results.rows[0].stages[0].name == "forward"
    assert main(["bench", "--only", "lstm", "--out", "x.md"]) == 2
    assert "give one" in capsys.readouterr().err
