"""Backend lookup: which array library a call runs on, and moving arrays between them.

The namespace of a layer call always comes from its array arguments. The *selected*
backend (:func:`use_backend`) only matters to code that creates arrays from nothing:
models, the solver, data loaders and :func:`to_backend` with no explicit target.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from . import _config
from ._install import install_command

__all__ = [
    "BACKENDS",
    "array_namespace",
    "backend_name",
    "cast",
    "check_range",
    "compile_time_eval",
    "device_of",
    "get_backend",
    "get_namespace",
    "is_traced",
    "no_autograd",
    "require_array",
    "stack_scalars",
    "to_backend",
    "to_numpy",
    "use_backend",
]

#: Backend name -> (library module, its array-API namespace, pip extra that installs it).
_BACKEND_MODULES: dict[str, tuple[str, str, str]] = {
    "numpy": ("numpy", "array_api_compat.numpy", ""),
    "jax": ("jax", "jax.numpy", "jax"),
    "torch": ("torch", "array_api_compat.torch", "torch"),
    "cupy": ("cupy", "array_api_compat.cupy", "cupy"),
    "array_api_strict": ("array_api_strict", "array_api_strict", "strict"),
}
BACKENDS: tuple[str, ...] = tuple(_BACKEND_MODULES)

_selected: contextvars.ContextVar[str] = contextvars.ContextVar("xpnn_backend", default="numpy")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name not in _BACKEND_MODULES:
        raise ValueError(
            f"backend must be one of {', '.join(repr(b) for b in BACKENDS)}; got {name!r}"
        )
    return name


def get_namespace(name: str | None = None) -> ModuleType:
    """The array-API namespace of backend ``name`` (default: the selected backend).

    Parameters
    ----------
    name : str, optional
        One of :data:`BACKENDS`. ``None`` means :func:`get_backend`.

    Returns
    -------
    module
        The array-API-compatible namespace (``array_api_compat.numpy``, ``jax.numpy``,
        ``array_api_compat.torch``, ``array_api_compat.cupy`` or ``array_api_strict``).

    Raises
    ------
    ValueError
        ``name`` is not a known backend.
    ImportError
        The backend is not installed; the message gives the pip command that installs it,
        for an install from an index or from a clone, whichever this copy of xpnn is.
    """
    name = _check_name(get_backend() if name is None else name)
    library, namespace, extra = _BACKEND_MODULES[name]
    try:
        module = importlib.import_module(library)
    except ImportError as err:
        raise ImportError(
            f"backend {name!r} needs the {library!r} package, which is not installed; "
            f"install it with: {install_command(extra)}"
        ) from err
    if name == "cupy":
        _require_cuda_device(module)
    return importlib.import_module(namespace)


def _require_cuda_device(cupy: ModuleType) -> None:
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError when there is no driver at all
        raise RuntimeError(
            f"backend 'cupy' needs a CUDA device, and none is usable: {err}"
        ) from err
    if count < 1:
        raise RuntimeError("backend 'cupy' needs a CUDA device, and none was found")


class _BackendSetting:
    """What :func:`use_backend` returns: the setting is made at once; ``with`` undoes it."""

    def __init__(self, name: str):
        self.name = name
        self._token = _selected.set(name)

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, *exc: object) -> None:
        _selected.reset(self._token)

    def __repr__(self) -> str:
        return f"use_backend({self.name!r})"


def use_backend(name: str) -> _BackendSetting:
    """Select the backend that array-creating code uses.

    Works as a setter (``xpnn.use_backend("jax")``) and as a context manager
    (``with xpnn.use_backend("torch"): ...``), which restores the previous backend on exit.
    The backend is checked for availability at once.

    Parameters
    ----------
    name : {'numpy', 'jax', 'torch', 'cupy', 'array_api_strict'}
    """
    get_namespace(name)  # fail now, with the install hint, rather than at first use
    return _BackendSetting(name)


def get_backend() -> str:
    """Name of the selected backend (``'numpy'`` unless :func:`use_backend` changed it)."""
    return _selected.get()


def backend_name(array: Any) -> str:
    """Name of the backend an array belongs to, or ``'python'`` for a non-array."""
    if array_api_compat.is_numpy_array(array):
        return "numpy"
    if array_api_compat.is_jax_array(array):
        return "jax"
    if array_api_compat.is_torch_array(array):
        return "torch"
    if array_api_compat.is_cupy_array(array):
        return "cupy"
    namespace = _namespace_or_none(array)  # None for lists, scalars and other non-arrays
    if namespace is not None and array_api_compat.is_array_api_strict_namespace(namespace):
        return "array_api_strict"
    if array_api_compat.is_array_api_obj(array):
        return type(array).__module__.split(".")[0]
    return "python"


def _namespace_or_none(array: Any) -> ModuleType | None:
    try:
        return array_api_compat.array_namespace(array)
    except TypeError:
        return None


def require_array(name: str, value: Any) -> None:
    """``value`` must be an array of some array-API library (not a list, not a number)."""
    if not array_api_compat.is_array_api_obj(value):
        raise TypeError(
            f"{name} must be an array (NumPy, CuPy, JAX, PyTorch or another array-API "
            f"library); got {type(value).__name__}"
        )


def cast(xp: Any, array: Any, dtype: Any) -> Any:
    """``array`` in ``dtype``, without a copy when it already has it."""
    return array if array.dtype == dtype else xp.astype(array, dtype)


def check_range(xp: Any, indices: Any, upper: int, message: str) -> None:
    """A ValueError with ``message`` if an integer array has a value outside ``[0, upper)``.

    Reads one boolean from the device, under the same rules as the labels' check of the losses (off
    with :func:`xpnn.label_range_check`, skipped for traced values).
    """
    if 0 in tuple(indices.shape) or not _config.label_range_check_enabled() or is_traced(indices):
        return
    with compile_time_eval(indices):  # closed over by jax.jit: checked at trace time
        out_of_range = xp.any((indices < 0) | (indices >= upper))
    if is_traced(out_of_range):
        return
    if bool(out_of_range):
        raise ValueError(message)


def device_of(array: Any) -> Any:
    """The device of ``array`` (``None`` for a JAX tracer inside ``jax.jit``)."""
    return array_api_compat.device(array)


def is_traced(array: Any) -> bool:
    """True where an array's values are not known: a JAX tracer inside ``jax.jit``.

    (array-api-compat's ``is_lazy_array`` calls every JAX array lazy, eager ones too;
    only tracers are, here. Other lazy libraries, such as Dask, count as traced.)
    """
    if array_api_compat.is_jax_array(array):
        from jax.core import Tracer

        return isinstance(array, Tracer)
    return array_api_compat.is_lazy_array(array)


def compile_time_eval(array: Any) -> contextlib.AbstractContextManager:
    """Context in which operations on concrete values run at once, even inside ``jax.jit``.

    JAX stages every operation inside a jitted function, also those on constants it closes
    over; ``jax.ensure_compile_time_eval`` evaluates those at trace time instead. Elsewhere
    this is a no-op.
    """
    if array_api_compat.is_jax_array(array):
        import jax

        return jax.ensure_compile_time_eval()
    return contextlib.nullcontext()


def no_autograd(array: Any) -> contextlib.AbstractContextManager:
    """Context in which PyTorch records no autograd graph (``torch.no_grad``); else a no-op.

    The numerical gradient perturbs a tensor in place, which torch refuses for a leaf that
    requires grad, and it must not keep a graph per evaluation alive.
    """
    if array_api_compat.is_torch_array(array):
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def array_namespace(*arrays: Any, **named_arrays: Any) -> ModuleType:
    """The array-API namespace shared by the given arrays.

    Python scalars and ``None`` are ignored. Give the arrays as keywords to have errors
    name them: ``array_namespace(x=x, w=w, b=b)``.

    Raises
    ------
    TypeError
        The arrays come from different libraries, or none of them is an array.
    ValueError
        The arrays live on different devices.
    """
    items = [(f"argument {i}", a) for i, a in enumerate(arrays)] + list(named_arrays.items())
    items = [(n, a) for n, a in items if array_api_compat.is_array_api_obj(a)]
    if not items:
        raise TypeError("expected at least one array argument; got none")
    backends = {backend_name(a) for _, a in items}
    if len(backends) > 1:
        desc = ", ".join(f"{n} is a {backend_name(a)} array" for n, a in items)
        raise TypeError(f"arrays from different backends in one call: {desc}")
    first_name, first = items[0]
    first_device = device_of(first)
    for name, a in items[1:]:
        dev = device_of(a)
        if first_device is not None and dev is not None and dev != first_device:
            raise ValueError(
                f"arrays on different devices in one call: {first_name} is on {first_device}, "
                f"{name} is on {dev}"
            )
    return array_api_compat.array_namespace(*(a for _, a in items))


def stack_scalars(xp: ModuleType, values: list[Any], shape: tuple[int, ...]) -> Any:
    """The 0-d arrays ``values`` (in C order) as one array of ``shape``.

    Stacked along the last axis first, then each axis before it, so that no single stack
    joins more arrays than the longest axis: on JAX, one stack of thousands of 0-d arrays
    costs superlinearly (4,000 values: 4 s, 12,800: 27 s), while this is linear in the
    number of values. ``values`` must not be empty.
    """
    if len(values) != math.prod(shape) or not values:
        raise ValueError(f"{len(values)} values cannot fill the non-empty shape {shape}")
    level = list(values)
    for size in reversed(shape):
        level = [xp.stack(level[k : k + size]) for k in range(0, len(level), size)]
    (stacked,) = level  # for shape (): the one value itself
    return stacked


def to_numpy(array: Any) -> np.ndarray:
    """Copy an array of any backend to a NumPy array on the host (an explicit transfer).

    On JAX it is ``jax.device_get``, which ``jax.transfer_guard_device_to_host("disallow")``
    allows: every host read xpnn means to make goes through here, so that the guard
    catches any other (a ``float()`` or ``bool()`` of a device array).
    """
    name = backend_name(array)
    if name == "numpy":
        return array
    if name == "cupy":
        return array.get()
    if name == "torch":
        return array.detach().cpu().numpy()
    if name == "array_api_strict":
        return np.from_dlpack(array)
    if name == "jax":
        import jax

        return np.asarray(jax.device_get(array))
    return np.asarray(array)


def to_backend(obj: Any, backend: str | None = None, device: Any = None) -> Any:
    """Move arrays, and dicts, lists and tuples of arrays, to another backend.

    Parameters
    ----------
    obj : array, Mapping, list, tuple, or anything else
        Arrays are converted; containers are rebuilt with their contents converted;
        everything else (Python numbers, strings, ``None``) is returned unchanged.
    backend : str, optional
        Target backend; default :func:`get_backend`.
    device : optional
        Target device in the target library's terms (``'cuda:1'`` for torch, a
        ``jax.Device``, ``array_api_strict.Device('device1')``). ``None``: the library's
        default device.

    Returns
    -------
    The same structure, holding arrays of the target backend. Dtypes are kept.

    Notes
    -----
    Moving between two libraries goes through host memory (NumPy): this is the explicit,
    user-requested transfer that the layers themselves never make.
    """
    name = _check_name(get_backend() if backend is None else backend)
    xp = get_namespace(name)
    return _convert(obj, name, xp, device)


def _convert(obj: Any, name: str, xp: ModuleType, device: Any) -> Any:
    if isinstance(obj, Mapping):
        return type(obj)((k, _convert(v, name, xp, device)) for k, v in obj.items())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(_convert(v, name, xp, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_convert(v, name, xp, device) for v in obj)
    if not array_api_compat.is_array_api_obj(obj):
        return obj
    if backend_name(obj) == name:
        if device is None or device_of(obj) == device:
            return obj
        return array_api_compat.to_device(obj, device)
    host = to_numpy(obj)
    if device is None:
        return xp.asarray(host)
    if name == "jax":  # the same result; jnp.asarray(..., device=) costs 5x per call
        import jax

        return jax.device_put(host, device)
    return xp.asarray(host, device=device)
