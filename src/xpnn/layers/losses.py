"""Classification losses on a score matrix ``x`` of shape (N, C) and labels ``y`` (N,).

Both return ``(loss, dx)``: the mean loss over the N examples as a 0-d array of the
input's backend (no host round trip), and its gradient with respect to ``x``. The
derivations are in ``docs/derivations/losses.md``.

The true class is selected with a one-hot mask ``y[:, None] == arange(C)``, which every
array-API namespace supports (integer-array indexing is not portable). The label range
check can be switched off with :func:`xpnn.label_range_check`.
"""

from __future__ import annotations

from typing import Any

from .._backend import array_namespace, device_of
from ._validate import (
    check_labels,
    floating_inputs,
    in_argument_dtypes,
    require_array,
    require_ndim,
)

__all__ = ["softmax_loss", "svm_loss"]


def _scores_and_one_hot(x: Any, y: Any) -> tuple[Any, Any, Any, tuple]:
    """``(xp, x in its computation dtype, one-hot labels in that dtype, x's own dtype)``."""
    require_array("y", y)
    xp, (scores,), dtypes = floating_inputs(x=x)
    array_namespace(x=x, y=y)
    require_ndim("x", scores, 2, "of class scores (N, C)")
    check_labels(xp, y, scores.shape[0], scores.shape[1])
    classes = xp.arange(scores.shape[1], device=device_of(scores))
    return xp, scores, xp.astype(y[:, None] == classes, scores.dtype), dtypes


def softmax_loss(x: Any, y: Any) -> tuple[Any, Any]:
    """Softmax (cross-entropy) loss.

    ``loss = -mean_n log softmax(x[n])[y[n]]``, computed with the max-shift and
    log-sum-exp so that large scores do not overflow.

    Parameters
    ----------
    x : array, shape (N, C)
        Class scores.
    y : integer array, shape (N,)
        Labels, ``0 <= y[n] < C``.

    Returns
    -------
    loss : 0-d array
    dx : array, shape (N, C), dtype of x
        ``(softmax(x) - one_hot(y)) / N``.
    """
    xp, x, one_hot, dtypes = _scores_and_one_hot(x, y)
    n = x.shape[0]
    shifted = x - xp.max(x, axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
    loss = -xp.sum(log_probs * one_hot) / n
    dx = (xp.exp(log_probs) - one_hot) / n
    return loss, in_argument_dtypes(xp, (dx,), dtypes)[0]


def svm_loss(x: Any, y: Any) -> tuple[Any, Any]:
    """Multiclass SVM (hinge) loss with margin 1.

    ``loss = mean_n sum_{c != y[n]} max(0, x[n, c] - x[n, y[n]] + 1)``.

    Parameters
    ----------
    x : array, shape (N, C)
        Class scores.
    y : integer array, shape (N,)
        Labels, ``0 <= y[n] < C``.

    Returns
    -------
    loss : 0-d array
    dx : array, shape (N, C), dtype of x
        ``+1/N`` for every violating class, ``-k/N`` at the true class where ``k`` is the
        number of violating classes of that row, 0 elsewhere. At a margin of exactly 0
        the hinge counts as not violated.
    """
    xp, x, one_hot, dtypes = _scores_and_one_hot(x, y)
    n = x.shape[0]
    correct = xp.sum(x * one_hot, axis=1, keepdims=True)
    margins = (x - correct + 1) * (1 - one_hot)
    violated = xp.astype(margins > 0, x.dtype)
    loss = xp.sum(margins * violated) / n
    dx = (violated - one_hot * xp.sum(violated, axis=1, keepdims=True)) / n
    return loss, in_argument_dtypes(xp, (dx,), dtypes)[0]
