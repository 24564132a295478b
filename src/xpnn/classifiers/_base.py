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
    require_array,
    to_backend,
)

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

    # --------------------------------------------------------------- functional form
    #
    # ``loss(X, y)`` is the assignment's stateful interface: it reads ``self.params`` and
    # writes batch-norm running averages into ``self.bn_params``. ``functional_loss`` is
    # the same computation as a pure function of explicit parameters and state, which is
    # what ``jax.jit`` (and the Solver's compiled step) needs. Both run ``_compute``.

    def _compute(self, params: dict, bn_params: list, X: Any, y: Any, key: Any) -> Any:
        """The forward (and backward) pass: scores for ``y`` None, else (loss, grads).

        ``bn_params`` holds one dict per normalized layer, which batch norm updates.
        ``key`` (JAX only) draws the dropout masks; None uses ``dropout_param``.
        """
        raise NotImplementedError

    def _state_slots(self) -> list[tuple[str, int, str]]:
        """``(state name, index into bn_params, bn_param key)`` of each running average."""
        if getattr(self, "normalization", None) != "batchnorm":
            return []
        return [
            (f"{key}{i + 1}", i, key)
            for i in range(len(self.bn_params))
            for key in ("running_mean", "running_var")
        ]

    @property
    def state(self) -> dict[str, Any]:
        """The model's state besides ``params``: a new dict of arrays.

        Batch norm's running averages, ``'running_mean{i}'`` and ``'running_var{i}'`` for
        hidden layer ``i`` (1-based, like ``gamma{i}``), each zeros of the model's dtype
        until a training pass has created it (as the layer would start it); empty for a
        model without batch norm.
        """
        state = {}
        for name, i, key in self._state_slots():
            value = self.bn_params[i].get(key)
            if value is None:
                gamma = self.params[f"gamma{i + 1}"]
                xp = array_namespace(gamma=gamma)
                value = xp.zeros(gamma.shape, dtype=gamma.dtype, device=device_of(gamma))
            state[name] = value
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Store a state, as :attr:`state` and :meth:`functional_loss` give it, in the model.

        Raises
        ------
        ValueError
            ``state`` does not have exactly the keys of :attr:`state`.
        """
        slots = self._state_slots()
        if not isinstance(state, dict) or set(state) != {name for name, _, _ in slots}:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"state must have the keys {sorted(name for name, _, _ in slots)}; got {got}"
            )
        for name, i, key in slots:
            require_array(f"state[{name!r}]", state[name])
            self.bn_params[i][key] = state[name]

    def functional_loss(
        self, params: dict[str, Any], state: dict[str, Any], X: Any, y: Any = None, *, key=None
    ) -> Any:
        """:meth:`loss` as a pure function: parameters and state in, new state out.

        Reads nothing from the model but its architecture and hyperparameters (``reg``,
        ``bn_params``' ``eps`` and ``momentum``, the dropout probability) and writes
        nothing into it, so it can be traced by ``jax.jit``, ``jax.vmap`` or
        ``jax.grad``; ``params`` and ``state`` may be any arrays of one backend.

        Parameters
        ----------
        params : dict
            The keys and shapes of ``model.params``.
        state : dict
            The keys and shapes of :attr:`state` (batch-norm running averages).
        X : array, the shape ``loss`` takes
        y : integer array, shape (N,), optional
            Labels; None computes the test-mode scores.
        key : JAX random key, optional, keyword-only
            Draws the dropout masks in train mode (one key per dropout layer, folded in
            from this one with :func:`xpnn.random.fold_in`): pass a new key for each
            step. None draws them as :meth:`loss` does (``dropout_param['seed']`` or the
            backend's generator), which under ``jax.jit`` would fix the masks at trace
            time.

        Returns
        -------
        scores : array, shape (N, C)
            If ``y`` is None.
        loss, grads, new_state
            Otherwise: the loss (0-d array), one gradient per parameter, and the state
            after this training pass (new running averages).
        """
        self._check_params(params)
        if set(state) != set(self.state):
            raise ValueError(f"state must have the keys {sorted(self.state)}; got {sorted(state)}")
        mode = "test" if y is None else "train"
        stats = ("running_mean", "running_var")
        bn_params = [
            {**{k: v for k, v in bn.items() if k not in stats}, "mode": mode}
            for bn in getattr(self, "bn_params", None) or []
        ]
        for name, i, slot in self._state_slots():
            bn_params[i][slot] = state[name]
        result = self._compute(params, bn_params, X, y, key)
        if y is None:
            return result
        loss, grads = result
        new_state = {name: bn_params[i][slot] for name, i, slot in self._state_slots()}
        return loss, grads, new_state

    def _check_params(self, params: Any) -> None:
        if not isinstance(params, dict) or set(params) != set(self.params):
            got = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise ValueError(f"params must have the keys {sorted(self.params)}; got {got}")

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

    def _namespace(self, params: dict, X: Any, y: Any) -> Any:
        """Check that ``X`` (and ``y``) live on the backend of ``params``; return it.

        A clear ``TypeError`` here replaces the layers' generic one about mixed backends.
        """
        first_name, first = next(iter(params.items()))
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

    def _l2(self, xp: Any, params: dict, loss: Any, grads: dict, weights: list[str]) -> Any:
        """Add ``0.5 * reg * sum(W**2)`` to ``loss`` and ``reg * W`` to each ``dW``."""
        if self.reg == 0:
            return loss
        total = 0.0
        for name in weights:
            w = params[name]
            total = total + xp.sum(w * w)
            grads[name] = grads[name] + self.reg * w
        return loss + 0.5 * self.reg * total
