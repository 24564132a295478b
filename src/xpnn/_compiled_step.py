"""The Solver's training step on JAX: forward, backward and update as one ``jax.jit`` function.

The step is a pure function of arrays: parameters, model state (batch-norm running
averages), optimizer state, the minibatch, the run's random seed and the iteration number
go in; the loss, one finiteness flag per parameter, and the new parameters, model state
and optimizer state come out. Nothing is written into the model or the Solver under
trace: the Solver commits the outputs afterwards, and only when they are finite.

What stays fixed at trace time (so changing it after the first step is not seen by the
compiled function): the model's architecture and hyperparameters (``reg``, batch norm's
``eps`` and ``momentum``, the dropout probability) and the update rule. What is traced,
so that it never triggers a new compilation: every array, the optimizer's scalar
hyperparameters (the learning rate decays per epoch) and Adam's step count, and the
iteration number, from which each step's dropout key is folded in. A new compilation
happens only for a new minibatch shape or dtype.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["CompiledStep"]


class CompiledStep:
    """One compiled training step and one compiled prediction for a model on JAX.

    Parameters
    ----------
    model : Classifier
        Has ``functional_loss(params, state, X, y=None, *, key=None)``.
    update : callable
        An update rule of :mod:`xpnn.optim`.
    parallel : DataParallel or None
        Devices to shard each minibatch over (``xpnn._data_parallel``); the outputs are
        then replicated on them.

    Attributes
    ----------
    traces : dict
        How many times each function was traced (compiled): ``{'step': n, 'predict': m}``.
    """

    def __init__(self, model: Any, update: Callable[..., Any], parallel: Any = None):
        self.model = model
        self.update = update
        self.parallel = parallel
        self.traces = {"step": 0, "predict": 0, "count_correct": 0}
        replicated = None if parallel is None else parallel.replicated
        self._step = jax.jit(self._pure_step, out_shardings=replicated)
        self._predict = jax.jit(self._pure_predict)
        self._count_correct = jax.jit(self._pure_count_correct, out_shardings=replicated)

    # ------------------------------------------------------------------ pure functions

    def _pure_step(self, params, state, optim_arrays, optim_scalars, X, y, seed, iteration):
        self.traces["step"] += 1
        step_key = jax.random.fold_in(jax.random.key(seed), iteration)
        loss, grads, new_state = self.model.functional_loss(params, state, X, y, key=step_key)
        new_params, new_arrays, changed_keys, changed_values = {}, {}, [], []
        for name, w in params.items():
            scalars = optim_scalars[name]
            config = {**scalars, **optim_arrays[name]}
            new_params[name], config = self.update(w, grads[name], config)
            new_arrays[name] = {k: config[k] for k in optim_arrays[name]}
            # Only the scalars the rule changed (Adam's t) come back to the host: an
            # untouched one is still the very tracer that went in.
            for k in scalars:
                if config[k] is not scalars[k]:
                    changed_keys.append((name, k))
                    changed_values.append(config[k])
        self._changed_keys = changed_keys  # the same for every trace: it is the rule's
        # What the host reads, in two arrays (each read is a transfer): the loss and one
        # finiteness flag per parameter, and the changed scalars.
        status = jnp.stack(
            [loss, jnp.isfinite(loss).astype(loss.dtype)]
            + [jnp.all(jnp.isfinite(w)).astype(loss.dtype) for w in new_params.values()]
        )
        changed = jnp.stack(changed_values) if changed_values else jnp.zeros((0,))
        return status, changed, new_params, new_state, new_arrays

    def _pure_predict(self, params, state, X):
        self.traces["predict"] += 1
        return jnp.argmax(self.model.functional_loss(params, state, X), axis=1)

    def _pure_count_correct(self, params, state, X, y, weight):
        self.traces["count_correct"] += 1
        predicted = jnp.argmax(self.model.functional_loss(params, state, X), axis=1)
        return jnp.sum(jnp.where(predicted == y, weight, 0))

    # ------------------------------------------------------------------ host side

    def step(
        self,
        params: dict[str, Any],
        state: dict[str, Any],
        optim_configs: dict[str, dict[str, Any]],
        X: Any,
        y: Any,
        seed: int,
        iteration: int,
    ) -> tuple[float, dict[str, bool], dict, dict, dict]:
        """Run one step; read back, in one transfer, what the host needs.

        Parameters
        ----------
        params, state : dicts of arrays
        optim_configs : dict of dict
            Per parameter, as :func:`xpnn.optim.init_config` gives it: Python numbers
            (hyperparameters, Adam's ``t``) and arrays (the rule's state).
        X, y : arrays
            The minibatch, on the parameters' device (or split over the devices of
            ``parallel``, the others then replicated on them).
        seed : int
            Of the run's base key (an unsigned 32-bit integer, e.g. ``np.uint32``, which
            JAX traces without x64 too); the step's own is ``fold_in(key(seed),
            iteration)``.
        iteration : int

        Returns
        -------
        loss : float
        finite : dict of str to bool
            ``'loss'`` and each parameter: whether it is finite.
        new_params, new_state, new_optim_configs : dicts
            Not yet committed anywhere.
        """
        arrays = {
            n: {k: v for k, v in c.items() if not _is_scalar(v)} for n, c in optim_configs.items()
        }
        scalars = {
            n: {k: v for k, v in c.items() if _is_scalar(v)} for n, c in optim_configs.items()
        }
        if self.parallel is not None:
            params, state, arrays = self.parallel.replicate((params, state, arrays))
        status, changed, new_params, new_state, new_arrays = self._step(
            params, state, arrays, scalars, X, y, seed, iteration
        )
        status, changed = self._to_host((status, changed))
        new_configs = {name: {**scalars[name], **new_arrays[name]} for name in optim_configs}
        for (name, k), value in zip(self._changed_keys, changed.tolist(), strict=True):
            new_configs[name][k] = type(scalars[name][k])(value)
        flags = dict(zip(["loss", *params], (bool(f) for f in status[1:]), strict=True))
        return float(status[0]), flags, new_params, new_state, new_configs

    def predict(self, params: dict[str, Any], state: dict[str, Any], X: Any) -> Any:
        """The predicted classes (N,) of the test-mode scores, on the device."""
        return self._predict(params, state, X)

    def count_correct(
        self, params: dict[str, Any], state: dict[str, Any], X: Any, y: Any, weight: Any
    ) -> float:
        """``sum(weight * (prediction == y))`` over a (sharded) batch, read back."""
        if self.parallel is not None:
            params, state = self.parallel.replicate((params, state))
        return float(self._to_host(self._count_correct(params, state, X, y, weight)))

    def _to_host(self, tree: Any) -> Any:
        """NumPy values of ``tree``'s arrays: in one transfer on one device; with
        ``parallel``, this process's copy of each replicated array."""
        if self.parallel is not None:
            return jax.tree.map(self.parallel.to_host, tree)
        return jax.device_get(tree)


def _is_scalar(value: Any) -> bool:
    """A Python (or NumPy) number: a hyperparameter or a step count, kept on the host."""
    return isinstance(value, numbers.Number)
