"""What every layer does with its arguments before computing: check them, and fix the dtype.

Errors name the argument and what was expected. Everything here reads types, shapes,
dtypes and Python parameters only, never array values, so the checks cost nothing on a
GPU and work on JAX tracers inside ``jax.jit``. The one exception is
:func:`check_labels`, documented there.

Dtypes (``docs/layers.md``, "Dtypes"): a layer computes in the promoted dtype of its
floating arguments (float32 with float64 computes in float64); integer and boolean
arguments are cast to it; with no floating argument at all, the backend's default
floating dtype is used. Each gradient is returned in the dtype of the argument it belongs
to (the computation dtype for an integer or boolean argument).
"""

from __future__ import annotations

import functools
import numbers
import sys
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import array_api_compat

from .._backend import (
    array_namespace,
    cast,
    check_range,
    device_of,
    require_array,
)
from .._params import count

# --------------------------------------------------------------------------- arrays and dtypes


def floating_inputs(**named: Any) -> tuple[Any, tuple[Any, ...], tuple[Any, ...]]:
    """Check a layer's array arguments and cast them to the dtype it computes in.

    Parameters
    ----------
    **named : arrays
        The array arguments by name (the names appear in the errors).

    Returns
    -------
    xp : namespace
    arrays : tuple of arrays
        The arguments, in order, cast to the computation dtype (no copy where an argument
        has it already).
    dtypes : tuple of arrays
        The arguments' own dtypes, for :func:`in_argument_dtypes`, each carried by a
        zero-size array of that dtype on the argument's device: caches hold them, and a
        cache made of arrays stays a valid pytree for ``jax.jit`` and can be moved with
        :func:`xpnn.to_backend`.
    """
    for name, value in named.items():
        require_array(name, value)
    xp = array_namespace(**named)
    for name, value in named.items():
        if not xp.isdtype(value.dtype, ("real floating", "integral", "bool")):
            raise TypeError(
                f"{name} must be a real floating, integer or boolean array; got dtype "
                f"{value.dtype}"
            )
    floating = [v.dtype for v in named.values() if xp.isdtype(v.dtype, "real floating")]
    if floating:
        dtype = xp.result_type(*floating)
    else:
        first = next(iter(named.values()))
        dtype = xp.__array_namespace_info__().default_dtypes(device=device_of(first))[
            "real floating"
        ]
    dtypes = tuple(
        xp.empty((0,), dtype=value.dtype, device=device_of(value)) for value in named.values()
    )
    return xp, tuple(cast(xp, value, dtype) for value in named.values()), dtypes


def in_argument_dtypes(xp: Any, grads: tuple[Any, ...], dtypes: tuple[Any, ...]) -> tuple:
    """Each gradient in the dtype of its argument (kept as computed for a non-floating one).

    ``dtypes`` are the zero-size arrays from :func:`floating_inputs`.
    """
    return tuple(
        cast(xp, g, d.dtype) if xp.isdtype(d.dtype, "real floating") else g
        for g, d in zip(grads, dtypes, strict=True)
    )


def upstream(dout: Any, like: Any, shape: tuple[int, ...], name: str = "dout") -> tuple[Any, Any]:
    """Check a backward pass's ``dout`` against the forward output; return ``(xp, dout)``.

    ``dout`` must be an array of ``like``'s library and device with the forward output's
    shape; it is cast to ``like``'s dtype, the dtype the forward pass computed in. ``name``
    is the argument's name in the errors (``dnext_c``).
    """
    require_array(name, dout)
    xp = array_namespace(**{name: dout, "cache": like})
    require_shape(name, dout, shape, "the shape of the forward output")
    if not xp.isdtype(dout.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must be a real-valued array; got dtype {dout.dtype}")
    return xp, cast(xp, dout, like.dtype)


# --------------------------------------------------------------------------- caches

#: What a part of a cache is, for the annotations of the cache named tuples: ``Array`` (an
#: array of any array-API library), ``MaybeArray`` (an array or None), ``Dtypes`` (the tuple
#: of zero-size arrays from :func:`floating_inputs`). ``dict``, ``str``, ``int`` and
#: ``tuple`` mean themselves, and another cache class means that layer's cache (or a tuple of
#: its parts). ``Any`` is not checked.
Array = Annotated[Any, "an array"]
MaybeArray = Annotated[Any, "an array or None"]
Dtypes = Annotated[tuple, "the tuple of dtypes the forward pass recorded"]

_CACHE_ORIGIN: dict[type, str] = {}


def cache_of(forward_name: str) -> Callable[[type], type]:
    """Class decorator: the named tuple is the cache that ``forward_name`` returns."""

    def register(cls: type) -> type:
        _CACHE_ORIGIN[cls] = forward_name
        return cls

    return register


def _a(name: str) -> str:
    return f"{'an' if name[0] in 'AEIOUaeiou' else 'a'} {name}"


def _describe_cache(cls: type) -> str:
    return f"the cache returned by {_CACHE_ORIGIN[cls]} ({_a(cls.__name__)})"


@functools.cache
def _part_kinds(cls: type) -> dict[str, Any]:
    """The annotation of each part of the cache class ``cls``, resolved."""
    return typing.get_type_hints(cls, include_extras=True)


def _kind_matches(kind: Any, value: Any) -> bool:
    if typing.get_origin(kind) is Annotated:
        label = kind.__metadata__[0]
        if label == MaybeArray.__metadata__[0] and value is None:
            return True
        if label == Dtypes.__metadata__[0]:
            return isinstance(value, tuple) and all(map(array_api_compat.is_array_api_obj, value))
        return array_api_compat.is_array_api_obj(value)
    if kind is dict:
        return isinstance(value, Mapping)
    if isinstance(kind, type) and kind is not object:
        return isinstance(value, kind)
    return True


def _describe_kind(kind: Any) -> str:
    if typing.get_origin(kind) is Annotated:
        return kind.__metadata__[0]
    return f"a {kind.__name__}"


def require_cache(cache: Any, cls: type, *, _path: tuple[str, ...] = ()) -> Any:
    """A backward pass's ``cache``: the cache of its own forward pass, as a ``cls``.

    Also accepted: any plain tuple of the same parts in the same order, as the
    assignment's tuple caches allow (a student's backward unpacks a sandwich's cache and
    repacks it). Its parts are checked for their kind (an array, a dict, the cache of a
    given layer ...), recursively for the parts that are caches themselves, and the error
    names the part. The cache of another layer is refused as such.
    """
    if isinstance(cache, cls):
        return cache
    _where = f"cache part {'.'.join(_path)!r}" if _path else "cache"
    origin = _CACHE_ORIGIN.get(type(cache))
    if origin is not None or not isinstance(cache, tuple):
        got = f"the cache of {origin}" if origin else _a(type(cache).__name__)
        raise TypeError(f"{_where} must be {_describe_cache(cls)}; got {got}")
    fields = cls._fields
    required = len(fields) - len(cls._field_defaults)
    if not required <= len(cache) <= len(fields):
        count = str(len(fields)) if required == len(fields) else f"{required} to {len(fields)}"
        raise TypeError(
            f"{_where} must be {_describe_cache(cls)} or a tuple of its {count} parts "
            f"({', '.join(fields)}); got a tuple of {len(cache)}"
        )
    kinds = _part_kinds(cls)
    parts = []
    for name, value in zip(fields, cache, strict=False):
        kind = kinds.get(name, Any)
        if kind in _CACHE_ORIGIN:
            value = require_cache(value, kind, _path=(*_path, name))
        elif not _kind_matches(kind, value):
            part = ".".join((*_path, name))
            raise TypeError(
                f"cache part {part!r} must be {_describe_kind(kind)} (the cache of "
                f"{_CACHE_ORIGIN[cls]}); got {_a(type(value).__name__)}"
            )
        parts.append(value)
    return cls(*parts)


def caller_stacklevel() -> int:
    """The ``stacklevel`` of :func:`warnings.warn` that points at the first frame outside xpnn.

    A warning raised deep inside a sandwich layer then names the user's line, not ours.
    """
    package = __name__.split(".")[0] + "."
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(package):
        frame, level = frame.f_back, level + 1
    return level


# --------------------------------------------------------------------------- shapes, params


def require_ndim(name: str, array: Any, ndim: int, layout: str) -> None:
    if array.ndim != ndim:
        raise ValueError(
            f"{name} must be a {ndim}-d array {layout}; got shape {tuple(array.shape)}"
        )


def require_shape(name: str, array: Any, shape: tuple[int, ...], why: str = "") -> None:
    if tuple(array.shape) != tuple(shape):
        reason = f" ({why})" if why else ""
        raise ValueError(
            f"{name} must have shape {tuple(shape)}{reason}; got {tuple(array.shape)}"
        )


def require_dict(params: Any, dict_name: str) -> None:
    if not isinstance(params, Mapping):
        raise TypeError(f"{dict_name} must be a dict; got {type(params).__name__}")


def real_param(value: Any, name: str) -> float:
    """A real number (Python or NumPy scalar; not a bool, not an array) as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r} ({type(value).__name__})")
    return float(value)


def int_param(params: Mapping[str, Any], dict_name: str, key: str, minimum: int) -> int:
    """Read ``params[key]`` as an int >= minimum (a Python int, never an array)."""
    require_dict(params, dict_name)
    if key not in params:
        raise KeyError(f"{dict_name} needs the key {key!r}; got keys {sorted(params)}")
    return count(f"{dict_name}[{key!r}]", params[key], minimum=minimum)


def windows_out(
    extent: int, window: int, stride: int, axis: str, window_name: str, dict_name: str
) -> int:
    """Number of window positions along one axis; the windows must tile it exactly.

    ``extent`` is the (padded) input size, ``window`` the filter or pool size.
    """
    if window > extent:
        raise ValueError(
            f"{window_name} {window} is larger than the input {axis} {extent} "
            f"(after padding); use a smaller window or more padding"
        )
    if (extent - window) % stride:
        raise ValueError(
            f"{dict_name}: stride {stride} does not tile the input {axis}: "
            f"({extent} - {window}) is not a multiple of {stride}; change the stride"
            f"{' or the padding' if dict_name == 'conv_param' else ''}"
        )
    return 1 + (extent - window) // stride


# --------------------------------------------------------------------------- labels


def check_labels(xp: Any, y: Any, num_samples: int, num_classes: int) -> None:
    """Labels: 1-d, integer, one per sample, each in ``[0, num_classes)``.

    The range check reads one boolean from the device (a single-scalar sync), because an
    out-of-range label would otherwise silently give a wrong loss. Inside ``jax.jit`` it
    runs at trace time when ``y`` is concrete (closed over), and is skipped when ``y`` is
    traced (an argument of the jitted function), since its values are not known then. It
    is also skipped when switched off with :func:`xpnn.label_range_check` (to avoid the
    sync in a training loop).
    """
    require_ndim("y", y, 1, "of labels (N,)")
    if y.shape[0] != num_samples:
        raise ValueError(f"y must hold one label per row of x ({num_samples}); got {y.shape[0]}")
    if not xp.isdtype(y.dtype, "integral"):
        raise TypeError(f"y must be an integer array of class labels; got dtype {y.dtype}")
    check_range(
        xp, y, num_classes, f"y holds labels outside [0, {num_classes}): every label must "
        "index a column of x",
    )  # fmt: skip
