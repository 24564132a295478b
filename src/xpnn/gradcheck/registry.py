"""The cases that ``xpnn gradcheck`` and the test suite run: xpnn's own, and any registered."""

from __future__ import annotations

from .cases import BUILTIN_CASES
from .spec import GradCase

__all__ = ["register_case", "registered_cases"]

_REGISTERED: list[GradCase] = []


def register_case(case: GradCase) -> GradCase:
    """Add a case (for your own layer) to what ``xpnn gradcheck`` and :func:`registered_cases` run.

    Returns the case, so it can be used as an expression. Registration lasts for the
    process: register at import time of the module that defines your layer, and import
    that module before calling ``xpnn gradcheck``'s entry point or :func:`registered_cases`.
    """
    if not isinstance(case, GradCase):
        raise TypeError(f"case must be a GradCase; got {type(case).__name__}")
    _REGISTERED.append(case)
    return case


def registered_cases() -> list[GradCase]:
    """xpnn's built-in cases followed by the registered ones, in registration order."""
    return [*BUILTIN_CASES, *_REGISTERED]
