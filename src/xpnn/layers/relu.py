"""Rectified linear unit: ``out = max(x, 0)``.

The derivation of the backward pass, and the choice at ``x == 0``, are in
``docs/derivations/relu.md``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .._backend import device_of
from ._validate import (
    Array,
    Dtypes,
    cache_of,
    floating_inputs,
    in_argument_dtypes,
    require_cache,
    upstream,
)

__all__ = ["relu_backward", "relu_forward"]


@cache_of("relu_forward")
class ReluCache(NamedTuple):
    """What :func:`relu_forward` keeps for :func:`relu_backward`."""

    x: Array
    dtypes: Dtypes


def relu_forward(x: Any) -> tuple[Any, ReluCache]:
    """ReLU forward pass.

    Parameters
    ----------
    x : array, any shape

    Returns
    -------
    out : array, shape of x
        In x's dtype if it is floating, else in the backend's default floating dtype.
    cache : ReluCache
        For :func:`relu_backward`.
    """
    xp, (x,), dtypes = floating_inputs(x=x)
    out = xp.maximum(x, xp.zeros((), dtype=x.dtype, device=device_of(x)))
    return out, ReluCache(x, dtypes)


def relu_backward(dout: Any, cache: ReluCache) -> Any:
    """ReLU backward pass.

    The gradient flows where ``x > 0``. At ``x == 0``, where ReLU has a kink, the
    subgradient 0 is used, as in PyTorch and JAX.

    Parameters
    ----------
    dout : array, shape of x
    cache : ReluCache
        From :func:`relu_forward`.

    Returns
    -------
    dx : array, shape and dtype of x
    """
    x, dtypes = require_cache(cache, ReluCache)
    xp, dout = upstream(dout, x, tuple(x.shape))
    # A 0/1 mask multiplied in: on NumPy 5-9x faster than ``where`` (measured on 1.6M
    # float32 values); the same result for every finite ``dout``.
    dx = dout * xp.astype(x > 0, dout.dtype)
    return in_argument_dtypes(xp, (dx,), dtypes)[0]
