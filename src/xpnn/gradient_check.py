"""Numerical gradients with the CS231n assignment's names, on arrays of any backend.

``from xpnn.gradient_check import *`` gives exactly the assignment's four functions:
:func:`eval_numerical_gradient`, :func:`eval_numerical_gradient_array`,
:func:`grad_check_sparse` and :func:`rel_error`. They compute what the assignment's
versions compute, with the same formulas, so the relative errors printed by an
assignment notebook reproduce digit for digit on NumPy. They also work on the arrays of
every other backend, on their device:

* on writeable arrays (NumPy, CuPy, PyTorch, array-api-strict) ``x`` is perturbed in
  place and restored, also when ``f`` raises, because assignment code reads the parameter
  through the model (``f = lambda _: model.loss(X, y)[0]``);
* on immutable arrays (JAX) ``f`` receives a perturbed copy and must use it (see
  ``docs/backends.md`` for the JAX pattern).

``f``'s output is copied before the next perturbation, since it may be ``x`` itself
(dropout in test mode returns its input). Each derivative stays a 0-d array on the
device; the gradient is assembled at the end, so nothing is copied to the host per
element.

:func:`check_directional` (not one of the assignment's names) compares a few random
directional derivatives instead of every coordinate: two forward passes per direction,
so large inputs are checked quickly.

This module depends on the backend layer only. The gradient-check cases of xpnn's own
layers are declared in :mod:`xpnn.registry`; the runner behind ``xpnn gradcheck`` is
:mod:`xpnn.layer_checks`.
"""

from __future__ import annotations

import itertools
import random
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import array_api_compat
import array_api_extra as xpx
import numpy as np

from ._backend import array_namespace, device_of, no_autograd, stack_scalars, to_numpy

__all__ = [
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "rel_error",
]


def rel_error(x: Any, y: Any) -> float:
    """CS231n's relative error: ``max(|x - y| / max(1e-8, |x| + |y|))``, as a float.

    ``x`` and ``y`` may be arrays of any backend (they are copied to the host), or numbers.
    """
    a = np.asarray(_host(x), dtype=np.float64)
    b = np.asarray(_host(y), dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _host(value: Any) -> Any:
    return to_numpy(value) if array_api_compat.is_array_api_obj(value) else value


def _indices(shape: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    return itertools.product(*(range(n) for n in shape))


def _require_floating(x: Any, name: str = "x") -> Any:
    """The namespace of ``x``; ``x`` must be a floating array (an integer one cannot move by h)."""
    if not array_api_compat.is_array_api_obj(x):
        raise TypeError(f"{name} must be an array; got {type(x).__name__}")
    xp = array_namespace(**{name: x})
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(
            f"{name} must be a real floating array to be perturbed by h; got dtype {x.dtype} "
            f"(cast it first, e.g. x.astype(float))"
        )
    return xp


def _snapshot(value: Any) -> Any:
    """A copy of ``f``'s output, which may alias the perturbed ``x``."""
    if array_api_compat.is_array_api_obj(value):
        return array_api_compat.array_namespace(value).asarray(value, copy=True)
    return value


def _evaluate_on_both_sides(
    f: Callable[[Any], Any], x: Any, ix: tuple[int, ...], h: float
) -> tuple[Any, Any]:
    """``(f(x + h e_ix), f(x - h e_ix))``, each output copied.

    A writeable ``x`` is perturbed in place and restored, also when ``f`` raises (``f``
    may read it through a closure); an immutable one (JAX) is copied, and ``f`` gets the
    copy.
    """
    xp = array_namespace(x=x)
    if not array_api_compat.is_writeable_array(x):
        old = xp.asarray(x[ix], copy=True)
        plus = _snapshot(f(xpx.at(x, ix).set(old + h, copy=True)))
        return plus, _snapshot(f(xpx.at(x, ix).set(old - h, copy=True)))
    with no_autograd(x):
        old = x[ix] * 1  # a copy (of -0.0 too); asarray would warn on a torch leaf
        try:
            x[ix] = old + h
            plus = _snapshot(f(x))
            x[ix] = old - h
            minus = _snapshot(f(x))
        finally:
            x[ix] = old
    return plus, minus


class PerturbationIgnoredWarning(UserWarning):
    """``f`` returned the same value on both sides of every perturbation of an immutable
    ``x`` (JAX): it reads the parameter from somewhere else than its argument."""


class _ChangeWatch:
    """Whether ``f`` ever changed its output under the perturbations of an immutable ``x``.

    Keeps one 0-d boolean per perturbation (on the device, no sync); :meth:`warn_if_never`
    reads them from the first on, so a working ``f`` costs one read of one boolean.
    """

    def __init__(self, x: Any) -> None:
        self.active = not array_api_compat.is_writeable_array(x)
        self.changed: list[Any] = []

    def add(self, plus: Any, minus: Any) -> None:
        if not self.active:
            return
        if array_api_compat.is_array_api_obj(plus) or array_api_compat.is_array_api_obj(minus):
            xp = array_api_compat.array_namespace(plus, minus)
            self.changed.append(xp.any(xp.asarray(plus) != xp.asarray(minus)))
        else:
            self.changed.append(plus != minus)

    def warn_if_never(self, x: Any, caller: str) -> None:
        if not self.changed or any(bool(c) for c in self.changed):
            return
        _warn_ignored(x, caller)


def _warn_ignored(x: Any, caller: str) -> None:
    warnings.warn(
        f"{caller}: f returned the same value for every perturbation of x, so the numerical "
        f"gradient is all zeros. If f should depend on x: x is immutable "
        f"({type(x).__module__}.{type(x).__name__}), so f is called with a perturbed copy "
        "and must use it; an f that reads the parameter elsewhere, like the assignment's "
        "`f = lambda _: model.loss(X, y)[0]`, sees no change. Install the value f receives "
        "first (`def f(W): model.params['W1'] = W; return model.loss(X, y)[0]`), see "
        "docs/porting.md, 'Gradient checks on JAX'",
        PerturbationIgnoredWarning,
        stacklevel=4,
    )


def _assemble(xp: Any, x: Any, derivatives: list[Any]) -> Any:
    """Stack one 0-d derivative per coordinate into an array shaped and typed like ``x``."""
    if not derivatives:
        return xp.zeros_like(x)
    values = [xp.asarray(d, dtype=x.dtype, device=device_of(x)) for d in derivatives]
    return stack_scalars(xp, values, tuple(x.shape))


def eval_numerical_gradient(
    f: Callable[[Any], Any], x: Any, verbose: bool = True, h: float = 1e-5
) -> Any:
    """Numerical gradient of a scalar function ``f`` at ``x`` (central differences).

    ``grad[i] = (f(x + h e_i) - f(x - h e_i)) / 2h`` for every coordinate ``i``.

    Parameters
    ----------
    f : callable
        Takes an array shaped like ``x`` and returns a scalar (a Python number or a 0-d
        array). On writeable backends ``f`` is called with ``x`` itself, perturbed in
        place; on JAX with a perturbed copy.
    x : array, real floating
        Point at which to evaluate the gradient. Restored after use, also if ``f`` raises.
    verbose : bool
        Print every coordinate and its derivative, as the assignment's version does.
    h : float
        Step size.

    Returns
    -------
    grad : array, shape, dtype and backend of ``x``
    """
    xp = _require_floating(x)
    derivatives, watch = [], _ChangeWatch(x)
    for ix in _indices(tuple(x.shape)):
        plus, minus = _evaluate_on_both_sides(f, x, ix, h)
        watch.add(plus, minus)
        derivatives.append((plus - minus) / (2 * h))
    watch.warn_if_never(x, "eval_numerical_gradient")
    grad = _assemble(xp, x, derivatives)
    if verbose:
        host = to_numpy(grad)
        for ix in _indices(tuple(x.shape)):
            print(ix, host[ix])
    return grad


def eval_numerical_gradient_array(
    f: Callable[[Any], Any], x: Any, df: Any, h: float = 1e-5
) -> Any:
    """Numerical gradient of ``sum(f(x) * df)`` with respect to ``x``.

    This is the vector-Jacobian product ``J^T df`` that a layer's backward computes when
    ``df`` is the upstream gradient. Each coordinate is
    ``sum((f(x + h e_i) - f(x - h e_i)) * df) / 2h``, the assignment's formula: the
    outputs are subtracted before they are weighted and summed, so the two large sums
    never cancel each other.

    Parameters
    ----------
    f : callable
        Takes an array shaped like ``x`` and returns an array shaped like ``df``.
    x : array, real floating
        Restored after use, also if ``f`` raises.
    df : array
        Upstream gradient, same backend and device as ``x``.
    h : float
        Step size.

    Returns
    -------
    grad : array, shape, dtype and backend of ``x``
    """
    xp = _require_floating(x)
    array_namespace(x=x, df=df)
    derivatives, watch = [], _ChangeWatch(x)
    for ix in _indices(tuple(x.shape)):
        plus, minus = _evaluate_on_both_sides(f, x, ix, h)
        watch.add(plus, minus)
        derivatives.append(xp.sum((plus - minus) * df) / (2 * h))
    watch.warn_if_never(x, "eval_numerical_gradient_array")
    return _assemble(xp, x, derivatives)


def grad_check_sparse(
    f: Callable[[Any], Any],
    x: Any,
    analytic_grad: Any,
    num_checks: int = 10,
    h: float = 1e-5,
    seed: int | None = None,
) -> list[float]:
    """Check ``num_checks`` random coordinates of an analytic gradient and print them.

    Parameters
    ----------
    f : callable
        Scalar function, as for :func:`eval_numerical_gradient`.
    x : array, real floating
    analytic_grad : array, shape of x
    num_checks : int
    h : float
    seed : int, optional
        Seed for the choice of coordinates (default: Python's global ``random``, as in
        CS231n).

    Returns
    -------
    list of float
        The relative error of each checked coordinate (also printed).
    """
    _require_floating(x)
    array_namespace(x=x, analytic_grad=analytic_grad)  # one backend, one device
    rng = random if seed is None else random.Random(seed)
    analytic = to_numpy(analytic_grad)
    errors, watch = [], _ChangeWatch(x)
    for _ in range(num_checks):
        ix = tuple(rng.randrange(n) for n in x.shape)
        plus, minus = _evaluate_on_both_sides(f, x, ix, h)
        watch.add(plus, minus)
        numeric = float((plus - minus) / (2 * h))
        exact = float(analytic[ix])
        err = abs(numeric - exact) / max(abs(numeric) + abs(exact), 1e-300)
        errors.append(err)
        print(f"numerical: {numeric:f} analytic: {exact:f}, relative error: {err:e}")
    watch.warn_if_never(x, "grad_check_sparse")
    return errors


def check_directional(
    f: Callable[..., Any],
    inputs: tuple[Any, ...],
    grads: tuple[Any, ...],
    dout: Any,
    num_directions: int = 3,
    h: float = 1e-5,
    seed: int = 0,
) -> float:
    """Compare directional derivatives of ``sum(f(*inputs) * dout)`` with the gradients.

    For a random unit direction ``d = (d_1, ..., d_k)`` over all inputs, the central
    difference ``(L(inputs + h d) - L(inputs - h d)) / 2h`` must equal
    ``sum_i <grads_i, d_i>``. Costs two calls of ``f`` per direction, whatever the size.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returns an array shaped like ``dout`` (or a scalar if ``dout`` is
        ``None``).
    inputs, grads : tuple of arrays
        The differentiable inputs and their analytic gradients, in the same order.
    dout : array or None
    num_directions : int
    h : float
    seed : int

    Returns
    -------
    float
        The largest error ``|numeric - analytic| / max(|numeric| + |analytic|, tiny)``
        over the directions.
    """
    for i, a in enumerate(inputs):
        _require_floating(a, f"inputs[{i}]")
    xp = array_namespace(*inputs, *grads)
    rng = np.random.default_rng(seed)

    def loss(args: tuple[Any, ...]) -> Any:
        out = f(*args)
        return out if dout is None else xp.sum(out * dout)

    worst = 0.0
    for _ in range(num_directions):
        directions = [rng.standard_normal(tuple(a.shape)) for a in inputs]
        norm = np.sqrt(sum(float(np.sum(d * d)) for d in directions)) or 1.0
        dirs = [
            xp.asarray(d / norm, dtype=a.dtype, device=device_of(a))
            for d, a in zip(directions, inputs, strict=True)
        ]
        plus = loss(tuple(a + h * d for a, d in zip(inputs, dirs, strict=True)))
        minus = loss(tuple(a - h * d for a, d in zip(inputs, dirs, strict=True)))
        numeric = float((plus - minus) / (2 * h))
        analytic = float(sum(xp.sum(g * d) for g, d in zip(grads, dirs, strict=True)))
        scale = max(abs(numeric) + abs(analytic), 1e-300)
        worst = max(worst, abs(numeric - analytic) / scale)
    return worst


_MOVED = {
    "ArraySpec": "xpnn.registry",
    "CaseResult": "xpnn.layer_checks",
    "GradCase": "xpnn.registry",
    "distinct": "xpnn.registry",
    "labels": "xpnn.registry",
    "nonzero": "xpnn.registry",
    "register_case": "xpnn.registry",
    "registered_cases": "xpnn.registry",
    "run_case": "xpnn.layer_checks",
}


def __getattr__(name: str) -> Any:
    # ImportError rather than AttributeError: ``from xpnn.gradient_check import GradCase``
    # then shows this message instead of Python's generic "cannot import name".
    if name in _MOVED:
        raise ImportError(
            f"xpnn.gradient_check.{name} is not part of the assignment's numerics: "
            f"from {_MOVED[name]} import {name}"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
