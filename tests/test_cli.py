"""The ``xpnn gradcheck`` command."""

from __future__ import annotations

import pytest

from xpnn import affine_backward, affine_forward
from xpnn import gradient_check as gc
from xpnn.cli import main


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

    broken = gc.GradCase(
        "broken_affine",
        affine_forward,
        broken_backward,
        inputs={"x": (2, 3), "w": (3, 2), "b": (2,)},
    )
    monkeypatch.setattr(gc, "_REGISTRY", [*gc.registered_cases(), broken])
    status = main(["gradcheck", "--backend", bk.name, "-k", "broken"])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL" in out and "0 passed, 1 failed" in out


def test_gradcheck_rejects_an_unknown_backend(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["gradcheck", "--backend", "tensorflow"])
    assert exc.value.code == 2
    assert "invalid choice: 'tensorflow'" in capsys.readouterr().err


def test_gradcheck_reports_an_unavailable_backend(capsys, monkeypatch):
    def unavailable(name):
        raise ImportError(f"backend {name!r} is not installed; pip install 'xpnn[cupy]'")

    monkeypatch.setattr("xpnn.cli.get_namespace", unavailable)
    assert main(["gradcheck", "--backend", "cupy"]) == 2
    assert "pip install 'xpnn[cupy]'" in capsys.readouterr().err
