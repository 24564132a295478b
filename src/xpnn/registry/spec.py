"""What a layer declaration is: its functions, arguments, bridge parameters, cases and oracle.

A :class:`Layer` is the one place a layer is described. The public names, the gradient-check
cases (:class:`GradCase`, drawn from :class:`ArraySpec`), the oracle tests, the JAX and
PyTorch bridges and the API reference are all derived from it (``docs/adding_a_layer.md``).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "REQUIRED",
    "ArraySpec",
    "GradCase",
    "Layer",
    "Oracle",
    "Param",
    "case",
    "distinct",
    "indices",
    "labels",
    "mask",
    "nonzero",
]


@dataclass(frozen=True)
class ArraySpec:
    """How to draw one input of a gradient-check case.

    ``kind`` is ``'normal'`` (standard normal), ``'nonzero'`` (normal, but at least 0.1
    away from 0, so a finite difference never crosses the kink of a ReLU), ``'distinct'``
    (a shuffled grid of values at least 0.01 apart, so a max is never tied), ``'labels'``
    (integers in ``[0, num_classes)``: class labels or word indices; not differentiated)
    or ``'mask'`` (booleans, about 70% True; not differentiated). ``scale`` multiplies the
    drawn values (not labels or masks).
    """

    shape: tuple[int, ...]
    kind: str = "normal"
    num_classes: int = 0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("normal", "nonzero", "distinct", "labels", "mask"):
            raise ValueError(
                "ArraySpec.kind must be 'normal', 'nonzero', 'distinct', 'labels' or 'mask'; "
                f"got {self.kind!r}"
            )

    @property
    def differentiable(self) -> bool:
        return self.kind not in ("labels", "mask")

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Float64 values (int64 labels) of this spec's shape."""
        if self.kind == "labels":
            return rng.integers(0, self.num_classes, size=self.shape)
        if self.kind == "mask":
            return rng.random(self.shape) < 0.7
        if self.kind == "distinct":
            size = int(np.prod(self.shape))
            values = (rng.permutation(size) - size / 2).reshape(self.shape) * 0.01 + 0.003
        else:
            values = rng.standard_normal(self.shape)
            if self.kind == "nonzero":
                values = np.where(values >= 0, values + 0.1, values - 0.1)
        return values * self.scale


def nonzero(*shape: int) -> ArraySpec:
    """Normal values kept at least 0.1 away from zero."""
    return ArraySpec(tuple(shape), "nonzero")


def distinct(*shape: int) -> ArraySpec:
    """Values at least 0.01 apart (no ties for a max)."""
    return ArraySpec(tuple(shape), "distinct")


def labels(n: int, num_classes: int) -> ArraySpec:
    """Integer class labels of shape (n,)."""
    return ArraySpec((n,), "labels", num_classes)


def indices(*shape: int, below: int) -> ArraySpec:
    """Integers in ``[0, below)`` of any shape (word indices); repeats are likely."""
    return ArraySpec(tuple(shape), "labels", below)


def mask(*shape: int) -> ArraySpec:
    """Booleans of any shape, about 70% True."""
    return ArraySpec(tuple(shape), "mask")


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
        """``forward(*arrays, **params)`` with a fresh copy of the parameters."""
        return self.forward(*arrays, **copy.deepcopy(dict(self.params)))

    def gradients(self, arrays: tuple[Any, ...], dout: Any) -> tuple[Any, ...]:
        """Analytic gradients of the differentiable inputs (``dout`` is ignored for a loss)."""
        _, cache = self.run(*arrays)
        if self.is_loss:
            return (cache,)
        grads = self.backward(dout, cache)
        return grads if isinstance(grads, tuple) else (grads,)


# --------------------------------------------------------------------------- declarations


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Default of a :class:`Param` that the caller must give.
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Param:
    """A keyword parameter of the bridge functions, and where it goes in the forward call.

    Parameters
    ----------
    target : str
        A keyword argument of the forward (``'G'``), or a key of one of its parameter
        dicts (``'conv_param.stride'``).
    default : optional
        :data:`REQUIRED` when the caller must give it.
    convert : callable, optional
        Turns the bridge's value into the forward's (``train=True`` into
        ``bn_param['mode'] = 'train'``).
    doc : str, optional
        What it means, for the bridge functions' docstrings (default: its target).
    """

    target: str
    default: Any = REQUIRED
    convert: Callable[[Any], Any] | None = None
    doc: str = ""


@dataclass(frozen=True)
class Oracle:
    """An independent implementation of a forward pass, differentiated by its framework.

    Each function is called as ``fn(lib, *arrays, **params)``, where ``lib`` is the
    ``torch`` or ``jax`` module, the arrays are that framework's (float64) and the
    parameters are the case's, and returns the forward's output (a scalar for a loss).
    Its gradients come from ``torch.autograd`` or ``jax.vjp``.
    """

    torch: Callable[..., Any] | None = None
    jax: Callable[..., Any] | None = None


@dataclass(frozen=True)
class CaseSpec:
    """A case of a declaration before it is split into inputs and parameters (see :func:`case`)."""

    arguments: Mapping[str, Any]
    label: str = ""


def case(label: str = "", **arguments: Any) -> CaseSpec:
    """A gradient-check case of a :class:`Layer`: its forward's arguments by name.

    Array inputs are given as a shape tuple (standard normal values) or an
    :class:`ArraySpec` (:func:`nonzero`, :func:`distinct`, :func:`labels`); every other
    argument is a fixed parameter (``conv_param={'stride': 2, 'pad': 1}``).
    """
    return CaseSpec(arguments, label)


def _flattened(
    forward: Callable, backwards: tuple, shapes: tuple[tuple[int, ...], ...]
) -> tuple[Callable, tuple]:
    """A forward returning ``(*outputs, cache)`` as one returning ``(flat outputs, cache)``,
    and its backward passes taking the flat upstream gradient, split back into shapes."""
    from .._backend import array_namespace

    sizes = [math.prod(shape) for shape in shapes]

    def flat_forward(*arrays: Any, **params: Any) -> tuple[Any, Any]:
        *outs, cache = forward(*arrays, **params)
        xp = array_namespace(*outs)
        return xp.concat([xp.reshape(o, (-1,)) for o in outs]), cache

    flat_forward.__name__ = forward.__name__

    def split(backward: Callable) -> Callable:
        def flat_backward(dout: Any, cache: Any) -> Any:
            xp = array_namespace(dout)
            starts = [sum(sizes[:k]) for k in range(len(sizes))]
            parts = [
                xp.reshape(dout[start : start + size], shape)
                for start, size, shape in zip(starts, sizes, shapes, strict=True)
            ]
            return backward(*parts, cache)

        flat_backward.__name__ = backward.__name__
        return flat_backward

    return flat_forward, tuple(split(b) for b in backwards)


def _put(arguments: dict[str, Any], target: str, value: Any) -> None:
    name, _, key = target.partition(".")
    if key:
        arguments.setdefault(name, {})[key] = value
    else:
        arguments[name] = value


def _get(arguments: Mapping[str, Any], target: str) -> Any:
    name, _, key = target.partition(".")
    return arguments[name].get(key) if key else arguments[name]


@dataclass(frozen=True)
class Layer:
    """The declaration of one forward pass: everything the rest of xpnn derives from.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs, **parameters) -> (out, cache)``, or ``-> (loss, dx)`` for a loss.
    backward : callable or None
        ``backward(dout, cache)``, returning the gradients of ``grads`` in order (one array
        or a tuple); ``None`` for a loss, whose forward returns the gradient of its first
        input.
    inputs : tuple of str
        The forward's array arguments, in order.
    cases : tuple of CaseSpec
        Gradient-check cases (:func:`case`); at least one.
    derivation : str
        The page ``docs/derivations/<derivation>.md`` that derives the backward pass.
    grads : tuple of str, optional
        The inputs that get a gradient (default: every input but integer ones).
    alternatives : tuple of callables
        Other backward passes of the same forward (``batchnorm_backward_alt``); each is
        checked on every case and exported.
    oracle : Oracle, optional
        An independent implementation. Without one, ``no_oracle`` says why.
    no_oracle : str
    bridge : str, optional
        The name of the function in :mod:`xpnn.jax` and :mod:`xpnn.torch.functional`
        (``None``: not bridged).
    params : mapping of str to Param
        The bridge functions' keyword parameters.
    param_arrays : tuple of str
        Arrays that the forward reads from a parameter dict (``'bn_param.running_mean'``);
        the bridge functions take them after ``inputs``, without gradient.
    returns_param_arrays : bool
        The bridge functions also return ``param_arrays`` as the forward left them (batch
        norm's updated running averages).
    fixed : mapping of str to value
        Parameters the bridges always pass (``{'dropout_param.mode': 'train'}``).
    fills : mapping of str to (value, input, axis)
        For the PyTorch bridge: an input that may be ``None`` becomes a vector of ``value``
        as long as ``input.shape[axis]`` (``bias=False``).
    bridge_backward : callable, optional
        The backward the bridges use, if not ``backward`` (the faster of two).
    input_grad_flag : str, optional
        A keyword of the backward that skips the first input's gradient when false
        (``conv_backward_fast(..., input_grad=False)``); the PyTorch bridge sets it from
        ``needs_input_grad``.
    random : bool
        The forward draws random numbers (dropout): values differ between backends, and
        each bridge draws the random input its own way.
    outputs : callable, optional
        For a forward that returns several arrays before its cache (``lstm_step_forward``
        returns ``next_h, next_c, cache``, and its backward takes ``dnext_h, dnext_c,
        cache``): the shapes of those outputs, from the inputs' shapes by name. Its
        gradient-check cases then see one flat output, the outputs concatenated.
    """

    forward: Callable[..., tuple[Any, Any]]
    backward: Callable[[Any, Any], Any] | None
    inputs: tuple[str, ...]
    cases: tuple[CaseSpec, ...]
    derivation: str
    grads: tuple[str, ...] | None = None
    alternatives: tuple[Callable[[Any, Any], Any], ...] = ()
    oracle: Oracle | None = None
    no_oracle: str = ""
    bridge: str | None = None
    params: Mapping[str, Param] = field(default_factory=dict)
    param_arrays: tuple[str, ...] = ()
    returns_param_arrays: bool = False
    fixed: Mapping[str, Any] = field(default_factory=dict)
    fills: Mapping[str, tuple[float, str, int]] = field(default_factory=dict)
    bridge_backward: Callable[[Any, Any], Any] | None = None
    input_grad_flag: str | None = None
    random: bool = False
    outputs: Callable[[dict[str, tuple[int, ...]]], tuple[tuple[int, ...], ...]] | None = None

    def __post_init__(self) -> None:
        name = getattr(self.forward, "__name__", repr(self.forward))
        if not self.cases:
            raise ValueError(f"the declaration of {name} needs at least one case")
        if self.oracle is None and not self.no_oracle:
            raise ValueError(f"the declaration of {name} needs an oracle, or no_oracle saying why")
        for spec in self.cases:
            missing = [k for k in self.inputs if k not in spec.arguments]
            if missing:
                raise ValueError(f"a case of {name} lacks the inputs {missing}")
        grads = self.grad_names
        for k in grads:
            if k not in self.inputs:
                raise ValueError(f"{name}: grads names {k!r}, which is not an input")
        for case_ in self.grad_cases():
            for k, spec in case_.specs.items():
                if spec.differentiable != (k in grads):
                    raise ValueError(
                        f"{name}: input {k!r} is drawn as {spec.kind!r} but is "
                        f"{'' if k in grads else 'not '}in grads"
                    )

    @property
    def name(self) -> str:
        """The forward's public name."""
        return self.forward.__name__

    @property
    def is_loss(self) -> bool:
        return self.backward is None

    @functools.cached_property  # read by every bridge backward: derived once
    def grad_names(self) -> tuple[str, ...]:
        if self.grads is not None:
            return tuple(self.grads)
        kinds = {k: ArraySpec(()) for k in self.inputs}
        for k, v in self.cases[0].arguments.items():
            if k in kinds and isinstance(v, ArraySpec):
                kinds[k] = v
        return tuple(k for k in self.inputs if kinds[k].differentiable)

    @property
    def functions(self) -> tuple[Callable[..., Any], ...]:
        """The public functions: the forward, its backward passes."""
        backwards = () if self.backward is None else (self.backward, *self.alternatives)
        return (self.forward, *backwards)

    @property
    def public_names(self) -> tuple[str, ...]:
        return tuple(f.__name__ for f in self.functions)

    @property
    def module(self) -> str:
        return self.forward.__module__

    def grad_cases(self) -> list[GradCase]:
        """The gradient-check cases: every case with every backward pass."""
        backwards: tuple[Any, ...] = (
            (None,) if self.backward is None else (self.backward, *self.alternatives)
        )
        cases = []
        for spec in self.cases:
            inputs = {k: spec.arguments[k] for k in self.inputs}
            params = {k: v for k, v in spec.arguments.items() if k not in self.inputs}
            forward, these = self.forward, backwards
            if self.outputs is not None:
                shapes = {k: v.shape if isinstance(v, ArraySpec) else tuple(v)
                          for k, v in inputs.items()}  # fmt: skip
                forward, these = _flattened(self.forward, backwards, self.outputs(shapes))
            for backward in these:
                label = backward.__name__ if self.alternatives else ""
                cases.append(
                    GradCase(
                        self.name,
                        forward,
                        backward,
                        inputs=inputs,
                        params=params,
                        label=" ".join(p for p in (spec.label, label) if p),
                        random=self.random,
                    )
                )
        return cases

    # ------------------------------------------------------------------- for the bridges

    def arguments(self, keywords: Mapping[str, Any]) -> dict:
        """The forward's non-array arguments for the bridge keywords ``keywords``."""
        unknown = sorted(set(keywords) - set(self.params))
        if unknown:
            raise TypeError(
                f"{self.bridge}() got unexpected keyword arguments {unknown}; it takes "
                f"{sorted(self.params) or 'none'}"
            )
        arguments: dict[str, Any] = {}
        for key, param in self.params.items():
            value = keywords.get(key, param.default)
            if value is REQUIRED:
                raise TypeError(f"{self.bridge}() missing the keyword argument {key!r}")
            _put(arguments, param.target, value if param.convert is None else param.convert(value))
        for target, value in self.fixed.items():
            _put(arguments, target, value)
        return arguments

    def call(self, arrays: tuple[Any, ...], arguments: dict) -> tuple[Any, Any]:
        """Run the forward for a bridge: ``arrays`` are the inputs then the param arrays.

        Returns ``(outputs, cache)``: ``outputs`` is the forward's output, or a tuple of it
        and the param arrays as the forward left them (``returns_param_arrays``).
        """
        n = len(self.inputs)
        # Fresh dicts each call: a forward writes into its parameter dict (batch norm).
        arguments = {k: dict(v) if isinstance(v, dict) else v for k, v in arguments.items()}
        for target, value in zip(self.param_arrays, arrays[n:], strict=True):
            _put(arguments, target, value)
        if self.outputs is not None:  # (*outputs, cache): the outputs as one tuple
            *outs, cache = self.forward(*arrays[:n], **arguments)
            out = tuple(outs)
        else:
            out, cache = self.forward(*arrays[:n], **arguments)
        if self.returns_param_arrays:
            out = (out, *(_get(arguments, t) for t in self.param_arrays))
        return out, cache

    def bridge_grads(self, dout: Any, cache: Any, needs: tuple[bool, ...] | None = None) -> tuple:
        """One gradient (or ``None``) per array of :meth:`call`, from the upstream ``dout``."""
        if self.returns_param_arrays:
            dout = dout[0]  # the param arrays' cotangents are dropped: they are constants
        if self.is_loss:
            grads: tuple[Any, ...] = (dout * cache,)
        else:
            backward = self.bridge_backward or self.backward
            keywords = {}
            if self.input_grad_flag is not None and needs is not None:
                keywords[self.input_grad_flag] = bool(needs[0])
            douts = tuple(dout) if self.outputs is not None else (dout,)
            result = backward(*douts, cache, **keywords)
            grads = result if isinstance(result, tuple) else (result,)
        names = self.grad_names
        if len(grads) != len(names):
            raise RuntimeError(
                f"{getattr(self.bridge_backward or self.backward, '__name__', 'the loss')} "
                f"returned {len(grads)} gradients for the {len(names)} inputs {list(names)}"
            )
        by_name = dict(zip(names, grads, strict=True))
        return (
            *(by_name.get(k) for k in self.inputs),
            *(None for _ in self.param_arrays),
        )
