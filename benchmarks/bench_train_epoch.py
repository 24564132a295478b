"""Time per epoch of ``xpnn train``'s default run on each backend, and of its steps.

Usage::

    python benchmarks/bench_train_epoch.py            # print the table
    python benchmarks/bench_train_epoch.py --write    # also write results/train_epoch_cpu.md

The model, data and settings are those of ``xpnn train`` (ThreeLayerConvNet on the 8x8
digits, float32, Adam, batch 50, 27 steps per epoch, an accuracy check on 1000 training
rows and the 200 validation rows after each epoch). Each backend trains in its own run,
epoch by epoch: the first epoch (which pays JAX's compilation) is reported apart, and
the steady time per epoch is the minimum over the following ones. On JAX both steps are
timed: the compiled one (the Solver's default there) and the eager one (``jit=False``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import platform
import time

import numpy as np
from _common import machine, write_result

from xpnn.cli.train import DEFAULTS, _model
from xpnn.data import load_digits
from xpnn.solver import Solver


def run(backend: str, jit: bool | None, epochs: int) -> tuple[float, float, float]:
    """(first epoch, steady epoch, final val acc) in seconds, for one backend."""
    settings = DEFAULTS[("cnn", "digits")]
    data = load_digits(seed=0)
    data = {k: v.astype(np.float32) if k.startswith("X_") else v for k, v in data.items()}
    model = _model("cnn", data["X_train"].shape[1:], backend, None, 0)
    solver = Solver(
        model,
        data,
        update_rule="adam",
        optim_config={"learning_rate": settings["lr"]},
        lr_decay=0.95,
        batch_size=settings["batch_size"],
        num_epochs=1,
        num_train_samples=1000,
        verbose=False,
        seed=0,
        jit=jit,
    )
    times = []
    for epoch in range(1, epochs + 1):
        solver.num_epochs = epoch
        start = time.perf_counter()
        solver.train()
        times.append(time.perf_counter() - start)
    return times[0], min(times[1:]), solver.val_acc_history[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()

    cases = [("numpy", None, "eager")]
    if importlib.util.find_spec("torch"):
        import torch

        torch.set_num_threads(2)
        cases.append(("torch", None, "eager"))
    if importlib.util.find_spec("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)  # as xpnn train does
        cases += [("jax", True, "compiled (jax.jit)"), ("jax", False, "eager")]

    rows = {}
    for backend, jit, step in cases:
        rows[(backend, step)] = run(backend, jit, args.epochs)
        print(backend, step, rows[(backend, step)])
    numpy_epoch = rows[("numpy", "eager")][1]
    report = [
        "# Time per epoch of `xpnn train` (ThreeLayerConvNet, 8x8 digits, float32)",
        "",
        f"{datetime.date.today()}, {machine()}, Python {platform.python_version()}, "
        f"NumPy {np.__version__}"
        + (f", torch {torch.__version__} (2 threads)" if "torch" in dir() else "")
        + (f", jax {jax.__version__}" if "jax" in dir() else "")
        + ". Reproduce: `python benchmarks/bench_train_epoch.py --write`.",
        "",
        "27 steps of batch 50 and one accuracy check (1000 training + 200 validation rows) "
        f"per epoch; steady = the fastest of epochs 2 to {args.epochs}, each backend in its "
        "own run.",
        "",
        "| backend | step | first epoch (s) | steady epoch (s) | / NumPy | val acc |",
        "|---|---|---|---|---|---|",
    ]
    for (backend, step), (first, steady, acc) in rows.items():
        report.append(
            f"| {backend} | {step} | {first:.3f} | {steady:.3f} | "
            f"{steady / numpy_epoch:.2f} | {acc:.3f} |"
        )
    print("\n".join(report))
    if args.write:
        write_result("train_epoch_cpu.md", report)


if __name__ == "__main__":
    main()
