"""``cs231n.optim``: the update rules."""

import numpy as np

from ..optim import adam, rmsprop, sgd, sgd_momentum

__all__ = ["adam", "np", "rmsprop", "sgd", "sgd_momentum"]
