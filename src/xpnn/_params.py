"""Plain Python parameters of the functions above the layers (data loaders, helpers):
checked with errors that name them."""

from __future__ import annotations

import operator
from typing import Any


def count(name: str, value: Any, *, minimum: int = 0, why: str = "") -> int:
    """``value`` as an int >= ``minimum`` (not a bool, not a float); ``why`` ends the
    message of a value too small."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer; got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}{why}; got {value}")
    return value
