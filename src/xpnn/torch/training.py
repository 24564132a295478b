"""Training a ``torch.nn`` model with ``torch.optim``, the way xpnn's ``Solver`` trains.

:class:`Trainer` is the CS231n ``Solver``'s loop for a ``torch.nn.Module`` (an
:mod:`xpnn.torch.nn` model or a plain ``torch.nn`` one) and a ``torch.optim`` optimizer:
minibatches sampled with replacement, the accuracy on a sample of the training set and on
the validation set at the first and last iteration and at each epoch's end, a learning
rate scheduler stepped per epoch, the best weights restored at the end, the Solver's
printed lines or a progress bar, a non-finite loss or gradient stopped with
:class:`xpnn.solver.TrainingDiverged`, and atomic checkpoints from which a run resumes
exactly. :func:`make_optimizer` builds the ``torch.optim`` counterpart of each of
:mod:`xpnn.optim`'s update rules.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from .._io import write_atomically
from .._loop import TrainingLoop, checkpoint_path
from .._params import count
from ..solver import TrainingDiverged
from . import functional as XF

__all__ = ["Trainer", "make_optimizer"]

_FORMAT = "xpnn-torch-checkpoint-1"


def make_optimizer(
    model: torch.nn.Module, update_rule: str, learning_rate: float, *, reg: float = 0.0
) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimizer that follows one of :mod:`xpnn.optim`'s update rules.

    Parameters
    ----------
    model : torch.nn.Module
    update_rule : {'sgd', 'sgd_momentum', 'rmsprop', 'adam'}
        ``torch.optim.SGD``, ``SGD(momentum=0.9)``, ``RMSprop(alpha=0.99, eps=1e-8)`` or
        ``Adam(betas=(0.9, 0.999), eps=1e-8)``: xpnn's defaults. (``sgd_momentum`` keeps
        the velocity in units of the gradient, as torch does, so it matches xpnn's
        ``v = mu*v - lr*dw`` exactly while the learning rate is constant.)
    learning_rate : float
    reg : float, default 0
        L2 regularization ``0.5 * reg * sum(W**2)`` on the weights only (the parameters
        with two or more axes, as xpnn's classifiers do): ``weight_decay=reg`` on those,
        0 on biases and batch-norm parameters.

    Returns
    -------
    torch.optim.Optimizer

    Raises
    ------
    ValueError
        An unknown ``update_rule``, or a learning rate or ``reg`` out of range.
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive; got {learning_rate}")
    if not reg >= 0:
        raise ValueError(f"reg must be non-negative; got {reg}")
    weights = [p for p in model.parameters() if p.ndim >= 2]
    others = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": weights, "weight_decay": reg}, {"params": others, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if update_rule == "sgd":
        return torch.optim.SGD(groups, lr=learning_rate)
    if update_rule == "sgd_momentum":
        return torch.optim.SGD(groups, lr=learning_rate, momentum=0.9)
    if update_rule == "rmsprop":
        return torch.optim.RMSprop(groups, lr=learning_rate, alpha=0.99, eps=1e-8)
    if update_rule == "adam":
        return torch.optim.Adam(groups, lr=learning_rate, betas=(0.9, 0.999), eps=1e-8)
    raise ValueError(
        f"update_rule must be one of 'sgd', 'sgd_momentum', 'rmsprop', 'adam'; got {update_rule!r}"
    )


class Trainer(TrainingLoop):
    """Train a ``torch.nn`` classifier with a ``torch.optim`` optimizer, like ``Solver``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of inputs to scores (N, C). Its parameters' device and (floating)
        dtype decide where training runs and what the inputs are cast to.
    data : dict
        ``X_train``, ``y_train``, ``X_val``, ``y_val``: NumPy arrays or tensors. They stay
        in host memory; each minibatch is moved to the model's device.
    optimizer : torch.optim.Optimizer
        Over ``model``'s parameters (see :func:`make_optimizer`).
    scheduler : torch.optim.lr_scheduler.LRScheduler, optional
        Stepped once at each epoch's end (``ExponentialLR(optimizer, 0.95)`` is the
        Solver's ``lr_decay=0.95``).
    loss_fn : callable, default :func:`xpnn.torch.functional.softmax_loss`
        ``loss_fn(scores, y)`` -> a 0-d tensor (``torch.nn.functional.cross_entropy``
        works too).
    batch_size, num_epochs : int
        ``num_epochs`` is the total; a resumed run continues up to it.
    num_train_samples : int or None, default 1000
        Training rows sampled (with replacement) for the training accuracy (None: all).
    num_val_samples : int or None
        Validation rows sampled for the validation accuracy (None: all).
    checkpoint_name : str or None
        Path prefix of the checkpoints, ``{checkpoint_name}_epoch_{epoch:03d}.pt``, written
        at every accuracy check.
    print_every : int
        Iterations between printed losses (without a progress bar).
    verbose : bool
    seed : int, optional
        Seed of the Trainer's own ``torch.Generator`` (minibatches, accuracy samples);
        None uses torch's global generator.
    progress : bool, optional
        Show a progress bar; default: when ``verbose`` and standard error is a terminal.
    run_info : dict, optional
        JSON-like settings recorded in each checkpoint (``xpnn train`` keeps its own).

    Attributes
    ----------
    loss_history, train_acc_history, val_acc_history : list of float
    best_val_acc : float
    epoch, iteration : int
    """

    def __init__(
        self,
        model: torch.nn.Module,
        data: Mapping[str, Any],
        optimizer: torch.optim.Optimizer,
        *,
        scheduler: Any = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = XF.softmax_loss,
        batch_size: int = 100,
        num_epochs: int = 10,
        num_train_samples: int | None = 1000,
        num_val_samples: int | None = None,
        checkpoint_name: str | None = None,
        print_every: int = 10,
        verbose: bool = True,
        seed: int | None = None,
        progress: bool | None = None,
        run_info: Mapping[str, Any] | None = None,
    ) -> None:
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise ValueError(f"data must hold X_train, y_train, X_val, y_val; missing {missing}")
        batch_size = count("batch_size", batch_size, minimum=1)
        num_epochs = count("num_epochs", num_epochs, minimum=1)
        print_every = count("print_every", print_every, minimum=1)
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.loss_fn = loss_fn
        self.X_train, self.y_train = _host(data["X_train"]), _host(data["y_train"])
        self.X_val, self.y_val = _host(data["X_val"]), _host(data["y_val"])
        self.batch_size, self.num_epochs = batch_size, num_epochs
        self.num_train_samples, self.num_val_samples = num_train_samples, num_val_samples
        self.checkpoint_name = checkpoint_name
        self.print_every, self.verbose, self.progress = print_every, verbose, progress
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.run_info = dict(run_info or {})
        reference = next(iter(model.parameters()), None)
        if reference is None:
            raise ValueError(f"model must have parameters; {type(model).__name__} has none")
        self.device = reference.device
        self.dtype = reference.dtype if reference.is_floating_point() else torch.float32
        self.epoch = 0
        self.iteration = 0
        self.best_val_acc = 0.0
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] = {}
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.last_checkpoint: Path | None = None

    # ------------------------------------------------------------------ training

    def _batch(self, X: torch.Tensor, y: torch.Tensor | None, rows: torch.Tensor) -> tuple:
        X = X[rows].to(self.device, self.dtype, non_blocking=True)
        return X, None if y is None else y[rows].to(self.device, non_blocking=True)

    def _step(self, t: int, total: int) -> float:
        """One minibatch update, made only when the loss and every gradient are finite.

        The batch-norm running averages the forward pass updates are put back when the
        step is refused, so the model and optimizer stay those of the last good step.
        """
        rows = torch.randint(
            int(self.X_train.shape[0]), (self.batch_size,), generator=self.generator
        )
        X, y = self._batch(self.X_train, self.y_train, rows)
        buffers = [b.clone() for b in self.model.buffers()]
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(X), y)
        loss.backward()
        named = [(n, p.grad) for n, p in self.model.named_parameters() if p.grad is not None]
        checks = [loss.detach().reshape(1).to(torch.float64)]
        checks += [torch.isfinite(g).all().reshape(1).to(torch.float64) for _, g in named]
        value, *finite = torch.cat(checks).tolist()  # one host read per step
        bad = [n for (n, _), ok in zip(named, finite, strict=True) if not ok]
        if not math.isfinite(value) or bad:
            with torch.no_grad():
                for buffer, before in zip(self.model.buffers(), buffers, strict=True):
                    buffer.copy_(before)
            what = f"loss is {value}"
            if math.isfinite(value):
                what = f"the gradient of {', '.join(bad)} is not finite"
            kept = ""
            if self.last_checkpoint is not None:
                kept = f"; the last checkpoint, {self.last_checkpoint}, is intact"
            raise TrainingDiverged(
                f"{what} at iteration {t + 1} of {total} (epoch {self.epoch + 1}); training "
                f"stopped before the update{kept}. Lower the learning rate or check the data."
            )
        self.optimizer.step()
        return value

    @torch.no_grad()
    def check_accuracy(
        self, X: Any, y: Any, num_samples: int | None = None, batch_size: int = 100
    ) -> float:
        """Fraction of correct predictions (model in eval mode) on ``num_samples`` rows
        sampled with replacement (None: all rows)."""
        X, y = _host(X), _host(y)
        n = int(X.shape[0])
        if num_samples is not None and n > num_samples:
            rows = torch.randint(n, (num_samples,), generator=self.generator)
            X, y, n = X[rows], y[rows], num_samples
        was_training = self.model.training
        self.model.eval()
        try:
            correct = torch.zeros((), dtype=torch.int64, device=self.device)
            for start in range(0, n, batch_size):
                rows = torch.arange(start, min(start + batch_size, n))
                X_batch, y_batch = self._batch(X, y, rows)
                correct += (self.model(X_batch).argmax(dim=1) == y_batch).sum()
        finally:
            self.model.train(was_training)
        return int(correct) / n if n else 0.0

    # ------------------------------------------------------------------ loop hooks

    def _end_epoch(self) -> None:
        if self.scheduler is not None:
            self.scheduler.step()

    def _has_best(self) -> bool:
        return bool(self.best_state)

    def _keep_best(self) -> None:
        self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _restore_best(self) -> None:
        """The weights of the best validation accuracy, loaded into the model."""
        self.model.load_state_dict(self.best_state)

    # ------------------------------------------------------------------ checkpoints

    def _save_checkpoint(self) -> None:
        if self.checkpoint_name is None:
            return
        path = checkpoint_path(self.checkpoint_name, self.epoch, ".pt")
        state = {
            "format": _FORMAT,
            "epoch": self.epoch,
            "iteration": self.iteration,
            "batch_size": self.batch_size,
            "iterations_per_epoch": self.iterations_per_epoch,
            "run_info": self.run_info,
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "loss_history": self.loss_history,
            "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history,
            "model": self.model.state_dict(),
            "best": self.best_state,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "rng": self._random_states(),
        }
        write_atomically(path, lambda file: torch.save(state, file))
        self.last_checkpoint = path

    def _random_states(self) -> dict[str, Any]:
        """Every random state a run draws from: the Trainer's generator, torch's global
        CPU generator (dropout masks, and minibatches without a seed) and CUDA's."""
        states: dict[str, Any] = {"global": torch.get_rng_state()}
        if self.generator is not None:
            states["trainer"] = self.generator.get_state()
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        return states

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint written by this class; :meth:`train` then continues.

        The model's weights and buffers, the best weights, the optimizer's and the
        scheduler's state, histories, epoch, iteration and the random states are
        restored, tensors onto the model's device, so that training 2 epochs, resuming and
        training 1 more gives exactly the run of 3 epochs straight.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            The file is not a checkpoint of this format, or does not fit this Trainer
            (batch size, training-set size, model).
        """
        path = Path(path)
        state = _read_checkpoint(path)  # on the CPU: the RNG states must stay there
        for key, mine in (("batch_size", self.batch_size),
                          ("iterations_per_epoch", self.iterations_per_epoch)):  # fmt: skip
            if state[key] != mine:
                raise ValueError(
                    f"checkpoint {path} was trained with {key} {state[key]}, this Trainer "
                    f"has {mine}: an exact resume needs the same batch size and training set"
                )
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise ValueError(f"checkpoint {path} does not fit the model: {err}") from None
        self.best_state = {k: v.to(self.device) for k, v in state["best"].items()}
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        rng = state["rng"]
        torch.set_rng_state(rng["global"])
        if self.generator is not None and "trainer" in rng:
            self.generator.set_state(rng["trainer"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.epoch, self.iteration = state["epoch"], state["iteration"]
        self.best_val_acc = state["best_val_acc"]
        self.best_epoch = state.get("best_epoch")
        self.loss_history = list(state["loss_history"])
        self.train_acc_history = list(state["train_acc_history"])
        self.val_acc_history = list(state["val_acc_history"])
        self.run_info = dict(state["run_info"])
        self.last_checkpoint = path

    @staticmethod
    def checkpoint_info(path: str | os.PathLike) -> dict[str, Any]:
        """The metadata of a checkpoint (epoch, iteration, batch size, histories,
        ``run_info``), without its tensors."""
        state = _read_checkpoint(Path(path))
        skip = ("model", "best", "optimizer", "scheduler", "rng")
        return {k: v for k, v in state.items() if k not in skip}


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's contents, every tensor on the CPU, or a ValueError naming the file.

    Never loaded straight onto the model's device: ``torch.set_rng_state`` and
    ``torch.cuda.set_rng_state`` take CPU tensors only. The weights are copied onto the
    device by ``load_state_dict`` (the model's and the optimizer's), the best weights by
    the Trainer.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        # weights_only: tensors and plain containers only, no arbitrary unpickling
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError
        required = ("epoch", "iteration", "batch_size", "iterations_per_epoch", "model",
                    "best", "optimizer", "scheduler", "rng", "run_info", "loss_history",
                    "train_acc_history", "val_acc_history", "best_val_acc")  # fmt: skip
        if not all(key in state for key in required):
            raise ValueError
    except Exception:  # torch.load raises many types on a foreign or truncated file
        raise ValueError(
            f"{path} is not a complete xpnn torch checkpoint ({_FORMAT}: a .pt written by "
            "xpnn.torch.training.Trainer with checkpoint_name)"
        ) from None
    return state


def _host(array: Any) -> torch.Tensor:
    """A CPU tensor of a NumPy array (no copy) or a tensor (moved to the CPU)."""
    return array.detach().cpu() if isinstance(array, torch.Tensor) else torch.as_tensor(array)
