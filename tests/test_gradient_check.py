"""The gradient checker itself: hand-computed values, in-place vs copy semantics, and
proof that it catches wrong backward passes."""

from __future__ import annotations

import math

import array_api_compat
import numpy as np
import pytest

import xpnn
from xpnn import (
    affine_backward,
    affine_forward,
    conv_backward_fast,
    conv_forward_fast,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
    softmax_loss,
)
from xpnn.gradient_check import GradCase, check_directional, labels, run_case


def test_rel_error_hand_computed():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    # |1 - 3| / (1 + 3) = 0.5 is the largest entry.
    assert rel_error(np.array([1.0, 2.0]), np.array([3.0, 2.0])) == 0.5
    # Below the 1e-8 floor the difference is divided by 1e-8.
    assert math.isclose(rel_error(np.array([1e-10]), np.array([0.0])), 1e-2)


def test_rel_error_accepts_backend_arrays(bk):
    assert rel_error(bk.asarray([1.0, 2.0]), bk.asarray([3.0, 2.0])) == 0.5


def test_numerical_gradient_of_cubic(bk):
    x0 = np.array([[0.5, -1.0], [2.0, 0.25]])
    x = bk.asarray(x0)

    def f(v):
        return bk.xp.sum(v**3)

    grad = eval_numerical_gradient(f, x, verbose=False)
    assert array_api_compat.array_namespace(grad) is array_api_compat.array_namespace(x)
    np.testing.assert_allclose(xpnn.to_numpy(grad), 3 * x0**2, rtol=1e-8)
    np.testing.assert_array_equal(xpnn.to_numpy(x), x0)  # restored exactly


def test_numerical_gradient_array_is_a_vector_jacobian_product(bk):
    x0 = np.array([1.0, 2.0, 3.0])
    df0 = np.array([1.0, -1.0, 0.5])
    grad = eval_numerical_gradient_array(lambda v: bk.xp.sin(v), bk.asarray(x0), bk.asarray(df0))
    np.testing.assert_allclose(xpnn.to_numpy(grad), np.cos(x0) * df0, rtol=1e-8)


def test_assignment_idiom_reads_x_through_a_closure(bk):
    """``f = lambda _: loss(W)`` ignores its argument; works where arrays are writeable."""
    w0 = np.array([0.3, -0.7])
    w = bk.asarray(w0)
    if not array_api_compat.is_writeable_array(w):
        pytest.skip(f"{bk.name} arrays are immutable: f must use its argument (docs/backends)")
    grad = eval_numerical_gradient(lambda _: bk.xp.sum(w * w), w, verbose=False)
    np.testing.assert_allclose(xpnn.to_numpy(grad), 2 * w0, rtol=1e-8)
    np.testing.assert_array_equal(xpnn.to_numpy(w), w0)


def test_verbose_prints_each_coordinate(bk, capsys):
    eval_numerical_gradient(lambda v: bk.xp.sum(v), bk.asarray([1.0, 2.0]), verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("(0,)")


def test_grad_check_sparse_reports_small_errors(bk, capsys):
    x0 = np.random.default_rng(0).standard_normal((4, 5))
    x = bk.asarray(x0)
    errors = grad_check_sparse(
        lambda v: bk.xp.sum(v**2), x, bk.asarray(2 * x0), num_checks=5, seed=0
    )
    assert len(errors) == 5 and max(errors) < 1e-7
    assert capsys.readouterr().out.count("relative error") == 5
    wrong = grad_check_sparse(
        lambda v: bk.xp.sum(v**2), x, bk.asarray(3 * x0), num_checks=5, seed=0
    )
    assert min(wrong) > 0.1


def test_directional_check_on_a_large_input(bk):
    rng = np.random.default_rng(0)
    x = bk.asarray(rng.standard_normal((8, 16, 12, 12)))
    w = bk.asarray(rng.standard_normal((8, 16, 3, 3)))
    b = bk.asarray(rng.standard_normal(8))
    param = {"stride": 1, "pad": 1}
    out, cache = conv_forward_fast(x, w, b, param)
    dout = bk.asarray(rng.standard_normal(tuple(out.shape)))
    grads = conv_backward_fast(dout, cache)

    def f(*a):
        return conv_forward_fast(*a, param)[0]

    assert check_directional(f, (x, w, b), grads, dout) < 1e-7
    dx, dw, db = grads
    assert check_directional(f, (x, w, b), (dx, dw * 1.01, db), dout) > 1e-4


# ----------------------------------------------------------- a wrong backward is caught


def _affine_backward_transposed_dw(dout, cache):
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw.T, db  # the classic mistake; only shape-correct for a square w


def _conv_backward_flipped_dx(dout, cache):
    # The correlation/convolution mix-up: dx computed with an un-rotated kernel.
    dx, dw, db = conv_backward_fast(dout, cache)
    xp = array_api_compat.array_namespace(dx)
    return xp.flip(dx, axis=(2, 3)), dw, db


def _softmax_without_mean(x, y):
    loss, dx = softmax_loss(x, y)
    return loss, dx * x.shape[0]


WRONG = [
    GradCase(
        "affine (dw transposed)",
        affine_forward,
        _affine_backward_transposed_dw,
        inputs={"x": (3, 4), "w": (4, 4), "b": (4,)},
    ),
    GradCase(
        "conv (dx flipped)",
        conv_forward_fast,
        _conv_backward_flipped_dx,
        inputs={"x": (2, 2, 5, 5), "w": (2, 2, 3, 3), "b": (2,)},
        params={"conv_param": {"stride": 2, "pad": 1}},
    ),
    GradCase(
        "softmax (no 1/N)", _softmax_without_mean, None, inputs={"x": (4, 3), "y": labels(4, 3)}
    ),
]


@pytest.mark.parametrize("case", WRONG, ids=[c.name for c in WRONG])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_wrong_backward_fails_the_check(bk, case, dtype):
    result = run_case(case, bk.xp, device=bk.device, dtype=dtype, compile=bk.compile)
    assert not result.passed
    assert result.scaled_error > 1e-2
