"""``cs231n.classifiers.cnn``: ThreeLayerConvNet, plus every name of ``layers``,
``fast_layers`` and ``layer_utils``, which the assignment's module star-imports."""

from ...classifiers import ThreeLayerConvNet  # noqa: F401  (exported by __all__)
from ..layer_utils import *  # noqa: F403
from ..layer_utils import __all__ as _layer_utils

__all__ = sorted({"ThreeLayerConvNet", *_layer_utils})
