"""``cs231n.gradient_check``: numerical gradients (and ``rel_error``, which the notebooks
define themselves)."""

import numpy as np

from ..gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)

__all__ = [
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "np",
    "rel_error",
]
