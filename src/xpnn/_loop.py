"""The CS231n Solver's training loop, shared by :class:`xpnn.solver.Solver` and
:class:`xpnn.torch.training.Trainer`.

:class:`TrainingLoop` runs the iterations, the per-epoch bookkeeping, the accuracy checks
(at the first and last iteration and at each epoch's end) with the best parameters kept,
and the output: a progress bar, or the assignment's printed lines. A subclass provides
the settings (``X_train``, ``batch_size``, ``num_epochs``, ``verbose``, ``progress``,
``print_every``, ...), the state (``epoch``, ``iteration``, the histories,
``best_val_acc``) and the hooks: ``_step``, ``_end_epoch``, ``check_accuracy``,
``_has_best``, ``_keep_best``, ``_restore_best`` and ``_save_checkpoint``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["TrainingLoop", "checkpoint_path"]


def checkpoint_path(prefix: str | Path, epoch: int, suffix: str) -> Path:
    """``{prefix}_epoch_{epoch}{suffix}``, the epoch zero-padded to 3 digits so that a
    directory listing sorts the checkpoints in training order."""
    return Path(f"{prefix}_epoch_{epoch:03d}{suffix}")


class TrainingLoop:
    """Minibatch training up to ``num_epochs``, with a tqdm bar when asked for (default:
    ``verbose`` on a terminal), else the lines ``(Iteration t / T) loss: ...`` and
    ``(Epoch e / E) train acc: ...; val_acc: ...``."""

    X_train: Any
    y_train: Any
    X_val: Any
    y_val: Any
    batch_size: int
    num_epochs: int
    num_train_samples: int | None
    num_val_samples: int | None
    verbose: bool
    progress: bool | None
    print_every: int
    epoch: int
    iteration: int
    best_val_acc: float
    best_epoch: int | None
    loss_history: list[float]
    train_acc_history: list[float]
    val_acc_history: list[float]

    @property
    def iterations_per_epoch(self) -> int:
        return max(int(self.X_train.shape[0]) // self.batch_size, 1)

    def train(self) -> None:
        """Train up to ``num_epochs`` in total (continuing after ``load_checkpoint``), then
        put the parameters of the best validation accuracy back into the model."""
        per_epoch = self.iterations_per_epoch
        total = self.num_epochs * per_epoch
        if self.iteration >= total and self.iteration > 0:
            raise ValueError(
                f"nothing to train: the run is at epoch {self.epoch} (iteration "
                f"{self.iteration}) and num_epochs is {self.num_epochs}; raise num_epochs to "
                "continue"
            )
        bar = self._progress_bar(total)
        try:
            for t in range(self.iteration, total):
                loss = self._step(t, total)
                self.loss_history.append(loss)
                self.iteration = t + 1
                self._report_loss(bar, t, total, loss)
                epoch_end = (t + 1) % per_epoch == 0
                if epoch_end:
                    self.epoch += 1
                    self._end_epoch()
                if t == 0 or t == total - 1 or epoch_end:
                    self._check_and_keep_best(bar)
        finally:
            if bar is not None:
                bar.close()
        if self._has_best():
            self._restore_best()

    def _check_and_keep_best(self, bar: Any) -> None:
        train_acc = self.check_accuracy(
            self.X_train, self.y_train, num_samples=self.num_train_samples
        )
        val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if val_acc > self.best_val_acc or not self._has_best():
            self.best_val_acc = max(val_acc, self.best_val_acc)
            self.best_epoch = self.epoch
            self._keep_best()
        self._report_accuracies(bar, train_acc, val_acc)
        self._save_checkpoint()

    # ------------------------------------------------------------------ hooks

    def _step(self, t: int, total: int) -> float:
        """One minibatch update; returns the loss."""
        raise NotImplementedError

    def _end_epoch(self) -> None:
        """After the last step of an epoch (``epoch`` already counts it): decay the rate."""
        raise NotImplementedError

    def check_accuracy(self, X: Any, y: Any, num_samples: int | None = None) -> float:
        raise NotImplementedError

    def _has_best(self) -> bool:
        raise NotImplementedError

    def _keep_best(self) -> None:
        """Keep a copy of the current parameters (and running averages) as the best."""
        raise NotImplementedError

    def _restore_best(self) -> None:
        raise NotImplementedError

    def _save_checkpoint(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ output

    def _progress_bar(self, total: int) -> Any:
        show = self.progress
        if show is None:
            show = self.verbose and sys.stderr.isatty()
        if not show:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=self.iteration, unit="it", dynamic_ncols=True)

    def _report_loss(self, bar: Any, t: int, total: int, loss: float) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(epoch=self.epoch + 1, loss=f"{loss:.4f}", refresh=False)
        elif self.verbose and t % self.print_every == 0:
            print(f"(Iteration {t + 1} / {total}) loss: {loss:f}")

    def _report_accuracies(self, bar: Any, train_acc: float, val_acc: float) -> None:
        if self.verbose:
            self._write(
                bar,
                f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:f}; "
                f"val_acc: {val_acc:f}",
            )

    @staticmethod
    def _write(bar: Any, line: str) -> None:
        if bar is not None:
            bar.write(line)
        else:
            print(line)
