"""2-d max pooling, NCHW layout, no padding.

``out[n, c, i, j] = max_{di < ph, dj < pw} x[n, c, i*s + di, j*s + dj]`` with
``pool_param = {'pool_height': ph, 'pool_width': pw, 'stride': s}``. Windows may overlap
(``s < ph``) or leave gaps (``s > ph``); the stride must tile the input exactly.

Ties. When several entries of one window share the maximum, the backward pass sends the
whole upstream gradient of that window to the *first* of them in row-major order (the
smallest ``di``, then the smallest ``dj``), as PyTorch does. The gradient is then a
valid subgradient, and its sum over the input equals the sum of ``dout``. With
overlapping windows an entry that is the first maximum of several windows receives the
sum of their gradients.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import array_api_extra as xpx

from .._backend import device_of
from ._validate import (
    Array,
    Dtypes,
    cache_of,
    floating_inputs,
    in_argument_dtypes,
    int_param,
    require_cache,
    require_ndim,
    upstream,
    windows_out,
)
from .conv import window_offset_slices

__all__ = [
    "max_pool_backward_fast",
    "max_pool_backward_naive",
    "max_pool_forward_fast",
    "max_pool_forward_naive",
]


def _pool_geometry(x: Any, pool_param: Any) -> tuple[int, int, int, int, int]:
    """Validate a pool call; return ``(pool_height, pool_width, stride, H', W')``."""
    require_ndim("x", x, 4, "(N, C, H, W)")
    ph = int_param(pool_param, "pool_param", "pool_height", 1)
    pw = int_param(pool_param, "pool_param", "pool_width", 1)
    stride = int_param(pool_param, "pool_param", "stride", 1)
    h_out = windows_out(x.shape[2], ph, stride, "height", "pool_height", "pool_param")
    w_out = windows_out(x.shape[3], pw, stride, "width", "pool_width", "pool_param")
    return ph, pw, stride, h_out, w_out


@cache_of("max_pool_forward_naive")
class MaxPoolNaiveCache(NamedTuple):
    """What :func:`max_pool_forward_naive` keeps for :func:`max_pool_backward_naive`."""

    x: Array
    pool_param: dict
    dtypes: Dtypes


@cache_of("max_pool_forward_fast")
class MaxPoolFastCache(NamedTuple):
    """What :func:`max_pool_forward_fast` keeps for :func:`max_pool_backward_fast`."""

    x: Array
    pool_param: dict
    out: Array
    dtypes: Dtypes


# --------------------------------------------------------------------------- naive


def max_pool_forward_naive(x: Any, pool_param: dict) -> tuple[Any, tuple]:
    """Max-pool forward pass, one loop per output position (reference implementation).

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    pool_param : dict
        ``'pool_height'``, ``'pool_width'``, ``'stride'``: ints >= 1.

    Returns
    -------
    out : array, shape (N, C, H', W')
        ``H' = 1 + (H - pool_height) // stride``, ``W' = 1 + (W - pool_width) // stride``.
    cache : MaxPoolNaiveCache
        For :func:`max_pool_backward_naive`.
    """
    xp, (x,), dtypes = floating_inputs(x=x)
    ph, pw, stride, h_out, w_out = _pool_geometry(x, pool_param)
    columns = []
    for i in range(h_out):
        row = []
        for j in range(w_out):
            window = x[:, :, i * stride : i * stride + ph, j * stride : j * stride + pw]
            row.append(xp.max(window, axis=(2, 3)))
        columns.append(xp.stack(row, axis=-1))
    out = xp.stack(columns, axis=-2)
    return out, MaxPoolNaiveCache(x, pool_param, dtypes)


def max_pool_backward_naive(dout: Any, cache: tuple) -> Any:
    """Max-pool backward pass, one loop per output position (reference implementation).

    Each window's gradient goes to the first maximum in row-major order, found with
    ``argmax`` (which returns the first occurrence).

    Parameters
    ----------
    dout : array, shape (N, C, H', W')
    cache : MaxPoolNaiveCache
        From :func:`max_pool_forward_naive`.

    Returns
    -------
    dx : array, shape and dtype of x
    """
    x, pool_param, dtypes = require_cache(cache, MaxPoolNaiveCache)
    ph, pw, stride, h_out, w_out = _pool_geometry(x, pool_param)
    xp, dout = upstream(dout, x, (x.shape[0], x.shape[1], h_out, w_out))
    n, c = x.shape[0], x.shape[1]
    offsets = xp.arange(ph * pw, device=device_of(x))
    dx = xp.zeros(x.shape, dtype=x.dtype, device=device_of(x))
    for i in range(h_out):
        for j in range(w_out):
            rows = slice(i * stride, i * stride + ph)
            cols = slice(j * stride, j * stride + pw)
            window = xp.reshape(x[:, :, rows, cols], (n, c, ph * pw))
            first_max = xp.argmax(window, axis=-1)
            mask = xp.astype(offsets == first_max[..., None], x.dtype)
            grad = xp.reshape(mask * dout[:, :, i, j][..., None], (n, c, ph, pw))
            dx = xpx.at(dx, (slice(None), slice(None), rows, cols)).add(grad)
    return in_argument_dtypes(xp, (dx,), dtypes)[0]


# --------------------------------------------------------------------------- fast


def max_pool_forward_fast(x: Any, pool_param: dict) -> tuple[Any, tuple]:
    """Max-pool forward pass: elementwise maximum over ``ph*pw`` strided slices.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    pool_param : dict
        ``'pool_height'``, ``'pool_width'``, ``'stride'``: ints >= 1.

    Returns
    -------
    out : array, shape (N, C, H', W')
    cache : MaxPoolFastCache
        For :func:`max_pool_backward_fast`.
    """
    xp, (x,), dtypes = floating_inputs(x=x)
    ph, pw, stride, h_out, w_out = _pool_geometry(x, pool_param)
    # Elementwise maxima of strided slices: on NumPy 30x faster than one reduction over
    # the (..., ph, ..., pw) window axes of a reshaped view (measured, 2x2 on 50x32x32x32).
    out = None
    for di in range(ph):
        for dj in range(pw):
            values = x[window_offset_slices(di, dj, stride, h_out, w_out)]
            out = values if out is None else xp.maximum(out, values)
    return out, MaxPoolFastCache(x, pool_param, out, dtypes)


def _tiles(x: Any, ph: int, pw: int, stride: int, h_out: int, w_out: int) -> bool:
    """Whether the windows lie side by side and cover ``x`` exactly (2x2 stride 2 on an
    even input, say): each input value is then in exactly one window."""
    return stride == ph == pw and x.shape[2] == ph * h_out and x.shape[3] == pw * w_out


def max_pool_backward_fast(dout: Any, cache: tuple) -> Any:
    """Max-pool backward pass: one masked strided slice-add per window offset.

    Offsets are visited in row-major order, each taking the upstream gradient of the
    windows whose maximum it holds and whose gradient has not been taken yet: a tie sends
    the gradient to the first maximum only. Where windows do not overlap, each offset's
    slice is set rather than added to, and where they also cover ``x``, ``dx`` needs no
    zero fill.

    Parameters
    ----------
    dout : array, shape (N, C, H', W')
    cache : MaxPoolFastCache
        From :func:`max_pool_forward_fast`.

    Returns
    -------
    dx : array, shape and dtype of x
    """
    x, pool_param, out, dtypes = require_cache(cache, MaxPoolFastCache)
    ph, pw, stride, h_out, w_out = _pool_geometry(x, pool_param)
    xp, dout = upstream(dout, x, (x.shape[0], x.shape[1], h_out, w_out))
    overlap = stride < ph or stride < pw
    fill = xp.empty if _tiles(x, ph, pw, stride, h_out, w_out) else xp.zeros
    dx = fill(x.shape, dtype=x.dtype, device=device_of(x))
    remaining = dout  # the gradient of the windows whose maximum is still to be found
    offsets = [(di, dj) for di in range(ph) for dj in range(pw)]
    for k, (di, dj) in enumerate(offsets):
        index = window_offset_slices(di, dj, stride, h_out, w_out)
        # 0/1 masks multiplied in (``where`` is 5-9x slower on NumPy): exact for finite dout.
        grad = remaining * xp.astype(x[index] == out, remaining.dtype)
        dx = xpx.at(dx, index).add(grad) if overlap else xpx.at(dx, index).set(grad)
        if k + 1 < len(offsets):
            remaining = remaining - grad
    return in_argument_dtypes(xp, (dx,), dtypes)[0]
