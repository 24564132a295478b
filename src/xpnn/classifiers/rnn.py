"""``CaptioningRNN``: the assignment's image-captioning model, on any backend.

An image's feature vector is projected to the first hidden state; the caption's words are
embedded, run through a vanilla RNN or an LSTM, and scored over the vocabulary at every
step. Training uses the caption shifted by one word (predict word t + 1 from words up to
t), ignoring the ``<NULL>`` padding; :meth:`CaptioningRNN.sample` decodes greedily.
"""

from __future__ import annotations

import math
from typing import Any

from .._backend import check_range, device_of
from .._config import label_range_check
from .._params import count
from ..layers.affine import affine_backward, affine_forward
from ..layers.rnn import (
    lstm_backward,
    lstm_forward,
    lstm_step_forward,
    rnn_backward,
    rnn_forward,
    rnn_step_forward,
)
from ..layers.temporal import (
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)
from ._base import Classifier, host_zeros, weight_rng

__all__ = ["CaptioningRNN"]

#: The gates of each cell type: the columns of Wx, Wh and b are gates * hidden_dim.
CELLS = {"rnn": 1, "lstm": 4}


def parameter_draws(
    vocabulary: int, input_dim: int, wordvec_dim: int, hidden_dim: int, cell_type: str
) -> list[tuple[str, tuple[int, ...], float | None]]:
    """A captioning model's parameters in the assignment's order of draws (a published
    seeded run depends on it), the same in both editions: ``(name, shape, divisor)``, each
    weight a standard normal draw divided by ``divisor``, each bias (``divisor`` None)
    zeros."""
    gates = CELLS[cell_type] * hidden_dim
    return [
        ("W_embed", (vocabulary, wordvec_dim), 100),
        ("W_proj", (input_dim, hidden_dim), math.sqrt(input_dim)),
        ("b_proj", (hidden_dim,), None),
        ("Wx", (wordvec_dim, gates), math.sqrt(wordvec_dim)),
        ("Wh", (hidden_dim, gates), math.sqrt(hidden_dim)),
        ("b", (gates,), None),
        ("W_vocab", (hidden_dim, vocabulary), math.sqrt(hidden_dim)),
        ("b_vocab", (vocabulary,), None),
    ]


def check_arguments(
    word_to_idx: Any, cell_type: Any, input_dim: Any, wordvec_dim: Any, hidden_dim: Any
) -> tuple[int, int, int]:
    """The checks of a captioning model's arguments (this module's model, and the PyTorch
    edition's); returns the three sizes as ints."""
    if cell_type not in CELLS:
        raise ValueError(f"cell_type must be 'rnn' or 'lstm'; got {cell_type!r}")
    if not isinstance(word_to_idx, dict) or "<NULL>" not in word_to_idx:
        raise ValueError("word_to_idx must be a dict of words to indices holding '<NULL>'")
    return (
        count("input_dim", input_dim, minimum=1),
        count("wordvec_dim", wordvec_dim, minimum=1),
        count("hidden_dim", hidden_dim, minimum=1),
    )


class CaptioningRNN(Classifier):
    """Captions from image features with a vanilla RNN or an LSTM (the assignment's model).

    Parameters
    ----------
    word_to_idx : dict of str to int
        The vocabulary, ``V`` words; it must hold ``'<NULL>'`` (padding), and ``'<START>'``
        and ``'<END>'`` for :meth:`sample`.
    input_dim : int, default 512
        D, the size of an image's feature vector.
    wordvec_dim : int, default 128
        W, the size of a word vector.
    hidden_dim : int, default 128
        H, the size of the hidden state.
    cell_type : {'rnn', 'lstm'}
    dtype : 'float32' (default) or 'float64' (or np.float32, np.float64)
    seed : int, optional, keyword-only
        Seeds the weights; without it they come from NumPy's global RNG, drawn as the
        assignment draws them (``W_embed``, ``W_proj``, ``Wx``, ``Wh``, ``W_vocab``), so a
        seeded notebook reproduces its numbers.
    backend, device : optional, keyword-only
        Where the parameters live (default :func:`xpnn.get_backend`, its default device).

    Attributes
    ----------
    params : dict
        ``W_proj (D, H)``, ``b_proj (H,)``, ``W_embed (V, W)``, ``Wx (W, kH)``, ``Wh (H, kH)``,
        ``b (kH,)``, ``W_vocab (H, V)``, ``b_vocab (V,)``, with ``k`` 1 for the RNN, 4 for
        the LSTM.
    word_to_idx, idx_to_word, cell_type, dtype, backend, device
    """

    #: No dropout: the Solver's compiled step draws no dropout key for it.
    use_dropout = False

    def __init__(
        self,
        word_to_idx: dict[str, int],
        input_dim: int = 512,
        wordvec_dim: int = 128,
        hidden_dim: int = 128,
        cell_type: str = "rnn",
        dtype: Any = "float32",
        *,
        seed: int | None = None,
        backend: str | None = None,
        device: Any = None,
    ):
        input_dim, wordvec_dim, hidden_dim = check_arguments(
            word_to_idx, cell_type, input_dim, wordvec_dim, hidden_dim
        )
        vocabulary = len(word_to_idx)  # V, as the assignment counts it
        self.cell_type = cell_type
        self.word_to_idx = dict(word_to_idx)
        self.idx_to_word = {i: w for w, i in word_to_idx.items()}
        self._null = word_to_idx["<NULL>"]
        self._start = word_to_idx.get("<START>")
        self._end = word_to_idx.get("<END>")
        self.reg = 0.0
        rng = weight_rng(seed)
        params = {
            name: host_zeros(*shape) if divisor is None else rng.randn(*shape) / divisor
            for name, shape, divisor in parameter_draws(
                vocabulary, input_dim, wordvec_dim, hidden_dim, cell_type
            )
        }
        self._place(params, dtype, backend, device)

    # --------------------------------------------------------------- training

    def loss(self, features: Any, captions: Any) -> tuple[Any, dict[str, Any]]:
        """The captioning loss and its gradients for a minibatch.

        The input words are ``captions[:, :-1]``, the targets ``captions[:, 1:]``; steps
        whose target is ``<NULL>`` do not count.

        Parameters
        ----------
        features : array, shape (N, D)
        captions : integer array, shape (N, T + 1)

        Returns
        -------
        loss : 0-d array
        grads : dict
            One gradient per parameter, in its shape and dtype.
        """
        return self._compute(self.params, [], features, captions, None)

    def _compute(self, params: dict, bn_params: list, X: Any, y: Any, key: Any) -> Any:
        if y is None:
            raise TypeError("CaptioningRNN.loss needs captions: loss(features, captions)")
        xp = self._namespace(params, X, y)
        p = params
        if y.ndim != 2 or y.shape[1] < 2 or not xp.isdtype(y.dtype, "integral"):
            raise ValueError(
                "captions must be an integer array (N, T + 1) of word indices, T >= 1; got "
                f"shape {tuple(y.shape)}, dtype {y.dtype}"
            )
        vocabulary = p["W_embed"].shape[0]
        check_range(
            xp, y, vocabulary, f"captions hold word indices outside the vocabulary [0, "
            f"{vocabulary})",
        )  # fmt: skip
        captions_in, captions_out = y[:, :-1], y[:, 1:]
        mask = captions_out != self._null
        h0, proj_cache = affine_forward(X, p["W_proj"], p["b_proj"])
        words, embed_cache = word_embedding_forward(captions_in, p["W_embed"])
        if self.cell_type == "rnn":
            forward, backward = rnn_forward, rnn_backward
        else:
            forward, backward = lstm_forward, lstm_backward
        h, cell_cache = forward(words, h0, p["Wx"], p["Wh"], p["b"])
        scores, vocab_cache = temporal_affine_forward(h, p["W_vocab"], p["b_vocab"])
        loss, dscores = temporal_softmax_loss(scores, captions_out, mask)
        grads: dict[str, Any] = {}
        dh, grads["W_vocab"], grads["b_vocab"] = temporal_affine_backward(dscores, vocab_cache)
        dwords, dh0, grads["Wx"], grads["Wh"], grads["b"] = backward(dh, cell_cache)
        grads["W_embed"] = word_embedding_backward(dwords, embed_cache)
        _, grads["W_proj"], grads["b_proj"] = affine_backward(dh0, proj_cache)
        return loss, {k: grads[k] for k in params}

    # --------------------------------------------------------------- sampling

    def sample(self, features: Any, max_length: int = 30) -> Any:
        """Greedy captions: at each step, the most likely word given the words so far.

        Starts from ``<START>`` and the projected features; runs ``max_length`` steps
        (words after ``<END>`` are kept, as in the assignment; :func:`decode_captions`
        stops at ``<END>``).

        Parameters
        ----------
        features : array, shape (N, D)
        max_length : int, default 30

        Returns
        -------
        captions : integer array, shape (N, max_length)
            On the parameters' backend and device.
        """
        if self._start is None:
            raise ValueError("sample needs '<START>' in word_to_idx")
        max_length = count("max_length", max_length, minimum=1)
        p = self.params
        xp = self._namespace(p, features, None)
        h, _ = affine_forward(features, p["W_proj"], p["b_proj"])
        c = xp.zeros(h.shape, dtype=h.dtype, device=device_of(h))
        # The words are argmaxes over the vocabulary: in range, so no per-step range check
        # (a device-to-host read) is needed.
        with label_range_check(False):
            chosen = self._greedy(xp, features.shape[0], h, c, max_length)
        return xp.concat(chosen, axis=1)

    def _greedy(self, xp: Any, n: int, h: Any, c: Any, max_length: int) -> list[Any]:
        p = self.params
        word = xp.full((n, 1), self._start, dtype=xp.int64, device=device_of(h))
        chosen = []
        for _ in range(max_length):
            x, _ = word_embedding_forward(word, p["W_embed"])
            x = x[:, 0, :]
            if self.cell_type == "rnn":
                h, _ = rnn_step_forward(x, h, p["Wx"], p["Wh"], p["b"])
            else:
                h, c, _ = lstm_step_forward(x, h, c, p["Wx"], p["Wh"], p["b"])
            scores, _ = affine_forward(h, p["W_vocab"], p["b_vocab"])
            word = xp.reshape(xp.astype(xp.argmax(scores, axis=1), xp.int64), (n, 1))
            chosen.append(word)
        return chosen
