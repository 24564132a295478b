"""``--device``: a device name in the backend's terms, checked against the devices there are.

Every mistake (a name the backend does not know, a device this machine does not have, a
backend with one device only) is one line that names the devices that do exist.
"""

from __future__ import annotations

import re
from typing import Any


class DeviceError(ValueError):
    """``--device`` names no device of the backend here."""


def resolve(backend: str, spec: str | None) -> Any:
    """The device ``spec`` names on ``backend``: an object the backend's ``asarray(...,
    device=)`` takes, or None (the backend's default) when ``spec`` is None.

    Names: ``cpu`` on NumPy; ``cpu``, ``cuda``, ``cuda:N``, ``mps`` on torch; ``cpu``,
    ``gpu:N``, ``cuda:N`` or an index into ``jax.devices()`` on JAX; ``N`` or ``cuda:N``
    on CuPy; the device names of array-api-strict (``CPU_DEVICE``, ``device1``, ...).
    """
    if spec is None:
        return None
    spec = spec.strip()
    return _RESOLVERS[backend](spec)


def _refuse(spec: str, backend: str, known: list[str], why: str = "") -> DeviceError:
    reason = f" ({why})" if why else ""
    return DeviceError(
        f"--device {spec}: {backend} has no such device here{reason}; it has {', '.join(known)}"
    )


def _numpy(spec: str) -> str:
    if spec != "cpu":
        raise _refuse(
            spec, "numpy", ["cpu"], "NumPy runs on the CPU only; for a GPU use --backend torch, "
            "jax or cupy"
        )  # fmt: skip
    return "cpu"


def _array_api_strict(spec: str) -> Any:
    import array_api_strict

    devices = array_api_strict.__array_namespace_info__().devices()
    names = [re.sub(r"^.*\('(.*)'\)$", r"\1", repr(d)) for d in devices]
    if spec not in names:
        raise _refuse(spec, "array_api_strict", names)
    return devices[names.index(spec)]


def _torch(spec: str) -> Any:
    import torch

    known = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        known.append("mps")
    why = "" if torch.cuda.is_available() else "torch.cuda.is_available() is False"
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise _refuse(spec, "torch", known, "not a torch device name") from None
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    name = device.type if device.index is None else f"{device.type}:{device.index}"
    if name == "cpu:0":
        name = "cpu"
    if name not in known:
        raise _refuse(spec, "torch", known, why if device.type == "cuda" else "")
    return device


def _cupy(spec: str) -> Any:
    import cupy

    count = cupy.cuda.runtime.getDeviceCount()
    known = [f"cuda:{i}" for i in range(count)]
    index = spec.removeprefix("cuda:").removeprefix("gpu:")
    if not (index.isascii() and index.isdecimal()) or int(index) >= count:
        raise _refuse(spec, "cupy", known)
    return cupy.cuda.Device(int(index))


def _jax(spec: str) -> Any:
    import jax

    platform, _, index = spec.rpartition(":") if ":" in spec else (spec, "", "0")
    if spec.isdecimal():
        platform, index = "", spec
    try:
        devices = jax.devices(platform or None)
    except RuntimeError:
        devices = []
    if not index.isascii() or not index.isdecimal() or int(index) >= len(devices):
        listed = {d: None for d in [*jax.devices(), *jax.devices("cpu")]}  # in order, once
        known = [f"{d.platform}:{jax.devices(d.platform).index(d)}" for d in listed]
        raise _refuse(spec, "jax", [*known, "or an index into jax.devices()"])
    return devices[int(index)]


_RESOLVERS = {
    "numpy": _numpy,
    "array_api_strict": _array_api_strict,
    "torch": _torch,
    "cupy": _cupy,
    "jax": _jax,
}
