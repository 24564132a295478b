"""Normalization layers: batch, spatial batch, layer and group normalization.

All four are one computation over different axes. Along the normalized axes (``m``
values per statistic)::

    mu = mean(x)            var = mean((x - mu)**2)       (biased)
    inv_std = 1 / sqrt(var + eps)
    xhat = (x - mu) * inv_std
    out = gamma * xhat + beta

and the backward pass, in the simplified closed form derived in
``docs/derivations/batchnorm.md``::

    dxhat = dout * gamma
    dx = inv_std / m * (m * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))

Batch norm normalizes each feature over the batch (axis 0 of (N, D)); spatial batch norm
each channel over N, H and W; layer norm each sample over its features; group norm each
(sample, group of channels) over the group's channels and H and W. The derivations are in
``docs/derivations/batchnorm.md`` and ``docs/derivations/layernorm_groupnorm.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, MutableMapping
from typing import Any, NamedTuple

from .._backend import array_namespace, device_of
from .._params import count
from ._validate import (
    Array,
    Dtypes,
    cache_of,
    caller_stacklevel,
    cast,
    floating_inputs,
    in_argument_dtypes,
    real_param,
    require_array,
    require_cache,
    require_dict,
    require_ndim,
    require_shape,
    upstream,
)

__all__ = [
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_forward",
    "layernorm_backward",
    "layernorm_forward",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
    "spatial_groupnorm_backward",
    "spatial_groupnorm_forward",
]


# --------------------------------------------------------------------------- shared core


def _eps(params: Any, dict_name: str) -> float:
    require_dict(params, dict_name)
    eps = real_param(params.get("eps", 1e-5), f"{dict_name}['eps']")
    if not eps > 0:
        raise ValueError(f"{dict_name}['eps'] must be a positive number; got {eps!r}")
    return eps


def _normalize(xp: Any, x: Any, axis: tuple[int, ...], eps: float) -> tuple[Any, ...]:
    """``(xhat, mu, var, inv_std)``, statistics over ``axis`` (kept as size-1 axes).

    The centred values are squared for the variance and then scaled into a new array,
    not in place: PyTorch's autograd (a user differentiating through the forward pass)
    keeps the squared operand and would refuse a modified one.
    """
    mu = xp.mean(x, axis=axis, keepdims=True)
    centred = x - mu
    var = xp.mean(centred * centred, axis=axis, keepdims=True)
    inv_std = 1 / xp.sqrt(var + eps)
    return centred * inv_std, mu, var, inv_std


def _scale_shift(xp: Any, xhat: Any, gamma: Any, beta: Any) -> Any:
    """``gamma * xhat + beta`` as one new array (the shift added in place)."""
    out = xhat * gamma
    out += beta
    return out


def _batchnorm_backward_closed_form(
    xp: Any, dout: Any, xhat: Any, gamma: Any, inv_std: Any, axis: tuple[int, ...]
) -> tuple[Any, Any, Any]:
    """``(dx, dgamma, dbeta)`` of ``out = gamma * xhat + beta`` in train mode, ``gamma``
    constant along the normalized ``axis`` (batch norm, spatial batch norm).

    The closed form with ``dxhat = dout * gamma`` folded in: along ``axis``,
    ``sum(dxhat) = gamma * dbeta`` and ``sum(dxhat * xhat) = gamma * dgamma``, so::

        dx = gamma * inv_std * (dout - (dbeta + xhat * dgamma) / m)

    and ``dxhat`` is never formed: two reductions, one temporary and one new array.
    ``dgamma`` and ``dbeta`` keep size-1 axes. With ``gamma = 1`` it is the gradient
    through the normalization alone (:func:`_normalize_backward`).
    """
    m = math.prod(dout.shape[a] for a in axis)
    dbeta = xp.sum(dout, axis=axis, keepdims=True)
    dgamma = xp.sum(dout * xhat, axis=axis, keepdims=True)
    scale = gamma * inv_std
    dx = dout * scale
    correction = xhat * (scale * dgamma / m)
    dx -= correction
    dx -= scale * dbeta / m
    return dx, dgamma, dbeta


def _normalize_backward(xp: Any, dxhat: Any, xhat: Any, inv_std: Any, axis: tuple[int, ...]):
    """Gradient through ``xhat = (x - mean) / std`` (statistics over ``axis``): the closed form.

    ``dx = inv_std * (dxhat - (sum(dxhat) + xhat * sum(dxhat * xhat)) / m)``, the batch-norm
    closed form with ``gamma = 1``.
    """
    return _batchnorm_backward_closed_form(xp, dxhat, xhat, 1, inv_std, axis)[0]


def _check_affine_params(gamma: Any, beta: Any, shape: tuple[int, ...], what: str) -> None:
    require_shape("gamma", gamma, shape, what)
    require_shape("beta", beta, shape, what)


@cache_of("batchnorm_forward")
class BatchnormCache(NamedTuple):
    """What :func:`batchnorm_forward` keeps for both batch-norm backward passes."""

    mode: str
    x: Array
    xhat: Array
    mu: Array
    inv_std: Array
    gamma: Array
    dtypes: Dtypes


@cache_of("spatial_batchnorm_forward")
class SpatialBatchnormCache(NamedTuple):
    """What :func:`spatial_batchnorm_forward` keeps for its backward pass."""

    shape: tuple
    bn_cache: BatchnormCache
    dtypes: Dtypes


@cache_of("layernorm_forward")
class LayernormCache(NamedTuple):
    """What :func:`layernorm_forward` keeps for :func:`layernorm_backward`."""

    xhat: Array
    inv_std: Array
    gamma: Array
    dtypes: Dtypes


@cache_of("spatial_groupnorm_forward")
class GroupnormCache(NamedTuple):
    """What :func:`spatial_groupnorm_forward` keeps for its backward pass."""

    groups: int
    xhat: Array
    inv_std: Array
    gamma4: Array
    param_shape: tuple
    dtypes: Dtypes


# --------------------------------------------------------------------------- batch norm


def _bn_mode(bn_param: Any) -> str:
    if not isinstance(bn_param, MutableMapping):
        raise TypeError(f"bn_param must be a dict; got {type(bn_param).__name__}")
    mode = bn_param.get("mode")
    if mode not in ("train", "test"):
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test'; got {mode!r}")
    return mode


def _running_stat(xp: Any, bn_param: Mapping, key: str, x: Any) -> tuple[Any, Any]:
    """``(value in x's dtype, dtype to store updates in)`` of a running statistic.

    A missing statistic starts as zeros of x's (computation) dtype; a given one keeps its
    own floating dtype, like a parameter.
    """
    d = x.shape[1]
    stat = bn_param.get(key)
    if stat is None:
        return xp.zeros((d,), dtype=x.dtype, device=device_of(x)), x.dtype
    name = f"bn_param[{key!r}]"
    require_array(name, stat)
    array_namespace(x=x, **{name: stat})
    require_shape(name, stat, (d,), "one value per feature of x")
    if not xp.isdtype(stat.dtype, "real floating"):
        raise TypeError(f"{name} must be a real floating array; got dtype {stat.dtype}")
    return cast(xp, stat, x.dtype), stat.dtype


def _warn_missing_running_stats(bn_param: Mapping) -> None:
    missing = [k for k in ("running_mean", "running_var") if bn_param.get(k) is None]
    if missing:
        warnings.warn(
            f"batch norm in test mode without {' and '.join(missing)} in bn_param: "
            "using zeros instead; run train mode first, or pass the running statistics",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )


def batchnorm_forward(x: Any, gamma: Any, beta: Any, bn_param: dict) -> tuple[Any, BatchnormCache]:
    """Batch normalization forward pass.

    In train mode each feature is normalized with the mean and the biased variance of the
    minibatch, and the running averages are updated::

        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var

    In test mode the running averages are used instead.

    Parameters
    ----------
    x : array, shape (N, D)
    gamma : array, shape (D,)
        Scale.
    beta : array, shape (D,)
        Shift.
    bn_param : dict
        ``'mode'``: ``'train'`` or ``'test'`` (required); ``'eps'`` (default 1e-5);
        ``'momentum'`` (default 0.9); ``'running_mean'``, ``'running_var'``: arrays of
        shape (D,), created as zeros of x's dtype and device when missing (test mode then
        warns). The updated running averages are written back into ``bn_param`` as new
        arrays, each in its own dtype (inputs are never modified in place).

    Returns
    -------
    out : array, shape (N, D)
    cache : BatchnormCache
        For :func:`batchnorm_backward` and :func:`batchnorm_backward_alt`.
    """
    xp, (x, gamma, beta), dtypes = floating_inputs(x=x, gamma=gamma, beta=beta)
    _bn_mode(bn_param)
    require_ndim("x", x, 2, "(N, D)")
    _check_affine_params(gamma, beta, (x.shape[1],), "one value per feature of x")
    out, xhat, mu, inv_std, mode = _batchnorm(xp, x, gamma, beta, bn_param, (0,))
    return out, BatchnormCache(mode, x, xhat, mu, inv_std, gamma, dtypes)


def _batchnorm(
    xp: Any, x: Any, gamma: Any, beta: Any, bn_param: dict, axis: tuple[int, ...]
) -> tuple[Any, Any, Any, Any, str]:
    """Batch norm of ``x`` over ``axis`` (one statistic per index of axis 1), the running
    averages of ``bn_param`` used (test) or updated (train).

    Returns ``(out, xhat, mu, inv_std, mode)``, the statistics broadcastable against ``x``.
    """
    mode = _bn_mode(bn_param)
    eps = _eps(bn_param, "bn_param")
    momentum = real_param(bn_param.get("momentum", 0.9), "bn_param['momentum']")
    running_mean, mean_dtype = _running_stat(xp, bn_param, "running_mean", x)
    running_var, var_dtype = _running_stat(xp, bn_param, "running_var", x)
    if mode == "test":
        _warn_missing_running_stats(bn_param)
    channels = x.shape[1]
    broadcast = (1, channels) + (1,) * (x.ndim - 2)
    if mode == "train":
        if x.shape[0] < 1:
            raise ValueError("x must hold at least one example in train mode; got N = 0")
        xhat, mu, var, inv_std = _normalize(xp, x, axis, eps)
        new_mean = momentum * running_mean + (1 - momentum) * xp.reshape(mu, (channels,))
        new_var = momentum * running_var + (1 - momentum) * xp.reshape(var, (channels,))
        bn_param["running_mean"] = cast(xp, new_mean, mean_dtype)
        bn_param["running_var"] = cast(xp, new_var, var_dtype)
    else:
        inv_std = xp.reshape(1 / xp.sqrt(running_var + eps), broadcast)
        mu = xp.reshape(running_mean, broadcast)
        xhat = x - mu
        xhat *= inv_std
    out = _scale_shift(xp, xhat, xp.reshape(gamma, broadcast), xp.reshape(beta, broadcast))
    return out, xhat, mu, inv_std, mode


def _scale_shift_backward(dout: Any, xhat: Any, gamma: Any) -> tuple[Any, ...]:
    """``(xp, dxhat, dgamma, dbeta)`` through ``out = gamma * xhat + beta`` of an (N, D) layer."""
    xp, dout = upstream(dout, xhat, tuple(xhat.shape))
    return xp, dout * gamma, xp.sum(dout * xhat, axis=0), xp.sum(dout, axis=0)


def batchnorm_backward(dout: Any, cache: tuple) -> tuple[Any, Any, Any]:
    """Batch normalization backward pass, staged along the computation graph.

    Back-propagates through ``xhat``, then the variance, then the mean, then ``x``, one
    node of the forward graph at a time (the textbook derivation). Gives the same result
    as :func:`batchnorm_backward_alt`, which is faster.

    Parameters
    ----------
    dout : array, shape (N, D)
    cache : BatchnormCache
        From :func:`batchnorm_forward`.

    Returns
    -------
    dx : array, shape (N, D)
    dgamma : array, shape (D,)
    dbeta : array, shape (D,)
        Each in the dtype of its argument.
    """
    mode, x, xhat, mu, inv_std, gamma, dtypes = require_cache(cache, BatchnormCache)
    xp, dxhat, dgamma, dbeta = _scale_shift_backward(dout, xhat, gamma)
    if mode == "test":  # the statistics are constants
        return in_argument_dtypes(xp, (dxhat * inv_std, dgamma, dbeta), dtypes)
    m = x.shape[0]
    x_centered = x - mu
    # xhat = x_centered * (var + eps)^(-1/2), var = mean(x_centered^2)
    dvar = xp.sum(dxhat * x_centered, axis=0, keepdims=True) * (-0.5 * inv_std**3)
    # mu enters directly through x_centered and indirectly through var; the indirect
    # term is dvar * mean(-2 * x_centered), kept here although it is exactly zero.
    dmu = xp.sum(-dxhat * inv_std, axis=0, keepdims=True) + dvar * xp.mean(
        -2 * x_centered, axis=0, keepdims=True
    )
    dx = dxhat * inv_std + dvar * (2 / m) * x_centered + dmu / m
    return in_argument_dtypes(xp, (dx, dgamma, dbeta), dtypes)


def batchnorm_backward_alt(dout: Any, cache: tuple) -> tuple[Any, Any, Any]:
    """Batch normalization backward pass, simplified closed form.

    ``dx = inv_std / m * (m * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))`` with
    ``dxhat = dout * gamma`` and sums over the batch; derived in ``docs/derivations/batchnorm.md``.

    Parameters
    ----------
    dout : array, shape (N, D)
    cache : BatchnormCache
        From :func:`batchnorm_forward`.

    Returns
    -------
    dx : array, shape (N, D)
    dgamma : array, shape (D,)
    dbeta : array, shape (D,)
        Each in the dtype of its argument.
    """
    mode, _, xhat, _, inv_std, gamma, dtypes = require_cache(cache, BatchnormCache)
    xp, dout = upstream(dout, xhat, tuple(xhat.shape))
    dx, dgamma, dbeta = _batchnorm_backward(xp, dout, xhat, gamma, inv_std, mode, (0,))
    return in_argument_dtypes(xp, (dx, dgamma, dbeta), dtypes)


def _batchnorm_backward(
    xp: Any, dout: Any, xhat: Any, gamma: Any, inv_std: Any, mode: str, axis: tuple[int, ...]
) -> tuple[Any, Any, Any]:
    """``(dx, dgamma, dbeta)`` of :func:`_batchnorm`; the parameter gradients of shape (C,)."""
    channels = xhat.shape[1]
    gamma_b = xp.reshape(gamma, (1, channels) + (1,) * (xhat.ndim - 2))
    if mode == "test":  # the statistics are constants
        dbeta = xp.sum(dout, axis=axis)
        dgamma = xp.sum(dout * xhat, axis=axis)
        return dout * (gamma_b * inv_std), dgamma, dbeta
    dx, dgamma, dbeta = _batchnorm_backward_closed_form(xp, dout, xhat, gamma_b, inv_std, axis)
    return dx, xp.reshape(dgamma, (channels,)), xp.reshape(dbeta, (channels,))


# --------------------------------------------------------------------------- spatial batch norm


def spatial_batchnorm_forward(
    x: Any, gamma: Any, beta: Any, bn_param: dict
) -> tuple[Any, SpatialBatchnormCache]:
    """Spatial batch normalization forward pass: one statistic per channel over N, H, W.

    The computation of :func:`batchnorm_forward`, with the statistics taken over axes
    0, 2 and 3 of ``x`` where it lies (no channels-last copy).

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    gamma, beta : arrays, shape (C,)
    bn_param : dict
        As for :func:`batchnorm_forward`; running averages have shape (C,).

    Returns
    -------
    out : array, shape (N, C, H, W)
    cache : SpatialBatchnormCache
        For :func:`spatial_batchnorm_backward`.
    """
    xp, (x, gamma, beta), dtypes = floating_inputs(x=x, gamma=gamma, beta=beta)
    _bn_mode(bn_param)
    require_ndim("x", x, 4, "(N, C, H, W)")
    _check_affine_params(gamma, beta, (x.shape[1],), "one value per channel of x")
    out, xhat, mu, inv_std, mode = _batchnorm(xp, x, gamma, beta, bn_param, (0, 2, 3))
    bn_cache = BatchnormCache(mode, x, xhat, mu, inv_std, gamma, dtypes)
    return out, SpatialBatchnormCache(tuple(x.shape), bn_cache, dtypes)


def spatial_batchnorm_backward(dout: Any, cache: SpatialBatchnormCache) -> tuple[Any, Any, Any]:
    """Spatial batch normalization backward pass.

    Parameters
    ----------
    dout : array, shape (N, C, H, W)
    cache : SpatialBatchnormCache
        From :func:`spatial_batchnorm_forward`.

    Returns
    -------
    dx : array, shape (N, C, H, W)
    dgamma, dbeta : arrays, shape (C,)
        Each in the dtype of its argument.
    """
    shape, bn_cache, dtypes = require_cache(cache, SpatialBatchnormCache)
    mode, _, xhat, _, inv_std, gamma, _ = bn_cache
    xp, dout = upstream(dout, xhat, shape)
    dx, dgamma, dbeta = _batchnorm_backward(xp, dout, xhat, gamma, inv_std, mode, (0, 2, 3))
    return in_argument_dtypes(xp, (dx, dgamma, dbeta), dtypes)


# --------------------------------------------------------------------------- layer norm


def layernorm_forward(x: Any, gamma: Any, beta: Any, ln_param: dict) -> tuple[Any, LayernormCache]:
    """Layer normalization forward pass: each sample normalized over its D features.

    The same in train and test mode; no running averages.

    Parameters
    ----------
    x : array, shape (N, D)
    gamma, beta : arrays, shape (D,)
    ln_param : dict
        Only ``'eps'`` is read (default 1e-5).

    Returns
    -------
    out : array, shape (N, D)
    cache : LayernormCache
        For :func:`layernorm_backward`.
    """
    xp, (x, gamma, beta), dtypes = floating_inputs(x=x, gamma=gamma, beta=beta)
    require_ndim("x", x, 2, "(N, D)")
    _check_affine_params(gamma, beta, (x.shape[1],), "one value per feature of x")
    xhat, _, _, inv_std = _normalize(xp, x, (1,), _eps(ln_param, "ln_param"))
    return _scale_shift(xp, xhat, gamma, beta), LayernormCache(xhat, inv_std, gamma, dtypes)


def layernorm_backward(dout: Any, cache: LayernormCache) -> tuple[Any, Any, Any]:
    """Layer normalization backward pass (the batch-norm closed form along axis 1).

    Parameters
    ----------
    dout : array, shape (N, D)
    cache : LayernormCache
        From :func:`layernorm_forward`.

    Returns
    -------
    dx : array, shape (N, D)
    dgamma, dbeta : arrays, shape (D,)
        Each in the dtype of its argument.
    """
    xhat, inv_std, gamma, dtypes = require_cache(cache, LayernormCache)
    xp, dxhat, dgamma, dbeta = _scale_shift_backward(dout, xhat, gamma)
    dx = _normalize_backward(xp, dxhat, xhat, inv_std, (1,))
    return in_argument_dtypes(xp, (dx, dgamma, dbeta), dtypes)


# --------------------------------------------------------------------------- group norm


def _group_count(G: Any, channels: int) -> int:
    G = count("G", G, minimum=1, why=" (the number of groups)")
    if channels % G:
        raise ValueError(
            f"G must be a positive divisor of the number of channels C = {channels}; got {G}"
        )
    return G


def spatial_groupnorm_forward(
    x: Any, gamma: Any, beta: Any, G: int, gn_param: dict
) -> tuple[Any, GroupnormCache]:
    """Spatial group normalization forward pass.

    The C channels are split into G contiguous groups of C // G channels; each
    (sample, group) is normalized over its channels and all H, W positions. With G = 1
    this is layer norm over (C, H, W); with G = C, instance norm.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    gamma, beta : arrays, shape (1, C, 1, 1) (or (C,); the gradients take the same shape)
    G : int
        Number of groups; must divide C.
    gn_param : dict
        Only ``'eps'`` is read (default 1e-5).

    Returns
    -------
    out : array, shape (N, C, H, W)
    cache : GroupnormCache
        For :func:`spatial_groupnorm_backward`.
    """
    xp, (x, gamma, beta), dtypes = floating_inputs(x=x, gamma=gamma, beta=beta)
    require_ndim("x", x, 4, "(N, C, H, W)")
    n, c, h, w = x.shape
    groups = _group_count(G, c)
    shapes = (tuple(gamma.shape), tuple(beta.shape))
    if shapes not in (((c,), (c,)), ((1, c, 1, 1), (1, c, 1, 1))):
        raise ValueError(
            f"gamma and beta must both have shape (1, {c}, 1, 1) or both ({c},), one value "
            f"per channel of x; got gamma {shapes[0]}, beta {shapes[1]}"
        )
    param_shape = shapes[0]
    eps = _eps(gn_param, "gn_param")
    grouped = xp.reshape(x, (n, groups, (c // groups) * h * w))
    xhat_g, _, _, inv_std = _normalize(xp, grouped, (2,), eps)
    xhat = xp.reshape(xhat_g, (n, c, h, w))
    gamma4 = xp.reshape(gamma, (1, c, 1, 1))
    out = _scale_shift(xp, xhat, gamma4, xp.reshape(beta, (1, c, 1, 1)))
    return out, GroupnormCache(groups, xhat, inv_std, gamma4, param_shape, dtypes)


def spatial_groupnorm_backward(dout: Any, cache: GroupnormCache) -> tuple[Any, Any, Any]:
    """Spatial group normalization backward pass.

    Parameters
    ----------
    dout : array, shape (N, C, H, W)
    cache : GroupnormCache
        From :func:`spatial_groupnorm_forward`.

    Returns
    -------
    dx : array, shape (N, C, H, W)
    dgamma, dbeta : arrays, the shape of gamma and beta
        Each in the dtype of its argument.
    """
    groups, xhat, inv_std, gamma4, param_shape, dtypes = require_cache(cache, GroupnormCache)
    xp, dout = upstream(dout, xhat, tuple(xhat.shape))
    n, c, h, w = xhat.shape
    dbeta = xp.reshape(xp.sum(dout, axis=(0, 2, 3)), param_shape)
    dgamma = xp.reshape(xp.sum(dout * xhat, axis=(0, 2, 3)), param_shape)
    m = (c // groups) * h * w
    dx_g = _normalize_backward(
        xp,
        xp.reshape(dout * gamma4, (n, groups, m)),
        xp.reshape(xhat, (n, groups, m)),
        inv_std,
        (2,),
    )
    return in_argument_dtypes(xp, (xp.reshape(dx_g, (n, c, h, w)), dgamma, dbeta), dtypes)
