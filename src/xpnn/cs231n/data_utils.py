"""``cs231n.data_utils``: the CIFAR-10 loaders."""

import numpy as np

from ..data import get_CIFAR10_data, load_CIFAR10, load_CIFAR_batch

__all__ = ["get_CIFAR10_data", "load_CIFAR10", "load_CIFAR_batch", "np"]
