"""``torch.nn`` modules computed by xpnn's layers.

Each module has ``torch.nn``'s constructor arguments (those listed), parameter and buffer
names, shapes, initialisation and conventions, so ``load_state_dict`` works both ways
between a ``torch.nn`` model and its xpnn twin and both compute the same function. The
forward and backward passes are xpnn's (through :mod:`xpnn.torch.functional`).

Conventions are ``torch.nn``'s here, converted to xpnn's where they differ:

* :class:`Dropout`'s ``p`` is the probability of DROPPING a unit (xpnn keeps with ``1 - p``).
* :class:`BatchNorm1d`/:class:`BatchNorm2d`: ``running = (1 - momentum) * running +
  momentum * batch`` (``momentum=None``: cumulative average), and ``running_var`` takes
  the UNBIASED batch variance while the output is normalized with the biased one, as in
  ``torch.nn``. xpnn computes the batch statistics; the module updates the buffers.
* :class:`Conv2d` and :class:`MaxPool2d` drop the bottom rows and right columns that no
  window reaches, as ``torch.nn`` does (xpnn itself requires exact tiling).
"""

from __future__ import annotations

import math
import operator
from typing import Any

import torch
from torch import nn

from . import functional as F

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "GroupNorm",
    "LayerNorm",
    "Linear",
    "MaxPool2d",
    "ReLU",
]


def _square(value: Any, name: str) -> int:
    """An int, or a tuple of two equal ints, as one int (xpnn's windows are square)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"{name} must be an int or a square pair (k, k); got {value!r}")
        value = value[0]
    return operator.index(value)


def _reset_like_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    """``torch.nn.Linear``/``Conv2d``'s ``reset_parameters``."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(bias, -bound, bound)


def _crop_to_windows(x: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Drop the trailing rows/columns of (..., H, W) that no window reaches."""
    h, w = x.shape[-2], x.shape[-1]
    hh = window + stride * ((h - window) // stride) if h >= window else h
    ww = window + stride * ((w - window) // stride) if w >= window else w
    return x if (hh, ww) == (h, w) else x[..., :hh, :ww]


def _batched(x: torch.Tensor, ndim: int) -> tuple[torch.Tensor, bool]:
    return (x.unsqueeze(0), True) if x.ndim == ndim - 1 else (x, False)


class Linear(nn.Module):
    """``y = x @ weight.T + bias`` over the last axis, like ``torch.nn.Linear``.

    ``weight`` is (out_features, in_features), ``torch.nn``'s layout; xpnn's affine gets
    ``weight.T``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty((out_features, in_features), **kw))
        self.bias = nn.Parameter(torch.empty(out_features, **kw)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_like_linear(self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        out = F.affine(x.reshape(-1, self.in_features), self.weight.T, self.bias)
        return out.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Conv2d(nn.Module):
    """2-d convolution with zero padding, like ``torch.nn.Conv2d`` (square kernel, stride
    and padding; no dilation or groups)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        k = _square(kernel_size, "kernel_size")
        s = _square(stride, "stride")
        p = _square(padding, "padding")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (k, k), (s, s), (p, p)
        self.weight = nn.Parameter(torch.empty((out_channels, in_channels, k, k), **kw))
        self.bias = nn.Parameter(torch.empty(out_channels, **kw)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_like_linear(self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, unbatched = _batched(x, 4)
        k, s, p = self.kernel_size[0], self.stride[0], self.padding[0]
        h, w = x.shape[-2] + 2 * p, x.shape[-1] + 2 * p
        if h >= k and w >= k and ((h - k) % s or (w - k) % s):
            # torch drops what no window reaches; xpnn wants exact tiling: pad here, crop
            x = _crop_to_windows(torch.nn.functional.pad(x, (p, p, p, p)), k, s)
            p = 0
        out = F.conv(x, self.weight, self.bias, stride=s, pad=p)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )


class MaxPool2d(nn.Module):
    """Max pooling without padding, like ``torch.nn.MaxPool2d`` (square windows;
    ``stride`` defaults to ``kernel_size``)."""

    def __init__(
        self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        self.kernel_size = _square(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _square(stride, "stride")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, unbatched = _batched(x, 4)
        k, s = self.kernel_size, self.stride
        out = F.max_pool(_crop_to_windows(x, k, s), pool_height=k, pool_width=k, stride=s)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class ReLU(nn.Module):
    """``max(x, 0)``, like ``torch.nn.ReLU``; ``inplace`` is accepted and ignored (xpnn
    never writes into its input)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


class Flatten(nn.Module):
    """``torch.flatten(x, start_dim, end_dim)``, like ``torch.nn.Flatten``."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(nn.Module):
    """Inverted dropout like ``torch.nn.Dropout``: ``p`` is the probability of DROPPING
    a unit (xpnn's dropout gets ``1 - p`` as its keep probability); identity in eval mode.
    Masks come from torch's default generator."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:  # keep probability 0: xpnn's dropout needs keep > 0
            return x * 0
        return F.dropout(x, p=1 - self.p, train=True)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class _BatchNorm(nn.Module):
    _ndims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.empty(num_features, **kw))
            self.bias = nn.Parameter(torch.empty(num_features, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **kw))
            self.register_buffer("running_var", torch.ones(num_features, **kw))
            self.register_buffer(
                "num_batches_tracked",
                torch.tensor(0, dtype=torch.long, device=device),
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim not in self._ndims:
            raise ValueError(
                f"{type(self).__name__} expects a {' or '.join(map(str, self._ndims))}-d "
                f"input; got {x.ndim}-d of shape {tuple(x.shape)}"
            )
        shape = x.shape
        spatial = x.ndim != 2
        if spatial and x.ndim != 4:  # (N, C, L) as (N, C, L, 1)
            x = x.reshape(shape[0], shape[1], -1, 1)
        fn = F.spatial_batchnorm if spatial else F.batchnorm
        use_batch = self.training or self.running_mean is None
        if not use_batch:
            out, _, _ = fn(
                x, self.weight, self.bias, self.running_mean, self.running_var,
                train=False, eps=self.eps,
            )  # fmt: skip
            return out.reshape(shape)
        # xpnn momentum 0 returns the batch mean and the biased batch variance themselves
        out, mean, var = fn(x, self.weight, self.bias, None, None, train=True, momentum=0.0,
                            eps=self.eps)  # fmt: skip
        if self.training and self.track_running_stats:
            self._update_running_stats(mean, var, x.numel() // x.shape[1])
        return out.reshape(shape)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, m: int) -> None:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative moving average
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = self.momentum
        unbiased = var * (m / (m - 1)) if m > 1 else var * float("nan")
        self.running_mean.mul_(1 - factor).add_(factor * mean.to(self.running_mean.dtype))
        self.running_var.mul_(1 - factor).add_(factor * unbiased.to(self.running_var.dtype))

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L), like ``torch.nn.BatchNorm1d``."""

    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) per channel, like ``torch.nn.BatchNorm2d``."""

    _ndims = (4,)


class LayerNorm(nn.Module):
    """Layer normalization over the last axis, like ``torch.nn.LayerNorm`` with
    ``normalized_shape`` the size of the last axis (an int or a 1-tuple)."""

    def __init__(
        self,
        normalized_shape: int | tuple[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        shape = (
            tuple(normalized_shape)
            if isinstance(normalized_shape, (tuple, list, torch.Size))
            else (normalized_shape,)
        )
        if len(shape) != 1:
            raise ValueError(
                "xpnn's LayerNorm normalizes over the last axis only: normalized_shape "
                f"must be an int or a 1-tuple; got {normalized_shape!r}"
            )
        self.normalized_shape = (operator.index(shape[0]),)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = nn.Parameter(torch.empty(self.normalized_shape, **kw))
            self.bias = nn.Parameter(torch.empty(self.normalized_shape, **kw)) if bias else None
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layernorm(x, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}"
        )


class GroupNorm(nn.Module):
    """Group normalization of ``(N, C, *)`` in contiguous channel groups, like
    ``torch.nn.GroupNorm``."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        kw = {"device": device, "dtype": dtype}
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        if affine:
            self.weight = nn.Parameter(torch.empty(num_channels, **kw))
            self.bias = nn.Parameter(torch.empty(num_channels, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.groupnorm(x, self.weight, self.bias, groups=self.num_groups, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
