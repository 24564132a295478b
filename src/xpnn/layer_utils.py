"""Sandwich layers: common sequences of layers as one forward/backward pair.

The cache of a sandwich is the tuple of its parts' caches; the backward runs the parts'
backward passes in reverse order.
"""

from __future__ import annotations

from typing import Any

from .gradient_check import GradCase, distinct, register_case
from .layers.affine import affine_backward, affine_forward
from .layers.conv import conv_backward_fast, conv_forward_fast
from .layers.norm import (
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from .layers.pool import max_pool_backward_fast, max_pool_forward_fast
from .layers.relu import relu_backward, relu_forward

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


def affine_relu_forward(x: Any, w: Any, b: Any) -> tuple[Any, tuple]:
    """Affine layer followed by a ReLU.

    Parameters
    ----------
    x : array, shape (N, d_1, ..., d_k)
    w : array, shape (D, M)
    b : array, shape (M,)

    Returns
    -------
    out : array, shape (N, M)
    cache : tuple
        ``(affine_cache, relu_cache)``.
    """
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout: Any, cache: tuple) -> tuple[Any, Any, Any]:
    """Backward pass of :func:`affine_relu_forward`; returns ``(dx, dw, db)``."""
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache)


def conv_relu_forward(x: Any, w: Any, b: Any, conv_param: dict) -> tuple[Any, tuple]:
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
    cache : tuple
        ``(conv_cache, relu_cache)``.
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout: Any, cache: tuple) -> tuple[Any, Any, Any]:
    """Backward pass of :func:`conv_relu_forward`; returns ``(dx, dw, db)``."""
    conv_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return conv_backward_fast(da, conv_cache)


def conv_relu_pool_forward(
    x: Any, w: Any, b: Any, conv_param: dict, pool_param: dict
) -> tuple[Any, tuple]:
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
    cache : tuple
        ``(conv_cache, relu_cache, pool_cache)``.
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout: Any, cache: tuple) -> tuple[Any, Any, Any]:
    """Backward pass of :func:`conv_relu_pool_forward`; returns ``(dx, dw, db)``."""
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward_fast(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    return conv_backward_fast(da, conv_cache)


def affine_bn_relu_forward(
    x: Any, w: Any, b: Any, gamma: Any, beta: Any, bn_param: dict
) -> tuple[Any, tuple]:
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
    cache : tuple
    """
    a, fc_cache = affine_forward(x, w, b)
    a_bn, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(a_bn)
    return out, (fc_cache, bn_cache, relu_cache)


def affine_bn_relu_backward(dout: Any, cache: tuple) -> tuple[Any, Any, Any, Any, Any]:
    """Backward pass of :func:`affine_bn_relu_forward`; returns ``(dx, dw, db, dgamma, dbeta)``."""
    fc_cache, bn_cache, relu_cache = cache
    da_bn = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = batchnorm_backward_alt(da_bn, bn_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


def affine_ln_relu_forward(
    x: Any, w: Any, b: Any, gamma: Any, beta: Any, ln_param: dict
) -> tuple[Any, tuple]:
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
    cache : tuple
    """
    a, fc_cache = affine_forward(x, w, b)
    a_ln, ln_cache = layernorm_forward(a, gamma, beta, ln_param)
    out, relu_cache = relu_forward(a_ln)
    return out, (fc_cache, ln_cache, relu_cache)


def affine_ln_relu_backward(dout: Any, cache: tuple) -> tuple[Any, Any, Any, Any, Any]:
    """Backward pass of :func:`affine_ln_relu_forward`; returns ``(dx, dw, db, dgamma, dbeta)``."""
    fc_cache, ln_cache, relu_cache = cache
    da_ln = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = layernorm_backward(da_ln, ln_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


def conv_bn_relu_forward(
    x: Any, w: Any, b: Any, gamma: Any, beta: Any, conv_param: dict, bn_param: dict
) -> tuple[Any, tuple]:
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
    cache : tuple
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout: Any, cache: tuple) -> tuple[Any, Any, Any, Any, Any]:
    """Backward pass of :func:`conv_bn_relu_forward`; returns ``(dx, dw, db, dgamma, dbeta)``."""
    conv_cache, bn_cache, relu_cache = cache
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = spatial_batchnorm_backward(dan, bn_cache)
    dx, dw, db = conv_backward_fast(da, conv_cache)
    return dx, dw, db, dgamma, dbeta


register_case(
    GradCase(
        "affine_relu_forward",
        affine_relu_forward,
        affine_relu_backward,
        inputs={"x": (3, 2, 3), "w": (6, 4), "b": (4,)},
    )
)
register_case(
    GradCase(
        "conv_relu_forward",
        conv_relu_forward,
        conv_relu_backward,
        inputs={"x": (2, 3, 5, 5), "w": (3, 3, 3, 3), "b": (3,)},
        params={"conv_param": {"stride": 1, "pad": 1}},
    )
)
register_case(
    GradCase(
        "conv_relu_pool_forward",
        conv_relu_pool_forward,
        conv_relu_pool_backward,
        inputs={"x": distinct(2, 3, 6, 6), "w": (3, 3, 3, 3), "b": (3,)},
        params={
            "conv_param": {"stride": 1, "pad": 1},
            "pool_param": {"pool_height": 2, "pool_width": 2, "stride": 2},
        },
    )
)
register_case(
    GradCase(
        "affine_bn_relu_forward",
        affine_bn_relu_forward,
        affine_bn_relu_backward,
        inputs={"x": (5, 2, 3), "w": (6, 4), "b": (4,), "gamma": (4,), "beta": (4,)},
        params={"bn_param": {"mode": "train"}},
    )
)
register_case(
    GradCase(
        "affine_ln_relu_forward",
        affine_ln_relu_forward,
        affine_ln_relu_backward,
        inputs={"x": (3, 2, 3), "w": (6, 5), "b": (5,), "gamma": (5,), "beta": (5,)},
        params={"ln_param": {}},
    )
)
register_case(
    GradCase(
        "conv_bn_relu_forward",
        conv_bn_relu_forward,
        conv_bn_relu_backward,
        inputs={"x": (2, 3, 5, 5), "w": (3, 3, 3, 3), "b": (3,), "gamma": (3,), "beta": (3,)},
        params={"conv_param": {"stride": 1, "pad": 1}, "bn_param": {"mode": "train"}},
    )
)
