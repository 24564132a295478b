"""Moved: the case machinery is :mod:`xpnn.registry` (declarations, cases) and
:mod:`xpnn.layer_checks` (the runner). This alias of the package's public names warns
and will go in xpnn 0.4; its former submodules (``xpnn.gradcheck.spec``, ``.cases``,
``.registry``, ``.runner``) are gone: import from the two packages."""

import warnings

from .layer_checks import *  # noqa: F403
from .layer_checks import __all__ as _checks
from .registry import (
    ArraySpec,
    GradCase,
    distinct,
    labels,
    nonzero,
    register_case,
    registered_cases,
)

warnings.warn(
    "xpnn.gradcheck is now xpnn.registry (GradCase, register_case, registered_cases, "
    "ArraySpec, nonzero, distinct, labels) and xpnn.layer_checks (run_case, judge, "
    "TOLERANCES)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    *_checks,
    "ArraySpec",
    "GradCase",
    "distinct",
    "labels",
    "nonzero",
    "register_case",
    "registered_cases",
]
