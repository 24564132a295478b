"""What the framework bridges share: their names, the argument check, the docstrings, and
the loop that makes one function per bridged declaration."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from .builtin import BUILTIN_LAYERS
from .spec import REQUIRED, Layer

__all__ = [
    "array_names",
    "bind",
    "bridge_docstring",
    "bridge_names",
    "bridge_signature",
    "make_bridges",
]


def bridge_names() -> list[str]:
    """The names of the bridged built-in layers, for the bridges' ``__all__``."""
    return [d.bridge for d in BUILTIN_LAYERS if d.bridge is not None]


def array_names(declaration: Layer) -> list[str]:
    """The bridge function's array arguments: the inputs, then the param arrays."""
    return [*declaration.inputs, *(t.split(".")[-1] for t in declaration.param_arrays)]


def bridge_signature(declaration: Layer) -> inspect.Signature:
    """``(x, w, b, *, stride=1, pad=0)``: the arrays by position or name, the parameters
    by name only, with their defaults (what ``help()`` and ``inspect`` show)."""
    arrays = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for name in array_names(declaration)
    ]
    keywords = [
        inspect.Parameter(
            key,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if param.default is REQUIRED else param.default,
        )
        for key, param in declaration.params.items()
    ]
    return inspect.Signature([*arrays, *keywords])


def bind(
    declaration: Layer, signature: inspect.Signature, args: tuple, kwargs: dict
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(arrays, keywords)`` of a call of a bridge function, or a TypeError naming it."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"{declaration.bridge or declaration.name}(): {err}") from None
    arrays = tuple(bound.arguments[name] for name in array_names(declaration))
    keywords = {k: v for k, v in bound.arguments.items() if k in declaration.params}
    return arrays, keywords


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


def _sections(doc: str) -> dict[str, list[str]]:
    """A numpydoc docstring's sections (``'Parameters'``, ``'Returns'``) as their lines."""
    lines = doc.splitlines()
    sections: dict[str, list[str]] = {}
    current = None
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"} and line.strip():
            current = line.strip()
            sections[current] = []
        elif current is not None and not set(line.strip()) == {"-"}:
            sections[current].append(line)
    return sections


def _entries(lines: list[str], names: set[str] | None = None, first: bool = False) -> list[str]:
    """The entries (a ``name : type`` line and its indented description) of a section whose
    names meet ``names`` (or only the first entry)."""
    kept: list[str] = []
    keep = False
    count = 0
    for line in lines:
        if line and not line[0].isspace():
            count += 1
            entry = {n.strip() for n in line.split(":")[0].split(",")}
            keep = (count == 1) if first else bool(names and entry & names)
        if keep:
            kept.append(line)
    return kept


def bridge_docstring(declaration: Layer, framework: str) -> str:
    """The numpydoc docstring of a declared layer's bridge function in ``framework``: the
    forward's summary, its entries for the array inputs and the output, then the bridge's
    own parameters."""
    arrays, gradient = _FRAMEWORK[framework]
    forward = declaration.name
    doc = inspect.getdoc(declaration.forward) or forward
    sections = _sections(doc)
    summary = doc.splitlines()[0].rstrip(".")
    backward = declaration.bridge_backward or declaration.backward
    source = (
        f"``{backward.__name__}``"
        if backward is not None
        else f"the gradient that ``{forward}`` returns"
    )
    documented = _entries(sections.get("Parameters", []), set(declaration.inputs))
    lines = [
        f"{summary}; {gradient} xpnn's {source}.",
        "",
        f"Generated from the declaration of :func:`xpnn.{forward}` (:mod:`xpnn.registry`);",
        f"the arrays are {arrays}.",
        "",
        "Parameters",
        "----------",
        *(documented or [f"{', '.join(declaration.inputs)} : arrays"]),
    ]
    if declaration.param_arrays:
        names = ", ".join(t.split(".")[-1] for t in declaration.param_arrays)
        where = ", ".join(
            f"``{t.split('.')[0]}['{t.split('.')[-1]}']``" for t in declaration.param_arrays
        )
        lines += [f"{names} : arrays", f"    As {where}; no gradient flows into or out of them."]
    for key, param in declaration.params.items():
        default = "required" if param.default is REQUIRED else f"default {param.default!r}"
        kind = "Python value" if param.default is REQUIRED else type(param.default).__name__
        name, _, item = param.target.partition(".")
        target = f"``{name}['{item}']``" if item else f"``{name}``"
        lines += [
            f"{key} : {kind}, {default}, keyword-only",
            f"    {param.doc or target}{'' if param.doc else '.'} Static under ``jax.jit``."
            if framework == "jax"
            else f"    {param.doc or target + '.'}",
        ]
    out = _entries(sections.get("Returns", []), first=True) or [f"out : {arrays}"]
    lines += ["", "Returns", "-------", *out]
    if declaration.returns_param_arrays:
        names = ", ".join(t.split(".")[-1] for t in declaration.param_arrays)
        lines += [f"{names} : arrays", "    Their new values, as the forward leaves them."]
    if framework == "torch" and declaration.fills:
        fills = "; ".join(
            f"``{name}=None`` is {value:g} for each of ``{like}.shape[{axis}]``"
            for name, (value, like, axis) in declaration.fills.items()
        )
        lines += ["", "Notes", "-----", f"{fills}."]
    return "\n".join(lines)
