"""What the three models share: dtype and RNG handling, placement, input checks, L2.

Weights are drawn on the host with NumPy, in float64, as ``weight_scale * randn(...)``,
then cast to the model's dtype and moved to its backend. NumPy here is the
assignment-compatible initialisation that DESIGN section 2 requires (seeded notebooks
must reproduce their published numbers). It is confined to this module: the models
build their host parameters through :func:`weight_rng`, :func:`host_zeros` and
:func:`host_ones`, and ``loss`` uses only the array API.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import (
    array_namespace,
    backend_name,
    device_of,
    get_backend,
    get_namespace,
    to_backend,
)
from ..layers._validate import require_array

_DTYPES = ("float32", "float64")


def resolve_dtype(dtype: Any) -> np.dtype:
    """``np.float32``/``np.float64`` or ``'float32'``/``'float64'`` as a NumPy dtype."""
    ok = isinstance(dtype, str) and dtype in _DTYPES
    ok = ok or (isinstance(dtype, (type, np.dtype)) and dtype in (np.float32, np.float64))
    if not ok:
        raise ValueError(
            f"dtype must be np.float32, np.float64, 'float32' or 'float64'; got {dtype!r}"
        )
    return np.dtype(dtype)


def host_zeros(n: int) -> np.ndarray:
    """Float64 zeros on the host: a bias (or beta) before :meth:`Classifier._place`."""
    return np.zeros(n)


def host_ones(n: int) -> np.ndarray:
    """Float64 ones on the host: a batch/layer-norm gamma before :meth:`Classifier._place`."""
    return np.ones(n)


def weight_rng(seed: int | None) -> Any:
    """NumPy's global RNG (``np.random``) without a seed, else ``RandomState(seed)``."""
    # The legacy global state on purpose: ``np.random.seed(231)`` before constructing a
    # model must reproduce the assignment's published numbers.
    return np.random if seed is None else np.random.RandomState(seed)


class Classifier:
    """Base of the models: ``params`` on one backend, and the checks ``loss`` needs.

    Attributes
    ----------
    params : dict of str to array
    reg : float
    dtype : numpy.dtype
    backend : str
        The backend the parameters were placed on.
    device : object
        Their device, in the backend's terms.
    """

    params: dict[str, Any]

    def _place(self, params: dict[str, np.ndarray], dtype: Any, backend: Any, device: Any):
        """Cast the float64 host ``params`` to ``dtype`` and move them to the backend."""
        self.dtype = resolve_dtype(dtype)
        self.backend = get_backend() if backend is None else backend
        xp = get_namespace(self.backend)  # unknown or missing backend: fail here, clearly
        host = {k: v.astype(self.dtype) for k, v in params.items()}
        self.params = to_backend(host, self.backend, device)
        first = next(iter(self.params.values()))
        if first.dtype != getattr(xp, self.dtype.name):  # JAX without x64 makes float32
            raise ValueError(
                f"backend {self.backend!r} turned the {self.dtype} parameters into "
                f"{first.dtype}; use dtype='float32', or enable float64 (for JAX: "
                "jax.config.update('jax_enable_x64', True))"
            )
        self.device = device_of(first)

    def _namespace(self, X: Any, y: Any) -> Any:
        """Check that ``X`` (and ``y``) live on the parameters' backend; return it.

        A clear ``TypeError`` here replaces the layers' generic one about mixed backends.
        """
        first_name, first = next(iter(self.params.items()))
        model = backend_name(first)
        for name, value in (("X", X), ("y", y)):
            if value is None:
                continue
            require_array(name, value)
            lib = backend_name(value)
            if lib != model:
                raise TypeError(
                    f"{name} is a {lib} array but the model's parameters are {model} arrays; "
                    f"move it with xpnn.to_backend({name}, {model!r})"
                )
        return array_namespace(X=X, **{first_name: first})  # devices must agree too

    def _l2(self, xp: Any, loss: Any, grads: dict[str, Any], weights: list[str]) -> Any:
        """Add ``0.5 * reg * sum(W**2)`` to ``loss`` and ``reg * W`` to each ``dW``."""
        if self.reg == 0:
            return loss
        total = 0.0
        for name in weights:
            w = self.params[name]
            total = total + xp.sum(w * w)
            grads[name] = grads[name] + self.reg * w
        return loss + 0.5 * self.reg * total
