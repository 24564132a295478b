"""``xpnn train`` and ``xpnn download`` end to end, on tiny runs."""

from __future__ import annotations

import json

import pytest

from xpnn.cli import main


def _metrics(path):
    return json.loads(path.read_text())


def test_train_writes_metrics_and_a_summary(bk, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.json"
    monkeypatch.setenv("XPNN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    status = main(
        ["train", "--model", "fcn", "--backend", bk.name, "--epochs", "1", "--quiet",
         "--metrics-out", str(out)]
    )  # fmt: skip
    printed = capsys.readouterr()
    assert status == 0, printed.err
    metrics = _metrics(out)
    assert metrics["epochs"] == 1 and metrics["backend"] == bk.name
    assert metrics["model"] == "FullyConnectedNet" and metrics["dataset"] == "digits"
    assert len(metrics["val_acc_history"]) == 2 and metrics["val_acc"] > 0.5
    assert set(metrics) >= {"loss_history", "train_acc_history", "best_val_acc", "test_acc",
                            "seconds"}  # fmt: skip
    assert printed.out.strip().splitlines()[-1].startswith("FullyConnectedNet on digits")
    if bk.name == "jax":  # the compiled step is kept for the next run (unless JAX's cache was
        import jax  # configured before, by another test of this process)

        cache = tmp_path / "data" / "jax-compilation-cache"
        assert jax.config.jax_compilation_cache_dir is not None
        assert cache.is_dir() or jax.config.jax_compilation_cache_dir != str(cache)


def test_resume_continues_to_the_total_epochs(tmp_path, capsys):
    common = ["train", "--model", "fcn", "--quiet", "--seed", "3"]
    straight, resumed = tmp_path / "straight.json", tmp_path / "resumed.json"
    assert main([*common, "--epochs", "2", "--metrics-out", str(straight)]) == 0
    assert main([*common, "--epochs", "1", "--checkpoint-dir", str(tmp_path / "ck")]) == 0
    checkpoint = tmp_path / "ck" / "fcn_digits_epoch_001.npz"
    assert checkpoint.is_file()
    assert main([*common, "--epochs", "2", "--resume", str(checkpoint),
                 "--metrics-out", str(resumed)]) == 0  # fmt: skip
    a, b = _metrics(straight), _metrics(resumed)
    assert b["epochs"] == 2
    for key in ("loss_history", "train_acc_history", "val_acc_history", "best_val_acc",
                "test_acc"):  # fmt: skip
        assert a[key] == b[key], key


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "curves.png"
    assert main(["train", "--model", "fcn", "--epochs", "1", "--quiet", "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _joining(coordinator, process_id):
    """The arguments of a process of a 2-process JAX run."""
    return ["--backend", "jax", "--coordinator", coordinator, "--num-processes", "2",
            "--process-id", process_id]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--lr", "-1"], "--lr must be positive"),
        (["--dataset", "cifar10", "--data-dir", "{tmp}/nothing"], "data_batch_1"),
        (["--resume", "{tmp}/missing.npz"], "no checkpoint at"),
        (["--devices", "2"], "--devices needs --backend jax"),
        (
            ["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "0"],
            "--coordinator needs --backend jax",
        ),
        (["--backend", "jax", "--devices", "0"], "--devices must be a positive integer"),
        (
            ["--backend", "jax", "--coordinator", "127.0.0.1:1"],
            "--coordinator needs --num-processes, --process-id too",
        ),
        (_joining("127.0.0.1:1", "2"), "--process-id must be in 0 .. 1; got 2"),
        (_joining("localhost", "0"), "--coordinator must be HOST:PORT"),
        (_joining("127.0.0.1:99999", "0"), "(a port in 1..65535)"),
        (
            ["--backend", "jax", "--device", "cpu", "--devices", "2"],
            "--device picks the device of a one-device run; --devices makes a sharded run",
        ),
        (["--backend", "jax", "--join-timeout", "5"], "--join-timeout needs --coordinator"),
        (
            [*_joining("127.0.0.1:1", "1"), "--join-timeout", "-5"],
            "--join-timeout must be a positive number",
        ),
    ],
)
def test_user_mistakes_get_one_line_and_status_2(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["train", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xpnn train: ") and message in err
    assert "Traceback" not in err


def test_plot_without_matplotlib_says_how_to_install(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert main(["train", "--quiet", "--plot", str(tmp_path / "p.png")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_download_reports_a_failure_in_one_line(tmp_path, capsys):
    url = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # the discard port: refused at once
    assert main(["download", "cifar10", "--dir", str(tmp_path), "--url", url, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xpnn download: ") and "Traceback" not in err


def test_the_default_run_reaches_97_percent(tmp_path):
    """The README's main command: ThreeLayerConvNet on the offline digits (no timing asserted)."""
    out = tmp_path / "m.json"
    assert main(["train", "--quiet", "--metrics-out", str(out)]) == 0
    metrics = _metrics(out)
    assert metrics["model"] == "ThreeLayerConvNet" and metrics["epochs"] == 15
    assert metrics["best_val_acc"] >= 0.97 and metrics["val_acc"] >= 0.97


def test_resume_takes_its_settings_from_the_checkpoint(tmp_path, capsys):
    ck = tmp_path / "ck"
    assert main(["train", "--model", "fcn", "--quiet", "--epochs", "1", "--seed", "5",
                 "--checkpoint-dir", str(ck)]) == 0  # fmt: skip
    checkpoint = ck / "fcn_digits_epoch_001.npz"
    capsys.readouterr()
    assert main(["train", "--quiet", "--epochs", "2", "--resume", str(checkpoint),
                 "--batch-size", "20"]) == 2  # fmt: skip
    assert "--batch-size 20 differs from the checkpoint's 50" in capsys.readouterr().err
    assert main(["train", "--quiet", "--epochs", "1", "--resume", str(checkpoint)]) == 2
    assert "already at epoch 1" in capsys.readouterr().err
    # No flags but --resume and --epochs: model fcn, seed 5 and the rest come from it.
    assert main(["train", "--quiet", "--epochs", "2", "--resume", str(checkpoint)]) == 0
    assert capsys.readouterr().out.strip().startswith("FullyConnectedNet on digits")


def test_a_new_run_does_not_overwrite_another_runs_checkpoints(tmp_path, capsys):
    ck = tmp_path / "ck"
    argv = ["train", "--model", "fcn", "--quiet", "--epochs", "1", "--checkpoint-dir", str(ck)]
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in ck.iterdir()}
    assert main([*argv, "--seed", "1"]) == 2
    assert "already holds checkpoints of another run" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in ck.iterdir()} == before


def test_outputs_are_checked_before_training(tmp_path, capsys, monkeypatch):
    import xpnn.solver

    def never(self):
        raise AssertionError("trained although an output cannot be written")

    monkeypatch.setattr(xpnn.solver.Solver, "train", never)
    (tmp_path / "afile").write_text("x")
    for argv, message in (
        (["--metrics-out", str(tmp_path)], "is a directory"),
        (["--checkpoint-dir", str(tmp_path / "afile")], "is a file, not a directory"),
        (["--metrics-out", str(tmp_path / "afile" / "m.json")], "--metrics-out: cannot create"),
    ):
        assert main(["train", "--quiet", *argv]) == 2
        assert message in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_status_130(capsys, monkeypatch):
    import xpnn.solver

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(xpnn.solver.Solver, "train", interrupted)
    assert main(["train", "--quiet"]) == 130
    assert capsys.readouterr().err.strip() == "xpnn train: interrupted"


# --------------------------------------------------------------------------- --framework torch


def test_framework_torch_trains_the_notebook_convnet(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "m.json"
    argv = ["train", "--framework", "torch", "--epochs", "1", "--batch-size", "100", "--quiet",
            "--metrics-out", str(out)]  # fmt: skip
    assert main(argv) == 0
    metrics = _metrics(out)
    assert metrics["framework"] == "torch" and metrics["backend"] == "torch"
    assert metrics["model"] == "three_layer_convnet" and metrics["epochs"] == 1
    assert len(metrics["val_acc_history"]) == 2 and metrics["val_acc"] > 0.5
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("three_layer_convnet on digits (torch framework, cpu): 1 epoch in")


def test_framework_torch_resumes_exactly(tmp_path):
    pytest.importorskip("torch")
    common = ["train", "--framework", "torch", "--quiet", "--seed", "2", "--batch-size", "400"]
    straight, resumed = tmp_path / "straight.json", tmp_path / "resumed.json"
    assert main([*common, "--epochs", "2", "--metrics-out", str(straight)]) == 0
    assert main([*common, "--epochs", "1", "--checkpoint-dir", str(tmp_path / "ck")]) == 0
    checkpoint = tmp_path / "ck" / "cnn_digits_epoch_001.pt"
    # no --framework, --seed or --batch-size: the .pt checkpoint gives them
    assert main(["train", "--quiet", "--epochs", "2", "--resume", str(checkpoint),
                 "--metrics-out", str(resumed)]) == 0  # fmt: skip
    a, b = _metrics(straight), _metrics(resumed)
    assert b["epochs"] == 2 and b["framework"] == "torch"
    for key in ("loss_history", "train_acc_history", "val_acc_history", "best_val_acc",
                "test_acc"):  # fmt: skip
        assert a[key] == b[key], key


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "jax"], "--framework torch trains on torch tensors"),
        (["--model", "fcn"], "--model fcn is available with --framework xpnn"),
        (["--device", "tpu:x"], "--device 'tpu:x' is not a torch device"),
        (["--resume", "{tmp}/run.npz"], "--framework torch differs from the checkpoint's xpnn"),
        (["--resume", "{tmp}/run.pt"], "no checkpoint at"),
    ],
)
def test_framework_torch_mistakes_get_one_line_and_status_2(tmp_path, capsys, argv, message):
    pytest.importorskip("torch")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["train", "--framework", "torch", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xpnn train: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_framework_torch_without_torch_says_how_to_install(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name.split(".")[0] == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    assert main(["train", "--quiet", "--framework", "torch"]) == 2
    err = capsys.readouterr().err
    assert "--framework torch needs the 'torch' package" in err and "pip install" in err


def test_the_numpy_path_never_imports_torch():
    import subprocess
    import sys

    code = (
        "import sys; from xpnn.cli import main; main(['train', '--model', 'fcn', '--epochs', "
        "'1', '--quiet']); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_devices_must_split_the_batch(capsys):
    jax = pytest.importorskip("jax")
    devices = min(len(jax.devices()), 4)
    if devices < 2:
        pytest.skip("needs several JAX devices (tests-jax forces 4 CPU devices)")
    assert main(["train", "--backend", "jax", "--devices", str(devices), "--batch-size",
                 str(2 * devices + 1), "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    odd = 2 * devices + 1
    assert err == (f"xpnn train: --batch-size {odd} does not split over {devices} devices; "
                   f"use a multiple of {devices}, e.g. --batch-size {2 * devices}")  # fmt: skip


def test_a_jax_device_is_named_like_the_others(capsys):
    jax = pytest.importorskip("jax")
    from xpnn.cli.train import UsageError, _jax_device

    cpus = jax.devices("cpu")
    assert _jax_device("cpu") == _jax_device("cpu:0") == cpus[0]
    if len(cpus) > 1:
        assert _jax_device("cpu:1") == _jax_device("cpu:01") == cpus[1]
    assert _jax_device("0") == jax.devices()[0]
    for bad in ("cpu:", "cpu:-1", f"cpu:{len(cpus)}", "x:y", "cpu:1:2", "²"):
        with pytest.raises(UsageError, match=f"--device {bad}: JAX has no such device"):
            _jax_device(bad)
    missing = f"cpu:{len(cpus)}"
    assert main(["train", "--backend", "jax", "--device", missing, "--epochs", "1",
                 "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"xpnn train: --device {missing}: JAX has no such device; it has ")
    assert "cpu:0" in err and err.endswith("(or give an index)")


def test_a_checkpoint_resumes_only_on_device_counts_that_split_its_batch(tmp_path, capsys):
    jax = pytest.importorskip("jax")
    if len(jax.devices()) < 4:
        pytest.skip("needs 4 JAX devices (tests-jax forces 4 CPU devices)")
    ckpt = tmp_path / "ckpt"
    assert main(["train", "--backend", "jax", "--model", "fcn", "--epochs", "1", "--quiet",
                 "--checkpoint-dir", str(ckpt)]) == 0  # fmt: skip
    resume = ["train", "--backend", "jax", "--epochs", "2", "--quiet", "--resume",
              str(ckpt / "fcn_digits_epoch_001.npz")]  # fmt: skip
    capsys.readouterr()
    assert main([*resume, "--devices", "4"]) == 2
    assert capsys.readouterr().err.strip() == (
        "xpnn train: the checkpoint's batch size 50 does not split over 4 devices; give "
        "--devices one of 1, 2"
    )
    assert main([*resume, "--devices", "2"]) == 0
    assert "(jax, 2 devices): 2 epochs" in capsys.readouterr().out
