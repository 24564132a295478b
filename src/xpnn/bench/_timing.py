"""Timing two implementations fairly: each in its own warm loop, the pair of loops repeated.

Alternating single calls of two implementations distorts their ratio (caches, the
allocator and thread pools are left in the other's state: up to 3x on this project's
machine), so each side runs a loop of calls of its own. A loop is timed several times and
the minimum taken (the run least disturbed by the rest of the machine); the pair of loops
is then repeated and the minimum of each side kept again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["time_pair", "time_per_call"]


def time_per_call(
    fn: Callable[[], Any],
    sync: Callable[[Any], Any],
    *,
    repeat: int = 5,
    min_loop_seconds: float = 0.05,
) -> float:
    """Seconds per call of ``fn``: the fastest of ``repeat`` warm loops, per call.

    Parameters
    ----------
    fn : callable
        Runs the work once and returns its result.
    sync : callable
        Waits for a result to be computed (``block_until_ready`` on JAX, a device
        synchronisation on CUDA; a no-op on the CPU libraries).
    repeat : int
        Number of timed loops.
    min_loop_seconds : float
        Each loop repeats ``fn`` enough times to last at least this long (measured on
        the warm-up calls), so that the clock's resolution does not matter.
    """
    sync(fn())  # warm-up: compilation, first-touch page faults, thread pools
    start = time.perf_counter()
    sync(fn())
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, min(1000, round(min_loop_seconds / once)))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            result = fn()
        sync(result)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def time_pair(
    ours: Callable[[], Any],
    reference: Callable[[], Any],
    sync: Callable[[Any], Any],
    sync_reference: Callable[[Any], Any] | None = None,
    *,
    pairs: int = 2,
    repeat: int = 5,
    min_loop_seconds: float = 0.05,
) -> tuple[float, float]:
    """Seconds per call of ``ours`` and of ``reference``, each timed in its own loops.

    The two loops run one after the other, ``pairs`` times; each side keeps its best.
    """
    sync_reference = sync if sync_reference is None else sync_reference
    t_ours, t_ref = float("inf"), float("inf")
    for _ in range(pairs):
        t_ours = min(
            t_ours, time_per_call(ours, sync, repeat=repeat, min_loop_seconds=min_loop_seconds)
        )
        t_ref = min(
            t_ref,
            time_per_call(
                reference, sync_reference, repeat=repeat, min_loop_seconds=min_loop_seconds
            ),
        )
    return t_ours, t_ref
