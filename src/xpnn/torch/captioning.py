"""The 2025/2026 PyTorch edition of the captioning assignment, computed by xpnn.

That edition's ``rnn_layers_pytorch`` functions take torch tensors and return outputs
only; autograd differentiates them. Here each is an :mod:`xpnn.torch.functional` function,
so autograd runs xpnn's hand-derived backward passes. :class:`CaptioningRNN` is that
edition's model (parameters are plain tensors in ``params``, ``loss`` returns a scalar
tensor) and :class:`CaptioningSolverPytorch` its solver (``torch.optim.Adam`` over the
parameters, sampled COCO minibatches). ``xpnn.cs231n.rnn_layers_pytorch``,
``xpnn.cs231n.classifiers.rnn_pytorch`` and ``xpnn.cs231n.captioning_solver_pytorch``
re-export them under the edition's module names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._params import count
from ..classifiers.rnn import check_arguments, parameter_draws
from ..coco import sample_coco_minibatch
from . import functional as XF

__all__ = [
    "CaptioningRNN",
    "CaptioningSolverPytorch",
    "affine_forward",
    "lstm_forward",
    "lstm_step_forward",
    "rnn_forward",
    "rnn_step_forward",
    "sigmoid",
    "temporal_affine_forward",
    "temporal_softmax_loss",
    "word_embedding_forward",
]


def affine_forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``x`` (N, d_1, ..., d_k) viewed as (N, D), times ``w`` (D, M), plus ``b`` (M,)."""
    return XF.affine(x, w, b)


def rnn_step_forward(x: Any, prev_h: Any, Wx: Any, Wh: Any, b: Any) -> torch.Tensor:
    """One tanh RNN step: ``next_h`` (N, H) from ``x`` (N, D) and ``prev_h`` (N, H)."""
    return XF.rnn_step(x, prev_h, Wx, Wh, b)


def rnn_forward(x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> torch.Tensor:
    """The hidden states (N, T, H) of a tanh RNN over ``x`` (N, T, D) from ``h0`` (N, H)."""
    return XF.rnn(x, h0, Wx, Wh, b)


def word_embedding_forward(x: Any, W: Any) -> torch.Tensor:
    """The word vectors (N, T, D) of the integer indices ``x`` (N, T) into ``W`` (V, D)."""
    return XF.word_embedding(x, W)


def lstm_step_forward(
    x: Any, prev_h: Any, prev_c: Any, Wx: Any, Wh: Any, b: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step (gates i, f, o, g): ``next_h, next_c``, each (N, H)."""
    return XF.lstm_step(x, prev_h, prev_c, Wx, Wh, b)


def lstm_forward(x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> torch.Tensor:
    """The hidden states (N, T, H) of an LSTM over ``x`` (N, T, D), the cell state
    starting at zero."""
    return XF.lstm(x, h0, Wx, Wh, b)


def temporal_affine_forward(x: Any, w: Any, b: Any) -> torch.Tensor:
    """``x`` (N, T, D) times ``w`` (D, M) plus ``b`` (M,), at every step: (N, T, M)."""
    return XF.temporal_affine(x, w, b)


def temporal_softmax_loss(x: Any, y: Any, mask: Any, verbose: bool = False) -> torch.Tensor:
    """Softmax cross-entropy of the scores ``x`` (N, T, V) for the words ``y`` (N, T),
    summed over the steps where ``mask`` (N, T) is true and averaged over N: a scalar
    tensor. ``verbose`` is accepted for the edition's signature and prints nothing (its
    backward is autograd's call of xpnn's)."""
    del verbose
    return XF.temporal_softmax_loss(x, y, mask)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """A numerically stable sigmoid (the helper the edition's file provides):
    ``torch.sigmoid``, which never overflows."""
    return torch.sigmoid(x)


class CaptioningRNN:
    """The PyTorch edition's captioning model, whose layers are xpnn's.

    Parameters
    ----------
    word_to_idx : dict of str to int
        The vocabulary; it must hold ``'<NULL>'``, and ``'<START>'`` for :meth:`sample`.
    input_dim, wordvec_dim, hidden_dim : int
        D, W and H (defaults 512, 128, 128).
    cell_type : {'rnn', 'lstm'}
    dtype : torch.dtype, default torch.float32
    device : optional, keyword-only
        Where the parameters live (default: torch's default device).

    Attributes
    ----------
    params : dict of str to torch.Tensor
        ``W_embed (V, W)``, ``W_proj (D, H)``, ``b_proj (H,)``, ``Wx (W, kH)``,
        ``Wh (H, kH)``, ``b (kH,)``, ``W_vocab (H, V)``, ``b_vocab (V,)`` (``k`` 1 for the
        RNN, 4 for the LSTM), drawn from torch's global generator in that order and scaled
        as the edition draws them, so a seeded notebook gets the same ones.
    """

    def __init__(
        self,
        word_to_idx: dict[str, int],
        input_dim: int = 512,
        wordvec_dim: int = 128,
        hidden_dim: int = 128,
        cell_type: str = "rnn",
        dtype: torch.dtype = torch.float32,
        *,
        device: Any = None,
    ):
        input_dim, wordvec_dim, hidden_dim = check_arguments(
            word_to_idx, cell_type, input_dim, wordvec_dim, hidden_dim
        )
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype; got {dtype!r}")
        self.cell_type = cell_type
        self.dtype = dtype
        self.word_to_idx = word_to_idx
        self.idx_to_word = {i: w for w, i in word_to_idx.items()}
        self._null = word_to_idx["<NULL>"]
        self._start = word_to_idx.get("<START>")
        self._end = word_to_idx.get("<END>")
        plan = parameter_draws(len(word_to_idx), input_dim, wordvec_dim, hidden_dim, cell_type)
        draws = {
            name: torch.zeros(shape) if divisor is None else torch.randn(shape) / divisor
            for name, shape, divisor in plan
        }
        self.params = {k: v.to(device=device, dtype=dtype) for k, v in draws.items()}

    def _recurrence(self) -> Any:
        return rnn_forward if self.cell_type == "rnn" else lstm_forward

    def loss(self, features: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
        """The training loss of ``captions`` (N, T + 1) for ``features`` (N, D): each next
        word's cross-entropy, ``<NULL>`` excluded, summed over time and averaged over N.

        Returns
        -------
        torch.Tensor
            A scalar; ``loss.backward()`` runs xpnn's backward passes into the parameters
            that require gradients.
        """
        p = self.params
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        mask = captions_out != self._null
        h0 = affine_forward(features, p["W_proj"], p["b_proj"])
        words = word_embedding_forward(captions_in, p["W_embed"])
        hidden = self._recurrence()(words, h0, p["Wx"], p["Wh"], p["b"])
        scores = temporal_affine_forward(hidden, p["W_vocab"], p["b_vocab"])
        return temporal_softmax_loss(scores, captions_out, mask)

    @torch.no_grad()
    def sample(self, features: torch.Tensor, max_length: int = 30) -> torch.Tensor:
        """Greedy captions (N, max_length) of word indices for ``features`` (N, D), starting
        from ``<START>``; every step is computed (no stop at ``<END>``), as in the edition.
        """
        if self._start is None:
            raise ValueError("sample needs '<START>' in word_to_idx")
        max_length = count("max_length", max_length, minimum=1)
        p = self.params
        n = features.shape[0]
        captions = torch.full((n, max_length), self._null, dtype=torch.long,
                              device=features.device)  # fmt: skip
        h = affine_forward(features, p["W_proj"], p["b_proj"])
        c = torch.zeros_like(h)
        words = torch.full((n,), self._start, dtype=torch.long, device=features.device)
        for t in range(max_length):
            x = p["W_embed"][words]
            if self.cell_type == "rnn":
                h = rnn_step_forward(x, h, p["Wx"], p["Wh"], p["b"])
            else:
                h, c = lstm_step_forward(x, h, c, p["Wx"], p["Wh"], p["b"])
            words = affine_forward(h, p["W_vocab"], p["b_vocab"]).argmax(dim=1)
            captions[:, t] = words
        return captions


class CaptioningSolverPytorch:
    """The PyTorch edition's solver: ``torch.optim.Adam`` over ``model.params`` on sampled
    COCO minibatches (:func:`xpnn.coco.sample_coco_minibatch`, NumPy's global RNG).

    Parameters
    ----------
    model : CaptioningRNN
        Anything whose ``loss(features, captions)`` returns a scalar tensor and whose
        ``params`` are the tensors to train.
    data : dict
        From :func:`xpnn.coco.load_coco_data`.
    learning_rate : float, default 1e-3
    batch_size : int, default 100
    num_epochs : int, default 10
    print_every : int, default 10
    verbose : bool, default True

    Attributes
    ----------
    loss_history : list of numpy scalars
        The loss of every iteration.
    """

    def __init__(self, model: Any, data: dict[str, Any], **kwargs: Any):
        self.model = model
        self.data = data
        self.learning_rate = float(kwargs.pop("learning_rate", 1e-3))
        self.batch_size = count("batch_size", kwargs.pop("batch_size", 100), minimum=1)
        self.num_epochs = count("num_epochs", kwargs.pop("num_epochs", 10))
        self.print_every = count("print_every", kwargs.pop("print_every", 10), minimum=1)
        self.verbose = bool(kwargs.pop("verbose", True))
        if kwargs:
            raise ValueError(f"Unrecognized arguments {', '.join(map(repr, kwargs))}")
        self.optim = torch.optim.Adam(list(model.params.values()), self.learning_rate)
        self._reset()

    def _reset(self) -> None:
        self.epoch = 0
        self.loss_history: list[Any] = []

    def _step(self) -> None:
        captions, features, _ = sample_coco_minibatch(self.data, self.batch_size, "train")
        some = next(iter(self.model.params.values()))
        captions = torch.from_numpy(np.asarray(captions)).long().to(some.device)
        features = torch.from_numpy(np.asarray(features)).to(device=some.device)
        loss = self.model.loss(features, captions)
        self.optim.zero_grad()
        loss.backward()
        self.optim.step()
        self.loss_history.append(loss.detach().cpu().numpy())

    def train(self) -> None:
        """Run ``num_epochs`` epochs of ``N // batch_size`` iterations (at least one)."""
        for value in self.model.params.values():
            value.requires_grad_()
        iterations_per_epoch = max(self.data["train_captions"].shape[0] // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        try:
            for t in range(num_iterations):
                self._step()
                if self.verbose and t % self.print_every == 0:
                    print(f"(Iteration {t + 1} / {num_iterations}) loss: "
                          f"{float(self.loss_history[-1]):f}")  # fmt: skip
                if (t + 1) % iterations_per_epoch == 0:
                    self.epoch += 1
        finally:
            for value in self.model.params.values():
                value.requires_grad_(False)
