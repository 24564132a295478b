"""The convnets of the CS231n PyTorch notebook, built from a module namespace.

Each builder takes the namespace of layers as its ``nn`` argument: :mod:`xpnn.torch.nn`
(the default: xpnn's forward and hand-written backward passes) or :mod:`torch.nn`
(PyTorch's own). The same call with either gives the same architecture with the same
parameter names and shapes, and, after the same ``torch.manual_seed``, the same initial
weights (:mod:`xpnn.torch.nn`'s layers are built by ``torch.nn``'s own constructors),
so a ``state_dict`` of one loads into the other and both compute the same function. The
container is always ``torch.nn.Sequential``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch

from .._params import count
from . import nn as xnn

__all__ = ["deep_convnet", "three_layer_convnet"]

#: The layers a namespace must provide for the builders here.
_LAYERS = ("Conv2d", "ReLU", "Flatten", "Linear", "BatchNorm2d", "MaxPool2d")


def _check_namespace(nn: Any) -> None:
    missing = [name for name in _LAYERS if not hasattr(nn, name)]
    if missing:
        raise TypeError(
            "nn must be a namespace of torch.nn-style layers (torch.nn or xpnn.torch.nn) "
            f"with {', '.join(_LAYERS)}; {nn!r} lacks {', '.join(missing)}"
        )


def three_layer_convnet(
    in_channels: int = 3,
    channel_1: int = 32,
    channel_2: int = 16,
    num_classes: int = 10,
    image_size: int = 32,
    *,
    nn: ModuleType = xnn,
    device: Any = None,
    dtype: Any = None,
) -> torch.nn.Sequential:
    """The notebook's three-layer convnet: conv 5x5 - ReLU - conv 3x3 - ReLU - linear.

    ``Conv2d(in_channels, channel_1, 5, padding=2)``, ``ReLU``,
    ``Conv2d(channel_1, channel_2, 3, padding=1)``, ``ReLU``, ``Flatten``,
    ``Linear(channel_2 * image_size**2, num_classes)``: both convolutions keep the
    spatial size, so the linear layer sees every pixel of every ``channel_2`` map.

    Parameters
    ----------
    in_channels, channel_1, channel_2, num_classes : int
        Channels of the input and of the two convolutions, and the number of scores.
    image_size : int
        Height and width of the (square) input images.
    nn : module, default :mod:`xpnn.torch.nn`
        Where the layers come from: :mod:`xpnn.torch.nn` or :mod:`torch.nn`.
    device, dtype : optional
        Of the parameters, as for any ``torch.nn`` layer.

    Returns
    -------
    torch.nn.Sequential
        Maps images ``(N, in_channels, image_size, image_size)`` to scores
        ``(N, num_classes)``. Parameters: ``0.weight`` (channel_1, in_channels, 5, 5),
        ``0.bias`` (channel_1,), ``2.weight`` (channel_2, channel_1, 3, 3), ``2.bias``
        (channel_2,), ``5.weight`` (num_classes, channel_2 * image_size**2), ``5.bias``
        (num_classes,).

    Raises
    ------
    TypeError, ValueError
        A size that is not a positive integer, or ``nn`` without the layers needed.
    """
    _check_namespace(nn)
    c0 = count("in_channels", in_channels, minimum=1)
    c1 = count("channel_1", channel_1, minimum=1)
    c2 = count("channel_2", channel_2, minimum=1)
    k = count("num_classes", num_classes, minimum=1)
    size = count("image_size", image_size, minimum=1)
    kw = {"device": device, "dtype": dtype}
    return torch.nn.Sequential(
        nn.Conv2d(c0, c1, 5, padding=2, **kw),
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1, **kw),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(c2 * size * size, k, **kw),
    )


def deep_convnet(
    in_channels: int = 3,
    channels: tuple[int, ...] = (32, 64, 128),
    num_classes: int = 10,
    image_size: int = 32,
    *,
    nn: ModuleType = xnn,
    device: Any = None,
    dtype: Any = None,
) -> torch.nn.Sequential:
    """A deeper convnet: conv-batchnorm-ReLU-pool blocks, then a linear layer.

    Block ``i`` is ``Conv2d(c_in, channels[i], 3, padding=1, bias=False)`` (the batch
    norm's shift makes a conv bias redundant), ``BatchNorm2d(channels[i])``, ``ReLU``,
    ``MaxPool2d(2)``; each block halves the spatial size (rounding down, as
    ``MaxPool2d`` does). Then ``Flatten`` and ``Linear(channels[-1] * s * s,
    num_classes)``, with ``s`` the size after the last block.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    channels : sequence of int
        Output channels of each block; one block per entry (at least one).
    num_classes : int
        Number of scores.
    image_size : int
        Height and width of the (square) input images; at least ``2**len(channels)``.
    nn : module, default :mod:`xpnn.torch.nn`
        Where the layers come from: :mod:`xpnn.torch.nn` or :mod:`torch.nn`.
    device, dtype : optional
        Of the parameters and buffers, as for any ``torch.nn`` layer.

    Returns
    -------
    torch.nn.Sequential
        Maps ``(N, in_channels, image_size, image_size)`` to scores ``(N, num_classes)``.
        Module ``4*i`` is block ``i``'s conv, ``4*i + 1`` its batch norm (with
        ``running_mean``, ``running_var``, ``num_batches_tracked``); in
        ``model.train()`` the batch norms use and track batch statistics, in
        ``model.eval()`` their running averages.

    Raises
    ------
    TypeError, ValueError
        A size that is not a positive integer, no blocks, an image too small for the
        blocks, or ``nn`` without the layers needed.
    """
    _check_namespace(nn)
    c_in = count("in_channels", in_channels, minimum=1)
    widths = [count(f"channels[{i}]", c, minimum=1) for i, c in enumerate(channels)]
    if not widths:
        raise ValueError("channels must name at least one block; got an empty sequence")
    k = count("num_classes", num_classes, minimum=1)
    size = count("image_size", image_size, minimum=1)
    if size < 2 ** len(widths):
        raise ValueError(
            f"image_size {size} is too small for {len(widths)} blocks, each halving it: "
            f"give at least {2 ** len(widths)}, or fewer channels"
        )
    kw = {"device": device, "dtype": dtype}
    layers: list[torch.nn.Module] = []
    for width in widths:
        layers += [
            nn.Conv2d(c_in, width, 3, padding=1, bias=False, **kw),
            nn.BatchNorm2d(width, **kw),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        c_in, size = width, size // 2
    layers += [nn.Flatten(), nn.Linear(c_in * size * size, k, **kw)]
    return torch.nn.Sequential(*layers)
