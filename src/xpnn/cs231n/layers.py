"""``cs231n.layers``: the layer functions (and ``np``, as the assignment's star import gives)."""

import numpy as np

from ..layers import *  # noqa: F403
from ..layers import __all__ as _layers

__all__ = ["np", *_layers]
