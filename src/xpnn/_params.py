"""Plain Python parameters (counts, sizes, strides), checked with errors that name them."""

from __future__ import annotations

import operator
from typing import Any


def count(name: str, value: Any, *, minimum: int = 0, why: str = "") -> int:
    """``value`` as an int >= ``minimum``: xpnn's one check of an integer argument.

    A Python or NumPy integer is accepted, a bool or a float is not (TypeError); a value
    below ``minimum`` is a ValueError, whose message ``why`` ends. Layers, models, the
    Solver and the bridges all check their counts, sizes and strides with it, so the same
    mistake gets the same exception everywhere.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer; got {value!r} ({type(value).__name__})"
        ) from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}{why}; got {value}")
    return value
