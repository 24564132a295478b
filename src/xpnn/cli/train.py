"""``xpnn train``: train a model from the command line, with progress and checkpoints.

With no arguments it trains ``ThreeLayerConvNet`` on the offline 8x8 digits with the NumPy
backend and prints a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._backend import BACKENDS
from .._io import write_atomically

#: Hyperparameters of the default runs, per (model, dataset).
DEFAULTS = {
    ("cnn", "digits"): {"epochs": 15, "batch_size": 50, "lr": 5e-3},
    ("fcn", "digits"): {"epochs": 15, "batch_size": 50, "lr": 5e-3},
    ("cnn", "cifar10"): {"epochs": 5, "batch_size": 50, "lr": 1e-3},
    ("fcn", "cifar10"): {"epochs": 10, "batch_size": 100, "lr": 1e-3},
}


def add_parser(commands: Any) -> None:
    """Add the ``train`` subcommand to the ``xpnn`` parser."""
    parser = commands.add_parser(
        "train",
        help="train a model (default: ThreeLayerConvNet on the offline digits)",
        description=(
            "Train ThreeLayerConvNet (cnn) or FullyConnectedNet with batch norm (fcn) on "
            "scikit-learn's 8x8 digits (offline, the default) or CIFAR-10 (xpnn download "
            "cifar10 first), with xpnn's hand-derived layers on the chosen backend."
        ),
    )
    parser.add_argument("--model", choices=("cnn", "fcn"), default="cnn")
    parser.add_argument("--dataset", choices=("digits", "cifar10"), default="digits")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="directory holding cifar-10-batches-py (default: $XPNN_DATA_DIR, else ~/.cache/xpnn)",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="numpy")
    parser.add_argument(
        "--epochs", type=int, help="total epochs (a resumed run continues up to it)"
    )
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument(
        "--update-rule", choices=("sgd", "sgd_momentum", "rmsprop", "adam"), default="adam"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--checkpoint-dir", type=Path, help="write a checkpoint after every epoch here"
    )
    parser.add_argument("--resume", type=Path, metavar="PATH", help="continue from a checkpoint")
    parser.add_argument(
        "--metrics-out", type=Path, metavar="FILE", help="write the run's metrics as JSON"
    )
    parser.add_argument(
        "--plot", type=Path, metavar="FILE", help="save loss and accuracy curves as a PNG"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xpnn train``; returns the exit status."""
    from ..solver import TrainingDiverged

    try:
        return _train(args)
    except TrainingDiverged as err:
        print(f"xpnn train: {err}", file=sys.stderr)
        return 1
    except (ValueError, OSError, ImportError, RuntimeError) as err:
        print(f"xpnn train: {err}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    from .. import data as datasets
    from .._backend import get_namespace
    from ..solver import Solver

    defaults = DEFAULTS[(args.model, args.dataset)]
    epochs = args.epochs if args.epochs is not None else defaults["epochs"]
    batch_size = args.batch_size if args.batch_size is not None else defaults["batch_size"]
    lr = args.lr if args.lr is not None else defaults["lr"]
    for name, value in (("--epochs", epochs), ("--batch-size", batch_size)):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value}")
    if not lr > 0:
        raise ValueError(f"--lr must be positive; got {lr}")
    if args.plot is not None:
        _require_matplotlib()
    get_namespace(args.backend)  # fails now, with the install hint, if it is missing
    if args.backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)

    if args.dataset == "digits":
        data = datasets.load_digits(seed=args.seed)
    else:
        root = None if args.data_dir is None else Path(args.data_dir) / "cifar-10-batches-py"
        data = datasets.get_CIFAR10_data(root=root)
    # The models are float32: give them float32 images (as the assignment's
    # FullyConnectedNet does), rather than promote every layer to float64.
    data = {k: v.astype(np.float32) if k.startswith("X_") else v for k, v in data.items()}
    model = _model(args.model, data["X_train"].shape[1:], args.backend, args.seed)
    checkpoint_name = None
    if args.checkpoint_dir is not None:
        checkpoint_name = str(args.checkpoint_dir / f"{args.model}_{args.dataset}")
    solver = Solver(
        model,
        data,
        update_rule=args.update_rule,
        optim_config={"learning_rate": lr},
        lr_decay=0.95,
        batch_size=batch_size,
        num_epochs=epochs,
        num_train_samples=1000,
        checkpoint_name=checkpoint_name,
        print_every=50,
        verbose=not args.quiet,
        seed=args.seed,
    )
    if args.resume is not None:
        solver.load_checkpoint(args.resume)
    start = time.perf_counter()
    solver.train()
    seconds = time.perf_counter() - start
    val_acc = solver.check_accuracy(data["X_val"], data["y_val"])
    test_acc = solver.check_accuracy(data["X_test"], data["y_test"])
    metrics = {
        "model": type(model).__name__,
        "dataset": args.dataset,
        "backend": args.backend,
        "epochs": solver.epoch,
        "seconds": round(seconds, 3),
        "loss_history": solver.loss_history,
        "train_acc_history": solver.train_acc_history,
        "val_acc_history": solver.val_acc_history,
        "best_val_acc": solver.best_val_acc,
        "val_acc": val_acc,
        "test_acc": test_acc,
    }
    if args.metrics_out is not None:
        text = json.dumps(metrics, indent=1) + "\n"
        write_atomically(args.metrics_out, lambda file: file.write(text), binary=False)
    if args.plot is not None:
        _plot(solver, args.plot)
    print(
        f"{metrics['model']} on {args.dataset} ({args.backend}): {solver.epoch} epochs in "
        f"{seconds:.1f} s, best val acc {solver.best_val_acc:.3f}, val acc {val_acc:.3f}, "
        f"test acc {test_acc:.3f}"
    )
    return 0


def _model(kind: str, input_shape: tuple[int, ...], backend: str, seed: int) -> Any:
    from ..classifiers import FullyConnectedNet, ThreeLayerConvNet

    np.random.seed(seed)  # noqa: NPY002  (the models draw weights as the assignment does)
    if kind == "cnn":
        small = input_shape[-1] <= 16
        return ThreeLayerConvNet(
            input_dim=tuple(input_shape),
            num_filters=16 if small else 32,
            filter_size=3 if small else 7,
            hidden_dim=100,
            weight_scale=1e-2 if small else 1e-3,
            reg=1e-3,
            dtype=np.float32,
            backend=backend,
        )
    return FullyConnectedNet(
        [100, 100],
        input_dim=math.prod(input_shape),
        num_classes=10,
        normalization="batchnorm",
        reg=1e-3,
        weight_scale=5e-2,
        dtype=np.float32,
        backend=backend,
    )


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        from .._install import install_command

        raise ImportError(
            f"--plot needs matplotlib, which is not installed; {install_command('plot')}"
        ) from None


def _plot(solver: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7))
    top.plot(solver.loss_history, ".", markersize=2)
    top.set(title="Training loss", xlabel="Iteration", ylabel="loss")
    bottom.plot(solver.train_acc_history, "-o", label="train")
    bottom.plot(solver.val_acc_history, "-o", label="val")
    bottom.set(title="Accuracy", xlabel="Accuracy check (first iteration, then each epoch)")
    bottom.legend(loc="lower right")
    figure.tight_layout()
    write_atomically(path, lambda file: figure.savefig(file, format="png"))
    plt.close(figure)
