"""The registry of layers: each declared once, everything else derived from the declaration.

A layer's :class:`Layer` declaration (in :mod:`xpnn.registry.builtin` for xpnn's own)
gives its forward and backward passes, which of its inputs are differentiable, the
keyword parameters of its bridge functions, its gradient-check cases, its independent
oracle and its derivation page. From it come the public ``__all__`` of :mod:`xpnn`, the
gradient-check matrix (:mod:`xpnn.layer_checks`, ``xpnn gradcheck``), the oracle tests, the
:mod:`xpnn.jax` and :mod:`xpnn.torch.functional` functions, and the API reference. See
``docs/adding_a_layer.md``.

A layer of your own is checked the same way once registered::

    from xpnn.registry import Layer, case, nonzero, register_layer

    register_layer(Layer(my_forward, my_backward, inputs=("x",),
                         cases=(case(x=nonzero(4, 5)),), derivation="my_layer",
                         no_oracle="none yet"))

(or, for a single case, :func:`register_case` with a :class:`GradCase`).
"""

from __future__ import annotations

from .builtin import BUILTIN_LAYERS
from .spec import (
    REQUIRED,
    ArraySpec,
    GradCase,
    Layer,
    Oracle,
    Param,
    case,
    distinct,
    indices,
    labels,
    mask,
    nonzero,
)

__all__ = [
    "BUILTIN_LAYERS",
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
    "layer",
    "mask",
    "nonzero",
    "public_names",
    "register_case",
    "register_layer",
    "registered_cases",
    "registered_layers",
]

_LAYERS: list[Layer] = []
_CASES: list[GradCase] = []


def register_layer(declaration: Layer) -> Layer:
    """Add a layer of your own to what ``xpnn gradcheck`` and the registry's users see.

    Returns the declaration, so it can be used as an expression. Registration lasts for
    the process: register at import time of the module that defines your layer (``xpnn
    gradcheck --import my_module`` imports it first).
    """
    if not isinstance(declaration, Layer):
        raise TypeError(f"declaration must be a Layer; got {type(declaration).__name__}")
    if any(d.name == declaration.name for d in registered_layers()):
        raise ValueError(f"a layer named {declaration.name!r} is already registered")
    _LAYERS.append(declaration)
    return declaration


def registered_layers() -> list[Layer]:
    """xpnn's layers followed by the registered ones, in registration order."""
    return [*BUILTIN_LAYERS, *_LAYERS]


def layer(name: str) -> Layer:
    """The declaration of the forward pass called ``name`` (``'conv_forward_fast'``)."""
    for declaration in registered_layers():
        if declaration.name == name:
            return declaration
    raise KeyError(f"no layer named {name!r} is registered")


def public_names() -> list[str]:
    """The public functions of xpnn's own layers, forward and backward, sorted."""
    return sorted(name for d in BUILTIN_LAYERS for name in d.public_names)


def register_case(case: GradCase) -> GradCase:
    """Add one gradient-check case (for a layer without a declaration) to ``xpnn gradcheck``.

    Returns the case. Registration lasts for the process, as for :func:`register_layer`.
    """
    if not isinstance(case, GradCase):
        raise TypeError(f"case must be a GradCase; got {type(case).__name__}")
    _CASES.append(case)
    return case


def registered_cases() -> list[GradCase]:
    """The gradient-check cases of every registered layer, then the registered cases."""
    return [c for d in registered_layers() for c in d.grad_cases()] + list(_CASES)
