"""The backend matrix: ``XPNN_BACKEND`` picks the array library the whole suite runs on
(``XPNN_DEVICE=cuda`` puts the torch backend's test arrays on the GPU).

Inputs are built in NumPy from a seed and moved to the backend (array-api-strict on its
non-default ``device1``, so a forgotten ``device=`` fails). JAX runs with x64 enabled, and
its leg of the gradient matrix runs every layer under ``jax.jit``.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

import xpnn

BACKEND = os.environ.get("XPNN_BACKEND", "numpy")
if BACKEND not in xpnn.BACKENDS:
    raise pytest.UsageError(f"XPNN_BACKEND must be one of {xpnn.BACKENDS}; got {BACKEND!r}")

if BACKEND == "jax":
    import jax

    jax.config.update("jax_enable_x64", True)

try:
    _XP = xpnn.get_namespace(BACKEND)
    _UNAVAILABLE = None
except (ImportError, RuntimeError) as err:
    _XP = None
    _UNAVAILABLE = f"XPNN_BACKEND={BACKEND} cannot run here: {err}"


def pytest_report_header(config: Any) -> str:
    return f"xpnn backend: {BACKEND}" + (f" (UNAVAILABLE: {_UNAVAILABLE})" if _UNAVAILABLE else "")


def pytest_collection_modifyitems(config: Any, items: list) -> None:
    if _UNAVAILABLE:
        skip = pytest.mark.skip(reason=_UNAVAILABLE)
        for item in items:
            item.add_marker(skip)


@dataclass
class Backend:
    """The backend under test, and how to move NumPy test data onto it."""

    name: str
    xp: Any
    device: Any

    def asarray(self, a: Any, dtype: str | None = None) -> Any:
        a = np.asarray(a)
        if dtype is not None:
            a = a.astype(dtype)
        return self.xp.asarray(a, device=self.device)

    def maybe_jit(self, fn: Any) -> Any:
        """``jax.jit(fn)`` on JAX (one compile per shape instead of one per op), else fn."""
        return fn if self.compile is None else self.compile(fn)

    def other_backend(self) -> str:
        """An installed backend other than this one, for tests that mix two (NumPy always is)."""
        for name in ("numpy", "torch", "array_api_strict"):
            if name != self.name:
                try:
                    xpnn.get_namespace(name)
                except (ImportError, RuntimeError):
                    continue
                return name
        pytest.skip("no second backend is installed here")

    @property
    def on_gpu(self) -> bool:
        """Whether the test arrays live on a GPU, where atomics and cuDNN's algorithm choice
        make sums (scatter-add, convolution weight gradients) differ in the last bits from
        one call to the next."""
        if self.name == "cupy":
            return True
        if self.name == "torch":
            return self.device is not None and self.device.type != "cpu"
        if self.name == "jax":
            import jax

            return jax.default_backend() != "cpu"
        return False

    def full_precision(self) -> Any:
        """A context with float32 products at float32 precision: JAX on a GPU uses TF32
        by default (``jax.default_matmul_precision``); the other backends already do. The
        gradient checks' own context (``xpnn.layer_checks``)."""
        from xpnn.layer_checks.runner import _full_precision

        return _full_precision(self.xp)

    @property
    def compile(self) -> Any:
        """``jax.jit`` on JAX, else None."""
        if self.name == "jax":
            import jax

            return jax.jit
        return None


@pytest.fixture(scope="session")
def bk() -> Backend:
    if _UNAVAILABLE:
        pytest.skip(_UNAVAILABLE)
    device = None
    if BACKEND == "array_api_strict":
        import array_api_strict

        device = array_api_strict.Device("device1")
    if BACKEND == "torch" and os.environ.get("XPNN_DEVICE"):  # the GPU check: cuda
        import torch

        device = torch.device(os.environ["XPNN_DEVICE"])
        if device.type == "cuda" and device.index is None:
            # arrays report cuda:0, and torch.device("cuda") != torch.device("cuda", 0)
            device = torch.device("cuda", torch.cuda.current_device())
    return Backend(BACKEND, _XP, device)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# --------------------------------------------------------------------------- downloads


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / 'www'``; records the paths asked."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(_Handler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
