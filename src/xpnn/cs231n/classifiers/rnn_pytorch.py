"""``cs231n.classifiers.rnn_pytorch`` (the 2025/2026 PyTorch edition): its CaptioningRNN,
plus ``np`` and every name of ``rnn_layers_pytorch``, which the edition's module imports."""

import numpy as np  # noqa: F401  (exported by __all__)

from ...torch.captioning import CaptioningRNN  # noqa: F401  (exported by __all__)
from ..rnn_layers_pytorch import *  # noqa: F403
from ..rnn_layers_pytorch import __all__ as _layers

__all__ = sorted({"CaptioningRNN", "np", *_layers})
