"""``cs231n.classifiers.fc_net``: TwoLayerNet and FullyConnectedNet, plus every name of
``layers`` and ``layer_utils``, which the assignment's module star-imports (the
FullyConnectedNets, BatchNormalization and Dropout notebooks get their layer functions
through it)."""

from ...classifiers import FullyConnectedNet, TwoLayerNet  # noqa: F401  (in __all__)
from ..layer_utils import *  # noqa: F403
from ..layer_utils import __all__ as _layer_utils

__all__ = sorted({"FullyConnectedNet", "TwoLayerNet", *_layer_utils})
