"""The layers: each a pure forward ``(out, cache)`` and backward ``(dout, cache) -> grads``.

Every function takes arrays of any array-API backend (NumPy, CuPy, JAX, PyTorch,
array-api-strict) and returns arrays of the same backend, device and dtype.
"""

from .affine import affine_backward, affine_forward
from .conv import conv_backward_fast, conv_backward_naive, conv_forward_fast, conv_forward_naive
from .dropout import dropout_backward, dropout_forward
from .losses import softmax_loss, svm_loss
from .norm import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)
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
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_forward",
    "conv_backward_fast",
    "conv_backward_naive",
    "conv_forward_fast",
    "conv_forward_naive",
    "dropout_backward",
    "dropout_forward",
    "layernorm_backward",
    "layernorm_forward",
    "max_pool_backward_fast",
    "max_pool_backward_naive",
    "max_pool_forward_fast",
    "max_pool_forward_naive",
    "relu_backward",
    "relu_forward",
    "softmax_loss",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
    "spatial_groupnorm_backward",
    "spatial_groupnorm_forward",
    "svm_loss",
]
