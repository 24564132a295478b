"""A drop-in for ``torch.nn`` whose layers compute with xpnn's forward and backward passes.

``import xpnn.torch.nn as nn`` in place of ``import torch.nn as nn`` ports model-building
code (the CS231n PyTorch notebook's ``nn.Module`` and ``nn.Sequential`` cells) unchanged.

Each layer here is a subclass of the ``torch.nn`` layer of the same name (``Linear`` of
``torch.nn.Linear``, ...), built by that class's own constructor: the same arguments and
defaults, parameter and buffer names, shapes, initialisation (``reset_parameters``),
``state_dict`` and ``load_state_dict`` (both ways between a ``torch.nn`` model and its xpnn
twin), ``repr``, and ``isinstance(layer, torch.nn.Linear)``. Only ``forward`` is xpnn's: it
calls :mod:`xpnn.torch.functional`, so autograd runs xpnn's hand-written backward passes.

The other names a notebook takes from ``torch.nn`` are ``torch.nn``'s own objects,
re-exported: ``Module``, ``Sequential``, ``Parameter``, ``Flatten`` (a reshape, no xpnn
layer), ``init`` and ``functional`` (``torch.nn.functional``, torch's conventions; xpnn's
layers as functions are :mod:`xpnn.torch.functional`). Any other ``torch.nn`` layer is not
here: take it from ``torch.nn``.

Conventions are ``torch.nn``'s, converted to xpnn's where they differ:

* :class:`Dropout`'s ``p`` is the probability of DROPPING a unit (xpnn keeps with ``1 - p``).
* :class:`BatchNorm1d`/:class:`BatchNorm2d`: ``running = (1 - momentum) * running +
  momentum * batch`` (``momentum=None``: cumulative average), and ``running_var`` takes
  the UNBIASED batch variance while the output is normalized with the biased one, as in
  ``torch.nn``. xpnn computes the batch statistics; the module updates the buffers.
* :class:`Conv2d` and :class:`MaxPool2d` drop the bottom rows and right columns that no
  window reaches, as ``torch.nn`` does (xpnn itself requires exact tiling). Padding that
  xpnn's layers do not do themselves (uneven, ``padding='same'`` with an even kernel,
  ``padding_mode`` other than ``'zeros'``, max-pool padding with ``-inf``) is done by
  ``torch.nn.functional.pad`` before xpnn's layer, as ``torch.nn.Conv2d`` does for its
  padding modes.
* Options xpnn's layers cannot compute raise a ``ValueError`` naming the argument when the
  layer is built: ``dilation`` other than 1, ``groups`` other than 1, a stride that differs
  between height and width, and ``MaxPool2d``'s ``return_indices=True`` and
  ``ceil_mode=True``. ``ReLU(inplace=True)`` and ``Dropout(inplace=True)`` compute out of
  place (xpnn never writes into its input).
* :class:`RNN` and :class:`LSTM` keep ``torch.nn``'s weights (``weight_ih_l0`` of shape
  (gates * H, D), its two biases, and for the LSTM its gate order i, f, g, o) and hand
  xpnn's layers ``weight_ih_l0.T``, ``weight_hh_l0.T`` and ``bias_ih_l0 + bias_hh_l0``,
  the LSTM's gates reordered to xpnn's i, f, o, g. One layer, one direction, ``tanh``
  and no ``proj_size`` (xpnn's layers have no other); ``batch_first`` either way, and
  unbatched inputs, as in ``torch.nn``. A ``PackedSequence`` is refused with a
  ``TypeError``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.nn import Flatten, Module, Parameter, Sequential, functional, init

from .._params import count
from ..layers.rnn import torch_gate_order
from . import functional as XF

__all__ = [
    "LSTM",
    "RNN",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "GroupNorm",
    "LayerNorm",
    "Linear",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "functional",
    "init",
]


def _pair(value: Any, name: str) -> tuple[int, int]:
    """An int, or a sequence of two ints, as ``(height, width)``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w); got {value!r}")
        return count(f"{name}[0]", value[0]), count(f"{name}[1]", value[1])
    value = count(name, value)
    return value, value


def _one(value: Any, name: str, why: str) -> int:
    """An int, or a pair of two equal ints, as one int; else a ValueError saying ``why``."""
    h, w = _pair(value, name)
    if h != w:
        raise ValueError(f"{name} must be the same for height and width ({why}); got {value!r}")
    return h


def _require(ok: bool, name: str, value: Any, expected: str, layer: str) -> None:
    if not ok:
        raise ValueError(
            f"xpnn.torch.nn.{layer} supports {name}={expected} only (xpnn's layer has no "
            f"other); got {name}={value!r}. Use torch.nn.{layer} for this layer."
        )


def _crop_to_windows(x: torch.Tensor, kernel: tuple[int, int], stride: int) -> torch.Tensor:
    """Drop the trailing rows/columns of (..., H, W) that no window reaches."""
    h, w = x.shape[-2], x.shape[-1]
    hh = kernel[0] + stride * ((h - kernel[0]) // stride) if h >= kernel[0] else h
    ww = kernel[1] + stride * ((w - kernel[1]) // stride) if w >= kernel[1] else w
    return x if (hh, ww) == (h, w) else x[..., :hh, :ww]


def _batched(x: torch.Tensor, ndim: int) -> tuple[torch.Tensor, bool]:
    return (x.unsqueeze(0), True) if x.ndim == ndim - 1 else (x, False)


class Linear(torch.nn.Linear):
    """``torch.nn.Linear`` computed by xpnn's affine layer.

    ``weight`` is (out_features, in_features), ``torch.nn``'s layout; xpnn's affine gets
    ``weight.T``. Inputs of any shape ``(*, in_features)`` are viewed as
    ``(N, in_features)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ weight.T + bias`` over the last axis (xpnn's ``affine_forward``)."""
        out = XF.affine(x.reshape(-1, self.in_features), self.weight.T, self.bias)
        return out if x.ndim == 2 else out.reshape(*x.shape[:-1], self.out_features)


def _same_padding(kernel: int) -> tuple[int, int]:
    """``padding='same'`` (stride 1): ``kernel - 1`` in all, the odd one after, as torch."""
    return (kernel - 1) // 2, kernel // 2


class Conv2d(torch.nn.Conv2d):
    """``torch.nn.Conv2d`` computed by xpnn's convolution (``conv_forward_fast``).

    Every argument of ``torch.nn.Conv2d`` is accepted; kernels may be rectangular and
    ``padding`` an int, a pair, ``'valid'`` or ``'same'``, with any ``padding_mode``.

    Raises
    ------
    ValueError
        ``dilation`` other than 1, ``groups`` other than 1, or a ``stride`` that differs
        between height and width: xpnn's convolution has one stride and no dilation or
        groups.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str | int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        _require(_pair(dilation, "dilation") == (1, 1), "dilation", dilation, "1", "Conv2d")
        _require(groups == 1, "groups", groups, "1", "Conv2d")
        _one(stride, "stride", "xpnn's convolution has one stride")
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            padding_mode, device, dtype,
        )  # fmt: skip

    def _pads(self) -> tuple[int, int, int, int]:
        """(left, right, top, bottom), ``torch.nn.functional.pad``'s order."""
        kh, kw = self.kernel_size
        if self.padding == "same":
            return (*_same_padding(kw), *_same_padding(kh))
        if self.padding == "valid":
            return (0, 0, 0, 0)
        ph, pw = _pair(self.padding, "padding")
        return (pw, pw, ph, ph)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of ``(N, C, H, W)`` or ``(C, H, W)``, as ``torch.nn.Conv2d``."""
        x, unbatched = _batched(x, 4)
        stride = _one(self.stride, "stride", "xpnn's convolution has one stride")
        pads = self._pads()
        pad = pads[0]
        h, w = x.shape[-2] + 2 * pad, x.shape[-1] + 2 * pad
        kh, kw = self.kernel_size
        untiled = h >= kh and w >= kw and ((h - kh) % stride or (w - kw) % stride)
        if self.padding_mode != "zeros" or len(set(pads)) > 1 or untiled:
            # torch pads (and drops what no window reaches); xpnn's conv pads evenly with
            # zeros and wants exact tiling: pad and crop here, convolve without padding
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            x = _crop_to_windows(torch.nn.functional.pad(x, pads, mode=mode), (kh, kw), stride)
            pad = 0
        out = XF.conv(x, self.weight, self.bias, stride=stride, pad=pad)
        return out.squeeze(0) if unbatched else out


class MaxPool2d(torch.nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` computed by xpnn's max pooling (``max_pool_forward_fast``).

    Windows may be rectangular; ``stride`` defaults to ``kernel_size``; ``padding`` pads
    with ``-inf`` (at most half the window, as torch requires).

    Raises
    ------
    ValueError
        ``dilation`` other than 1, ``return_indices=True``, ``ceil_mode=True``, a stride
        that differs between height and width (also when it defaults to a rectangular
        ``kernel_size``), or ``padding`` over half the window.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        _require(_pair(dilation, "dilation") == (1, 1), "dilation", dilation, "1", "MaxPool2d")
        _require(not return_indices, "return_indices", return_indices, "False", "MaxPool2d")
        _require(not ceil_mode, "ceil_mode", ceil_mode, "False", "MaxPool2d")
        _one(kernel_size if stride is None else stride, "stride",
             "xpnn's pooling has one stride; it defaults to kernel_size")  # fmt: skip
        window, pads = _pair(kernel_size, "kernel_size"), _pair(padding, "padding")
        if any(2 * p > k for p, k in zip(pads, window, strict=True)):
            raise ValueError(
                f"padding must be at most half of kernel_size; got padding={padding!r}, "
                f"kernel_size={kernel_size!r}"
            )
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Max pooling of ``(N, C, H, W)`` or ``(C, H, W)``, as ``torch.nn.MaxPool2d``."""
        x, unbatched = _batched(x, 4)
        kh, kw = _pair(self.kernel_size, "kernel_size")
        stride = _one(self.stride, "stride", "xpnn's pooling has one stride")
        ph, pw = _pair(self.padding, "padding")
        if ph or pw:
            x = torch.nn.functional.pad(x, (pw, pw, ph, ph), value=-math.inf)
        x = _crop_to_windows(x, (kh, kw), stride)
        out = XF.max_pool(x, pool_height=kh, pool_width=kw, stride=stride)
        return out.squeeze(0) if unbatched else out


class ReLU(torch.nn.ReLU):
    """``torch.nn.ReLU`` computed by xpnn's ReLU; ``inplace=True`` computes out of place
    (xpnn never writes into its input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``max(x, 0)`` (xpnn's ``relu_forward``)."""
        return XF.relu(x)


class Dropout(torch.nn.Dropout):
    """``torch.nn.Dropout`` computed by xpnn's inverted dropout.

    ``p`` is the probability of DROPPING a unit (xpnn's dropout gets ``1 - p`` as its keep
    probability); identity in eval mode. Masks come from torch's default generator, drawn
    as ``torch.rand(x.shape) < 1 - p`` (not the masks ``torch.nn.Dropout`` draws);
    ``inplace=True`` computes out of place.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x * mask / (1 - p)`` in train mode, ``x`` itself in eval mode."""
        if not self.training or self.p == 0:
            return x
        if self.p == 1:  # keep probability 0: xpnn's dropout needs keep > 0
            return x * 0
        return XF.dropout(x, p=1 - self.p, train=True)


class _BatchNormForward:
    """The forward pass of :class:`BatchNorm1d` and :class:`BatchNorm2d` (a mixin before
    the ``torch.nn`` class, which provides the state and ``_check_input_dim``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize per channel with batch statistics (train mode, or no running
        averages) or the running averages, as ``torch.nn``'s batch norms."""
        self._check_input_dim(x)
        shape = x.shape
        spatial = x.ndim != 2
        if spatial and x.ndim != 4:  # (N, C, L) as (N, C, L, 1)
            x = x.reshape(shape[0], shape[1], -1, 1)
        fn = XF.spatial_batchnorm if spatial else XF.batchnorm
        if not (self.training or self.running_mean is None):
            out, _, _ = fn(
                x, self.weight, self.bias, self.running_mean, self.running_var,
                train=False, eps=self.eps,
            )  # fmt: skip
            return out.reshape(shape)
        m = x.numel() // x.shape[1]
        if m == 1:  # torch.nn.functional.batch_norm's own check and message
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {shape}"
            )
        # xpnn momentum 0 returns the batch mean and the biased batch variance themselves
        out, mean, var = fn(x, self.weight, self.bias, None, None, train=True, momentum=0.0,
                            eps=self.eps)  # fmt: skip
        if self.training and self.track_running_stats:
            self._update_running_stats(mean, var, m)
        return out.reshape(shape)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, m: int) -> None:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative moving average
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = self.momentum
        unbiased = var * (m / (m - 1))
        self.running_mean.mul_(1 - factor).add_(factor * mean.to(self.running_mean.dtype))
        self.running_var.mul_(1 - factor).add_(factor * unbiased.to(self.running_var.dtype))


class BatchNorm1d(_BatchNormForward, torch.nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d`` of (N, C) or (N, C, L), computed by xpnn's batch norm."""


class BatchNorm2d(_BatchNormForward, torch.nn.BatchNorm2d):
    """``torch.nn.BatchNorm2d`` of (N, C, H, W) per channel, computed by xpnn's spatial
    batch norm."""


class LayerNorm(torch.nn.LayerNorm):
    """``torch.nn.LayerNorm`` computed by xpnn's layer norm.

    The trailing axes given by ``normalized_shape`` are viewed as one axis of their
    product's size (and ``weight``/``bias`` as vectors), which xpnn's layer norm normalizes.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize over the trailing ``normalized_shape`` axes of ``x``."""
        k = len(self.normalized_shape)
        if x.ndim < k or tuple(x.shape[x.ndim - k :]) != self.normalized_shape:
            raise ValueError(
                f"LayerNorm with normalized_shape={self.normalized_shape} expects an input "
                f"of shape (*, {', '.join(map(str, self.normalized_shape))}); "
                f"got {tuple(x.shape)}"
            )
        d = math.prod(self.normalized_shape)
        weight = None if self.weight is None else self.weight.reshape(d)
        bias = None if self.bias is None else self.bias.reshape(d)
        out = XF.layernorm(x.reshape(-1, d), weight, bias, eps=self.eps)
        return out.reshape(x.shape)


class GroupNorm(torch.nn.GroupNorm):
    """``torch.nn.GroupNorm`` of ``(N, C, *)`` in contiguous channel groups, computed by
    xpnn's group norm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize each of ``num_groups`` channel groups of each sample."""
        n, c = x.shape[0], x.shape[1]
        x4 = x if x.ndim == 4 else x.reshape(n, c, -1, 1)  # (N, C, *) as (N, C, L, 1)
        out = XF.groupnorm(x4, self.weight, self.bias, groups=self.num_groups, eps=self.eps)
        return out.reshape(x.shape)


# --------------------------------------------------------------------------- recurrent


class _Recurrent:
    """What :class:`RNN` and :class:`LSTM` share: the checks of ``torch.nn.RNNBase``'s
    options, and the input's layout as xpnn's (N, T, D)."""

    def _require_xpnn_options(self) -> None:
        layer = type(self).__name__
        _require(self.num_layers == 1, "num_layers", self.num_layers, "1", layer)
        _require(not self.bidirectional, "bidirectional", self.bidirectional, "False", layer)
        _require(self.proj_size == 0, "proj_size", self.proj_size, "0", layer)

    def _batch_major(self, x: Any) -> tuple[torch.Tensor, bool]:
        """``x`` as (N, T, D), and whether it came unbatched (T, D)."""
        if isinstance(x, torch.nn.utils.rnn.PackedSequence):
            raise TypeError(
                f"xpnn.torch.nn.{type(self).__name__} takes a tensor, not a PackedSequence: "
                "pad the sequences (torch.nn.utils.rnn.pad_packed_sequence) or use "
                f"torch.nn.{type(self).__name__}"
            )
        if x.ndim not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: input must be (N, T, D) or (T, N, D) (batch_first="
                f"{self.batch_first}), or (T, D) unbatched; got shape {tuple(x.shape)}"
            )
        if x.dtype != self.weight_ih_l0.dtype:  # torch.nn's check and words
            raise ValueError(
                f"input must have the type {self.weight_ih_l0.dtype}, got type {x.dtype}"
            )
        if x.ndim == 2:
            x, unbatched = x.unsqueeze(0), True
        else:
            x, unbatched = (x if self.batch_first else x.transpose(0, 1)), False
        if x.shape[1] == 0:
            raise ValueError("Expected sequence length to be larger than 0 in RNN")
        return x, unbatched

    def _state(self, hx: Any, name: str, n: int, like: torch.Tensor, unbatched: bool) -> Any:
        """A state of ``torch.nn``'s shape (1, N, H), or (1, H) unbatched, as (N, H)."""
        hidden = self.hidden_size
        if hx is None:
            return torch.zeros(n, hidden, dtype=like.dtype, device=like.device)
        want = (1, hidden) if unbatched else (1, n, hidden)
        if tuple(hx.shape) != want:
            raise ValueError(
                f"{type(self).__name__}: {name} must have shape {want} (num_layers, "
                f"{'' if unbatched else 'batch, '}hidden_size); got {tuple(hx.shape)}"
            )
        return hx.reshape(n, hidden)

    def _output(self, h: torch.Tensor, unbatched: bool) -> torch.Tensor:
        """xpnn's (N, T, H) as ``torch.nn``'s output layout."""
        if unbatched:
            return h[0]
        return h if self.batch_first else h.transpose(0, 1)

    def _bias(self, gates: int, like: torch.Tensor) -> torch.Tensor:
        if not self.bias:
            return torch.zeros(gates * self.hidden_size, dtype=like.dtype, device=like.device)
        return self.bias_ih_l0 + self.bias_hh_l0


class RNN(_Recurrent, torch.nn.RNN):
    """``torch.nn.RNN`` (one layer, ``tanh``) computed by xpnn's ``rnn_forward`` and its
    backpropagation through time.

    ``forward(input, hx=None)`` returns ``(output, h_n)`` as ``torch.nn.RNN`` does:
    ``output`` (N, T, H) with ``batch_first=True``, (T, N, H) without, and ``h_n``
    (1, N, H).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._require_xpnn_options()
        _require(self.nonlinearity == "tanh", "nonlinearity", self.nonlinearity, "'tanh'", "RNN")

    def forward(self, input: Any, hx: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        x, unbatched = self._batch_major(input)
        h0 = self._state(hx, "hx", x.shape[0], x, unbatched)
        h = XF.rnn(x, h0, self.weight_ih_l0.T, self.weight_hh_l0.T, self._bias(1, x))
        shape = (1, self.hidden_size) if unbatched else (1, x.shape[0], self.hidden_size)
        return self._output(h, unbatched), h[:, -1].reshape(shape)


class LSTM(_Recurrent, torch.nn.LSTM):
    """``torch.nn.LSTM`` (one layer) computed by xpnn's LSTM step, forward and backward.

    ``forward(input, hx=None)``, ``hx = (h_0, c_0)`` each (1, N, H), returns
    ``(output, (h_n, c_n))`` as ``torch.nn.LSTM`` does. It runs ``lstm_step_forward`` and
    ``lstm_step_backward`` once per step, which take a cell state in and give one out:
    xpnn's ``lstm_forward`` starts the cell state at zero and returns only the hidden
    states, and ``torch.nn.LSTM`` takes ``c_0`` and returns ``c_n``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._require_xpnn_options()

    def forward(
        self, input: Any, hx: Any = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        x, unbatched = self._batch_major(input)
        n, hidden = x.shape[0], self.hidden_size
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"LSTM: hx must be a pair (h_0, c_0) or None; got {type(hx)}")
        h0, c0 = (None, None) if hx is None else hx
        h = self._state(h0, "h_0", n, x, unbatched)
        c = self._state(c0, "c_0", n, x, unbatched)
        Wx = torch_gate_order(self.weight_ih_l0, axis=0).T  # torch's (i, f, g, o) as xpnn's
        Wh = torch_gate_order(self.weight_hh_l0, axis=0).T
        b = torch_gate_order(self._bias(4, x), axis=0)
        hs = []
        for t in range(x.shape[1]):
            h, c = XF.lstm_step(x[:, t], h, c, Wx, Wh, b)
            hs.append(h)
        shape = (1, hidden) if unbatched else (1, n, hidden)
        out = torch.stack(hs, dim=1)
        return self._output(out, unbatched), (h.reshape(shape), c.reshape(shape))
