"""Compare a layer with its declared oracle: an independent implementation differentiated by
PyTorch autograd or ``jax.vjp``.

Both sides run in float64 at the same inputs and the same upstream gradient: xpnn on NumPy,
the oracle on its framework's arrays. An entry passes when
``|ours - oracle| <= ATOL * scale + RTOL * |oracle|``, ``scale`` being the largest entry of
the oracle's output and gradients: the two sum in different orders, and a normalization's
gradient is a difference of nearly equal terms.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import to_numpy
from ..registry.spec import GradCase

__all__ = ["ATOL", "RTOL", "OracleResult", "run_oracle"]

RTOL = 1e-8
ATOL = 1e-10


@dataclass(frozen=True)
class OracleResult:
    """Outcome of :func:`run_oracle`."""

    case: GradCase
    framework: str
    ratio: float
    """Worst ``|ours - oracle| / allowed`` over the output and every gradient; passes at <= 1."""
    worst: str
    """Which array the worst entry is in (``'out'`` or an input's name)."""

    @property
    def passed(self) -> bool:
        return self.ratio <= 1.0


def _as_tuple(value: Any) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def _ours(
    case: GradCase, host: dict[str, np.ndarray], dout: np.ndarray | None, xp: Any, device: Any
) -> list:
    specs = case.specs
    arrays = [
        xp.asarray(v, dtype=xp.float64 if specs[k].differentiable else None, device=device)
        for k, v in host.items()
    ]
    out, cache = case.run(*arrays)
    if case.is_loss:
        grads: tuple = (cache,)
    else:
        grads = _as_tuple(case.backward(xp.asarray(dout, dtype=xp.float64, device=device), cache))
    return [to_numpy(out), *(to_numpy(g) for g in grads)]


def _torch(fn: Any, case: GradCase, host: dict, dout: np.ndarray | None) -> list:
    import torch

    specs = case.specs
    tensors = [
        torch.tensor(v, dtype=torch.float64, requires_grad=True)
        if specs[k].differentiable
        else torch.tensor(v)
        for k, v in host.items()
    ]
    out = fn(torch, *tensors, **copy.deepcopy(dict(case.params)))
    out.backward(None if dout is None else torch.tensor(dout))
    grads = [
        t.grad.numpy() for t, k in zip(tensors, specs, strict=True) if specs[k].differentiable
    ]
    return [out.detach().numpy(), *grads]


def _jax(fn: Any, case: GradCase, host: dict, dout: np.ndarray | None) -> list:
    import jax
    import jax.numpy as jnp

    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            'a JAX oracle runs in float64: jax.config.update("jax_enable_x64", True)'
        )
    specs = case.specs
    arrays = {k: jnp.asarray(v) for k, v in host.items()}
    names = [k for k in specs if specs[k].differentiable]
    params = copy.deepcopy(dict(case.params))

    def f(*diff: Any) -> Any:
        args = {**arrays, **dict(zip(names, diff, strict=True))}
        return fn(jax, *args.values(), **params)

    out, vjp = jax.vjp(f, *(arrays[k] for k in names))
    grads = vjp(jnp.ones_like(out) if dout is None else jnp.asarray(dout))
    return [np.asarray(out), *(np.asarray(g) for g in grads)]


def run_oracle(
    case: GradCase,
    oracle: Any,
    framework: str,
    xp: Any = None,
    device: Any = None,
    seed: int = 0,
) -> OracleResult:
    """Run one case of a layer and its oracle, and compare outputs and gradients.

    Parameters
    ----------
    case : GradCase
        A case of the layer (:meth:`xpnn.registry.Layer.grad_cases`).
    oracle : xpnn.registry.Oracle
    framework : {'torch', 'jax'}
        Which of the oracle's functions to run (the framework must be installed).
    xp, device : optional
        The backend (and device) xpnn's side runs on, in float64; NumPy by default.
    seed : int
        Seed of the inputs and of the upstream gradient.
    """
    fn = getattr(oracle, framework, None) if framework in ("torch", "jax") else None
    if fn is None:
        raise ValueError(f"the oracle of {case.name} has no {framework!r} function")
    host = case.draw_inputs(seed)
    dout = None
    if not case.is_loss:
        out, _ = case.run(*host.values())
        dout = np.random.default_rng(seed + 1).standard_normal(np.shape(out))
    ours = _ours(case, host, dout, np if xp is None else xp, device)
    theirs = (_torch if framework == "torch" else _jax)(fn, case, host, dout)
    names = ["out", *(k for k, s in case.specs.items() if s.differentiable)]
    # The case's scale, not each array's: a gradient that is zero in exact arithmetic (the
    # bias before a batch norm) comes out of both sides as rounding noise of the others.
    scale = max(float(np.max(np.abs(b), initial=0.0)) for b in theirs)
    ratio, worst = 0.0, ""
    for name, a, b in zip(names, ours, theirs, strict=True):
        if a.shape != b.shape:
            raise ValueError(f"{case.name}: {name} has shape {a.shape}, the oracle's {b.shape}")
        allowed = ATOL * max(scale, 1e-300) + RTOL * np.abs(b)
        r = float(np.max(np.abs(a - b) / allowed, initial=0.0))
        if r >= ratio:
            ratio, worst = r, name
    return OracleResult(case, framework, ratio, worst)
