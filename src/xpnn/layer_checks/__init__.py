"""Checks of declared layers: numerical gradients and independent oracles.

This package runs what :mod:`xpnn.registry` declares (it imports the layers and the
registry, never the reverse). ``xpnn gradcheck`` and the test suite run every case of
:func:`xpnn.registry.registered_cases` through :func:`run_case`, which compares the
analytic gradients with numerical ones entry by entry; :func:`run_oracle` compares a
layer's outputs and gradients with its oracle's (PyTorch autograd or ``jax.vjp``).

Not to be confused with :mod:`xpnn.gradient_check`, the assignment's own numerical-gradient
functions (``eval_numerical_gradient`` ...), which this package uses.
"""

from .oracle import OracleResult, run_oracle
from .runner import STEP, TOLERANCES, CaseResult, Tolerance, WorstEntry, judge, run_case

__all__ = [
    "STEP",
    "TOLERANCES",
    "CaseResult",
    "OracleResult",
    "Tolerance",
    "WorstEntry",
    "judge",
    "run_case",
    "run_oracle",
]
