"""The ``xpnn gradcheck`` command."""

from __future__ import annotations

import pytest

import xpnn
from xpnn import affine_backward, affine_forward, registry
from xpnn.cli import main
from xpnn.registry import GradCase


def test_gradcheck_passes_and_prints_a_table(bk, capsys):
    status = main(["gradcheck", "--backend", bk.name, "-k", "affine"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "layer" in out and "rel error" in out and "affine_forward" in out
    assert "x(3,2,4) w(8,5) b(5,)" in out
    assert " 0 failed" in out


def test_gradcheck_float32(bk, capsys):
    assert main(["gradcheck", "--backend", bk.name, "--dtype", "float32", "-k", "relu"]) == 0
    assert "dtype=float32" in capsys.readouterr().out


def test_gradcheck_fails_with_a_broken_layer(bk, capsys, monkeypatch):
    def broken_backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, dw, db * 2

    broken = GradCase(
        "broken_affine",
        affine_forward,
        broken_backward,
        inputs={"x": (2, 3), "w": (3, 2), "b": (2,)},
    )
    monkeypatch.setattr(registry, "_CASES", [broken])
    status = main(["gradcheck", "--backend", bk.name, "-k", "broken"])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL" in out and "0 passed, 1 failed" in out
    assert "broken_affine x(2,3) w(3,2) b(2,): b[" in out  # the worst entry is named


def test_gradcheck_rejects_an_unknown_backend(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["gradcheck", "--backend", "tensorflow"])
    assert exc.value.code == 2
    assert "invalid choice: 'tensorflow'" in capsys.readouterr().err


def test_gradcheck_reports_an_unavailable_backend(capsys):
    try:
        xpnn.get_namespace("cupy")
    except (ImportError, RuntimeError):
        pass
    else:
        pytest.skip("cupy runs here: no unavailable backend to report")
    assert main(["gradcheck", "--backend", "cupy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xpnn gradcheck: backend 'cupy' needs")
    assert "pip install" in err or "CUDA device" in err


def test_gradcheck_imports_a_module_that_registers_cases(bk, capsys, monkeypatch, tmp_path):
    (tmp_path / "my_layers.py").write_text(
        "from xpnn import relu_forward, relu_backward\n"
        "from xpnn.registry import GradCase, nonzero, register_case\n"
        "def my_forward(x):\n"
        "    return relu_forward(2 * x)\n"
        "def my_backward(dout, cache):\n"
        "    return 2 * relu_backward(dout, cache)\n"
        "register_case(GradCase('my_forward', my_forward, my_backward, {'x': nonzero(3, 4)}))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_CASES", [])
    status = main(["gradcheck", "--backend", bk.name, "--import", "my_layers", "-k", "my_"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "my_forward" in out and "1 passed, 0 failed" in out


def test_gradcheck_names_a_module_it_cannot_import(capsys):
    assert main(["gradcheck", "--import", "no_such_module_xyz"]) == 2
    assert "cannot import 'no_such_module_xyz'" in capsys.readouterr().err


def test_gradcheck_points_to_the_criterion(bk, capsys):
    main(["gradcheck", "--backend", bk.name, "-k", "relu_forward"])
    assert "how it is judged: " in capsys.readouterr().out


def test_gradcheck_fits_100_columns(capsys, monkeypatch):
    """Every case of the table (the longest inputs wrap in their column), and a failure."""
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["gradcheck", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 100
    assert "conv_forward_fast" in out and "conv(stride=2,pad=1)" in out

    def broken_backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, dw, db * 2

    name = "a_layer_with_a_long_name_to_wrap"
    broken = GradCase(name, affine_forward, broken_backward,
                      inputs={"x": (2, 3), "w": (3, 2), "b": (2,)})  # fmt: skip
    monkeypatch.setattr(registry, "_CASES", [broken])
    assert main(["gradcheck", "--backend", "numpy"]) == 1
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 100 and "FAIL" in out
