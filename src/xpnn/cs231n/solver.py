"""``cs231n.solver``: the Solver (and ``optim``, which the assignment's module imports)."""

import numpy as np

from .. import optim
from ..solver import Solver

__all__ = ["Solver", "np", "optim"]
