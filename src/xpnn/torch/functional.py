"""xpnn's layers as PyTorch autograd functions.

Each function here runs xpnn's forward pass on the given tensors and registers xpnn's
hand-written backward pass (called with the forward's cache) as its gradient. They are
generated from the layers' declarations (:mod:`xpnn.registry`) by :func:`function`, over
one generic helper, :func:`make_function`. The tensors never leave their device or dtype:
xpnn's layers take torch tensors directly.

Safe as torch's own ops are:

* every tensor of the cache is saved with ``ctx.save_for_backward``, so an in-place change
  of an input or an output that the backward needs raises torch's "modified by an inplace
  operation" error instead of giving a wrong gradient;
* no output aliases an input, and an output the cache holds is saved as an output (its
  in-place change is caught the same way);
* the backward passes are ``once_differentiable``: asking for a second derivative
  (``create_graph=True``, then differentiating again) raises a clear error rather than
  returning a wrong number.

Conventions are xpnn's (the CS231n assignment's), not ``torch.nn.functional``'s:
``dropout``'s ``p`` is the probability of *keeping* a unit, ``batchnorm``'s running
averages are ``momentum * running + (1 - momentum) * batch`` with the biased batch
variance, and conv and pool windows must tile the (padded) input exactly. The modules
in :mod:`xpnn.torch.nn` follow ``torch.nn``'s conventions instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch.autograd.function import once_differentiable

from ..registry import Layer
from ..registry.bridges import bind, bridge_docstring, bridge_names, bridge_signature, make_bridges

__all__ = sorted(["function", "make_function", *bridge_names()])


# --------------------------------------------------------------------------- caches


class _Saved(NamedTuple):
    """The place of the ``index``-th saved tensor inside a cache."""

    index: int


def _take_tensors(obj: Any, tensors: list[torch.Tensor], outputs: dict[int, Any]) -> Any:
    """``obj`` with each tensor replaced by its :class:`_Saved` place in ``tensors``; a
    tensor that became an output (``outputs``: by the id of what the forward returned) is
    saved as that output."""
    if isinstance(obj, torch.Tensor):
        tensors.append(outputs.get(id(obj), obj))
        return _Saved(len(tensors) - 1)
    if isinstance(obj, tuple):
        parts = [_take_tensors(part, tensors, outputs) for part in obj]
        return type(obj)(*parts) if hasattr(obj, "_fields") else tuple(parts)
    if isinstance(obj, list):
        return [_take_tensors(part, tensors, outputs) for part in obj]
    if isinstance(obj, dict):
        return {k: _take_tensors(v, tensors, outputs) for k, v in obj.items()}
    return obj


def _put_tensors(obj: Any, tensors: tuple[torch.Tensor, ...]) -> Any:
    if isinstance(obj, _Saved):
        return tensors[obj.index]
    if isinstance(obj, tuple):
        parts = [_put_tensors(part, tensors) for part in obj]
        return type(obj)(*parts) if hasattr(obj, "_fields") else tuple(parts)
    if isinstance(obj, list):
        return [_put_tensors(part, tensors) for part in obj]
    if isinstance(obj, dict):
        return {k: _put_tensors(v, tensors) for k, v in obj.items()}
    return obj


def _shares_memory(a: torch.Tensor, others: tuple[torch.Tensor, ...]) -> bool:
    if a.numel() == 0:
        return False
    storage = a.untyped_storage().data_ptr()
    return any(
        isinstance(t, torch.Tensor) and t.numel() and t.untyped_storage().data_ptr() == storage
        for t in others
    )


def _fresh(out: torch.Tensor, inputs: tuple[Any, ...]) -> torch.Tensor:
    """``out`` contiguous, as torch's own ops return it, not sharing an input's memory, and
    not a view (autograd forbids changing a view made inside a Function in place)."""
    if not out.is_contiguous() or _shares_memory(out, inputs):
        return out.clone(memory_format=torch.contiguous_format)
    # A view of memory the forward made (conv's reshape): the same memory, no longer a
    # view; it shares the version counter of that memory, which the cache may hold.
    return out.detach() if out._is_view() else out


# --------------------------------------------------------------------------- the helper


def make_function(
    name: str,
    forward: Callable[..., tuple[Any, Any]],
    backward: Callable[..., Any],
    *,
    pass_needs_input_grad: bool = False,
    non_differentiable_outputs: int = 0,
) -> type[torch.autograd.Function]:
    """A ``torch.autograd.Function`` from an xpnn forward/backward pair.

    Parameters
    ----------
    name : str
        Name of the class (shown in ``grad_fn``).
    forward : callable
        ``forward(params, *tensors) -> (out, cache)``: ``params`` is any Python object
        (a dict of settings), ``tensors`` the inputs autograd differentiates (``None`` is
        allowed). ``out`` is a tensor or a tuple of tensors.
    backward : callable
        ``backward(dout, cache) -> grad or tuple of grads``, one per tensor input
        (``None`` for an input without a gradient). ``dout`` is one tensor, or a tuple
        when ``out`` is.
    pass_needs_input_grad : bool, keyword-only
        Call ``backward(dout, cache, needs)`` instead, ``needs`` a tuple of bools (one per
        tensor input, autograd's ``ctx.needs_input_grad``), so that it can skip the
        gradients nobody asked for.
    non_differentiable_outputs : int, keyword-only
        How many of the last outputs carry no gradient (batch norm's running averages).

    Returns
    -------
    type
        A subclass of ``torch.autograd.Function``; call it as ``Fn.apply(params, *tensors)``.
        The tensors of the cache are saved with ``save_for_backward`` (the rest of the
        cache stays on ``ctx``), outputs are contiguous and never alias an input, and the
        backward is ``once_differentiable``.
    """

    def _forward(ctx: Any, params: Any, *tensors: Any) -> Any:
        out, cache = forward(params, *tensors)
        made = out if isinstance(out, tuple) else (out,)
        outputs = tuple(o if o is None else _fresh(o, tensors) for o in made)
        saved: list[torch.Tensor] = []
        ctx.xpnn_cache = _take_tensors(
            cache, saved, {id(m): o for m, o in zip(made, outputs, strict=True)}
        )
        ctx.save_for_backward(*saved)
        ctx.xpnn_inputs = len(tensors)
        ctx.xpnn_tuple = isinstance(out, tuple)
        if non_differentiable_outputs:
            tail = outputs[len(outputs) - non_differentiable_outputs :]
            ctx.mark_non_differentiable(*(o for o in tail if o is not None))
        return outputs if ctx.xpnn_tuple else outputs[0]

    @once_differentiable
    def _backward(ctx: Any, *douts: Any) -> tuple[Any, ...]:
        cache = _put_tensors(ctx.xpnn_cache, ctx.saved_tensors)  # checks the versions
        dout = douts if ctx.xpnn_tuple else douts[0]
        if pass_needs_input_grad:
            grads = backward(dout, cache, tuple(ctx.needs_input_grad[1:]))
        else:
            grads = backward(dout, cache)
        if not isinstance(grads, tuple):
            grads = (grads,)
        if len(grads) != ctx.xpnn_inputs:
            raise RuntimeError(
                f"{name}: the backward pass returned {len(grads)} gradients for "
                f"{ctx.xpnn_inputs} inputs"
            )
        return (None, *grads)

    return type(
        name,
        (torch.autograd.Function,),
        {
            "forward": staticmethod(_forward),
            "backward": staticmethod(_backward),
            "__doc__": f"xpnn's {name} as a torch.autograd.Function (see make_function).",
            "__module__": __name__,
        },
    )


# --------------------------------------------------------------------------- declared layers


def _class_name(declaration: Layer) -> str:
    return "".join(
        part.capitalize() for part in (declaration.bridge or declaration.name).split("_")
    )


def function(declaration: Layer) -> Callable:
    """The autograd function of a declared layer (:class:`xpnn.registry.Layer`).

    It takes the declaration's ``inputs`` (those in its ``fills`` may be ``None``), then
    its ``param_arrays`` (detached: no gradient flows into or out of them), and its
    ``params`` as keywords; it returns the forward's output (with the param arrays as the
    forward left them when ``returns_param_arrays``). Its backward is the declared one
    (``bridge_backward`` if given). Every built-in function of this module is made so.
    The ``torch.autograd.Function`` it applies is its attribute ``autograd_function``.
    """
    n = len(declaration.inputs)
    count = n + len(declaration.param_arrays)
    fn = make_function(
        _class_name(declaration),
        lambda arguments, *tensors: declaration.call(tensors, arguments),
        declaration.bridge_grads,
        pass_needs_input_grad=True,
        non_differentiable_outputs=(
            len(declaration.param_arrays) if declaration.returns_param_arrays else 0
        ),
    )
    positions = {k: i for i, k in enumerate(declaration.inputs)}
    signature = bridge_signature(declaration)

    def apply(*args: Any, **kwargs: Any) -> Any:
        tensors, keywords = bind(declaration, signature, args, kwargs)
        arguments = declaration.arguments(keywords)
        tensors_ = list(tensors)
        for key, (value, like, axis) in declaration.fills.items():
            i = positions[key]
            if tensors_[i] is None:
                ref = tensors_[positions[like]]
                tensors_[i] = torch.full(
                    (ref.shape[axis],), value, dtype=ref.dtype, device=ref.device
                )
        for i in range(n, count):
            if tensors_[i] is not None:
                tensors_[i] = tensors_[i].detach()
        return fn.apply(arguments, *tensors_)

    apply.__name__ = apply.__qualname__ = declaration.bridge or declaration.name
    apply.__doc__ = bridge_docstring(declaration, "torch")
    apply.__module__ = __name__
    apply.__signature__ = signature  # type: ignore[attr-defined]
    apply.autograd_function = fn  # type: ignore[attr-defined]
    return apply


def _dropout_adapter(generated: Callable) -> Callable:
    def dropout(
        x: torch.Tensor,
        *,
        p: float,
        train: bool,
        generator: torch.Generator | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Inverted dropout (xpnn's ``dropout_forward``): ``p`` is the probability of KEEPING
        a unit.

        In train mode a boolean keep-mask is drawn on x's device with ``torch.rand(...,
        generator=generator) < p`` (or ``mask`` is used), and ``x * mask / p`` returned; in
        eval mode ``x`` itself.
        """
        if not train:
            from ..layers.dropout import dropout_forward

            dropout_forward(x, {"p": p, "mode": "test"})  # validates p
            return x
        if mask is None:
            draw = torch.rand(x.shape, generator=generator, dtype=torch.float32, device=x.device)
            mask = draw < p
        return generated(x, mask, p=p)

    dropout.autograd_function = generated.autograd_function  # type: ignore[attr-defined]
    return dropout


def _reshaping_adapter(to_layer: Callable, note: str) -> Callable:
    """An adapter that views ``x`` as the layer's shape (``to_layer(x)``), and the output back."""

    def adapter(generated: Callable) -> Callable:
        @functools.wraps(generated)
        def reshaped(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            return generated(to_layer(x), *args, **kwargs).reshape(x.shape)

        reshaped.__doc__ = f"{generated.__doc__}\n\n{note}"
        return reshaped

    return adapter


# Layers whose bridge function draws random numbers (the framework's own way), and the
# inputs torch's layers take in more shapes than xpnn's.
_ADAPTERS = {
    "dropout": _dropout_adapter,
    "layernorm": _reshaping_adapter(
        lambda x: x.reshape(-1, x.shape[-1]),
        "``x`` may have any shape ``(..., D)``: it is normalized over its last axis.",
    ),
    "groupnorm": _reshaping_adapter(
        lambda x: x if x.ndim == 4 else x.reshape(x.shape[0], x.shape[1], -1, 1),
        "``x`` may have any shape ``(N, C, ...)``: it is viewed as ``(N, C, L, 1)``.",
    ),
}


globals().update(make_bridges(function, _ADAPTERS, __name__))
