"""``cs231n.rnn_layers_pytorch`` (the 2025/2026 PyTorch edition): the sequence layers on
torch tensors, returning outputs only, differentiable by autograd through xpnn's
hand-derived backward passes; and ``torch``, which the edition's module imports."""

import torch  # noqa: F401  (exported by __all__, as the edition's star import gives it)

from ..torch import captioning as _captioning
from ..torch.captioning import *  # noqa: F403

__all__ = sorted(
    {"torch", *(name for name in _captioning.__all__ if not name.startswith("Captioning"))}
)
