"""xpnn's layers as PyTorch autograd functions.

Each function here runs xpnn's forward pass on the given tensors and registers xpnn's
hand-written backward pass (called with the forward's cache) as its gradient, through
one generic helper, :func:`make_function`. The tensors never leave their device or dtype:
xpnn's layers take torch tensors directly.

Conventions are xpnn's (the CS231n assignment's), not ``torch.nn.functional``'s:
``dropout``'s ``p`` is the probability of *keeping* a unit, ``batchnorm``'s running
averages are ``momentum * running + (1 - momentum) * batch`` with the biased batch
variance, and conv and pool windows must tile the (padded) input exactly. The modules
in :mod:`xpnn.torch.nn` follow ``torch.nn``'s conventions instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..layers.affine import affine_backward, affine_forward
from ..layers.conv import conv_backward_fast, conv_forward_fast
from ..layers.dropout import dropout_backward, dropout_forward
from ..layers.losses import softmax_loss as _softmax_loss
from ..layers.losses import svm_loss as _svm_loss
from ..layers.norm import (
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)
from ..layers.pool import max_pool_backward_fast, max_pool_forward_fast
from ..layers.relu import relu_backward, relu_forward

__all__ = [
    "affine",
    "batchnorm",
    "conv",
    "dropout",
    "groupnorm",
    "layernorm",
    "make_function",
    "max_pool",
    "relu",
    "softmax_loss",
    "spatial_batchnorm",
    "svm_loss",
]


def make_function(
    name: str,
    forward: Callable[..., tuple[Any, Any]],
    backward: Callable[..., Any],
    *,
    pass_needs_input_grad: bool = False,
) -> type[torch.autograd.Function]:
    """A ``torch.autograd.Function`` from an xpnn forward/backward pair.

    Parameters
    ----------
    name : str
        Name of the class (shown in ``grad_fn``).
    forward : callable
        ``forward(params, *tensors) -> (out, cache)``: ``params`` is any Python object
        (a dict of settings), ``tensors`` the inputs autograd differentiates.
    backward : callable
        ``backward(dout, cache) -> grad or tuple of grads``, one per tensor input
        (``None`` for an input without a gradient).
    pass_needs_input_grad : bool, keyword-only
        Call ``backward(dout, cache, needs)`` instead, ``needs`` a tuple of bools (one per
        tensor input, autograd's ``ctx.needs_input_grad``), so that it can skip the
        gradients nobody asked for.

    Returns
    -------
    type
        A subclass of ``torch.autograd.Function``; call it as ``Fn.apply(params, *tensors)``.
        The cache lives on ``ctx`` (it holds tensors on their own device); the output is
        returned as a fresh alias so that a cache holding the output makes no reference
        cycle through ``grad_fn``.
    """

    def _forward(ctx: Any, params: Any, *tensors: Any) -> Any:
        out, cache = forward(params, *tensors)
        ctx.xpnn_cache = cache
        ctx.xpnn_inputs = len(tensors)
        # Contiguous, as torch's own ops return (xpnn's im2col convolution returns a
        # strided view, on which a user's ``.view(N, -1)`` would fail).
        return out.detach().contiguous()

    def _backward(ctx: Any, dout: Any) -> tuple[Any, ...]:
        cache = ctx.xpnn_cache
        if pass_needs_input_grad:
            grads = backward(dout, cache, tuple(ctx.needs_input_grad[1:]))
        else:
            grads = backward(dout, cache)
        if not isinstance(grads, tuple):
            grads = (grads,)
        if len(grads) != ctx.xpnn_inputs:
            raise RuntimeError(
                f"{name}: the backward pass returned {len(grads)} gradients for "
                f"{ctx.xpnn_inputs} inputs"
            )
        return (None, *grads)

    return type(
        name,
        (torch.autograd.Function,),
        {
            "forward": staticmethod(_forward),
            "backward": staticmethod(_backward),
            "__doc__": f"xpnn's {name} as a torch.autograd.Function (see make_function).",
            "__module__": __name__,
        },
    )


# --------------------------------------------------------------------------- the functions


_Affine = make_function("Affine", lambda _, x, w, b: affine_forward(x, w, b), affine_backward)
_Relu = make_function("Relu", lambda _, x: relu_forward(x), relu_backward)
_Conv = make_function(
    "Conv",
    lambda p, x, w, b: conv_forward_fast(x, w, b, p),
    # The first layer's input (the images) needs no gradient: skip dx and its col2im.
    lambda dout, cache, needs: conv_backward_fast(dout, cache, input_grad=needs[0]),
    pass_needs_input_grad=True,
)
_MaxPool = make_function(
    "MaxPool", lambda p, x: max_pool_forward_fast(x, p), max_pool_backward_fast
)
_BatchNorm = make_function(
    "BatchNorm",
    lambda p, x, gamma, beta: batchnorm_forward(x, gamma, beta, p),
    batchnorm_backward_alt,
)
_SpatialBatchNorm = make_function(
    "SpatialBatchNorm",
    lambda p, x, gamma, beta: spatial_batchnorm_forward(x, gamma, beta, p),
    spatial_batchnorm_backward,
)
_LayerNorm = make_function(
    "LayerNorm",
    lambda p, x, gamma, beta: layernorm_forward(x, gamma, beta, p),
    layernorm_backward,
)
_GroupNorm = make_function(
    "GroupNorm",
    lambda p, x, gamma, beta: spatial_groupnorm_forward(x, gamma, beta, p["G"], p),
    spatial_groupnorm_backward,
)
_Dropout = make_function("Dropout", lambda p, x: dropout_forward(x, p), dropout_backward)


def _loss_forward(loss_fn: Callable) -> Callable:
    def forward(_: Any, scores: Any, y: Any) -> tuple[Any, Any]:
        return loss_fn(scores, y)  # (loss, dscores): dscores is the cache

    return forward


def _loss_backward(dloss: Any, dscores: Any) -> tuple[Any, None]:
    return dloss * dscores, None


_SoftmaxLoss = make_function("SoftmaxLoss", _loss_forward(_softmax_loss), _loss_backward)
_SvmLoss = make_function("SvmLoss", _loss_forward(_svm_loss), _loss_backward)


def _zeros_if_none(b: Any, like: Any, n: int) -> Any:
    return torch.zeros(n, dtype=like.dtype, device=like.device) if b is None else b


def _ones_if_none(g: Any, like: Any, n: int) -> Any:
    return torch.ones(n, dtype=like.dtype, device=like.device) if g is None else g


def affine(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``x.reshape(N, D) @ w + b`` (xpnn's ``affine_forward``); w (D, M), b (M,) or None."""
    return _Affine.apply(None, x, w, _zeros_if_none(b, w, w.shape[-1]))


def relu(x: torch.Tensor) -> torch.Tensor:
    """``max(x, 0)`` (xpnn's ``relu_forward``)."""
    return _Relu.apply(None, x)


def conv(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, *, stride: int = 1, pad: int = 0
) -> torch.Tensor:
    """2-d convolution (cross-correlation) with zero padding (xpnn's ``conv_forward_fast``).

    ``x`` (N, C, H, W), ``w`` (F, C, HH, WW), ``b`` (F,) or None; the windows must tile the
    padded input: ``(H + 2*pad - HH) % stride == 0`` (likewise W), else ValueError.
    """
    return _Conv.apply({"stride": stride, "pad": pad}, x, w, _zeros_if_none(b, w, w.shape[0]))


def max_pool(
    x: torch.Tensor, *, pool_height: int = 2, pool_width: int = 2, stride: int = 2
) -> torch.Tensor:
    """Max pooling over (N, C, H, W), no padding (xpnn's ``max_pool_forward_fast``).

    Windows must tile the input exactly. Ties in a window: see xpnn's ``max_pool_backward_fast``.
    """
    pool_param = {"pool_height": pool_height, "pool_width": pool_width, "stride": stride}
    return _MaxPool.apply(pool_param, x)


def _batchnorm(
    fn: type[torch.autograd.Function],
    x: torch.Tensor,
    gamma: torch.Tensor | None,
    beta: torch.Tensor | None,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    train: bool,
    momentum: float,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    c = x.shape[1]
    bn_param: dict[str, Any] = {
        "mode": "train" if train else "test",
        "momentum": momentum,
        "eps": eps,
        "running_mean": None if running_mean is None else running_mean.detach(),
        "running_var": None if running_var is None else running_var.detach(),
    }
    out = fn.apply(bn_param, x, _ones_if_none(gamma, x, c), _zeros_if_none(beta, x, c))
    stats = []
    for key in ("running_mean", "running_var"):
        stat = bn_param[key]
        if stat is None:  # eval mode without running averages: xpnn used zeros (and warned)
            stat = torch.zeros(c, dtype=x.dtype, device=x.device)
        elif not train:  # unchanged, but still a new tensor
            stat = stat.clone()
        stats.append(stat)
    return out, stats[0], stats[1]


def batchnorm(
    x: torch.Tensor,
    gamma: torch.Tensor | None,
    beta: torch.Tensor | None,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    *,
    train: bool,
    momentum: float = 0.9,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch normalization of (N, D) (xpnn's ``batchnorm_forward``, CS231n conventions).

    Returns ``(out, new_running_mean, new_running_var)``: the running averages are new
    tensors without gradient, ``momentum * running + (1 - momentum) * batch`` with the
    biased batch variance in train mode, copies of the given ones in eval mode. Missing
    (None) running averages start as zeros; None ``gamma``/``beta`` mean ones/zeros.
    """
    return _batchnorm(_BatchNorm, x, gamma, beta, running_mean, running_var, train, momentum, eps)


def spatial_batchnorm(
    x: torch.Tensor,
    gamma: torch.Tensor | None,
    beta: torch.Tensor | None,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    *,
    train: bool,
    momentum: float = 0.9,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch normalization of (N, C, H, W) per channel (xpnn's ``spatial_batchnorm_forward``).

    As :func:`batchnorm`, with statistics over N, H and W.
    """
    return _batchnorm(
        _SpatialBatchNorm, x, gamma, beta, running_mean, running_var, train, momentum, eps
    )


def layernorm(
    x: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None, *, eps: float = 1e-5
) -> torch.Tensor:
    """Layer normalization over the last axis of (..., D) (xpnn's ``layernorm_forward``)."""
    d = x.shape[-1]
    x2 = x.reshape(-1, d)
    out = _LayerNorm.apply(
        {"eps": eps}, x2, _ones_if_none(gamma, x, d), _zeros_if_none(beta, x, d)
    )
    return out.reshape(x.shape)


def groupnorm(
    x: torch.Tensor,
    gamma: torch.Tensor | None,
    beta: torch.Tensor | None,
    *,
    groups: int,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Group normalization of ``(N, C, *)`` in ``groups`` contiguous channel groups.

    xpnn's ``spatial_groupnorm_forward``; inputs other than (N, C, H, W) are viewed as
    (N, C, L, 1). ``gamma``, ``beta``: (C,) or (1, C, 1, 1), or None.
    """
    n, c = x.shape[0], x.shape[1]
    x4 = x if x.ndim == 4 else x.reshape(n, c, -1, 1)
    out = _GroupNorm.apply(
        {"G": groups, "eps": eps}, x4, _ones_if_none(gamma, x, c), _zeros_if_none(beta, x, c)
    )
    return out.reshape(x.shape)


def dropout(
    x: torch.Tensor,
    *,
    p: float,
    train: bool,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Inverted dropout (xpnn's ``dropout_forward``): ``p`` is the probability of KEEPING a unit.

    In train mode a boolean keep-mask is drawn on x's device with ``torch.rand(...,
    generator=generator) < p`` (or ``mask`` is used), and ``x * mask / p`` returned; in
    eval mode ``x`` itself.
    """
    if not train:
        dropout_forward(x, {"p": p, "mode": "test"})  # validates p
        return x
    if mask is None:
        draw = torch.rand(x.shape, generator=generator, dtype=torch.float32, device=x.device)
        mask = draw < p
    return _Dropout.apply({"p": p, "mode": "train", "mask": mask}, x)


def softmax_loss(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy of (N, C) scores against integer labels (N,); a 0-d tensor."""
    return _SoftmaxLoss.apply(None, scores, y)


def svm_loss(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean multiclass hinge loss (margin 1) of (N, C) scores against labels (N,); a 0-d tensor."""
    return _SvmLoss.apply(None, scores, y)
