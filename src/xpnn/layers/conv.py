"""2-d convolution (cross-correlation, as in every deep-learning library), NCHW layout.

``out[n, f, i, j] = b[f] + sum_{c, di, dj} xpad[n, c, i*s + di, j*s + dj] * w[f, c, di, dj]``
with ``xpad`` the input zero-padded by ``pad`` on H and W, and
``H' = 1 + (H + 2*pad - HH) // stride`` (likewise W'). The stride must tile the padded
input exactly. The derivation of the backward pass is in ``docs/derivations/conv.md``.

Two implementations with identical results:

* ``conv_forward_naive`` / ``conv_backward_naive``: one Python loop per output value, the
  textbook definition. For teaching and as a test oracle; far too slow for training.
* ``conv_forward_fast`` / ``conv_backward_fast``: im2col built from ``HH*WW`` strided
  slices of the padded input and one matrix multiply; the backward scatters the
  column gradient back with ``HH*WW`` strided slice-adds (col2im). Python loops run over
  kernel offsets only, never over N, C, H or W, so the same code is fast on every backend
  and traces under ``jax.jit``. Where the library has a convolution primitive (JAX's
  ``lax.conv_general_dilated``: XLA, cuDNN on a GPU) the fast pair runs the same
  formulas on it instead (``xpnn._native``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import array_api_extra as xpx

from .. import _native
from .._backend import device_of, stack_scalars
from ._validate import (
    Array,
    Dtypes,
    MaybeArray,
    cache_of,
    floating_inputs,
    in_argument_dtypes,
    int_param,
    require_cache,
    require_ndim,
    require_shape,
    upstream,
    windows_out,
)

__all__ = [
    "conv_backward_fast",
    "conv_backward_naive",
    "conv_forward_fast",
    "conv_forward_naive",
]


def _conv_geometry(x: Any, w: Any, b: Any, conv_param: Any) -> tuple[int, int, int, int]:
    """Validate a conv call; return ``(stride, pad, H', W')``."""
    require_ndim("x", x, 4, "(N, C, H, W)")
    require_ndim("w", w, 4, "(F, C, HH, WW)")
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"channel mismatch: w has {w.shape[1]} input channels (w.shape[1]) but x has "
            f"{x.shape[1]} channels (x.shape[1]); w must have shape (F, {x.shape[1]}, HH, WW)"
        )
    require_shape("b", b, (w.shape[0],), "one bias per filter of w")
    stride = int_param(conv_param, "conv_param", "stride", 1)
    pad = int_param(conv_param, "conv_param", "pad", 0)
    _, _, h, wd = x.shape
    _, _, hh, ww = w.shape
    h_out = windows_out(h + 2 * pad, hh, stride, "height", "filter height", "conv_param")
    w_out = windows_out(wd + 2 * pad, ww, stride, "width", "filter width", "conv_param")
    return stride, pad, h_out, w_out


def _pad_hw(xp: Any, x: Any, pad: int) -> Any:
    if pad == 0:
        return x
    return xpx.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), xp=xp)


def window_offset_slices(
    di: int, dj: int, stride: int, h_out: int, w_out: int
) -> tuple[slice, slice, slice, slice]:
    """Index of the input values that kernel offset ``(di, dj)`` meets, for every output.

    ``x[window_offset_slices(di, dj, ...)]`` has shape ``(N, C, H', W')``; its
    ``[n, c, i, j]`` entry is ``x[n, c, i*stride + di, j*stride + dj]``. The slice stops
    are exact (no stop beyond the axis), as array-api-strict requires.
    """
    return (
        slice(None),
        slice(None),
        slice(di, di + stride * (h_out - 1) + 1, stride),
        slice(dj, dj + stride * (w_out - 1) + 1, stride),
    )


@cache_of("conv_forward_naive")
class ConvNaiveCache(NamedTuple):
    """What :func:`conv_forward_naive` keeps for :func:`conv_backward_naive`."""

    x: Array
    w: Array
    b: Array
    conv_param: dict
    dtypes: Dtypes


@cache_of("conv_forward_fast")
class ConvFastCache(NamedTuple):
    """What :func:`conv_forward_fast` keeps for :func:`conv_backward_fast`.

    ``cols`` is the im2col matrix, shape ``(C*HH*WW, N*H'*W')``, kept so that the
    backward pass needs no second im2col; None where the forward pass used the library's
    own convolution (see ``xpnn._native``), which the backward pass then uses too.
    """

    x: Array
    w: Array
    b: Array
    conv_param: dict
    cols: MaybeArray
    dtypes: Dtypes


# --------------------------------------------------------------------------- naive


def conv_forward_naive(x: Any, w: Any, b: Any, conv_param: dict) -> tuple[Any, tuple]:
    """Convolution forward pass, one loop per output value (reference implementation).

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    w : array, shape (F, C, HH, WW)
    b : array, shape (F,)
    conv_param : dict
        ``'stride'`` (int >= 1) and ``'pad'`` (int >= 0, zeros on H and W).

    Returns
    -------
    out : array, shape (N, F, H', W')
        ``H' = 1 + (H + 2*pad - HH) // stride``, ``W' = 1 + (W + 2*pad - WW) // stride``.
    cache : ConvNaiveCache
        For :func:`conv_backward_naive`.
    """
    xp, (x, w, b), dtypes = floating_inputs(x=x, w=w, b=b)
    stride, pad, h_out, w_out = _conv_geometry(x, w, b, conv_param)
    n_samples, f_filters = x.shape[0], w.shape[0]
    hh, ww = w.shape[2], w.shape[3]
    xpad = _pad_hw(xp, x, pad)
    values = []
    for n in range(n_samples):
        for f in range(f_filters):
            for i in range(h_out):
                for j in range(w_out):
                    window = xpad[n, :, i * stride : i * stride + hh, j * stride : j * stride + ww]
                    values.append(xp.sum(window * w[f, ...]) + b[f])
    if not values:
        out = xp.zeros((n_samples, f_filters, h_out, w_out), dtype=x.dtype, device=device_of(x))
    else:
        out = stack_scalars(xp, values, (n_samples, f_filters, h_out, w_out))
    return out, ConvNaiveCache(x, w, b, conv_param, dtypes)


def conv_backward_naive(dout: Any, cache: tuple) -> tuple[Any, Any, Any]:
    """Convolution backward pass, one loop per output value (reference implementation).

    Parameters
    ----------
    dout : array, shape (N, F, H', W')
    cache : ConvNaiveCache
        From :func:`conv_forward_naive`.

    Returns
    -------
    dx : array, shape (N, C, H, W)
    dw : array, shape (F, C, HH, WW)
    db : array, shape (F,)
        Each in the dtype of its argument.
    """
    x, w, b, conv_param, dtypes = require_cache(cache, ConvNaiveCache)
    stride, pad, h_out, w_out = _conv_geometry(x, w, b, conv_param)
    n_samples, _, h, wd = x.shape
    f_filters, _, hh, ww = w.shape
    xp, dout = upstream(dout, x, (n_samples, f_filters, h_out, w_out))
    xpad = _pad_hw(xp, x, pad)
    dxpad = xp.zeros(xpad.shape, dtype=x.dtype, device=device_of(x))
    dw = xp.zeros(w.shape, dtype=w.dtype, device=device_of(w))
    for n in range(n_samples):
        for f in range(f_filters):
            for i in range(h_out):
                for j in range(w_out):
                    rows = slice(i * stride, i * stride + hh)
                    cols = slice(j * stride, j * stride + ww)
                    g = dout[n, f, i, j]
                    dxpad = xpx.at(dxpad, (n, slice(None), rows, cols)).add(w[f, ...] * g)
                    dw = xpx.at(dw, (f, ...)).add(xpad[n, :, rows, cols] * g)
    dx = dxpad[:, :, pad : pad + h, pad : pad + wd]
    db = xp.sum(dout, axis=(0, 2, 3))
    return in_argument_dtypes(xp, (dx, dw, db), dtypes)


# --------------------------------------------------------------------------- fast


def conv_forward_fast(x: Any, w: Any, b: Any, conv_param: dict) -> tuple[Any, tuple]:
    """Convolution forward pass: im2col by strided slices, then one matrix multiply.

    The columns are built channels-first and batch-second, ``cols[(c, di, dj), (n, i,
    j)]``, so that the whole minibatch is one GEMM ``w.reshape(F, C*HH*WW) @ cols`` (no
    batch of small per-sample products) and the output comes out as ``(F, N, H', W')``
    in memory. It is returned rearranged into a new C-contiguous ``(N, F, H', W')``
    array, as the assignment's ``conv_forward_fast`` returns it (one copy of the output),
    so that PyTorch's ``out.view(N, -1)`` works on it.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    w : array, shape (F, C, HH, WW)
    b : array, shape (F,)
    conv_param : dict
        ``'stride'`` (int >= 1) and ``'pad'`` (int >= 0, zeros on H and W).

    Returns
    -------
    out : array, shape (N, F, H', W')
        C-contiguous (where the library's own convolution runs, JAX and PyTorch except
        float64 on the CPU, as that convolution returns it).
    cache : ConvFastCache
        For :func:`conv_backward_fast`.
    """
    xp, (x, w, b), dtypes = floating_inputs(x=x, w=w, b=b)
    stride, pad, h_out, w_out = _conv_geometry(x, w, b, conv_param)
    n_samples, channels = x.shape[0], x.shape[1]
    f_filters, _, hh, ww = w.shape
    native = _native.conv_forward(x, w, stride, pad)
    if native is not None:  # the library's convolution (JAX): the same formula, no im2col
        out = native + xp.reshape(b, (1, f_filters, 1, 1))
        return out, ConvFastCache(x, w, b, conv_param, None, dtypes)
    xpad = _pad_hw(xp, xp.permute_dims(x, (1, 0, 2, 3)), pad)  # (C, N, Hp, Wp)
    # cols[(c, di, dj), (n, i, j)] = xpad[c, n, i*s + di, j*s + dj]; the (c, di, dj)
    # order matches w.reshape(F, C*HH*WW).
    patches = [
        xpad[window_offset_slices(di, dj, stride, h_out, w_out)]
        for di in range(hh)
        for dj in range(ww)
    ]
    cols = xp.reshape(xp.stack(patches, axis=1), (channels * hh * ww, n_samples * h_out * w_out))
    out = xp.reshape(w, (f_filters, channels * hh * ww)) @ cols
    out += xp.reshape(b, (f_filters, 1))  # our own new array: the bias added in place
    out = xp.permute_dims(xp.reshape(out, (f_filters, n_samples, h_out, w_out)), (1, 0, 2, 3))
    # Reshaping is defined in row-major order, so flattening the transposed view copies it
    # into C order (the standard has no "contiguous"); the second reshape is a view.
    out = xp.reshape(xp.reshape(out, (-1,)), (n_samples, f_filters, h_out, w_out))
    return out, ConvFastCache(x, w, b, conv_param, cols, dtypes)


def conv_backward_fast(
    dout: Any, cache: tuple, *, input_grad: bool = True
) -> tuple[Any, Any, Any]:
    """Convolution backward pass: two matrix multiplies and a col2im by strided slice-adds.

    ``dw`` correlates the input with the upstream gradient, ``dx`` is the full
    convolution of the (dilated) upstream gradient with the filters rotated by 180
    degrees, computed as ``w.T @ dout`` followed by col2im; ``db`` sums ``dout``. All
    three work on ``dout`` as an ``(F, N*H'*W')`` matrix, which the forward pass's output
    layout gives without a copy.

    Parameters
    ----------
    dout : array, shape (N, F, H', W')
    cache : ConvFastCache
        From :func:`conv_forward_fast`.
    input_grad : bool, keyword-only
        False skips ``dx`` (returned as None): the first layer of a network, whose input
        needs no gradient, saves a matrix multiply and the col2im.

    Returns
    -------
    dx : array, shape (N, C, H, W), or None
    dw : array, shape (F, C, HH, WW)
    db : array, shape (F,)
        Each in the dtype of its argument.
    """
    x, w, b, conv_param, cols, dtypes = require_cache(cache, ConvFastCache)
    stride, pad, h_out, w_out = _conv_geometry(x, w, b, conv_param)
    n_samples, channels, h, wd = x.shape
    f_filters, _, hh, ww = w.shape
    xp, dout = upstream(dout, x, (n_samples, f_filters, h_out, w_out))
    if cols is None:  # the forward pass ran the native convolution
        db = xp.sum(dout, axis=(0, 2, 3))
        dx, dw = _native.conv_backward(dout, x, w, stride, pad, input_grad)
        if dx is None:
            return (None, *in_argument_dtypes(xp, (dw, db), dtypes[1:]))
        return in_argument_dtypes(xp, (dx, dw, db), dtypes)
    dout2 = xp.reshape(xp.permute_dims(dout, (1, 0, 2, 3)), (f_filters, -1))

    db = xp.sum(dout2, axis=1)
    dw = xp.reshape(dout2 @ xp.matrix_transpose(cols), (f_filters, channels, hh, ww))
    if not input_grad:
        return (None, *in_argument_dtypes(xp, (dw, db), dtypes[1:]))
    w2 = xp.reshape(w, (f_filters, channels * hh * ww))
    dcols = xp.reshape(
        xp.matrix_transpose(w2) @ dout2, (channels, hh * ww, n_samples, h_out, w_out)
    )
    hp, wp = h + 2 * pad, wd + 2 * pad
    dxpad = xp.zeros((channels, n_samples, hp, wp), dtype=x.dtype, device=device_of(x))
    # col2im: overlapping windows add up, so this is a slice-*add* per kernel offset
    # (never an integer scatter, which is not portable; see docs/derivations/conv.md).
    for di in range(hh):
        for dj in range(ww):
            dxpad = xpx.at(dxpad, window_offset_slices(di, dj, stride, h_out, w_out)).add(
                dcols[:, di * ww + dj, ...]
            )
    dx = xp.permute_dims(dxpad[:, :, pad : pad + h, pad : pad + wd], (1, 0, 2, 3))
    return in_argument_dtypes(xp, (dx, dw, db), dtypes)
