"""Rectified linear unit: ``out = max(x, 0)``."""

from __future__ import annotations

from typing import Any

from .._backend import array_namespace
from ..gradient_check import GradCase, nonzero, register_case
from ._validate import require_shape

__all__ = ["relu_backward", "relu_forward"]


def relu_forward(x: Any) -> tuple[Any, Any]:
    """ReLU forward pass.

    Parameters
    ----------
    x : array, any shape

    Returns
    -------
    out : array, shape of x
    cache : array
        ``x`` itself, for :func:`relu_backward`.
    """
    xp = array_namespace(x=x)
    out = xp.where(x > 0, x, xp.zeros_like(x))
    return out, x


def relu_backward(dout: Any, cache: Any) -> Any:
    """ReLU backward pass.

    The gradient flows where ``x > 0``; at ``x == 0`` (where the function has a kink)
    it is 0, as in PyTorch.

    Parameters
    ----------
    dout : array, shape of x
    cache : array
        ``x``, from :func:`relu_forward`.

    Returns
    -------
    dx : array, shape of x
    """
    x = cache
    xp = array_namespace(dout=dout, x=x)
    require_shape("dout", dout, tuple(x.shape), "the shape of the forward output")
    return xp.where(x > 0, dout, xp.zeros_like(dout))


register_case(
    GradCase("relu_forward", relu_forward, relu_backward, inputs={"x": nonzero(4, 3, 5)})
)
