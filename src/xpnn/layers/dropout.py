"""Inverted dropout: ``out = x * mask / p`` in train mode, ``out = x`` in test mode.

``p`` is the probability of *keeping* a unit (the CS231n convention, not PyTorch's). The
mask is drawn on the input's device by :mod:`xpnn.random`; the cache keeps it, so the
backward pass (and a gradient check with a fixed ``seed``) is exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import random as xprandom
from .._backend import array_namespace
from ..gradient_check import GradCase, register_case
from ._validate import require_same_dtype, require_shape

__all__ = ["dropout_backward", "dropout_forward"]


def _dropout_settings(dropout_param: Any) -> tuple[float, str, int | None]:
    if not isinstance(dropout_param, Mapping):
        raise TypeError(f"dropout_param must be a dict; got {type(dropout_param).__name__}")
    if "p" not in dropout_param:
        raise KeyError("dropout_param needs the key 'p' (the probability of keeping a unit)")
    p = dropout_param["p"]
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
        raise ValueError(
            f"dropout_param['p'] is the probability of keeping a unit and must be in (0, 1]; "
            f"got {p!r}"
        )
    mode = dropout_param.get("mode", "train")
    if mode not in ("train", "test"):
        raise ValueError(f"dropout_param['mode'] must be 'train' or 'test'; got {mode!r}")
    return float(p), mode, dropout_param.get("seed")


def dropout_forward(x: Any, dropout_param: dict) -> tuple[Any, tuple]:
    """Inverted dropout forward pass.

    Parameters
    ----------
    x : array, any shape
    dropout_param : dict
        ``'p'``: probability of keeping each unit, in (0, 1]; ``'mode'``: ``'train'``
        (default) or ``'test'``; ``'seed'``: optional int for a reproducible mask (on
        NumPy: ``np.random.seed(seed); np.random.rand(*x.shape) < p``, as in CS231n);
        ``'mask'``: optional boolean array of x's shape to use instead of drawing one.

    Returns
    -------
    out : array, shape of x
    cache : tuple
        ``(dropout_param, mask)`` with ``mask`` the scaled keep-mask ``(u < p) / p`` in x's
        dtype (``None`` in test mode).
    """
    xp = array_namespace(x=x)
    p, mode, seed = _dropout_settings(dropout_param)
    if mode == "test":
        return x, (dropout_param, None)
    keep = dropout_param.get("mask")
    if keep is None:
        keep = xprandom.bernoulli(tuple(x.shape), p, like=x, seed=seed)
    else:
        array_namespace(x=x, **{"dropout_param['mask']": keep})
        require_shape("dropout_param['mask']", keep, tuple(x.shape), "the shape of x")
    mask = xp.astype(keep, x.dtype) / p
    return x * mask, (dropout_param, mask)


def dropout_backward(dout: Any, cache: tuple) -> Any:
    """Inverted dropout backward pass.

    Parameters
    ----------
    dout : array, shape of x
    cache : tuple
        From :func:`dropout_forward`.

    Returns
    -------
    dx : array, shape of x
        ``dout * mask / p`` in train mode, ``dout`` in test mode.
    """
    _, mask = cache
    if mask is None:
        return dout
    array_namespace(dout=dout, mask=mask)
    require_shape("dout", dout, tuple(mask.shape), "the shape of the forward output")
    require_same_dtype("mask", mask, dout=dout)
    return dout * mask


for _p in (0.25, 0.8):
    register_case(
        GradCase(
            "dropout_forward",
            dropout_forward,
            dropout_backward,
            inputs={"x": (10, 12)},
            params={"dropout_param": {"mode": "train", "p": _p, "seed": 123}},
            random=True,
        )
    )
