"""``cs231n.fast_layers``: the fast convolution and max-pooling layers."""

import numpy as np

from ..layers.conv import conv_backward_fast, conv_forward_fast
from ..layers.pool import max_pool_backward_fast, max_pool_forward_fast

__all__ = [
    "conv_backward_fast",
    "conv_forward_fast",
    "max_pool_backward_fast",
    "max_pool_forward_fast",
    "np",
]
