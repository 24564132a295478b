"""Convolution: fast vs naive, and against PyTorch autograd and jax.vjp as oracles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import conv_geometries

import xpnn
from xpnn import conv_backward_fast, conv_backward_naive, conv_forward_fast, conv_forward_naive

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)


def _draw(shape_x, shape_w, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape_x)
    w = rng.standard_normal(shape_w)
    b = rng.standard_normal(shape_w[0])
    return x, w, b


def _ours(bk, x, w, b, conv_param, dout):
    def forward_backward(x, w, b, dout):
        out, cache = conv_forward_fast(x, w, b, conv_param)
        return out, conv_backward_fast(dout, cache)

    out, grads = bk.maybe_jit(forward_backward)(*(bk.asarray(a) for a in (x, w, b, dout)))
    return xpnn.to_numpy(out), [xpnn.to_numpy(g) for g in grads]


@SETTINGS
@given(conv_geometries())
def test_fast_matches_naive(bk, geometry):
    shape_x, shape_w, stride, pad = geometry
    x, w, b = _draw(shape_x, shape_w)
    conv_param = {"stride": stride, "pad": pad}
    naive_out, naive_cache = conv_forward_naive(x, w, b, conv_param)
    dout = np.random.default_rng(1).standard_normal(naive_out.shape)
    naive_grads = conv_backward_naive(dout, naive_cache)
    out, grads = _ours(bk, x, w, b, conv_param, dout)
    np.testing.assert_allclose(out, naive_out, rtol=1e-10, atol=1e-12)
    for g, r in zip(grads, naive_grads, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)


@SETTINGS
@given(conv_geometries())
def test_against_torch_autograd(bk, geometry):
    torch = pytest.importorskip("torch")
    shape_x, shape_w, stride, pad = geometry
    x, w, b = _draw(shape_x, shape_w, seed=2)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=pad)
    dout = np.random.default_rng(3).standard_normal(tuple(tout.shape))
    tout.backward(torch.tensor(dout))
    out, (dx, dw, db) = _ours(bk, x, w, b, {"stride": stride, "pad": pad}, dout)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-9, atol=1e-11)


@SETTINGS
@given(conv_geometries())
def test_against_jax_vjp(bk, geometry):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    shape_x, shape_w, stride, pad = geometry
    x, w, b = _draw(shape_x, shape_w, seed=4)

    def conv(x, w, b):
        out = jax.lax.conv_general_dilated(
            x,
            w,
            (stride, stride),
            [(pad, pad), (pad, pad)],
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )
        return out + b[None, :, None, None]

    @jax.jit
    def conv_vjp(x, w, b, dout):
        out, pullback = jax.vjp(conv, x, w, b)
        return out, pullback(dout)

    out_shape = conv_forward_fast(x, w, b, {"stride": stride, "pad": pad})[0].shape
    dout = np.random.default_rng(5).standard_normal(out_shape)
    jout, jgrads = conv_vjp(*(jnp.asarray(a) for a in (x, w, b, dout)))
    out, grads = _ours(bk, x, w, b, {"stride": stride, "pad": pad}, dout)
    np.testing.assert_allclose(out, np.asarray(jout), rtol=1e-9, atol=1e-11)
    for g, r in zip(grads, jgrads, strict=True):
        np.testing.assert_allclose(g, np.asarray(r), rtol=1e-9, atol=1e-11)


def test_hand_computed_example(bk):
    # 1 channel 3x3 input, one 2x2 filter, stride 1, no padding: out[i, j] is the sum of
    # the 2x2 window at (i, j) weighted by w.
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    b = np.array([0.5])
    out, cache = conv_forward_fast(
        bk.asarray(x), bk.asarray(w), bk.asarray(b), {"stride": 1, "pad": 0}
    )
    expected = (
        np.array([[[[0 + 2 + 9 + 16, 1 + 4 + 12 + 20], [3 + 8 + 18 + 28, 4 + 10 + 21 + 32]]]])
        + 0.5
    )
    np.testing.assert_array_equal(xpnn.to_numpy(out), expected)
    # With dout = ones, dx[p] counts the filter weights that touch p: the full convolution
    # of a ones-matrix with the rotated filter.
    dx, dw, db = conv_backward_fast(bk.asarray(np.ones((1, 1, 2, 2))), cache)
    np.testing.assert_array_equal(xpnn.to_numpy(dx)[0, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]])
    np.testing.assert_array_equal(xpnn.to_numpy(dw)[0, 0], [[8, 12], [20, 24]])
    np.testing.assert_array_equal(xpnn.to_numpy(db), [4])


def test_float32_speed_path_matches_float64(bk):
    x, w, b = _draw((4, 3, 9, 9), (5, 3, 3, 3), seed=9)
    conv_param = {"stride": 2, "pad": 1}
    out64, _ = conv_forward_fast(bk.asarray(x), bk.asarray(w), bk.asarray(b), conv_param)
    out32, _ = conv_forward_fast(
        bk.asarray(x, "float32"), bk.asarray(w, "float32"), bk.asarray(b, "float32"), conv_param
    )
    assert out32.dtype == bk.xp.float32
    np.testing.assert_allclose(xpnn.to_numpy(out32), xpnn.to_numpy(out64), rtol=1e-4, atol=1e-5)


def test_input_grad_false_skips_only_dx(bk, rng):
    x = bk.asarray(rng.standard_normal((3, 2, 6, 6)))
    w = bk.asarray(rng.standard_normal((4, 2, 3, 3)), dtype="float32")
    b = bk.asarray(rng.standard_normal(4))
    out, cache = xpnn.conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    dout = bk.asarray(rng.standard_normal(tuple(out.shape)))
    _, dw, db = xpnn.conv_backward_fast(dout, cache)
    none, dw2, db2 = xpnn.conv_backward_fast(dout, cache, input_grad=False)
    assert none is None and dw2.dtype == w.dtype and db2.dtype == b.dtype
    np.testing.assert_array_equal(xpnn.to_numpy(dw2), xpnn.to_numpy(dw))
    np.testing.assert_array_equal(xpnn.to_numpy(db2), xpnn.to_numpy(db))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "pad"),
    [((2, 3, 7, 7), (4, 3, 3, 3), 2, 1), ((2, 2, 6, 6), (3, 2, 3, 3), 1, 3),
     ((3, 3, 9, 9), (2, 3, 3, 3), 3, 0), ((2, 3, 8, 8), (4, 3, 5, 5), 1, 2)],
)  # fmt: skip
def test_native_and_portable_paths_agree(bk, rng, x_shape, w_shape, stride, pad, dtype):
    """Where a library has a native convolution (JAX; PyTorch except float64 on the CPU),
    it gives im2col's results; the portable path is what runs in ``_native.disabled()``."""
    from xpnn import _native

    x = bk.asarray(rng.standard_normal(x_shape), dtype=dtype)
    w = bk.asarray(rng.standard_normal(w_shape), dtype=dtype)
    b = bk.asarray(rng.standard_normal(w_shape[0]), dtype=dtype)
    param = {"stride": stride, "pad": pad}
    # JAX on a GPU computes float32 products in TF32 unless asked otherwise
    with bk.full_precision():
        out, cache = conv_forward_fast(x, w, b, param)
        dout = bk.asarray(rng.standard_normal(tuple(out.shape)), dtype=dtype)
        grads = conv_backward_fast(dout, cache)
        with _native.disabled():
            out2, cache2 = conv_forward_fast(x, w, b, param)
            grads2 = conv_backward_fast(dout, cache2)
    native = bk.name == "jax" or (bk.name == "torch" and (dtype == "float32" or bk.on_gpu))
    assert cache2.cols is not None and (cache.cols is None) == native
    tol = 1e-12 if dtype == "float64" else 1e-4
    for mine, portable in zip((out, *grads), (out2, *grads2), strict=True):
        assert mine.dtype == portable.dtype
        np.testing.assert_allclose(xpnn.to_numpy(mine), xpnn.to_numpy(portable), atol=tol)
