"""What the framework bridges share: their names, the argument check, the docstrings, and
the loop that makes one function per bridged declaration."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from .builtin import BUILTIN_LAYERS
from .spec import REQUIRED, Layer

__all__ = ["bridge_docstring", "bridge_names", "check_array_count", "make_bridges"]


def bridge_names() -> list[str]:
    """The names of the bridged built-in layers, for the bridges' ``__all__``."""
    return [d.bridge for d in BUILTIN_LAYERS if d.bridge is not None]


def check_array_count(declaration: Layer, arrays: tuple[Any, ...], kind: str) -> None:
    """A TypeError naming the arrays a bridge function takes, if ``arrays`` is not them."""
    names = [*declaration.inputs, *(t.split(".")[-1] for t in declaration.param_arrays)]
    if len(arrays) != len(names):
        raise TypeError(
            f"{declaration.bridge or declaration.name}() takes the {len(names)} {kind} "
            f"{', '.join(names)}; got {len(arrays)}"
        )


def make_bridges(
    make: Callable[[Layer], Callable],
    adapters: Mapping[str, Callable[[Callable], Callable]],
    module: str,
) -> dict[str, Callable]:
    """``{bridge name: function}`` for every bridged built-in layer.

    ``make`` turns a declaration into the framework's function; a layer that draws random
    numbers gets wrapped by its entry of ``adapters``, which draws them the framework's
    way (an ImportError naming ``module`` if there is none).
    """
    functions = {}
    for declaration in BUILTIN_LAYERS:
        if declaration.bridge is None:
            continue
        generated = make(declaration)
        adapter = adapters.get(declaration.bridge)
        if adapter is None and declaration.random:
            raise ImportError(
                f"{module}: {declaration.bridge} draws random numbers and has no adapter"
            )
        functions[declaration.bridge] = generated if adapter is None else adapter(generated)
    return functions


_FRAMEWORK = {
    "jax": ("JAX arrays", "its VJP (``jax.grad``, ``jax.vjp``) is"),
    "torch": ("tensors", "its ``torch.autograd`` backward is"),
}


def bridge_docstring(declaration: Layer, framework: str) -> str:
    """The numpydoc docstring of a declared layer's bridge function in ``framework``."""
    arrays, gradient = _FRAMEWORK[framework]
    forward = declaration.name
    doc = inspect.getdoc(declaration.forward) or forward
    summary = doc.splitlines()[0].rstrip(".")
    backward = declaration.bridge_backward or declaration.backward
    source = (
        f"``{backward.__name__}``"
        if backward is not None
        else f"the gradient that ``{forward}`` returns"
    )
    lines = [
        f"{summary}; {gradient} xpnn's {source}.",
        "",
        f"Generated from the declaration of :func:`xpnn.{forward}` (:mod:`xpnn.registry`).",
        "",
        "Parameters",
        "----------",
        f"{', '.join(declaration.inputs)} : {arrays}",
        f"    The array arguments of :func:`xpnn.{forward}`, in order.",
    ]
    if framework == "torch":
        for name, (value, like, axis) in declaration.fills.items():
            lines.append(
                f"    ``{name}=None`` means {value:g} for each of ``{like}.shape[{axis}]``."
            )
    if declaration.param_arrays:
        names = ", ".join(t.split(".")[-1] for t in declaration.param_arrays)
        where = ", ".join(
            f"``{t.split('.')[0]}['{t.split('.')[-1]}']``" for t in declaration.param_arrays
        )
        lines += [f"{names} : {arrays}", f"    As {where}; no gradient flows into or out of them."]
    for key, param in declaration.params.items():
        default = "required" if param.default is REQUIRED else f"default {param.default!r}"
        name, _, item = param.target.partition(".")
        target = f"``{name}['{item}']``" if item else f"``{name}``"
        converted = " (converted)" if param.convert is not None else ""
        lines += [f"{key} : Python value, {default}, keyword-only", f"    {target}{converted}."]
    lines += ["", "Returns", "-------", f"out : {arrays[:-1] if arrays.endswith('s') else arrays}"]
    if declaration.returns_param_arrays:
        for target in declaration.param_arrays:
            lines.append(f"{target.split('.')[-1]} : the new value, as the forward left it")
    return "\n".join(lines)
