"""``cs231n.vis_utils``: image grids of data and weights (and ``np``, ``sqrt`` and
``ceil``, which the assignment's star import gives)."""

from math import ceil, sqrt

import numpy as np

from ..vis import vis_grid, vis_nn, visualize_grid

__all__ = ["ceil", "np", "sqrt", "vis_grid", "vis_nn", "visualize_grid"]
