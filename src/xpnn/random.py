"""Random numbers on the backend of a given array, drawn on its device.

Random number generation is not part of the array API standard (and will not be), so
this module is the one place that knows each library's generator:

* NumPy: the global ``np.random`` state. With a seed, ``np.random.seed(seed);
  np.random.rand(*shape)``, exactly as the CS231n assignment draws its dropout masks, so
  published numbers reproduce.
* CuPy: ``cupy.random`` (seeded with ``cupy.random.seed``), on the current device.
* PyTorch: a ``torch.Generator`` on the tensor's device (the default generator when no
  seed is given).
* JAX: ``jax.random.uniform`` with ``jax.random.key(seed)``. Without a seed, a key kept
  in this module is split on every call; that is not usable inside ``jax.jit`` (the key
  would be baked into the compiled function). Inside ``jax.jit`` pass an explicit
  ``key`` to :func:`bernoulli` (a traced argument of the compiled function), deriving
  one key per use with :func:`fold_in`.
* array-api-strict (a CPU test backend without a generator): drawn by NumPy and placed on
  the array's device.
"""

from __future__ import annotations

import threading
from typing import Any

from ._backend import array_namespace, backend_name, device_of

__all__ = ["bernoulli", "fold_in", "uniform"]

_jax_state: dict[str, Any] = {}
_jax_lock = threading.Lock()


def _next_jax_key() -> Any:
    import jax

    with _jax_lock:
        key = _jax_state.get("key")
        if key is None:
            key = jax.random.key(0)
        key, sub = jax.random.split(key)
        _jax_state["key"] = key
    return sub


def _check_seed(seed: Any) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be a Python int or None; got {seed!r}")


def _require_jax_key(key: Any) -> None:
    try:
        import jax
    except ImportError:
        raise TypeError(
            f"key must be a JAX random key from jax.random.key(seed), and JAX is not "
            f"installed; got {type(key).__name__}"
        ) from None

    if not (isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)):
        described = type(key).__name__ + (
            f" of dtype {key.dtype}" if hasattr(key, "dtype") else ""
        )
        raise TypeError(f"key must be a JAX random key from jax.random.key(seed); got {described}")


def fold_in(key: Any, data: Any) -> Any:
    """A new JAX random key from ``key`` and an integer (``jax.random.fold_in``).

    Derives independent keys for the uses of one step (one per dropout layer, say) and
    for the steps of a run (``fold_in(base_key, iteration)``), also inside ``jax.jit``
    where ``data`` may be traced.

    Parameters
    ----------
    key : JAX random key
    data : int or integer 0-d array

    Returns
    -------
    JAX random key
    """
    _require_jax_key(key)
    import jax

    return jax.random.fold_in(key, data)


def bernoulli(
    shape: tuple[int, ...], p: float, like: Any, seed: int | None = None, *, key: Any = None
) -> Any:
    """Boolean array, True with probability ``p``, on the backend and device of ``like``.

    The draw does not depend on ``like``'s dtype: a seed gives the same mask for float32
    and float64 inputs. On NumPy it is ``np.random.seed(seed); np.random.rand(*shape) < p``
    (CS231n's dropout mask); elsewhere a float32 uniform draw compared with ``p``
    (``jax.random.bernoulli`` on JAX).

    Parameters
    ----------
    shape : tuple of int
    p : float
        Probability of True, in [0, 1].
    like : array
    seed : int, optional
    key : JAX random key, optional, keyword-only
        JAX only, instead of ``seed``: ``jax.random.bernoulli(key, p, shape)``. The way to
        draw inside ``jax.jit``, where the key is an argument of the compiled function.

    Returns
    -------
    array of bool, shape ``shape``
    """
    _check_seed(seed)
    shape = tuple(int(n) for n in shape)
    if key is not None:
        if seed is not None:
            raise TypeError("give seed or key, not both")
        if backend_name(like) != "jax":
            raise TypeError(
                "key is a JAX random key and works on JAX arrays only; like is a "
                f"{backend_name(like)} array (use seed= on that backend)"
            )
        _require_jax_key(key)
    if backend_name(like) == "jax":
        import jax

        if key is None:
            key = jax.random.key(seed) if seed is not None else _next_jax_key()
        mask = jax.random.bernoulli(key, p, shape)
        device = device_of(like)
        return mask if device is None else jax.device_put(mask, device)
    xp = array_namespace(like=like)
    draw_dtype = "float64" if backend_name(like) == "numpy" else "float32"
    return uniform(shape, like=like, seed=seed, dtype=getattr(xp, draw_dtype)) < p


def uniform(shape: tuple[int, ...], like: Any, seed: int | None = None, dtype: Any = None) -> Any:
    """Uniform random numbers in [0, 1) with the backend, device and dtype of ``like``.

    Parameters
    ----------
    shape : tuple of int
    like : array
        An array whose library and device the result takes.
    seed : int, optional
        Seed for a reproducible draw (see the module notes for each backend).
    dtype : optional
        Floating dtype of the result (a dtype of ``like``'s library); default
        ``like.dtype``.

    Returns
    -------
    array, shape ``shape``
    """
    xp = array_namespace(like=like)
    shape = tuple(int(n) for n in shape)
    _check_seed(seed)
    name = backend_name(like)
    dtype = like.dtype if dtype is None else dtype
    device = device_of(like)
    if name == "numpy":
        import numpy as np

        # The legacy global state on purpose: CS231n's seeded masks must reproduce.
        if seed is not None:
            np.random.seed(seed)  # noqa: NPY002
        return np.random.rand(*shape).astype(dtype, copy=False)  # noqa: NPY002
    if name == "cupy":
        import cupy

        with cupy.cuda.Device(device.id):
            if seed is not None:
                cupy.random.seed(seed)
            return cupy.random.random_sample(shape, dtype=dtype)
    if name == "torch":
        import torch

        generator = None
        # "meta" tensors (shapes without data, as for checking a model's device path) have
        # no generator; their draws have no values anyway.
        if seed is not None and torch.device(device).type != "meta":
            generator = torch.Generator(device=device)
            generator.manual_seed(seed)
        return torch.rand(shape, generator=generator, dtype=dtype, device=device)
    if name == "jax":
        import jax

        key = jax.random.key(seed) if seed is not None else _next_jax_key()
        values = jax.random.uniform(key, shape, dtype=dtype)
        return values if device is None else jax.device_put(values, device)
    import numpy as np

    rng = np.random.default_rng(seed)
    return xp.asarray(rng.random(shape), dtype=dtype, device=device)
