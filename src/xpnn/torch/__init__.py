"""xpnn inside PyTorch: autograd functions and ``torch.nn`` modules over xpnn's layers.

:mod:`xpnn.torch.functional` wraps each xpnn layer in a ``torch.autograd.Function``
whose forward pass calls xpnn's forward on the tensors and whose backward pass calls
xpnn's hand-written backward with the saved cache, so PyTorch's autograd, optimizers
and ``gradcheck`` run on xpnn's derivations. :mod:`xpnn.torch.nn` is a drop-in for
``torch.nn``: its layers subclass ``torch.nn``'s (constructors, parameter and buffer
names, initialisation, ``state_dict``, ``repr`` are torch's) with a ``forward`` over those
functions, so a ``torch.nn`` model's ``state_dict`` loads into its xpnn twin and back,
and ``import xpnn.torch.nn as nn`` ports model-building code unchanged. Tensors stay on
their device and in their dtype.
:mod:`xpnn.torch.models` builds the CS231n PyTorch notebook's convnets from either
namespace, and :mod:`xpnn.torch.training` trains a model with ``torch.optim`` the way
xpnn's ``Solver`` does (``xpnn train --framework torch``).

This package imports ``torch``; ``import xpnn`` does not import it.
"""

from . import functional, models, nn, training

__all__ = ["functional", "models", "nn", "training"]
