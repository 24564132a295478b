"""The layers: each a pure forward ``(out, cache)`` and backward ``(dout, cache) -> grads``.

Every function takes arrays of any array-API backend (NumPy, CuPy, JAX, PyTorch,
array-api-strict) and returns arrays of the same backend, device and dtype.
"""

from .affine import affine_backward, affine_forward
from .conv import conv_backward_fast, conv_backward_naive, conv_forward_fast, conv_forward_naive
from .losses import softmax_loss, svm_loss
from .pool import (
    max_pool_backward_fast,
    max_pool_backward_naive,
    max_pool_forward_fast,
    max_pool_forward_naive,
)
from .relu import relu_backward, relu_forward

__all__ = [
    "affine_backward",
    "affine_forward",
    "conv_backward_fast",
    "conv_backward_naive",
    "conv_forward_fast",
    "conv_forward_naive",
    "max_pool_backward_fast",
    "max_pool_backward_naive",
    "max_pool_forward_fast",
    "max_pool_forward_naive",
    "relu_backward",
    "relu_forward",
    "softmax_loss",
    "svm_loss",
]
