"""Layers over sequences of vectors: word embedding, temporal affine, temporal softmax loss.

Shapes follow the assignment's ``rnn_layers.py``: a minibatch of N sequences of length T,
``(N, T, ...)``. Derivations: ``docs/derivations/embedding.md`` (the scatter-add of the
embedding's backward pass) and ``docs/derivations/temporal_softmax.md``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import _native
from .._backend import array_namespace, device_of
from ._validate import (
    Array,
    Dtypes,
    cache_of,
    check_range,
    floating_inputs,
    in_argument_dtypes,
    require_array,
    require_cache,
    require_ndim,
    require_shape,
    upstream,
)
from .affine import AffineCache, affine_backward, affine_forward

__all__ = [
    "temporal_affine_backward",
    "temporal_affine_forward",
    "temporal_softmax_loss",
    "word_embedding_backward",
    "word_embedding_forward",
]


def _integer_array(xp: Any, value: Any, name: str, what: str) -> None:
    if not xp.isdtype(value.dtype, "integral"):
        raise TypeError(f"{name} must be an integer array of {what}; got dtype {value.dtype}")


# --------------------------------------------------------------------------- embedding


@cache_of("word_embedding_forward")
class WordEmbeddingCache(NamedTuple):
    """What :func:`word_embedding_forward` keeps for :func:`word_embedding_backward`."""

    x: Array
    W: Array
    dtypes: Dtypes


def word_embedding_forward(x: Any, W: Any) -> tuple[Any, WordEmbeddingCache]:
    """Look up the word vectors of a minibatch of index sequences: ``out[n, t] = W[x[n, t]]``.

    Parameters
    ----------
    x : integer array, shape (N, T)
        Indices into the vocabulary, ``0 <= x < V``. Their range is checked (one boolean
        read from the device; off with :func:`xpnn.label_range_check`).
    W : array, shape (V, D)
        One word vector per row.

    Returns
    -------
    out : array, shape (N, T, D)
    cache : WordEmbeddingCache
        For :func:`word_embedding_backward`.
    """
    require_array("x", x)
    xp, (W,), dtypes = floating_inputs(W=W)
    array_namespace(x=x, W=W)
    require_ndim("x", x, 2, "of word indices (N, T)")
    _integer_array(xp, x, "x", "word indices")
    require_ndim("W", W, 2, "of word vectors (V, D)")
    vocabulary = W.shape[0]
    check_range(
        xp, x, vocabulary, f"x holds word indices outside [0, {vocabulary}): the rows of W"
    )
    flat = xp.reshape(x, (-1,))
    out = xp.reshape(xp.take(W, flat, axis=0), (x.shape[0], x.shape[1], W.shape[1]))
    return out, WordEmbeddingCache(x, W, dtypes)


def word_embedding_backward(dout: Any, cache: WordEmbeddingCache) -> Any:
    """Backward pass of :func:`word_embedding_forward`: a scatter-add of ``dout`` into rows.

    ``dW[v] = sum of dout[n, t] over every (n, t) with x[n, t] == v``: a word that occurs
    several times gets the sum of its occurrences' gradients (not one of them, as NumPy's
    ``dW[x] += dout`` would give). Written once as a product with the one-hot matrix of
    ``x``; where the library has a scatter-add (NumPy's ``add.at``, PyTorch's
    ``index_add``, JAX's ``.at[].add``, CuPy's ``scatter_add``) that runs instead.

    Parameters
    ----------
    dout : array, shape (N, T, D)
    cache : WordEmbeddingCache

    Returns
    -------
    dW : array, shape (V, D), dtype of W
    """
    x, W, dtypes = require_cache(cache, WordEmbeddingCache)
    vocabulary, width = W.shape
    xp, dout = upstream(dout, W, (x.shape[0], x.shape[1], width))
    flat = xp.reshape(x, (-1,))
    rows = xp.reshape(dout, (-1, width))
    dW = _native.scatter_add_rows(flat, rows, vocabulary)
    if dW is None:
        words = xp.arange(vocabulary, device=device_of(rows))
        one_hot = xp.astype(flat[:, None] == words[None, :], rows.dtype)  # (N*T, V)
        dW = xp.matrix_transpose(one_hot) @ rows
    return in_argument_dtypes(xp, (dW,), dtypes)[0]


# --------------------------------------------------------------------------- temporal affine


@cache_of("temporal_affine_forward")
class TemporalAffineCache(NamedTuple):
    """What :func:`temporal_affine_forward` keeps for :func:`temporal_affine_backward`."""

    steps: int
    affine_cache: AffineCache


def temporal_affine_forward(x: Any, w: Any, b: Any) -> tuple[Any, TemporalAffineCache]:
    """The same affine map at every step: ``out[n, t] = x[n, t] @ w + b``.

    Parameters
    ----------
    x : array, shape (N, T, D)
    w : array, shape (D, M)
    b : array, shape (M,)

    Returns
    -------
    out : array, shape (N, T, M)
    cache : TemporalAffineCache
        For :func:`temporal_affine_backward`.
    """
    require_array("x", x)
    require_ndim("x", x, 3, "(N, T, D)")
    n, steps, d = x.shape
    xp = array_namespace(x=x, w=w, b=b)
    out, affine_cache = affine_forward(xp.reshape(x, (n * steps, d)), w, b)
    return xp.reshape(out, (n, steps, out.shape[1])), TemporalAffineCache(steps, affine_cache)


def temporal_affine_backward(dout: Any, cache: TemporalAffineCache) -> tuple[Any, Any, Any]:
    """Backward pass of :func:`temporal_affine_forward`: the affine backward on all N*T rows.

    Parameters
    ----------
    dout : array, shape (N, T, M)
    cache : TemporalAffineCache

    Returns
    -------
    dx : array, shape (N, T, D)
    dw : array, shape (D, M)
    db : array, shape (M,)
        Each in the dtype of its argument.
    """
    steps, affine_cache = require_cache(cache, TemporalAffineCache)
    rows, d = affine_cache.x.shape
    m = affine_cache.w.shape[1]
    xp, dout = upstream(dout, affine_cache.x, (rows // steps, steps, m))
    dx, dw, db = affine_backward(xp.reshape(dout, (rows, m)), affine_cache)
    return xp.reshape(dx, (rows // steps, steps, d)), dw, db


# --------------------------------------------------------------------------- loss


def temporal_softmax_loss(x: Any, y: Any, mask: Any, verbose: bool = False) -> tuple[Any, Any]:
    """Softmax loss summed over the unmasked steps, averaged over the N sequences.

    ``loss = -(1/N) * sum over (n, t) with mask[n, t] of log softmax(x[n, t])[y[n, t]]``,
    as the assignment defines it (captions of different lengths are padded with
    ``<NULL>``, whose steps the mask leaves out).

    Parameters
    ----------
    x : array, shape (N, T, V)
        Scores over the vocabulary at every step.
    y : integer array, shape (N, T)
        The target words, ``0 <= y < V`` (checked as labels are; see
        :func:`xpnn.label_range_check`).
    mask : boolean array, shape (N, T)
        Which steps count.
    verbose : bool
        Print the shape of the flattened gradient, as the assignment's version does.

    Returns
    -------
    loss : 0-d array
    dx : array, shape (N, T, V), dtype of x
        ``mask * (softmax(x) - one_hot(y)) / N``.
    """
    require_array("y", y)
    require_array("mask", mask)
    xp, (x,), dtypes = floating_inputs(x=x)
    array_namespace(x=x, y=y, mask=mask)
    require_ndim("x", x, 3, "of scores (N, T, V)")
    n, steps, vocabulary = x.shape
    require_shape("y", y, (n, steps), "(N, T): one target word per step of x")
    require_shape("mask", mask, (n, steps), "(N, T): the shape of y")
    _integer_array(xp, y, "y", "target words")
    if not xp.isdtype(mask.dtype, ("bool", "integral")):
        raise TypeError(f"mask must be a boolean array (True: the step counts); got {mask.dtype}")
    check_range(
        xp, y, vocabulary, f"y holds words outside [0, {vocabulary}): every word must index "
        "the last axis of x",
    )  # fmt: skip
    flat = xp.reshape(x, (n * steps, vocabulary))
    words = xp.arange(vocabulary, device=device_of(flat))
    one_hot = xp.astype(xp.reshape(y, (-1,))[:, None] == words[None, :], flat.dtype)
    counted = mask if xp.isdtype(mask.dtype, "bool") else mask != 0
    weight = xp.astype(xp.reshape(counted, (-1, 1)), flat.dtype)
    shifted = flat - xp.max(flat, axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
    loss = -xp.sum(log_probs * one_hot * weight) / n
    dx_flat = (xp.exp(log_probs) - one_hot) * weight / n
    if verbose:
        print("dx_flat: ", tuple(dx_flat.shape))
    dx = xp.reshape(dx_flat, (n, steps, vocabulary))
    return loss, in_argument_dtypes(xp, (dx,), dtypes)[0]
