"""Max pooling: fast vs naive, ties, and PyTorch autograd / jax.vjp as oracles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import pool_geometries

import xpnn
from xpnn import (
    max_pool_backward_fast,
    max_pool_backward_naive,
    max_pool_forward_fast,
    max_pool_forward_naive,
)

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
IMPLEMENTATIONS = [
    pytest.param(max_pool_forward_fast, max_pool_backward_fast, id="fast"),
    pytest.param(max_pool_forward_naive, max_pool_backward_naive, id="naive"),
]


def _param(ph, pw, s):
    return {"pool_height": ph, "pool_width": pw, "stride": s}


def _run(bk, forward, backward, x, pool_param, dout):
    def forward_backward(x, dout):
        out, cache = forward(x, pool_param)
        return out, backward(dout, cache)

    out, dx = bk.maybe_jit(forward_backward)(bk.asarray(x), bk.asarray(dout))
    return xpnn.to_numpy(out), xpnn.to_numpy(dx)


@SETTINGS
@given(pool_geometries())
def test_fast_matches_naive(bk, geometry):
    shape, ph, pw, s = geometry
    x = np.random.default_rng(0).standard_normal(shape)
    ref_out, ref_cache = max_pool_forward_naive(x, _param(ph, pw, s))
    dout = np.random.default_rng(1).standard_normal(ref_out.shape)
    ref_dx = max_pool_backward_naive(dout, ref_cache)
    out, dx = _run(bk, max_pool_forward_fast, max_pool_backward_fast, x, _param(ph, pw, s), dout)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-14)


@SETTINGS
@given(pool_geometries())
def test_against_torch_autograd(bk, geometry):
    torch = pytest.importorskip("torch")
    shape, ph, pw, s = geometry
    x = np.random.default_rng(2).standard_normal(shape)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(tx, (ph, pw), stride=s)
    dout = np.random.default_rng(3).standard_normal(tuple(tout.shape))
    tout.backward(torch.tensor(dout))
    out, dx = _run(bk, max_pool_forward_fast, max_pool_backward_fast, x, _param(ph, pw, s), dout)
    np.testing.assert_array_equal(out, tout.detach().numpy())
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-14)


@SETTINGS
@given(pool_geometries())
def test_against_jax_vjp(bk, geometry):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    shape, ph, pw, s = geometry
    x = np.random.default_rng(4).standard_normal(shape)

    def pool(x):
        return jax.lax.reduce_window(
            x, -jnp.inf, jax.lax.max, (1, 1, ph, pw), (1, 1, s, s), "VALID"
        )

    @jax.jit
    def pool_vjp(x, dout):
        out, pullback = jax.vjp(pool, x)
        return out, pullback(dout)[0]

    out_shape = max_pool_forward_naive(x, _param(ph, pw, s))[0].shape
    dout = np.random.default_rng(5).standard_normal(out_shape)
    jout, jdx = pool_vjp(jnp.asarray(x), jnp.asarray(dout))
    out, dx = _run(bk, max_pool_forward_fast, max_pool_backward_fast, x, _param(ph, pw, s), dout)
    np.testing.assert_array_equal(out, np.asarray(jout))
    np.testing.assert_allclose(dx, np.asarray(jdx), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("forward", "backward"), IMPLEMENTATIONS)
def test_ties_go_to_first_maximum_in_row_major_order(bk, forward, backward):
    # Window 1 (left) is all equal; window 2 has its maximum twice, at (0, 1) and (1, 0).
    x = np.array([[[[5.0, 5.0, 1.0, 7.0], [5.0, 5.0, 7.0, 2.0]]]])
    dout = np.array([[[[10.0, 20.0]]]])
    out, dx = _run(bk, forward, backward, x, _param(2, 2, 2), dout)
    np.testing.assert_array_equal(out, [[[[5.0, 7.0]]]])
    np.testing.assert_array_equal(dx, [[[[10.0, 0.0, 0.0, 20.0], [0.0, 0.0, 0.0, 0.0]]]])


@pytest.mark.parametrize(("forward", "backward"), IMPLEMENTATIONS)
def test_ties_match_torch(bk, forward, backward):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(6).integers(0, 3, size=(2, 3, 7, 7)).astype(np.float64)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(tx, 3, stride=2)
    dout = np.random.default_rng(7).standard_normal(tuple(tout.shape))
    tout.backward(torch.tensor(dout))
    _, dx = _run(bk, forward, backward, x, _param(3, 3, 2), dout)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("forward", "backward"), IMPLEMENTATIONS)
def test_overlapping_windows_accumulate(bk, forward, backward):
    # 1x3 input, windows of width 2 with stride 1: the middle value is the max of both.
    x = np.array([[[[0.0, 9.0, 1.0]]]])
    out, dx = _run(bk, forward, backward, x, _param(1, 2, 1), np.array([[[[2.0, 3.0]]]]))
    np.testing.assert_array_equal(out, [[[[9.0, 9.0]]]])
    np.testing.assert_array_equal(dx, [[[[0.0, 5.0, 0.0]]]])
