"""The training loops' output: a progress bar, or the CS231n Solver's printed lines.

Shared by :class:`xpnn.solver.Solver` and :class:`xpnn.torch.training.Trainer`, which
inherit :class:`ProgressOutput`. They provide ``verbose``, ``progress``, ``print_every``,
``num_epochs``, ``epoch`` and ``iteration``.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["ProgressOutput"]


class ProgressOutput:
    """A tqdm bar when asked for (default: ``verbose`` on a terminal), else the lines
    ``(Iteration t / T) loss: ...`` and ``(Epoch e / E) train acc: ...; val_acc: ...``."""

    verbose: bool
    progress: bool | None
    print_every: int
    num_epochs: int
    epoch: int
    iteration: int

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
