"""``cs231n.rnn_layers_pytorch`` (the 2025/2026 PyTorch edition): the sequence layers on
torch tensors, returning outputs only, differentiable by autograd through xpnn's
hand-derived backward passes; and ``torch``, which the edition's module imports."""

import torch

from ..torch.captioning import (
    affine_forward,
    lstm_forward,
    lstm_step_forward,
    rnn_forward,
    rnn_step_forward,
    sigmoid,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_forward,
)

__all__ = [
    "affine_forward",
    "lstm_forward",
    "lstm_step_forward",
    "rnn_forward",
    "rnn_step_forward",
    "sigmoid",
    "temporal_affine_forward",
    "temporal_softmax_loss",
    "torch",
    "word_embedding_forward",
]
