"""Run-time switches of the layers (each a context variable: threads and tasks see their own)."""

from __future__ import annotations

import contextvars

__all__ = ["label_range_check", "label_range_check_enabled"]

_label_range_check: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "xpnn_label_range_check", default=True
)


class _Switch:
    """What :func:`label_range_check` returns: set at once; ``with`` restores on exit."""

    def __init__(self, variable: contextvars.ContextVar[bool], enabled: bool, name: str):
        self.enabled = enabled
        self._name = name
        self._variable = variable
        self._token = variable.set(enabled)

    def __enter__(self) -> bool:
        return self.enabled

    def __exit__(self, *exc: object) -> None:
        self._variable.reset(self._token)

    def __repr__(self) -> str:
        return f"{self._name}({self.enabled})"


def label_range_check(enabled: bool) -> _Switch:
    """Turn the label range check of ``softmax_loss`` and ``svm_loss`` on or off.

    The check (every label in ``[0, C)``) reads one boolean back from the device on each
    call: a device-to-host synchronisation that a training loop on a GPU may not want.
    With the check off, an out-of-range label is not reported: its row of the one-hot
    mask is all zeros, so that row's loss is computed as if it had no true class. Shapes
    and dtypes are still checked.
    Inside ``jax.jit`` labels that are arguments of the jitted function are not checked
    (their values are not known at trace time); closed-over labels are checked once, at
    trace time.

    Works as a setter (``xpnn.label_range_check(False)``) and as a context manager
    (``with xpnn.label_range_check(False): ...``), which restores the previous setting.

    Parameters
    ----------
    enabled : bool
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True or False; got {enabled!r}")
    return _Switch(_label_range_check, enabled, "label_range_check")


def label_range_check_enabled() -> bool:
    """Whether the label range check is on (it is by default)."""
    return _label_range_check.get()
