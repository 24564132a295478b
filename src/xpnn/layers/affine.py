"""Fully connected (affine) layer: ``out = x.reshape(N, D) @ w + b``.

The derivation of the backward pass is in ``docs/derivations/affine.md``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from ._validate import (
    Array,
    Dtypes,
    cache_of,
    floating_inputs,
    in_argument_dtypes,
    require_cache,
    require_ndim,
    require_shape,
    upstream,
)

__all__ = ["affine_backward", "affine_forward"]


@cache_of("affine_forward")
class AffineCache(NamedTuple):
    """What :func:`affine_forward` keeps for :func:`affine_backward`."""

    x: Array
    w: Array
    b: Array
    dtypes: Dtypes


def affine_forward(x: Any, w: Any, b: Any) -> tuple[Any, AffineCache]:
    """Affine forward pass.

    Parameters
    ----------
    x : array, shape (N, d_1, ..., d_k)
        Input minibatch; each example is flattened to ``D = d_1 * ... * d_k`` values.
    w : array, shape (D, M)
    b : array, shape (M,)

    Returns
    -------
    out : array, shape (N, M)
    cache : AffineCache
        For :func:`affine_backward`.
    """
    xp, (x, w, b), dtypes = floating_inputs(x=x, w=w, b=b)
    if x.ndim < 1:
        raise ValueError(
            f"x must have a leading batch axis (N, d_1, ..., d_k); got shape {x.shape}"
        )
    require_ndim("w", w, 2, "(D, M)")
    n = x.shape[0]
    d = math.prod(x.shape[1:])
    if w.shape[0] != d:
        raise ValueError(
            f"w must have shape (D, M) with D = {d}, the size of one example of x "
            f"{tuple(x.shape)}; got w.shape {tuple(w.shape)}"
        )
    require_shape("b", b, (w.shape[1],), "one bias per output unit of w")
    out = xp.reshape(x, (n, d)) @ w + b
    return out, AffineCache(x, w, b, dtypes)


def affine_backward(dout: Any, cache: AffineCache) -> tuple[Any, Any, Any]:
    """Affine backward pass.

    Parameters
    ----------
    dout : array, shape (N, M)
        Upstream gradient.
    cache : AffineCache
        From :func:`affine_forward`.

    Returns
    -------
    dx : array, shape of x
    dw : array, shape (D, M)
    db : array, shape (M,)
        Each in the dtype of its argument.
    """
    x, w, _, dtypes = require_cache(cache, AffineCache)
    n = x.shape[0]
    xp, dout = upstream(dout, x, (n, w.shape[1]))
    x2 = xp.reshape(x, (n, math.prod(x.shape[1:])))
    dx = xp.reshape(dout @ xp.matrix_transpose(w), x.shape)
    dw = xp.matrix_transpose(x2) @ dout
    db = xp.sum(dout, axis=0)
    return in_argument_dtypes(xp, (dx, dw, db), dtypes)
