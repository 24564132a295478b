"""What a benchmark case is: :class:`Case` (one timed operation and its reference) and
:class:`Stage` (a part of it, timed on its own when its target is missed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Case", "Stage"]


@dataclass
class Stage:
    """A part of a case, or a yardstick, timed on its own to show where the time goes.

    Attributes
    ----------
    name : str
    ours : callable
        xpnn's side (zero arguments), synchronised like the case's ``ours``.
    reference : callable or None
        The reference's side of the same part, when there is one.
    yardstick : bool
        A unit of work rather than a part (one elementwise pass over the input): the
        report expresses each side's whole time in it.
    """

    name: str
    ours: Callable[[], Any]
    reference: Callable[[], Any] | None = None
    yardstick: bool = False


@dataclass
class Case:
    """One benchmarked operation.

    Attributes
    ----------
    op, shape, dtype : str
        What is timed, on which shapes, in which dtype.
    reference : str
        What ``reference`` is.
    ours, reference_fn : callable
        Zero-argument callables doing the same work.
    sync, reference_sync : callable
        Wait for a result of ``ours`` / ``reference_fn``.
    target : float or None
        The issue's bound on ``time(ours) / time(reference)``.
    stages : tuple of Stage
        Timed on their own when the target is missed (the first is the forward pass).
    limit : str
        What bounds xpnn's side, in a sentence, printed with the stages.
    forward_in_whole : bool
        Whether the whole case runs the forward pass. Not under ``jax.jit``: the case
        returns only gradients, which a convolution's need no forward output for, so XLA
        drops it; the backward is then not "the whole case minus the forward".
    """

    op: str
    shape: str
    dtype: str
    reference: str
    ours: Callable[[], Any]
    reference_fn: Callable[[], Any]
    sync: Callable[[Any], Any]
    reference_sync: Callable[[Any], Any]
    target: float | None = None
    stages: tuple[Stage, ...] = ()
    limit: str = ""
    forward_in_whole: bool = True
