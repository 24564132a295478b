"""Inverted dropout: ``out = x * mask / p`` in train mode, ``out = x`` in test mode.

``p`` is the probability of *keeping* a unit (the CS231n convention, not PyTorch's). The
mask is drawn on the input's device by :mod:`xpnn.random`; the cache keeps it, so the
backward pass (and a gradient check with a fixed ``seed``) is exact. The derivation is in
``docs/derivations/dropout.md``.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

from .. import random as xprandom
from .._backend import array_namespace
from ._validate import (
    Dtypes,
    MaybeArray,
    cache_of,
    floating_inputs,
    in_argument_dtypes,
    require_array,
    require_cache,
    require_dict,
    require_shape,
    upstream,
)

__all__ = ["dropout_backward", "dropout_forward"]


@cache_of("dropout_forward")
class DropoutCache(NamedTuple):
    """What :func:`dropout_forward` keeps for :func:`dropout_backward`.

    ``mask`` is the scaled keep-mask ``keep / p`` in the computation dtype, ``None`` in
    test mode; ``x`` is the input, kept in test mode only (to check ``dout`` against it).
    """

    dropout_param: dict
    mask: MaybeArray
    dtypes: Dtypes
    x: MaybeArray = None


def _dropout_settings(dropout_param: Any) -> tuple[float, str, int | None]:
    require_dict(dropout_param, "dropout_param")
    if "p" not in dropout_param:
        raise KeyError("dropout_param needs the key 'p' (the probability of keeping a unit)")
    p = dropout_param["p"]
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 < p <= 1:
        raise ValueError(
            f"dropout_param['p'] is the probability of keeping a unit and must be in (0, 1]; "
            f"got {p!r}"
        )
    mode = dropout_param.get("mode", "train")
    if mode not in ("train", "test"):
        raise ValueError(f"dropout_param['mode'] must be 'train' or 'test'; got {mode!r}")
    return float(p), mode, dropout_param.get("seed")


def dropout_forward(x: Any, dropout_param: dict) -> tuple[Any, DropoutCache]:
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
        In test mode, ``x`` itself (in its computation dtype).
    cache : DropoutCache
        For :func:`dropout_backward`.
    """
    xp, (x,), dtypes = floating_inputs(x=x)
    p, mode, seed = _dropout_settings(dropout_param)
    if mode == "test":
        return x, DropoutCache(dropout_param, None, dtypes, x)
    keep = dropout_param.get("mask")
    if keep is None:
        keep = xprandom.bernoulli(tuple(x.shape), p, like=x, seed=seed)
    else:
        require_array("dropout_param['mask']", keep)
        array_namespace(x=x, **{"dropout_param['mask']": keep})
        require_shape("dropout_param['mask']", keep, tuple(x.shape), "the shape of x")
        if keep.dtype != xp.bool:
            raise TypeError(
                "dropout_param['mask'] must be a boolean array (True keeps a unit); "
                f"got dtype {keep.dtype}"
            )
    mask = xp.astype(keep, x.dtype) / p
    return x * mask, DropoutCache(dropout_param, mask, dtypes)


def dropout_backward(dout: Any, cache: tuple) -> Any:
    """Inverted dropout backward pass.

    Parameters
    ----------
    dout : array, shape of x
    cache : DropoutCache
        From :func:`dropout_forward`.

    Returns
    -------
    dx : array, shape and dtype of x
        ``dout * keep / p`` in train mode, ``dout`` in test mode.
    """
    _, mask, dtypes, x = require_cache(cache, DropoutCache)
    if mask is None:
        xp, dout = upstream(dout, x, tuple(x.shape))
        return in_argument_dtypes(xp, (dout,), dtypes)[0]
    xp, dout = upstream(dout, mask, tuple(mask.shape))
    return in_argument_dtypes(xp, (dout * mask,), dtypes)[0]
