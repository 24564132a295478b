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

from .registry import Layer
from .registry.bridges import bind, bridge_docstring, bridge_names, bridge_signature, make_bridges

__all__ = sorted(["from_layer", "function", *bridge_names()])


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


# --------------------------------------------------------------------------- declared layers


def function(declaration: Layer) -> Callable:
    """The differentiable JAX function of a declared layer (:class:`xpnn.registry.Layer`).

    It takes the declaration's ``inputs``, then its ``param_arrays`` (constants: no
    gradient flows into or out of them), and its ``params`` as keywords (Python values,
    static under ``jax.jit``); it returns the forward's output (with the param arrays as
    the forward left them when ``returns_param_arrays``). Its VJP is the declared backward
    (``bridge_backward`` if given). Every built-in function of this module is made so.
    """
    fn = from_layer(
        lambda *arrays, **keywords: declaration.call(arrays, declaration.arguments(keywords)),
        declaration.bridge_grads,
    )

    signature = bridge_signature(declaration)

    def apply(*args: Any, **kwargs: Any) -> Any:
        arrays, keywords = bind(declaration, signature, args, kwargs)
        n = len(declaration.inputs)
        constants = tuple(jax.lax.stop_gradient(jnp.asarray(a)) for a in arrays[n:])
        return fn(*arrays[:n], *constants, **keywords)

    apply.__name__ = apply.__qualname__ = declaration.bridge or declaration.name
    apply.__doc__ = bridge_docstring(declaration, "jax")
    apply.__module__ = __name__
    apply.__signature__ = signature  # type: ignore[attr-defined]
    return apply


def _dropout_adapter(generated: Callable) -> Callable:
    def dropout(x: Any, *, p: float, key: Any, train: bool) -> Any:
        """Inverted dropout, ``x * keep / p``; VJP from :func:`xpnn.dropout_backward`.

        Parameters
        ----------
        x : array, any shape
        p : float
            Probability of *keeping* a unit, in (0, 1] (the CS231n convention).
        key : jax.random key
            The mask is ``jax.random.bernoulli(key, p, x.shape)``: the same key gives the
            same mask (also under ``jax.jit``).
        train : bool
            In test mode (False) the function is the identity and ``key`` is not used.

        Returns
        -------
        out : array, shape of x
        """
        if not train:
            return x
        keep = jax.random.bernoulli(key, p, jnp.shape(x))
        return generated(x, keep, p=float(p))

    return dropout


# Layers whose bridge function draws random numbers: the framework's own way.
_ADAPTERS = {"dropout": _dropout_adapter}


globals().update(make_bridges(function, _ADAPTERS, __name__))
