"""What the framework bridges derive from a declaration besides the function: its docstring."""

from __future__ import annotations

import inspect

from .spec import REQUIRED, Layer

__all__ = ["bridge_docstring"]

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
