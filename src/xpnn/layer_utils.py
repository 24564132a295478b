"""Sandwich layers: common sequences of layers as one forward/backward pair.

The cache of a sandwich is a named tuple of its parts' caches; the backward runs the
parts' backward passes in reverse order. Dtypes follow the parts: each gradient comes
back in the dtype of its argument.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .layers._validate import cache_of, require_cache
from .layers.affine import AffineCache, affine_backward, affine_forward
from .layers.conv import ConvFastCache, conv_backward_fast, conv_forward_fast
from .layers.norm import (
    BatchnormCache,
    LayernormCache,
    SpatialBatchnormCache,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from .layers.pool import MaxPoolFastCache, max_pool_backward_fast, max_pool_forward_fast
from .layers.relu import ReluCache, relu_backward, relu_forward

__all__ = [
    "affine_bn_relu_backward",
    "affine_bn_relu_forward",
    "affine_ln_relu_backward",
    "affine_ln_relu_forward",
    "affine_relu_backward",
    "affine_relu_forward",
    "conv_bn_relu_backward",
    "conv_bn_relu_forward",
    "conv_relu_backward",
    "conv_relu_forward",
    "conv_relu_pool_backward",
    "conv_relu_pool_forward",
]


@cache_of("affine_relu_forward")
class AffineReluCache(NamedTuple):
    fc_cache: AffineCache
    relu_cache: ReluCache


@cache_of("conv_relu_forward")
class ConvReluCache(NamedTuple):
    conv_cache: ConvFastCache
    relu_cache: ReluCache


@cache_of("conv_relu_pool_forward")
class ConvReluPoolCache(NamedTuple):
    conv_cache: ConvFastCache
    relu_cache: ReluCache
    pool_cache: MaxPoolFastCache


@cache_of("affine_bn_relu_forward")
class AffineBnReluCache(NamedTuple):
    fc_cache: AffineCache
    bn_cache: BatchnormCache
    relu_cache: ReluCache


@cache_of("affine_ln_relu_forward")
class AffineLnReluCache(NamedTuple):
    fc_cache: AffineCache
    ln_cache: LayernormCache
    relu_cache: ReluCache


@cache_of("conv_bn_relu_forward")
class ConvBnReluCache(NamedTuple):
    conv_cache: ConvFastCache
    bn_cache: SpatialBatchnormCache
    relu_cache: ReluCache


def affine_relu_forward(x: Any, w: Any, b: Any) -> tuple[Any, Any]:
    """Affine layer followed by a ReLU.

    Parameters
    ----------
    x : array, shape (N, d_1, ..., d_k)
    w : array, shape (D, M)
    b : array, shape (M,)

    Returns
    -------
    out : array, shape (N, M)
    cache : AffineReluCache
    """
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, AffineReluCache(fc_cache, relu_cache)


def affine_relu_backward(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    """Backward pass of :func:`affine_relu_forward`; returns ``(dx, dw, db)``."""
    fc_cache, relu_cache = require_cache(cache, AffineReluCache)
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache)


def conv_relu_forward(x: Any, w: Any, b: Any, conv_param: dict) -> tuple[Any, Any]:
    """Convolution (fast) followed by a ReLU.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    w : array, shape (F, C, HH, WW)
    b : array, shape (F,)
    conv_param : dict
        ``'stride'`` and ``'pad'``.

    Returns
    -------
    out : array, shape (N, F, H', W')
    cache : ConvReluCache
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, ConvReluCache(conv_cache, relu_cache)


def conv_relu_backward(dout: Any, cache: Any, *, input_grad: bool = True) -> tuple[Any, Any, Any]:
    """Backward pass of :func:`conv_relu_forward`; returns ``(dx, dw, db)``.

    ``input_grad=False`` skips ``dx`` (None), as :func:`xpnn.conv_backward_fast` does.
    """
    conv_cache, relu_cache = require_cache(cache, ConvReluCache)
    da = relu_backward(dout, relu_cache)
    return conv_backward_fast(da, conv_cache, input_grad=input_grad)


def conv_relu_pool_forward(
    x: Any, w: Any, b: Any, conv_param: dict, pool_param: dict
) -> tuple[Any, Any]:
    """Convolution (fast), ReLU, then max pooling (fast).

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    w : array, shape (F, C, HH, WW)
    b : array, shape (F,)
    conv_param : dict
        ``'stride'`` and ``'pad'``.
    pool_param : dict
        ``'pool_height'``, ``'pool_width'`` and ``'stride'``.

    Returns
    -------
    out : array, shape (N, F, H'', W'')
    cache : ConvReluPoolCache
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, ConvReluPoolCache(conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(
    dout: Any, cache: Any, *, input_grad: bool = True
) -> tuple[Any, Any, Any]:
    """Backward pass of :func:`conv_relu_pool_forward`; returns ``(dx, dw, db)``.

    ``input_grad=False`` skips ``dx`` (None), as :func:`xpnn.conv_backward_fast` does.
    """
    conv_cache, relu_cache, pool_cache = require_cache(cache, ConvReluPoolCache)
    ds = max_pool_backward_fast(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    return conv_backward_fast(da, conv_cache, input_grad=input_grad)


def affine_bn_relu_forward(
    x: Any, w: Any, b: Any, gamma: Any, beta: Any, bn_param: dict
) -> tuple[Any, Any]:
    """Affine layer, batch normalization, then ReLU.

    Parameters
    ----------
    x : array, shape (N, d_1, ..., d_k)
    w : array, shape (D, M)
    b, gamma, beta : arrays, shape (M,)
    bn_param : dict
        As for :func:`xpnn.batchnorm_forward`.

    Returns
    -------
    out : array, shape (N, M)
    cache : AffineBnReluCache
    """
    a, fc_cache = affine_forward(x, w, b)
    a_bn, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(a_bn)
    return out, AffineBnReluCache(fc_cache, bn_cache, relu_cache)


def affine_bn_relu_backward(dout: Any, cache: Any) -> tuple[Any, Any, Any, Any, Any]:
    """Backward pass of :func:`affine_bn_relu_forward`; returns ``(dx, dw, db, dgamma, dbeta)``."""
    fc_cache, bn_cache, relu_cache = require_cache(cache, AffineBnReluCache)
    da_bn = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = batchnorm_backward_alt(da_bn, bn_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


def affine_ln_relu_forward(
    x: Any, w: Any, b: Any, gamma: Any, beta: Any, ln_param: dict
) -> tuple[Any, Any]:
    """Affine layer, layer normalization, then ReLU.

    Parameters
    ----------
    x : array, shape (N, d_1, ..., d_k)
    w : array, shape (D, M)
    b, gamma, beta : arrays, shape (M,)
    ln_param : dict
        As for :func:`xpnn.layernorm_forward`.

    Returns
    -------
    out : array, shape (N, M)
    cache : AffineLnReluCache
    """
    a, fc_cache = affine_forward(x, w, b)
    a_ln, ln_cache = layernorm_forward(a, gamma, beta, ln_param)
    out, relu_cache = relu_forward(a_ln)
    return out, AffineLnReluCache(fc_cache, ln_cache, relu_cache)


def affine_ln_relu_backward(dout: Any, cache: Any) -> tuple[Any, Any, Any, Any, Any]:
    """Backward pass of :func:`affine_ln_relu_forward`; returns ``(dx, dw, db, dgamma, dbeta)``."""
    fc_cache, ln_cache, relu_cache = require_cache(cache, AffineLnReluCache)
    da_ln = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = layernorm_backward(da_ln, ln_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


def conv_bn_relu_forward(
    x: Any, w: Any, b: Any, gamma: Any, beta: Any, conv_param: dict, bn_param: dict
) -> tuple[Any, Any]:
    """Convolution (fast), spatial batch normalization, then ReLU.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    w : array, shape (F, C, HH, WW)
    b, gamma, beta : arrays, shape (F,)
    conv_param : dict
        ``'stride'`` and ``'pad'``.
    bn_param : dict
        As for :func:`xpnn.spatial_batchnorm_forward`.

    Returns
    -------
    out : array, shape (N, F, H', W')
    cache : ConvBnReluCache
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, ConvBnReluCache(conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout: Any, cache: Any) -> tuple[Any, Any, Any, Any, Any]:
    """Backward pass of :func:`conv_bn_relu_forward`; returns ``(dx, dw, db, dgamma, dbeta)``."""
    conv_cache, bn_cache, relu_cache = require_cache(cache, ConvBnReluCache)
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = spatial_batchnorm_backward(dan, bn_cache)
    dx, dw, db = conv_backward_fast(da, conv_cache)
    return dx, dw, db, dgamma, dbeta
