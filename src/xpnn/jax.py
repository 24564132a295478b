"""xpnn inside JAX: the layers as differentiable JAX functions.

Each function here runs an xpnn forward pass, and its vector-Jacobian product (what
``jax.grad``, ``jax.vjp`` and ``jax.value_and_grad`` use) is xpnn's own hand-written
backward pass, registered through :func:`jax.custom_vjp`. JAX never differentiates the
forward code itself, so a model built from these functions trains with exactly the
gradients that the rest of xpnn computes and checks.

All of them work under ``jax.jit``, ``jax.grad``, ``jax.vjp`` and ``jax.value_and_grad``.
Under ``jax.vmap`` the function body sees one mapped slice at a time: each slice must be a
whole xpnn input (a minibatch of shape ``(N, ...)``), so per-example vmapping is done on
examples of shape ``(1, ...)``. Every function is then correct per slice; for
:func:`batchnorm` and :func:`spatial_batchnorm` in train mode the statistics are those of
the slice, not of the mapped axis (see ``docs/jax.md``).

This module imports ``jax`` and is not imported by ``import xpnn``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .layers.affine import affine_backward, affine_forward
from .layers.conv import conv_backward_fast, conv_forward_fast
from .layers.dropout import dropout_backward, dropout_forward
from .layers.losses import softmax_loss as _softmax_loss
from .layers.losses import svm_loss as _svm_loss
from .layers.norm import (
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)
from .layers.pool import max_pool_backward_fast, max_pool_forward_fast
from .layers.relu import relu_backward, relu_forward

__all__ = [
    "affine",
    "batchnorm",
    "conv",
    "dropout",
    "from_layer",
    "groupnorm",
    "layernorm",
    "max_pool",
    "relu",
    "softmax_loss",
    "spatial_batchnorm",
    "svm_loss",
]


# --------------------------------------------------------------------------- the bridge


def from_layer(forward: Callable[..., tuple[Any, Any]], backward: Callable[..., Any]) -> Callable:
    """Turn an xpnn ``(forward, backward)`` pair into a differentiable JAX function.

    Parameters
    ----------
    forward : callable
        ``forward(*arrays, **params) -> (out, cache)``. ``arrays`` are the JAX arrays the
        function is differentiated with respect to (integer and boolean ones get no
        gradient); ``params`` are hashable Python values (strides, modes, eps), fixed at
        trace time. ``out`` may be any pytree of arrays.
    backward : callable
        ``backward(dout, cache) -> grads``: ``dout`` has the structure of ``out``;
        ``grads`` is one gradient per array argument (a single array when there is one
        argument), ``None`` for an argument without one. Each gradient must have its
        argument's shape and dtype, as every xpnn backward pass ensures.

    Returns
    -------
    fn : callable
        ``fn(*arrays, **params) -> out``, whose VJP is ``backward``.

    Notes
    -----
    The residuals that JAX keeps between the forward and the backward pass are the input
    arrays only (an xpnn cache also holds strings, dicts and Python numbers, which are not
    valid residuals); the backward rule re-runs ``forward`` on them to rebuild the cache.
    Under ``jax.jit`` XLA drops whatever part of that forward the backward does not read.
    """

    @functools.cache
    def build(params: tuple) -> Callable:
        kwargs = dict(params)

        @jax.custom_vjp
        def fn(*arrays: Any) -> Any:
            return forward(*arrays, **kwargs)[0]

        def fwd(*arrays: Any) -> tuple[Any, tuple]:
            return forward(*arrays, **kwargs)[0], arrays

        def bwd(arrays: tuple, dout: Any) -> tuple:
            _, cache = forward(*arrays, **kwargs)
            grads = backward(jax.tree_util.tree_map(jnp.asarray, dout), cache)
            if len(arrays) == 1 and not isinstance(grads, tuple):
                grads = (grads,)
            if len(grads) != len(arrays):
                raise ValueError(
                    f"the backward pass returned {len(grads)} gradients for {len(arrays)} "
                    "array arguments"
                )
            return tuple(
                g if g is not None and jnp.issubdtype(jnp.result_type(a), jnp.inexact) else None
                for g, a in zip(grads, arrays, strict=True)
            )

        fn.defvjp(fwd, bwd)
        return fn

    @functools.wraps(forward)
    def apply(*arrays: Any, **params: Any) -> Any:
        arrays = tuple(jnp.asarray(a) for a in arrays)  # NumPy inputs become JAX arrays
        return build(tuple(sorted(params.items())))(*arrays)

    return apply


# --------------------------------------------------------------------------- adapters


def _affine_fwd(x, w, b):
    return affine_forward(x, w, b)


def _relu_fwd(x):
    return relu_forward(x)


def _conv_fwd(x, w, b, *, stride, pad):
    return conv_forward_fast(x, w, b, {"stride": stride, "pad": pad})


def _pool_fwd(x, *, pool_height, pool_width, stride):
    params = {"pool_height": pool_height, "pool_width": pool_width, "stride": stride}
    return max_pool_forward_fast(x, params)


def _bn_param(running_mean, running_var, train, momentum, eps):
    return {
        "mode": "train" if train else "test",
        "momentum": momentum,
        "eps": eps,
        "running_mean": running_mean,
        "running_var": running_var,
    }


def _bn_fwd(x, gamma, beta, running_mean, running_var, *, train, momentum, eps):
    bn_param = _bn_param(running_mean, running_var, train, momentum, eps)
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    return (out, bn_param["running_mean"], bn_param["running_var"]), cache


def _bn_bwd(dout, cache):
    # The cotangents of the new running statistics are dropped (treated as zero).
    return (*batchnorm_backward_alt(dout[0], cache), None, None)


def _sbn_fwd(x, gamma, beta, running_mean, running_var, *, train, momentum, eps):
    bn_param = _bn_param(running_mean, running_var, train, momentum, eps)
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    return (out, bn_param["running_mean"], bn_param["running_var"]), cache


def _sbn_bwd(dout, cache):
    return (*spatial_batchnorm_backward(dout[0], cache), None, None)


def _ln_fwd(x, gamma, beta, *, eps):
    return layernorm_forward(x, gamma, beta, {"eps": eps})


def _gn_fwd(x, gamma, beta, *, groups, eps):
    return spatial_groupnorm_forward(x, gamma, beta, groups, {"eps": eps})


def _dropout_fwd(x, keep, *, p):
    return dropout_forward(x, {"p": p, "mode": "train", "mask": keep})


def _dropout_bwd(dout, cache):
    return dropout_backward(dout, cache), None


def _loss_bwd(dout, dscores):
    # An xpnn loss returns (loss, dscores); the "cache" is dscores, scaled by the upstream
    # scalar. The labels get no gradient.
    return dout * dscores, None


_affine = from_layer(_affine_fwd, affine_backward)
_relu = from_layer(_relu_fwd, relu_backward)
_conv = from_layer(_conv_fwd, conv_backward_fast)
_max_pool = from_layer(_pool_fwd, max_pool_backward_fast)
_batchnorm = from_layer(_bn_fwd, _bn_bwd)
_spatial_batchnorm = from_layer(_sbn_fwd, _sbn_bwd)
_layernorm = from_layer(_ln_fwd, layernorm_backward)
_groupnorm = from_layer(_gn_fwd, spatial_groupnorm_backward)
_dropout = from_layer(_dropout_fwd, _dropout_bwd)
_softmax = from_layer(lambda scores, y: _softmax_loss(scores, y), _loss_bwd)
_svm = from_layer(lambda scores, y: _svm_loss(scores, y), _loss_bwd)


# --------------------------------------------------------------------------- public API


def affine(x: Any, w: Any, b: Any) -> Any:
    """Fully connected layer, ``x.reshape(N, D) @ w + b``; VJP from :func:`xpnn.affine_backward`.

    Parameters
    ----------
    x : array, shape (N, d_1, ..., d_k)
        Each example is flattened to ``D = d_1 * ... * d_k`` values.
    w : array, shape (D, M)
    b : array, shape (M,)

    Returns
    -------
    out : array, shape (N, M)
    """
    return _affine(x, w, b)


def relu(x: Any) -> Any:
    """ReLU, ``max(x, 0)``; VJP from :func:`xpnn.relu_backward`.

    Parameters
    ----------
    x : array, any shape

    Returns
    -------
    out : array, shape of x
    """
    return _relu(x)


def conv(x: Any, w: Any, b: Any, *, stride: int = 1, pad: int = 0) -> Any:
    """2-d convolution (cross-correlation) with zero padding; VJP from ``conv_backward_fast``.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    w : array, shape (F, C, HH, WW)
    b : array, shape (F,)
    stride, pad : int
        Python ints (static under ``jax.jit``).

    Returns
    -------
    out : array, shape (N, F, H', W')
        ``H' = 1 + (H + 2 * pad - HH) // stride``, likewise ``W'``.
    """
    return _conv(x, w, b, stride=stride, pad=pad)


def max_pool(x: Any, *, pool_height: int = 2, pool_width: int = 2, stride: int = 2) -> Any:
    """Max pooling over (H, W); VJP from :func:`xpnn.max_pool_backward_fast`.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    pool_height, pool_width, stride : int
        Python ints (static under ``jax.jit``).

    Returns
    -------
    out : array, shape (N, C, H', W')
        ``H' = 1 + (H - pool_height) // stride``, likewise ``W'``.
    """
    return _max_pool(x, pool_height=pool_height, pool_width=pool_width, stride=stride)


def batchnorm(
    x: Any,
    gamma: Any,
    beta: Any,
    running_mean: Any,
    running_var: Any,
    *,
    train: bool,
    momentum: float = 0.9,
    eps: float = 1e-5,
) -> tuple[Any, Any, Any]:
    """Batch normalization; VJP from :func:`xpnn.batchnorm_backward_alt`.

    Parameters
    ----------
    x : array, shape (N, D)
    gamma, beta : arrays, shape (D,)
    running_mean, running_var : arrays, shape (D,)
        The running averages, used in test mode and updated in train mode.
    train : bool
        Normalize with the minibatch statistics (True) or the running ones (False).
    momentum, eps : float

    Returns
    -------
    out : array, shape (N, D)
    new_running_mean, new_running_var : arrays, shape (D,)
        ``momentum * running + (1 - momentum) * batch statistic`` in train mode (biased
        variance), the inputs unchanged in test mode.

    Notes
    -----
    The running statistics are constants for differentiation: no gradient flows into
    ``running_mean`` or ``running_var`` (even in test mode, where ``out`` depends on
    them), and the cotangents of the two new statistics are treated as zero. Only
    ``x``, ``gamma`` and ``beta`` get gradients.
    """
    running_mean = jax.lax.stop_gradient(running_mean)
    running_var = jax.lax.stop_gradient(running_var)
    return _batchnorm(
        x, gamma, beta, running_mean, running_var, train=bool(train), momentum=momentum, eps=eps
    )


def spatial_batchnorm(
    x: Any,
    gamma: Any,
    beta: Any,
    running_mean: Any,
    running_var: Any,
    *,
    train: bool,
    momentum: float = 0.9,
    eps: float = 1e-5,
) -> tuple[Any, Any, Any]:
    """Spatial batch normalization, per channel over (N, H, W); VJP from xpnn's backward.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    gamma, beta : arrays, shape (C,)
    running_mean, running_var : arrays, shape (C,)
    train : bool
    momentum, eps : float

    Returns
    -------
    out : array, shape (N, C, H, W)
    new_running_mean, new_running_var : arrays, shape (C,)

    Notes
    -----
    As in :func:`batchnorm`: the running statistics carry no gradient, in or out.
    """
    running_mean = jax.lax.stop_gradient(running_mean)
    running_var = jax.lax.stop_gradient(running_var)
    return _spatial_batchnorm(
        x, gamma, beta, running_mean, running_var, train=bool(train), momentum=momentum, eps=eps
    )


def layernorm(x: Any, gamma: Any, beta: Any, *, eps: float = 1e-5) -> Any:
    """Layer normalization, each sample over its D features; VJP from ``layernorm_backward``.

    Parameters
    ----------
    x : array, shape (N, D)
    gamma, beta : arrays, shape (D,)
    eps : float

    Returns
    -------
    out : array, shape (N, D)
    """
    return _layernorm(x, gamma, beta, eps=eps)


def groupnorm(x: Any, gamma: Any, beta: Any, *, groups: int, eps: float = 1e-5) -> Any:
    """Spatial group normalization; VJP from :func:`xpnn.spatial_groupnorm_backward`.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    gamma, beta : arrays, shape (C,) or (1, C, 1, 1)
        Their gradients have the same shape.
    groups : int
        Number of groups G, a divisor of C; each (sample, group) is normalized over its
        C // G channels and all H, W positions.
    eps : float

    Returns
    -------
    out : array, shape (N, C, H, W)
    """
    return _groupnorm(x, gamma, beta, groups=groups, eps=eps)


def dropout(x: Any, *, p: float, key: Any, train: bool) -> Any:
    """Inverted dropout, ``x * keep / p``; VJP from :func:`xpnn.dropout_backward`.

    Parameters
    ----------
    x : array, any shape
    p : float
        Probability of *keeping* a unit, in (0, 1] (the CS231n convention).
    key : jax.random key
        The mask is ``jax.random.bernoulli(key, p, x.shape)``: the same key gives the same
        mask (also under ``jax.jit``).
    train : bool
        In test mode (False) the function is the identity and ``key`` is not used.

    Returns
    -------
    out : array, shape of x
    """
    if not train:
        return x
    keep = jax.random.bernoulli(key, p, jnp.shape(x))
    return _dropout(x, keep, p=float(p))


def softmax_loss(scores: Any, y: Any) -> Any:
    """Mean softmax cross-entropy loss; VJP from the gradient :func:`xpnn.softmax_loss` returns.

    Parameters
    ----------
    scores : array, shape (N, C)
    y : integer array, shape (N,)
        Labels in ``[0, C)``; no gradient.

    Returns
    -------
    loss : 0-d array
    """
    return _softmax(scores, y)


def svm_loss(scores: Any, y: Any) -> Any:
    """Mean multiclass hinge loss (margin 1); VJP from the gradient :func:`xpnn.svm_loss` returns.

    Parameters
    ----------
    scores : array, shape (N, C)
    y : integer array, shape (N,)
        Labels in ``[0, C)``; no gradient.

    Returns
    -------
    loss : 0-d array
    """
    return _svm(scores, y)
