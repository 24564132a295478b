"""Argument checks shared by the layers: each error names the argument and what was expected.

Everything here reads shapes, dtypes and Python parameters only, never array values, so
the checks cost nothing on a GPU and work on JAX tracers inside ``jax.jit``. The one
exception is :func:`check_labels`, documented there.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

from .._backend import is_traced


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


def require_same_dtype(ref_name: str, ref: Any, **others: Any) -> None:
    """All floating arrays of one call share a dtype, so that dtype in equals dtype out."""
    for name, array in others.items():
        if array.dtype != ref.dtype:
            raise TypeError(
                f"{name} has dtype {array.dtype} but {ref_name} has dtype {ref.dtype}; "
                "cast them to one floating dtype"
            )


def int_param(params: Mapping[str, Any], dict_name: str, key: str, minimum: int) -> int:
    """Read ``params[key]`` as an int >= minimum (a Python int, never an array)."""
    if not isinstance(params, Mapping):
        raise TypeError(f"{dict_name} must be a dict; got {type(params).__name__}")
    if key not in params:
        raise KeyError(f"{dict_name} needs the key {key!r}; got keys {sorted(params)}")
    value = params[key]
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{dict_name}[{key!r}] must be an integer; got {value!r} ({type(value).__name__})"
        ) from None
    if value < minimum:
        raise ValueError(f"{dict_name}[{key!r}] must be >= {minimum}; got {value}")
    return value


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


def check_labels(xp: Any, y: Any, num_samples: int, num_classes: int) -> None:
    """Labels: 1-d, integer, one per sample, each in ``[0, num_classes)``.

    The range check reads one boolean from the device (a single-scalar sync), because
    an out-of-range label would otherwise silently give a wrong loss. It is skipped on
    lazy arrays (JAX tracers inside ``jax.jit``), where values are not known.
    """
    require_ndim("y", y, 1, "of labels (N,)")
    if y.shape[0] != num_samples:
        raise ValueError(f"y must hold one label per row of x ({num_samples}); got {y.shape[0]}")
    if not xp.isdtype(y.dtype, "integral"):
        raise TypeError(f"y must be an integer array of class labels; got dtype {y.dtype}")
    if is_traced(y) or num_samples == 0:
        return
    if bool(xp.any((y < 0) | (y >= num_classes))):
        raise ValueError(
            f"y holds labels outside [0, {num_classes}): every label must index a column of x"
        )
