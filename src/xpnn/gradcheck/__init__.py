"""Gradient checks of xpnn's layers: the case specs, the table of cases, and the runner.

This package imports the layers (never the reverse). ``xpnn gradcheck`` and the test
suite run :func:`registered_cases` through :func:`run_case`. To check a layer of your own
the same way, describe it with a :class:`GradCase` and :func:`register_case` it::

    from xpnn.gradcheck import GradCase, register_case, run_case

    register_case(GradCase("my_forward", my_forward, my_backward, inputs={"x": (4, 5)}))

(see ``docs/gradient_checking.md``).
"""

from .registry import register_case, registered_cases
from .runner import STEP, TOLERANCES, CaseResult, Tolerance, WorstEntry, judge, run_case
from .spec import ArraySpec, GradCase, distinct, labels, nonzero

__all__ = [
    "STEP",
    "TOLERANCES",
    "ArraySpec",
    "CaseResult",
    "GradCase",
    "Tolerance",
    "WorstEntry",
    "distinct",
    "judge",
    "labels",
    "nonzero",
    "register_case",
    "registered_cases",
    "run_case",
]
