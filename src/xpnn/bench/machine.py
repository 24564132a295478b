"""What a benchmark ran on: CPU, cores, BLAS and its kernel, GPU, library versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

__all__ = ["describe_machine", "usable_cores"]

_LIBRARIES = ("xpnn", "numpy", "array-api-compat", "array-api-extra", "torch", "jax", "cupy")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str:
    try:
        import numpy  # noqa: F401  (loads NumPy's BLAS, so that threadpoolctl sees it)
        import threadpoolctl
    except ImportError:
        return "unknown (install threadpoolctl to see it)"
    pools = [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return "none found"
    return "; ".join(
        f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture') or '?'} kernel, "
        f"{p.get('num_threads')} threads)"
        for p in pools
    )


def _versions() -> str:
    found = []
    for name in _LIBRARIES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def describe_machine(gpu: str | None = None) -> list[str]:
    """Lines of Markdown describing this machine and the libraries in use.

    Parameters
    ----------
    gpu : str, optional
        The GPU's name, when the benchmark ran on one.
    """
    lines = [
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores ({usable_cores()} usable)",
        f"- BLAS (NumPy): {_blas()}",
        f"- OS: {platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"- Libraries: {_versions()}",
    ]
    if gpu:
        lines.insert(1, f"- GPU: {gpu}")
    return lines
