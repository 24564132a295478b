"""Numerical gradients, and the registry of gradient-check cases that every layer fills.

The first four functions have the names and signatures of the CS231n assignment and work
on arrays of any backend, on their device:

* on writeable arrays (NumPy, CuPy, PyTorch, array-api-strict) they perturb ``x`` in
  place and restore it, because assignment code reads the parameter through the model
  (``f = lambda _: model.loss(X, y)[0]``);
* on immutable arrays (JAX) they pass a perturbed copy to ``f``, which must use its
  argument (see ``docs/backends.md`` for the JAX pattern).

Each derivative is one 0-d array on the device; they are stacked into the gradient at the
end, so no array is copied to the host per element.

:func:`check_directional` compares a few random directional derivatives instead of every
coordinate (Chainer's ``check_backward`` idea): two forward passes per direction, so
large inputs are checked quickly.
"""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import array_api_compat
import array_api_extra as xpx
import numpy as np

from ._backend import array_namespace, device_of, to_numpy

__all__ = [
    "ArraySpec",
    "CaseResult",
    "GradCase",
    "check_directional",
    "distinct",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "labels",
    "nonzero",
    "register_case",
    "registered_cases",
    "rel_error",
    "run_case",
]


# --------------------------------------------------------------------------- numerics


def rel_error(x: Any, y: Any) -> float:
    """CS231n's relative error: ``max(|x - y| / max(1e-8, |x| + |y|))``, as a float.

    ``x`` and ``y`` may be arrays of any backend (they are copied to the host), or numbers.
    """
    a = np.asarray(to_numpy(x) if array_api_compat.is_array_api_obj(x) else x, dtype=np.float64)
    b = np.asarray(to_numpy(y) if array_api_compat.is_array_api_obj(y) else y, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _indices(shape: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    return itertools.product(*(range(n) for n in shape))


def _scalar(xp: Any, value: Any, like: Any) -> Any:
    """``value`` (a Python number or 0-d array) as a 0-d array of ``like``'s kind."""
    return xp.asarray(value, dtype=like.dtype, device=device_of(like))


def _evaluate_on_both_sides(
    f: Callable[[Any], Any], x: Any, ix: tuple[int, ...], h: float
) -> tuple[Any, Any]:
    """``(f(x + h e_ix), f(x - h e_ix))``.

    A writeable ``x`` is perturbed in place and restored (``f`` may read it through a
    closure); an immutable one (JAX) is copied, and ``f`` gets the copy.
    """
    xp = array_namespace(x=x)
    old = xp.asarray(x[ix], copy=True)
    if not array_api_compat.is_writeable_array(x):
        return f(xpx.at(x, ix).set(old + h, copy=True)), f(xpx.at(x, ix).set(old - h, copy=True))
    x[ix] = old + h
    plus = f(x)
    x[ix] = old - h
    minus = f(x)
    x[ix] = old
    return plus, minus


def _central_differences(
    f: Callable[[Any], Any], x: Any, h: float, reduce: Callable[[Any], Any]
) -> Any:
    """``(reduce(f(x + h e_i)) - reduce(f(x - h e_i))) / 2h`` for every coordinate i."""
    xp = array_namespace(x=x)
    derivatives = []
    for ix in _indices(tuple(x.shape)):
        plus, minus = _evaluate_on_both_sides(f, x, ix, h)
        derivatives.append(_scalar(xp, (reduce(plus) - reduce(minus)) / (2 * h), x))
    if not derivatives:
        return xp.zeros_like(x)
    return xp.reshape(xp.stack(derivatives), tuple(x.shape))


def eval_numerical_gradient(
    f: Callable[[Any], Any], x: Any, verbose: bool = True, h: float = 1e-5
) -> Any:
    """Numerical gradient of a scalar function ``f`` at ``x`` (central differences).

    Parameters
    ----------
    f : callable
        Takes an array shaped like ``x`` and returns a scalar (a Python number or a 0-d
        array). On writeable backends ``f`` is called with ``x`` itself, perturbed in
        place; on JAX with a perturbed copy.
    x : array
        Point at which to evaluate the gradient. Restored after use.
    verbose : bool
        Print every coordinate and its derivative, as the assignment's version does.
    h : float
        Step size.

    Returns
    -------
    grad : array, shape and backend of ``x``
    """

    def scalar(value: Any) -> Any:
        return value

    grad = _central_differences(f, x, h, scalar)
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
    ``df`` is the upstream gradient.

    Parameters
    ----------
    f : callable
        Takes an array shaped like ``x`` and returns an array shaped like ``df``.
    x : array
        Restored after use.
    df : array
        Upstream gradient, same backend and device as ``x``.
    h : float
        Step size.

    Returns
    -------
    grad : array, shape and backend of ``x``
    """
    xp = array_namespace(x=x, df=df)

    def weighted_sum(out: Any) -> Any:
        return xp.sum(out * df)

    return _central_differences(f, x, h, weighted_sum)


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
    x : array
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
    array_namespace(x=x, analytic_grad=analytic_grad)  # one backend, one device
    rng = random if seed is None else random.Random(seed)
    analytic = to_numpy(analytic_grad)
    errors = []
    for _ in range(num_checks):
        ix = tuple(rng.randrange(n) for n in x.shape)
        plus, minus = _evaluate_on_both_sides(f, x, ix, h)
        numeric = float((plus - minus) / (2 * h))
        exact = float(analytic[ix])
        err = abs(numeric - exact) / max(abs(numeric) + abs(exact), 1e-300)
        errors.append(err)
        print(f"numerical: {numeric:f} analytic: {exact:f}, relative error: {err:e}")
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


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ArraySpec:
    """How to draw one input of a gradient-check case.

    ``kind`` is ``'normal'`` (standard normal), ``'nonzero'`` (normal, but at least 0.1
    away from 0, so a ReLU kink is never crossed by the finite difference), ``'distinct'``
    (a shuffled grid of values at least 0.01 apart, so a max is never tied), or
    ``'labels'`` (integers in ``[0, num_classes)``; not differentiated).
    """

    shape: tuple[int, ...]
    kind: str = "normal"
    num_classes: int = 0

    @property
    def differentiable(self) -> bool:
        return self.kind != "labels"

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        if self.kind == "labels":
            return rng.integers(0, self.num_classes, size=self.shape)
        if self.kind == "distinct":
            size = int(np.prod(self.shape))
            return (rng.permutation(size) - size / 2).reshape(self.shape) * 0.01 + 0.003
        values = rng.standard_normal(self.shape)
        if self.kind == "nonzero":
            values = np.where(values >= 0, values + 0.1, values - 0.1)
        return values


def nonzero(*shape: int) -> ArraySpec:
    """Normal values kept at least 0.1 away from zero."""
    return ArraySpec(tuple(shape), "nonzero")


def distinct(*shape: int) -> ArraySpec:
    """Values at least 0.01 apart (no ties for a max)."""
    return ArraySpec(tuple(shape), "distinct")


def labels(n: int, num_classes: int) -> ArraySpec:
    """Integer class labels of shape (n,)."""
    return ArraySpec((n,), "labels", num_classes)


@dataclass(frozen=True)
class GradCase:
    """One gradient-check case: a layer, its input shapes and its fixed parameters.

    Parameters
    ----------
    name : str
        The forward function's public name (``'conv_forward_fast'``).
    forward : callable
        ``forward(*arrays, **params)``; returns ``(out, cache)``, or ``(loss, dx)`` for a
        loss (then ``backward`` is ``None`` and ``dx`` is the gradient of the first input).
    backward : callable or None
        ``backward(dout, cache)``; returns the gradients of the differentiable inputs, in
        order (one array, or a tuple).
    inputs : mapping of str to shape tuple or ArraySpec
        The array arguments of ``forward``, in order.
    params : mapping
        Keyword arguments of ``forward`` that are not arrays. Each call gets a deep copy,
        so a layer that writes into its parameter dict (batch norm's running averages)
        leaves the case unchanged.
    label : str
        Tells apart cases of one forward function with different backward passes.
    random : bool
        The forward draws random numbers from the backend's own generator (dropout), so
        its values differ between backends even with a seed.
    """

    name: str
    forward: Callable[..., tuple[Any, Any]]
    backward: Callable[[Any, Any], Any] | None
    inputs: Mapping[str, tuple[int, ...] | ArraySpec]
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    random: bool = False

    @property
    def specs(self) -> dict[str, ArraySpec]:
        return {
            k: v if isinstance(v, ArraySpec) else ArraySpec(tuple(v))
            for k, v in self.inputs.items()
        }

    @property
    def is_loss(self) -> bool:
        return self.backward is None

    def describe(self) -> str:
        """The inputs and parameters in one line, for tables."""
        parts = [f"{k}{spec.shape}" for k, spec in self.specs.items()]
        if self.label:
            parts.insert(0, f"[{self.label}]")
        for name, value in self.params.items():
            if isinstance(value, Mapping) and not value:
                continue
            if isinstance(value, Mapping):
                inner = ",".join(f"{k}={v}" for k, v in value.items())
                parts.append(f"{name.removesuffix('_param')}({inner})")
            else:
                parts.append(f"{name}={value!r}")
        return " ".join(p.replace(" ", "") for p in parts)

    def draw_inputs(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Float64 (labels: int64) NumPy inputs, reproducible from ``seed``."""
        rng = np.random.default_rng(seed)
        return {k: spec.draw(rng) for k, spec in self.specs.items()}

    def run(self, *arrays: Any) -> tuple[Any, Any]:
        return self.forward(*arrays, **copy.deepcopy(dict(self.params)))

    def gradients(self, arrays: tuple[Any, ...], dout: Any) -> tuple[Any, ...]:
        """Analytic gradients of the differentiable inputs (``dout`` is ignored for a loss)."""
        _, cache = self.run(*arrays)
        if self.is_loss:
            return (cache,)
        grads = self.backward(dout, cache)
        return grads if isinstance(grads, tuple) else (grads,)


_REGISTRY: list[GradCase] = []


def register_case(case: GradCase) -> GradCase:
    """Add a case to the registry that ``xpnn gradcheck`` and the test suite run."""
    _REGISTRY.append(case)
    return case


def registered_cases() -> list[GradCase]:
    """Every registered case (importing the layer modules registers the built-in ones)."""
    import xpnn.layer_utils  # noqa: F401  (imports xpnn.layers; registration happens at import)

    return list(_REGISTRY)


@dataclass(frozen=True)
class CaseResult:
    """Outcome of :func:`run_case` for one case."""

    case: GradCase
    rel_error: float
    """CS231n ``rel_error`` between analytic and numerical gradient, worst input."""
    scaled_error: float
    """``max|analytic - numeric| / (max|analytic| + max|numeric|)``, worst input."""
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.scaled_error <= self.tolerance


#: Pass threshold of the scaled error for the dtype the analytic gradient is computed in
#: (the numerical gradient is always taken in float64).
TOLERANCES = {"float64": 1e-7, "float32": 1e-5}


def run_case(
    case: GradCase,
    xp: Any,
    device: Any = None,
    dtype: str = "float64",
    seed: int = 0,
    compile: Callable[[Callable], Callable] | None = None,
) -> CaseResult:
    """Compare a case's analytic gradients with numerical ones on one backend.

    The analytic gradients are computed in ``dtype``; the numerical gradients in float64
    on the same backend and device, so a float32 backward is checked against an accurate
    reference. The backend must have float64 (enable x64 on JAX).

    Parameters
    ----------
    case : GradCase
    xp : namespace
        Array-API namespace of the backend (``xpnn.get_namespace('jax')``).
    device : optional
        Device to put the inputs on.
    dtype : {'float64', 'float32'}
    seed : int
    compile : callable, optional
        Applied to the functions that are evaluated (``jax.jit`` on JAX, where it makes
        the many forward calls of the numerical gradient fast and checks that the layer
        traces).

    Returns
    -------
    CaseResult
    """
    specs = case.specs

    def forward(*arrays: Any) -> Any:
        return case.run(*arrays)[0]

    gradients = case.gradients
    if compile is not None:
        forward, gradients = compile(forward), compile(gradients)
    host = case.draw_inputs(seed)
    host_dout = None
    if not case.is_loss:
        out_shape = forward(*(xp.asarray(v, device=device) for v in host.values())).shape
        host_dout = np.random.default_rng(seed + 1).standard_normal(tuple(out_shape))

    def put(values: Mapping[str, np.ndarray], float_dtype: Any) -> tuple[Any, ...]:
        return tuple(
            xp.asarray(v, dtype=float_dtype if specs[k].differentiable else None, device=device)
            for k, v in values.items()
        )

    analytic_args = put(host, getattr(xp, dtype))
    dout = (
        None
        if host_dout is None
        else xp.asarray(host_dout, dtype=getattr(xp, dtype), device=device)
    )
    analytic = gradients(analytic_args, dout)

    numeric_args = list(put(host, xp.float64))
    numeric_dout = (
        None if host_dout is None else xp.asarray(host_dout, dtype=xp.float64, device=device)
    )
    diff_positions = [i for i, spec in enumerate(specs.values()) if spec.differentiable]
    pairs = []
    for position, grad in zip(diff_positions, analytic, strict=True):

        def f(value: Any, position: int = position) -> Any:
            args = list(numeric_args)
            args[position] = value
            return forward(*args)

        target = numeric_args[position]
        if case.is_loss:
            numeric = eval_numerical_gradient(f, target, verbose=False)
        else:
            numeric = eval_numerical_gradient_array(f, target, numeric_dout)
        a, n = to_numpy(grad).astype(np.float64), to_numpy(numeric)
        if a.shape != n.shape:
            raise ValueError(
                f"{case.name}: gradient {position} has shape {a.shape}, expected {n.shape}"
            )
        pairs.append((a, n))
    worst_rel = max(rel_error(a, n) for a, n in pairs)
    worst_scaled = _scaled_error(pairs)
    return CaseResult(case, worst_rel, worst_scaled, TOLERANCES[dtype])


def _scaled_error(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Worst ``max|a - n| / scale`` over the inputs of a case.

    ``scale`` is the input's own gradient scale ``max|a| + max|n|``, but at least 1e-2
    times the largest scale of the case: a gradient that is exactly zero (the bias before
    a batch norm) then compares its rounding noise with the case's gradients instead of
    with itself.
    """
    scales = [float(np.max(np.abs(a), initial=0) + np.max(np.abs(n), initial=0)) for a, n in pairs]
    floor = max(max(scales, default=0.0) * 1e-2, 1e-300)
    return max(
        (
            float(np.max(np.abs(a - n), initial=0)) / max(scale, floor)
            for (a, n), scale in zip(pairs, scales, strict=True)
        ),
        default=0.0,
    )
