"""xpnn: hand-derived neural-network layers on any array-API backend.

Every layer is a pair of pure functions written once against the Python array API
standard: ``forward(...) -> (out, cache)`` and ``backward(dout, cache) -> grads``. Pass
NumPy, CuPy, JAX or PyTorch arrays; results come back in the same library, on the same
device; floating inputs of mixed precision compute in the wider one, and each gradient
comes back in the dtype of its argument.
"""

__version__ = "0.2.0"

from ._backend import BACKENDS, get_backend, get_namespace, to_backend, to_numpy, use_backend
from ._config import label_range_check
from .captioning_solver import CaptioningSolver
from .classifiers import CaptioningRNN, FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet
from .data import get_CIFAR10_data, load_CIFAR10, load_digits
from .gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)
from .layer_utils import *  # noqa: F403
from .layers import *  # noqa: F403
from .optim import adam, rmsprop, sgd, sgd_momentum
from .registry import public_names as _layer_names
from .solver import Solver, TrainingDiverged

__all__ = [
    "BACKENDS",
    "CaptioningRNN",
    "CaptioningSolver",
    "FullyConnectedNet",
    "Solver",
    "ThreeLayerConvNet",
    "TrainingDiverged",
    "TwoLayerNet",
    "__version__",
    "adam",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "get_CIFAR10_data",
    "get_backend",
    "get_namespace",
    "grad_check_sparse",
    "label_range_check",
    "load_CIFAR10",
    "load_digits",
    "rel_error",
    "rmsprop",
    "sgd",
    "sgd_momentum",
    "to_backend",
    "to_numpy",
    "use_backend",
    # Every declared layer's forward and backward passes (xpnn.registry).
    *_layer_names(),
]
