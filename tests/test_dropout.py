"""Dropout: the CS231n-compatible seeded mask, keep rate, scaling, and RNG behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn
from xpnn import dropout_backward, dropout_forward
from xpnn.random import bernoulli, uniform


def _np(a):
    return xpnn.to_numpy(a)


def test_numpy_seeded_mask_matches_the_assignment():
    x = np.random.default_rng(0).standard_normal((50, 40)) + 10
    p = 0.3
    out, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 123})
    np.random.seed(123)  # noqa: NPY002  (the assignment's own recipe)
    mask = np.random.rand(*x.shape) < p  # noqa: NPY002
    np.testing.assert_array_equal(out, x * mask / p)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_rate_and_inverted_scaling(bk, p):
    x = bk.asarray(np.ones((400, 500)))
    out, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 7})
    values = _np(out)
    kept = values != 0
    assert abs(kept.mean() - p) < 0.01
    np.testing.assert_allclose(values[kept], 1 / p, rtol=1e-12)
    assert abs(values.mean() - 1) < 0.03  # inverted dropout keeps the expectation


def test_seed_reproduces_and_differs(bk):
    x = bk.asarray(np.ones((30, 30)))
    a = _np(dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 1})[0])
    b = _np(dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 1})[0])
    c = _np(dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 2})[0])
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_unseeded_masks_differ_between_calls(bk):
    x = bk.asarray(np.ones((30, 30)))
    a = _np(dropout_forward(x, {"mode": "train", "p": 0.5})[0])
    b = _np(dropout_forward(x, {"mode": "train", "p": 0.5})[0])
    assert (a != b).any()


def test_test_mode_is_identity(bk, rng):
    x = bk.asarray(rng.standard_normal((4, 5)))
    out, cache = dropout_forward(x, {"mode": "test", "p": 0.2})
    np.testing.assert_array_equal(_np(out), _np(x))
    dout = bk.asarray(rng.standard_normal((4, 5)))
    np.testing.assert_array_equal(_np(dropout_backward(dout, cache)), _np(dout))


def test_backward_uses_the_forward_mask(bk, rng):
    x0 = rng.standard_normal((20, 10)) + 5  # no zeros, so out / x recovers the mask
    x = bk.asarray(x0)
    out, cache = dropout_forward(x, {"mode": "train", "p": 0.6})
    dout0 = rng.standard_normal((20, 10))
    dx = _np(dropout_backward(bk.asarray(dout0), cache))
    np.testing.assert_allclose(dx, dout0 * (_np(out) / x0), rtol=1e-12)


def test_given_mask_is_used(bk, rng):
    x0 = rng.standard_normal((3, 4))
    keep = rng.random((3, 4)) < 0.5
    out, _ = dropout_forward(bk.asarray(x0), {"mode": "train", "p": 0.5, "mask": bk.asarray(keep)})
    np.testing.assert_allclose(_np(out), x0 * keep / 0.5, rtol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_takes_backend_device_and_dtype(bk, dtype):
    like = bk.asarray(np.zeros(2), dtype)
    u = uniform((1000,), like=like, seed=3)
    assert u.dtype == getattr(bk.xp, dtype) and u.shape == (1000,)
    if bk.device is not None:
        assert u.device == bk.device
    values = _np(u)
    assert values.min() >= 0 and values.max() < 1 and abs(values.mean() - 0.5) < 0.05


def test_dropout_under_jit_with_seed(bk, rng):
    if bk.name != "jax":
        pytest.skip("jax.jit applies to the JAX backend only")
    import jax

    x = bk.asarray(rng.standard_normal((6, 7)))
    param = {"mode": "train", "p": 0.5, "seed": 11}
    jitted = jax.jit(lambda v: dropout_forward(v, param)[0])(x)
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(dropout_forward(x, param)[0]))


def test_mask_does_not_depend_on_dtype(bk, rng):
    x0 = rng.standard_normal((20, 20)) + 5
    param = {"mode": "train", "p": 0.5, "seed": 4}
    out32 = _np(dropout_forward(bk.asarray(x0, "float32"), param)[0])
    out64 = _np(dropout_forward(bk.asarray(x0), param)[0])
    np.testing.assert_array_equal(out32 != 0, out64 != 0)


def test_bernoulli_rate_and_device(bk):
    like = bk.asarray(np.zeros(1))
    mask = bernoulli((200, 200), 0.25, like=like, seed=0)
    assert mask.dtype == bk.xp.bool and mask.shape == (200, 200)
    if bk.device is not None:
        assert mask.device == bk.device
    assert abs(_np(mask).mean() - 0.25) < 0.01


def test_test_mode_backward_checks_dout(bk):
    _, cache = dropout_forward(bk.asarray(np.ones((2, 3))), {"mode": "test", "p": 0.5})
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\)"):
        dropout_backward(bk.asarray(np.ones(7)), cache)
    dx = dropout_backward(bk.asarray(np.ones((2, 3)), "float32"), cache)
    assert dx.dtype == bk.xp.float64  # the dtype of x
