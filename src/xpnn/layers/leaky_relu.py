"""Leaky ReLU: ``out = x`` where ``x > 0``, ``negative_slope * x`` elsewhere.

The derivation of the backward pass, and the choice at ``x == 0``, are in
``docs/derivations/leaky_relu.md``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ._validate import (
    Array,
    Dtypes,
    cache_of,
    floating_inputs,
    in_argument_dtypes,
    real_param,
    require_cache,
    upstream,
)

__all__ = ["leaky_relu_backward", "leaky_relu_forward"]


@cache_of("leaky_relu_forward")
class LeakyReluCache(NamedTuple):
    """What :func:`leaky_relu_forward` keeps for :func:`leaky_relu_backward`."""

    x: Array
    negative_slope: float
    dtypes: Dtypes


def leaky_relu_forward(x: Any, negative_slope: float = 0.01) -> tuple[Any, LeakyReluCache]:
    """Leaky ReLU forward pass: the values of ``torch.nn.functional.leaky_relu``.

    Parameters
    ----------
    x : array, any shape
    negative_slope : float, default 0.01
        The slope for ``x <= 0``; a Python number (static under ``jax.jit``). Any real
        value is allowed (0 gives ReLU, 1 the identity).

    Returns
    -------
    out : array, shape of x
        In x's dtype if it is floating, else in the backend's default floating dtype.
    cache : LeakyReluCache
        For :func:`leaky_relu_backward`.
    """
    slope = real_param(negative_slope, "negative_slope")
    xp, (x,), dtypes = floating_inputs(x=x)
    out = xp.where(x > 0, x, x * slope)
    return out, LeakyReluCache(x, slope, dtypes)


def leaky_relu_backward(dout: Any, cache: LeakyReluCache) -> Any:
    """Leaky ReLU backward pass.

    The gradient is ``dout`` where ``x > 0`` and ``negative_slope * dout`` elsewhere. At
    ``x == 0`` the slope of the left side is used, as in PyTorch (``jax.nn.leaky_relu``
    takes the right side's, 1).

    Parameters
    ----------
    dout : array, shape of x
    cache : LeakyReluCache
        From :func:`leaky_relu_forward`.

    Returns
    -------
    dx : array, shape and dtype of x
    """
    x, slope, dtypes = require_cache(cache, LeakyReluCache)
    xp, dout = upstream(dout, x, tuple(x.shape))
    dx = xp.where(x > 0, dout, dout * slope)
    return in_argument_dtypes(xp, (dx,), dtypes)[0]
