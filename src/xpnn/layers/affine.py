"""Fully connected (affine) layer: ``out = x.reshape(N, D) @ w + b``."""

from __future__ import annotations

import math
from typing import Any

from .._backend import array_namespace
from ..gradient_check import GradCase, register_case
from ._validate import require_ndim, require_same_dtype, require_shape

__all__ = ["affine_backward", "affine_forward"]


def affine_forward(x: Any, w: Any, b: Any) -> tuple[Any, tuple]:
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
    cache : tuple
        ``(x, w, b)`` for :func:`affine_backward`.
    """
    xp = array_namespace(x=x, w=w, b=b)
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
    require_same_dtype("x", x, w=w, b=b)
    out = xp.reshape(x, (n, d)) @ w + b
    return out, (x, w, b)


def affine_backward(dout: Any, cache: tuple) -> tuple[Any, Any, Any]:
    """Affine backward pass.

    Parameters
    ----------
    dout : array, shape (N, M)
        Upstream gradient.
    cache : tuple
        From :func:`affine_forward`.

    Returns
    -------
    dx : array, shape of x
    dw : array, shape (D, M)
    db : array, shape (M,)
    """
    x, w, _ = cache
    xp = array_namespace(dout=dout, x=x)
    n = x.shape[0]
    require_shape("dout", dout, (n, w.shape[1]), "the shape of the forward output")
    x2 = xp.reshape(x, (n, math.prod(x.shape[1:])))
    dx = xp.reshape(dout @ xp.matrix_transpose(w), x.shape)
    dw = xp.matrix_transpose(x2) @ dout
    db = xp.sum(dout, axis=0)
    return dx, dw, db


register_case(
    GradCase(
        "affine_forward",
        affine_forward,
        affine_backward,
        inputs={"x": (3, 2, 4), "w": (8, 5), "b": (5,)},
    )
)
register_case(
    GradCase(
        "affine_forward",
        affine_forward,
        affine_backward,
        inputs={"x": (4, 6), "w": (6, 3), "b": (3,)},
    )
)
