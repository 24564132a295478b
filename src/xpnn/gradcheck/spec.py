"""What a gradient-check case is: a layer's forward and backward, and how to draw its inputs."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ArraySpec", "GradCase", "distinct", "labels", "nonzero"]


@dataclass(frozen=True)
class ArraySpec:
    """How to draw one input of a gradient-check case.

    ``kind`` is ``'normal'`` (standard normal), ``'nonzero'`` (normal, but at least 0.1
    away from 0, so a finite difference never crosses the kink of a ReLU), ``'distinct'``
    (a shuffled grid of values at least 0.01 apart, so a max is never tied), or
    ``'labels'`` (integers in ``[0, num_classes)``; not differentiated). ``scale``
    multiplies the drawn values (not labels).
    """

    shape: tuple[int, ...]
    kind: str = "normal"
    num_classes: int = 0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("normal", "nonzero", "distinct", "labels"):
            raise ValueError(
                "ArraySpec.kind must be 'normal', 'nonzero', 'distinct' or 'labels'; "
                f"got {self.kind!r}"
            )

    @property
    def differentiable(self) -> bool:
        return self.kind != "labels"

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Float64 values (int64 labels) of this spec's shape."""
        if self.kind == "labels":
            return rng.integers(0, self.num_classes, size=self.shape)
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
