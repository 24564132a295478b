"""``cs231n.rnn_layers`` (the NumPy edition, 2017-2024): the sequence layers, and ``np``."""

import numpy as np  # noqa: F401  (exported by __all__, as the assignment's star import gives it)

from ..layers.rnn import *  # noqa: F403
from ..layers.rnn import __all__ as _rnn
from ..layers.temporal import *  # noqa: F403
from ..layers.temporal import __all__ as _temporal

__all__ = sorted({"np", *_rnn, *_temporal})
