"""The CS231n ``CaptioningSolver`` on the Solver's training loop.

The assignment's captioning solver (the NumPy edition's ``captioning_solver.py``): its
keyword arguments, minibatches of captions drawn with replacement with their images'
features (as :func:`xpnn.coco.sample_coco_minibatch` draws them), an update rule of
:mod:`xpnn.optim` per parameter, and the learning rate decayed after each epoch. It has no
accuracy to check, so it keeps no best parameters. It runs on the loop of
:class:`xpnn.solver.Solver` and has what that loop gives:

* a progress bar when ``verbose`` and standard error is a terminal, the assignment's
  ``(Iteration t / T) loss: ...`` lines otherwise;
* checkpoints (``checkpoint_name``) at the first and last iteration and at each epoch's
  end, written atomically, and :meth:`~xpnn.solver.Solver.load_checkpoint`, after which
  :meth:`train` continues exactly where the run stopped;
* a NaN or infinite loss, or an update that makes a parameter non-finite, stops training
  with :class:`~xpnn.solver.TrainingDiverged` before the update;
* on JAX, one compiled step (forward, backward and update under ``jax.jit``, the time
  loop a ``lax.scan``), as the Solver compiles its classifiers' steps.

Captions and features may live on another backend than the model: each minibatch is moved
to the model's backend and device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._backend import to_numpy
from ._config import label_range_check
from .solver import Solver, _take

__all__ = ["CaptioningSolver"]

_SPLIT_KEYS = ("train_captions", "train_image_idxs", "train_features")


class CaptioningSolver(Solver):
    """Train an image-captioning model with minibatch gradient descent.

    Parameters
    ----------
    model : object
        Has ``params`` (a dict of arrays) and ``loss(features, captions)``, which returns
        ``(loss, grads)`` with ``grads`` keyed like ``params``
        (:class:`xpnn.classifiers.CaptioningRNN`).
    data : dict
        From :func:`xpnn.coco.load_coco_data`: ``train_captions`` (N, T) word indices,
        ``train_image_idxs`` (N,) and ``train_features`` (images, D).
    update_rule : {'sgd', 'sgd_momentum', 'rmsprop', 'adam'}
    optim_config : dict
        Hyperparameters of the update rule; each parameter gets its own copy.
    lr_decay : float
        ``learning_rate`` is multiplied by it after each epoch.
    batch_size : int
    num_epochs : int
        Total epochs (``N // batch_size`` iterations each, at least one); a resumed run
        continues up to it.
    checkpoint_name : str or None
        Path prefix of the checkpoints, ``{checkpoint_name}_epoch_{epoch:03d}.npz``.
    print_every : int
    verbose : bool
    seed : int, optional
        Seed of the solver's own NumPy generator for the minibatches; None (the
        assignment's behaviour) draws from NumPy's global random state.
    progress : bool, optional
        Show a progress bar; default: when ``verbose`` and standard error is a terminal.
    jit : bool, optional
        Train with one compiled ``jax.jit`` step; default: when the parameters are JAX
        arrays. False takes the eager step on JAX too (each operation dispatched alone).

    Attributes
    ----------
    loss_history : list of float
    epoch, iteration : int
    """

    def __init__(self, model: Any, data: Mapping[str, Any], **kwargs: Any):
        self.model = model
        missing = [k for k in _SPLIT_KEYS if k not in data]
        if missing:
            raise ValueError(
                f"data must hold {', '.join(_SPLIT_KEYS)} (xpnn.coco.load_coco_data gives "
                f"them); missing {missing}"
            )
        self.data = data
        jit = kwargs.pop("jit", None)
        self._loop_options(kwargs)
        self.parallel, self._compiled = None, None
        self.jit = self._jit_setting(jit)
        self.num_train_samples = self.num_val_samples = None
        self._reset()
        self._captions_checked: Any = None

    @property
    def iterations_per_epoch(self) -> int:
        return max(int(self.data["train_captions"].shape[0]) // self.batch_size, 1)

    def _step(self, t: int, total: int) -> float:
        """One minibatch of captions (drawn as ``sample_coco_minibatch`` draws them, from
        this solver's generator), and the update, committed only if everything is finite."""
        self._check_captions()
        rows = self.rng.choice(int(self.data["train_captions"].shape[0]), self.batch_size)
        captions = _take(self.data["train_captions"], rows)
        images = to_numpy(_take(self.data["train_image_idxs"], rows))  # an index, on the host
        features = _take(self.data["train_features"], images)
        features, captions = self._to_model(features, captions)
        if self.jit:
            return self._compiled_step(features, captions, t, total)
        checked = label_range_check(False) if self._captions_checked is not None else None
        return self._eager_step(lambda: self.model.loss(features, captions), t, total, checked)

    def _check_captions(self) -> None:
        """Every training caption's words inside the model's vocabulary, checked once per
        caption array (again if ``data['train_captions']`` is replaced), not at every step:
        the compiled step cannot read its traced captions. The vocabulary is the rows of
        the model's ``W_embed`` (a model without one keeps the per-step check of its loss).
        """
        captions = self.data["train_captions"]
        if self._captions_checked is captions or "W_embed" not in self.model.params:
            return
        vocabulary = int(self.model.params["W_embed"].shape[0])
        words = to_numpy(captions)
        if words.size and (words.min() < 0 or words.max() >= vocabulary):
            raise ValueError(
                f"train_captions hold word indices outside the model's vocabulary [0, "
                f"{vocabulary})"
            )
        self._captions_checked = captions

    def train(self) -> None:
        """Train up to ``num_epochs`` in total (continuing after ``load_checkpoint``).

        Raises
        ------
        TrainingDiverged
            The loss or an updated parameter is not finite; the model keeps the
            parameters of the step before.
        ValueError
            A training caption holds a word outside the model's vocabulary.
        """
        super().train()

    def _check_and_keep_best(self, bar: Any) -> None:
        # No accuracy for captions (the assignment's solver has none): only the checkpoint.
        self._save_checkpoint()

    def _has_best(self) -> bool:
        return False

    def check_accuracy(self, *args: Any, **kwargs: Any) -> float:
        """Not defined for captions (the assignment's ``check_accuracy`` computes nothing
        meaningful either): use the loss, or compare sampled captions."""
        raise NotImplementedError(
            "CaptioningSolver has no accuracy: watch loss_history, or compare "
            "model.sample(features) with the true captions (xpnn.coco.decode_captions)"
        )
