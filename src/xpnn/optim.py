"""First-order update rules with the CS231n assignment's names, defaults and formulas.

Every rule has the signature ``rule(w, dw, config=None) -> (next_w, config)``:

* ``w`` : array, the current weights; ``dw`` : array of the same shape, backend and
  device, the gradient of the loss with respect to ``w``.
* ``config`` : dict of hyperparameters and the rule's state. ``None`` makes a new dict;
  a given dict is filled with the defaults it lacks (``setdefault``), updated with the
  new state and returned, as the assignment does: pass the returned dict to the next
  call.

State arrays (``velocity``, ``cache``, ``m``, ``v``) start as ``xp.zeros_like(w)``: on
``w``'s backend and device, in its dtype, and keep their dtype from step to step.
``next_w`` always has ``w``'s dtype (the hyperparameters are Python floats, and the
result of a wider ``dw`` is rounded back), so a float32 model stays float32 however long
it trains. Nothing is copied to the host.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import MutableMapping
from typing import Any

from ._backend import array_namespace, cast, require_array

__all__ = ["adam", "init_config", "rmsprop", "sgd", "sgd_momentum"]

#: Each rule's hyperparameters (and scalar state) with their defaults.
DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 0},
}
#: Each rule's state arrays, which start as zeros like the weights.
STATE: dict[str, tuple[str, ...]] = {
    "sgd": (),
    "sgd_momentum": ("velocity",),
    "rmsprop": ("cache",),
    "adam": ("m", "v"),
}


def _setup(w: Any, dw: Any, config: Any, defaults: dict) -> tuple[Any, MutableMapping]:
    """Check ``w`` and ``dw``; return ``(xp, config)`` with the defaults filled in."""
    require_array("w", w)
    require_array("dw", dw)
    xp = array_namespace(w=w, dw=dw)  # TypeError (backends) / ValueError (devices), both named
    for name, value in (("w", w), ("dw", dw)):
        if not xp.isdtype(value.dtype, "real floating"):
            raise TypeError(f"{name} must be a real floating array; got dtype {value.dtype}")
    if tuple(dw.shape) != tuple(w.shape):
        raise ValueError(
            f"dw must have the shape of w {tuple(w.shape)}; got dw.shape {tuple(dw.shape)}"
        )
    if config is None:
        config = {}
    elif not isinstance(config, MutableMapping):
        raise TypeError(f"config must be a dict or None; got {type(config).__name__}")
    for key, value in defaults.items():
        config.setdefault(key, value)
    return xp, config


def _hyper(config: MutableMapping, key: str) -> Any:
    """``config[key]`` as a Python float when it is a real number (a NumPy scalar too).

    A NumPy float64 scalar (``10**np.random.uniform(...)``, common in notebooks) would
    otherwise promote a float32 update to float64 on NumPy.
    """
    value = config[key]
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _state(xp: Any, config: MutableMapping, key: str, w: Any) -> Any:
    """The state array ``config[key]``, created as zeros like ``w`` when missing.

    Store its update with :func:`_store`, which keeps its dtype.
    """
    if config.get(key) is None:
        return xp.zeros_like(w)
    state = config[key]
    name = f"config[{key!r}]"
    require_array(name, state)
    array_namespace(w=w, **{name: state})
    if tuple(state.shape) != tuple(w.shape):
        raise ValueError(
            f"{name} must have the shape of w {tuple(w.shape)}; got {tuple(state.shape)}"
        )
    return state


def _step_count(xp: Any, t: Any) -> Any:
    """Adam's ``config['t']``: a Python (or NumPy) integer, or a 0-d integer array.

    The array form is what a compiled training step passes (``t`` traced under
    ``jax.jit``, so that the step is compiled once and not once per value of ``t``).
    """
    if hasattr(t, "shape") and hasattr(t, "dtype") and not isinstance(t, numbers.Integral):
        if tuple(t.shape) == () and xp.isdtype(t.dtype, "integral"):
            return t
    else:
        try:
            return operator.index(t)
        except TypeError:
            pass
    raise TypeError(f"config['t'] must be an integer step count; got {t!r}")


def _store(xp: Any, config: MutableMapping, key: str, new: Any, old: Any) -> Any:
    """``config[key] = new`` in the dtype of the ``old`` state; returns the stored array."""
    config[key] = cast(xp, new, old.dtype)
    return config[key]


def sgd(w: Any, dw: Any, config: dict | None = None) -> tuple[Any, dict]:
    """Vanilla stochastic gradient descent: ``next_w = w - learning_rate * dw``.

    Parameters
    ----------
    w : array, any shape
    dw : array, shape of w
    config : dict, optional
        ``'learning_rate'`` (default 1e-2).

    Returns
    -------
    next_w : array, shape and dtype of w
    config : dict
    """
    xp, config = _setup(w, dw, config, DEFAULTS["sgd"])
    next_w = w - _hyper(config, "learning_rate") * dw
    return cast(xp, next_w, w.dtype), config


def sgd_momentum(w: Any, dw: Any, config: dict | None = None) -> tuple[Any, dict]:
    """Stochastic gradient descent with momentum.

    ``v = momentum * v - learning_rate * dw``; ``next_w = w + v``.

    Parameters
    ----------
    w : array, any shape
    dw : array, shape of w
    config : dict, optional
        ``'learning_rate'`` (default 1e-2), ``'momentum'`` (default 0.9),
        ``'velocity'`` (state; default zeros like w).

    Returns
    -------
    next_w : array, shape and dtype of w
    config : dict
        With the new ``'velocity'``.
    """
    xp, config = _setup(w, dw, config, DEFAULTS["sgd_momentum"])
    v = _state(xp, config, "velocity", w)
    v = _store(
        xp,
        config,
        "velocity",
        _hyper(config, "momentum") * v - _hyper(config, "learning_rate") * dw,
        v,
    )
    return cast(xp, w + v, w.dtype), config


def rmsprop(w: Any, dw: Any, config: dict | None = None) -> tuple[Any, dict]:
    """RMSProp: a per-coordinate step scaled by a running average of squared gradients.

    ``cache = decay_rate * cache + (1 - decay_rate) * dw**2``;
    ``next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)``.

    Parameters
    ----------
    w : array, any shape
    dw : array, shape of w
    config : dict, optional
        ``'learning_rate'`` (default 1e-2), ``'decay_rate'`` (default 0.99),
        ``'epsilon'`` (default 1e-8), ``'cache'`` (state; default zeros like w).

    Returns
    -------
    next_w : array, shape and dtype of w
    config : dict
        With the new ``'cache'``.
    """
    xp, config = _setup(w, dw, config, DEFAULTS["rmsprop"])
    decay = _hyper(config, "decay_rate")
    cache = _state(xp, config, "cache", w)
    cache = _store(xp, config, "cache", decay * cache + (1 - decay) * dw**2, cache)
    step = _hyper(config, "learning_rate") * dw / (xp.sqrt(cache) + _hyper(config, "epsilon"))
    return cast(xp, w - step, w.dtype), config


def adam(w: Any, dw: Any, config: dict | None = None) -> tuple[Any, dict]:
    """Adam: momentum on the gradient and RMSProp scaling, both bias-corrected.

    The step count ``t`` is incremented *before* it is used, so the first step has
    ``t = 1``::

        t += 1
        m = beta1 * m + (1 - beta1) * dw
        v = beta2 * v + (1 - beta2) * dw**2
        next_w = w - learning_rate * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + epsilon)

    Parameters
    ----------
    w : array, any shape
    dw : array, shape of w
    config : dict, optional
        ``'learning_rate'`` (default 1e-3), ``'beta1'`` (0.9), ``'beta2'`` (0.999),
        ``'epsilon'`` (1e-8); state: ``'m'``, ``'v'`` (default zeros like w) and the
        integer ``'t'`` (default 0, the number of steps taken so far): a Python int, or
        a 0-d integer array of w's library (traced inside ``jax.jit``).

    Returns
    -------
    next_w : array, shape and dtype of w
    config : dict
        With the new ``'m'``, ``'v'`` and ``'t'``.
    """
    xp, config = _setup(w, dw, config, DEFAULTS["adam"])
    beta1, beta2 = _hyper(config, "beta1"), _hyper(config, "beta2")
    t = _step_count(xp, config["t"]) + 1
    m, v = _state(xp, config, "m", w), _state(xp, config, "v", w)
    m = _store(xp, config, "m", beta1 * m + (1 - beta1) * dw, m)
    v = _store(xp, config, "v", beta2 * v + (1 - beta2) * dw**2, v)
    config["t"] = t
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    step = _hyper(config, "learning_rate") * m_hat / (xp.sqrt(v_hat) + _hyper(config, "epsilon"))
    return cast(xp, w - step, w.dtype), config


def init_config(rule: str, w: Any, config: dict | None = None) -> dict:
    """The config of ``rule`` for ``w`` before its first step: defaults and zero state.

    What the rule itself would fill in on its first call, without taking a step: the
    missing hyperparameters get their defaults and the missing state arrays are zeros
    like ``w``. A config that already holds every key stays as it is. Useful where the
    config's structure must not change from one step to the next (a step compiled with
    ``jax.jit`` traces once for a fixed structure).

    Parameters
    ----------
    rule : {'sgd', 'sgd_momentum', 'rmsprop', 'adam'}
    w : array
        The weights the config is for.
    config : dict, optional
        Hyperparameters (and state) given so far; not modified.

    Returns
    -------
    dict
        A new dict.
    """
    if rule not in DEFAULTS:
        raise ValueError(f"rule must be one of {tuple(DEFAULTS)}; got {rule!r}")
    require_array("w", w)
    xp = array_namespace(w=w)
    config = {**DEFAULTS[rule], **(config or {})}
    for key in STATE[rule]:
        config[key] = _state(xp, config, key, w)
    return config
