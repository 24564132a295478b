"""``xpnn train``: train a model from the command line, with progress and checkpoints.

With no arguments it trains ``ThreeLayerConvNet`` on the offline 8x8 digits with the NumPy
backend and prints a one-line summary. ``--framework torch`` trains the CS231n PyTorch
notebook's three-layer convnet, built from ``xpnn.torch.nn``, with ``torch.optim``
instead (:mod:`xpnn.cli.train_torch`, imported only then).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._backend import BACKENDS
from .._io import write_atomically
from ..solver import UPDATE_RULES
from ._help import DefaultsHelpFormatter

#: Values of ``--framework``: xpnn's own Solver, or torch.nn modules and torch.optim.
FRAMEWORKS = ("xpnn", "torch")

#: ``--plot``'s formats, by the file's suffix.
PLOT_FORMATS = (".png", ".svg", ".pdf")

#: Hyperparameters of the default runs, per (model, dataset).
DEFAULTS = {
    ("cnn", "digits"): {"epochs": 15, "batch_size": 50, "lr": 5e-3},
    ("fcn", "digits"): {"epochs": 15, "batch_size": 50, "lr": 5e-3},
    ("cnn", "cifar10"): {"epochs": 5, "batch_size": 50, "lr": 1e-3},
    ("fcn", "cifar10"): {"epochs": 10, "batch_size": 100, "lr": 1e-3},
    ("rnn", "digits"): {"epochs": 10, "batch_size": 50, "lr": 1e-2},
    ("lstm", "digits"): {"epochs": 10, "batch_size": 50, "lr": 1e-2},
    ("rnn", "coco"): {"epochs": 1, "batch_size": 100, "lr": 5e-3},
    ("lstm", "coco"): {"epochs": 1, "batch_size": 100, "lr": 5e-3},
}
#: The captioning models (xpnn.cli.train_captions), and the data they caption.
CAPTIONING = ("rnn", "lstm")


def _defaults_of(key: str) -> str:
    """``default: cnn/fcn 15 on digits; cnn 5, fcn 10 on cifar10`` for the help."""
    parts = []
    for dataset in ("digits", "cifar10"):
        values = {model: DEFAULTS[(model, dataset)][key] for model in ("cnn", "fcn")}
        if len(set(values.values())) == 1:
            parts.append(f"{values['cnn']:g} on {dataset}")
        else:
            parts.append(", ".join(f"{m} {v:g}" for m, v in values.items()) + f" on {dataset}")
    return "default: " + "; ".join(parts)


def add_parser(commands: Any) -> None:
    """Add the ``train`` subcommand to the ``xpnn`` parser."""
    parser = commands.add_parser(
        "train",
        formatter_class=DefaultsHelpFormatter,
        help="train a model (default: ThreeLayerConvNet on the offline digits)",
        description=(
            "Train ThreeLayerConvNet (cnn) or FullyConnectedNet with batch norm (fcn) on "
            "scikit-learn's 8x8 digits (offline, the default) or CIFAR-10 (xpnn download "
            "cifar10 first); or the captioning model, CaptioningRNN with a vanilla RNN (rnn) "
            "or an LSTM (lstm), on the digits captioned in words (offline) or the COCO "
            "captioning data (xpnn download coco first). xpnn's hand-derived layers run on "
            "the chosen backend."
        ),
    )
    parser.add_argument(
        "--model",
        choices=("cnn", "fcn", *CAPTIONING),
        help="default: cnn (rnn and lstm: CaptioningRNN; 10 epochs on digits, 1 on coco, "
        "learning rate 1e-2 on digits, 5e-3 on coco)",
    )
    parser.add_argument(
        "--dataset",
        choices=("digits", "cifar10", "coco"),
        help="default: digits; the other choice is cifar10 for cnn and fcn, coco for rnn and lstm",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="directory holding cifar-10-batches-py, or the coco_captioning folder (default: "
        "the first that holds it of $XPNN_DATA_DIR, ./cs231n/datasets (the assignment's) "
        "and ~/.cache/xpnn)",
    )
    parser.add_argument(
        "--framework",
        choices=FRAMEWORKS,
        help="xpnn: xpnn's Solver and optim on --backend (the default); torch: the PyTorch "
        "notebook's three-layer convnet from xpnn.torch.nn, trained with torch.optim",
    )
    parser.add_argument(
        "--backend", choices=BACKENDS, default="numpy", help="the array library xpnn computes with"
    )
    parser.add_argument(
        "--device",
        default=None,
        help="device in the backend's terms, e.g. cuda:0 for torch (default: the "
        "backend's default device)",
    )
    parser.add_argument(
        "--devices",
        type=int,
        metavar="N",
        help="JAX: split each minibatch over N devices (data parallel; --batch-size must "
        "divide by N). Default: 1, or every device of a multi-process run",
    )
    parser.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="JAX, several processes: the address of process 0 (jax.distributed); give "
        "--num-processes and --process-id too. Each process trains on its shard of the data",
    )
    parser.add_argument("--num-processes", type=int, metavar="P", help="with --coordinator")
    parser.add_argument("--process-id", type=int, metavar="I", help="with --coordinator: 0 .. P-1")
    parser.add_argument(
        "--join-timeout",
        type=float,
        metavar="SECONDS",
        help="with --coordinator: how long to wait for the other processes (default 300)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help=f"total epochs (a resumed run continues up to it); {_defaults_of('epochs')}",
    )
    parser.add_argument("--batch-size", type=int, help=_defaults_of("batch_size"))
    parser.add_argument("--lr", type=float, help=f"learning rate; {_defaults_of('lr')}")
    parser.add_argument("--update-rule", choices=UPDATE_RULES, help="default: adam")
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of the weights, the data split and the minibatches (default: 0)",
    )
    parser.add_argument(
        "--checkpoint-dir", type=Path, help="write a checkpoint after every epoch here"
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="PATH",
        help="continue from a checkpoint; its model, dataset, seed, update rule, batch size "
        "and learning rate are used (giving another one is an error)",
    )
    parser.add_argument(
        "--metrics-out", type=Path, metavar="FILE", help="write the run's metrics as JSON"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE",
        help="save loss and accuracy curves; the suffix picks the format "
        f"({', '.join(PLOT_FORMATS)})",
    )
    parser.add_argument(
        "--num-train",
        type=int,
        metavar="N",
        help="train on the first N training images only (default: all; digits 1397, "
        "CIFAR-10 49000)",
    )
    parser.add_argument(
        "--threads",
        metavar="N|all",
        help="CPU threads of the BLAS and of torch (default: 1 on digits, whose small "
        "matrices gain nothing from more and lose up to 10x on a busy machine; all on "
        "CIFAR-10). JAX keeps its own thread pool",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xpnn train``; returns the exit status."""
    status, alone = _run(args)
    if status and alone and _signal_pipe:
        # A process of a multi-process run that fails on its own: a normal exit would wait
        # in jax.distributed.shutdown for the others, which wait for it in a collective.
        # (A refusal that every process reaches alike exits normally instead: the shutdown
        # then waits until the others have refused too, rather than cutting them off.)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _run(args: argparse.Namespace) -> tuple[int, bool]:
    """The exit status, and whether a failure is this process's alone (rather than one
    that every process of a multi-process run reaches alike)."""
    from ..solver import TrainingDiverged

    try:
        return _train(args), True
    except TrainingDiverged as err:
        print(f"xpnn train: {err}", file=sys.stderr)
        return 1, True
    except (UsageError, ValueError, OSError, ImportError) as err:
        if os.environ.get("XPNN_DEBUG"):
            raise
        print(f"xpnn train: {err}", file=sys.stderr)
        return 2, not isinstance(err, SharedUsageError)


class UsageError(Exception):
    """A mistake in the command line or its environment: one line, exit status 2."""


class SharedUsageError(UsageError):
    """A mistake that every process of a multi-process run finds alike, from what they all
    see the same (the settings, the devices), so that each of them refuses with the same
    line instead of one leaving the others waiting for it."""


def _train(args: argparse.Namespace) -> int:
    from .. import data as datasets

    settings = _settings(args)
    epochs = settings["epochs"]
    for name in ("epochs", "batch_size"):
        if settings[name] < 1:
            raise UsageError(
                f"--{name.replace('_', '-')} must be a positive integer; got {settings[name]}"
            )
    if not settings["lr"] > 0:
        raise UsageError(f"--lr must be positive; got {settings['lr']}")
    if settings["model"] in CAPTIONING:
        return _train_captions(args, settings)
    torch_device = None
    if settings["framework"] == "torch":
        from . import train_torch

        torch_device = train_torch.check_args(args, settings)
    distributed = _check_parallel_args(args, settings)
    _check_outputs(args)
    if args.plot is not None:
        _require_matplotlib()
    device = None
    if settings["framework"] == "xpnn":
        _require_backend(args.backend)
        device = _device(args.backend, args.device)
    process, processes = _join(args) if distributed else (0, 1)
    if distributed:
        # Both before any collective (the agreement itself is one): a process that
        # refused alone and exited would cut off the others in the middle of it.
        _check_devices_of_every_process(args)
        _agree(settings, args)  # before anything else can differ between the processes
    if process != 0:  # one process reports and writes; the Solver checkpoints from 0 too
        args.quiet, args.metrics_out, args.plot = True, None, None

    if settings["dataset"] == "digits":
        data = datasets.load_digits(seed=settings["seed"])
    else:
        data = datasets.get_CIFAR10_data(root=_cifar_root(args.data_dir))
    data = _first_training_images(data, settings["num_train"], settings["dataset"])
    # The models are float32: give them float32 images (as the assignment's
    # FullyConnectedNet does), rather than promote every layer to float64.
    data = {k: v.astype(np.float32) if k.startswith("X_") else v for k, v in data.items()}
    devices = None
    if args.backend == "jax" and (args.devices is not None or distributed):
        devices, data = _data_parallel(args, settings, data, process, processes)
    loop = _loop_options(args, settings)
    if settings["framework"] == "torch":
        solver, model_name = train_torch.make_trainer(
            settings, data, torch_device, checkpoint_name=loop["checkpoint_name"],
            quiet=args.quiet, run_info=loop["run_info"],
        )  # fmt: skip
        backend, where = "torch", f"torch framework, {torch_device}"
    else:
        solver, model_name = _solver(args, settings, data, loop, device, devices)
        backend = where = args.backend
        if devices is not None:
            where += f", {_count(devices, 'device')}" + (
                f" in {processes} processes" if processes > 1 else ""
            )
    first_epoch = _resume(args, solver, epochs, quiet=process != 0 or args.quiet)
    _interrupt_hint[:] = [lambda: _where_to_resume(args, settings, solver)]
    start = time.perf_counter()
    with _thread_limit(settings["threads"], backend=args.backend, framework=settings["framework"]):
        try:
            solver.train()
        except KeyboardInterrupt:
            raise Interrupted(_where_to_resume(args, settings, solver)) from None
        seconds = time.perf_counter() - start
        final_val_acc = solver.val_acc_history[-1]
        val_acc = solver.check_accuracy(data["X_val"], data["y_val"])
        test_acc = solver.check_accuracy(data["X_test"], data["y_test"])
    metrics = {
        "model": model_name,
        "dataset": settings["dataset"],
        "framework": settings["framework"],
        "backend": backend,
        "devices": devices or 1,
        "processes": processes,
        "batch_size": settings["batch_size"],
        "epochs": solver.epoch,
        "seconds": round(seconds, 3),
        "loss_history": solver.loss_history,
        "train_acc_history": solver.train_acc_history,
        "val_acc_history": solver.val_acc_history,
        "first_epoch": first_epoch,
        "num_train": settings["num_train"],
        "threads": settings["threads"],
        "final_val_acc": final_val_acc,
        "best_val_acc": solver.best_val_acc,
        "best_epoch": solver.best_epoch,
        "val_acc": val_acc,
        "test_acc": test_acc,
    }
    if process == 0:
        print(_summary(model_name, settings["dataset"], where, first_epoch, metrics))
    if args.metrics_out is not None:
        text = json.dumps(metrics, indent=1) + "\n"
        write_atomically(args.metrics_out, lambda file: file.write(text), binary=False)
    if args.plot is not None:
        _plot(solver, args.plot)
    return 0


def _resume(args: argparse.Namespace, solver: Any, epochs: int, *, quiet: bool) -> int:
    """``--resume``: load the checkpoint into ``solver``; returns the epoch it was at."""
    if args.resume is None:
        return 0
    solver.load_checkpoint(args.resume)
    first_epoch = solver.epoch
    if first_epoch >= epochs:
        raise UsageError(
            f"the checkpoint is already at epoch {first_epoch}; --epochs is the total, "
            f"so give more than {first_epoch} to continue"
        )
    if not quiet:
        print(f"resuming from epoch {first_epoch} of {epochs} ({args.resume})", flush=True)
    return first_epoch


def _train_captions(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """``--model rnn|lstm``: CaptioningRNN and the CaptioningSolver (train_captions)."""
    from . import train_captions

    train_captions.check_args(args, settings, UsageError)
    _check_parallel_args(args, settings)
    _check_outputs(args)
    _require_backend(args.backend)
    device = _device(args.backend, args.device)
    data = train_captions.load(settings, args.data_dir, UsageError)
    solver = train_captions.make_solver(
        args, settings, data, device, _loop_options(args, settings)
    )
    first_epoch = _resume(args, solver, settings["epochs"], quiet=args.quiet)
    with _thread_limit(settings["threads"], backend=args.backend, framework="xpnn"):
        try:
            seconds = train_captions.timed_train(solver)
        except KeyboardInterrupt:
            raise Interrupted(_where_to_resume(args, settings, solver)) from None
        train_captions.finish(args, settings, solver, data, first_epoch, seconds)
    return 0


def _summary(model: str, dataset: str, where: str, first_epoch: int, m: dict[str, Any]) -> str:
    """The run's last line: this run's epochs and seconds, the final and the best
    validation accuracy (the best parameters are the ones restored and tested)."""
    last = m["epochs"]
    span = _count(last, "epoch")
    if first_epoch:  # this run's epochs and seconds
        done = f"{first_epoch + 1}-{last}" if last > first_epoch + 1 else f"{last}"
        span = f"epoch{'s' if last > first_epoch + 1 else ''} {done} of {last} (resumed)"
    best = "" if m["best_epoch"] is None else f"epoch {m['best_epoch']}, "
    return (
        f"{model} on {dataset} ({where}): {span} in {m['seconds']:.1f} s; final val acc "
        f"{m['final_val_acc']:.3f}, best val acc {m['best_val_acc']:.3f} ({best}restored), "
        f"test acc {m['test_acc']:.3f}"
    )


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says where to resume from."""


#: A function giving where to resume from, for the signal thread of a multi-process run.
_interrupt_hint: list[Any] = []


def _where_to_resume(args: argparse.Namespace, settings: dict[str, Any], solver: Any) -> str:
    """``at epoch k of N; continue with: xpnn train --resume ...`` (or how to make that
    possible next time)."""
    at = f"at epoch {solver.epoch} of {settings['epochs']}"
    checkpoint = solver.last_checkpoint
    if checkpoint is None:
        return f"{at}; no checkpoint was written (--checkpoint-dir DIR keeps one per epoch)"
    if args.coordinator is not None:
        return (
            f"{at}; the last checkpoint is {checkpoint}; continue by starting every process "
            f"again with --resume {shlex.quote(str(checkpoint))} added to its arguments"
        )
    command = ["xpnn", "train", "--resume", str(checkpoint)]
    if args.epochs is not None:
        command += ["--epochs", str(args.epochs)]
    if settings["framework"] == "xpnn" and args.backend != "numpy":
        command += ["--backend", args.backend]
    for flag, value in (("--device", args.device), ("--devices", args.devices),
                        ("--threads", args.threads), ("--data-dir", args.data_dir),
                        ("--checkpoint-dir", args.checkpoint_dir)):  # fmt: skip
        if value is not None:
            command += [flag, str(value)]
    return f"{at}; the last checkpoint is {checkpoint}; continue with: {shlex.join(command)}"


def _first_training_images(data: dict[str, Any], count: int | None, dataset: str) -> dict:
    """``--num-train``: the first ``count`` training images (as the assignment's
    overfitting checks slice ``data['X_train'][:num_train]``)."""
    if count is None:
        return data
    available = len(data["X_train"])
    if not 1 <= count <= available:
        raise UsageError(
            f"--num-train must be in 1 .. {available} (the {dataset} training images); got {count}"
        )
    return dict(data, X_train=data["X_train"][:count], y_train=data["y_train"][:count])


def _threads(spec: str | None, dataset: str) -> int | None:
    """``--threads``: a positive count, or None for the libraries' own default (all)."""
    if spec is None:
        return 1 if dataset == "digits" else None
    if spec == "all":
        return None
    if not (spec.isascii() and spec.isdecimal()) or int(spec) < 1:
        raise UsageError(f"--threads must be a positive integer or 'all'; got {spec!r}")
    return int(spec)


@contextlib.contextmanager
def _thread_limit(threads: int | None, *, backend: str, framework: str) -> Iterator[None]:
    """At most ``threads`` threads in the BLAS and OpenMP pools (threadpoolctl) and in
    torch's, for the duration of the block; None leaves them as they are."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    torch = None
    if backend == "torch" or framework == "torch":
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(before)


def _require_backend(backend: str) -> None:
    from .._backend import get_namespace

    try:
        get_namespace(backend)  # fails now, with the install hint, if it is missing
    except RuntimeError as err:  # CuPy without a CUDA device
        raise UsageError(str(err)) from None
    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        _use_compilation_cache(jax)


def _use_compilation_cache(jax: Any) -> None:
    """Keep compiled training steps on disk, so that the next run skips the compilation.

    JAX's persistent compilation cache, in ``jax-compilation-cache`` under the data
    directory (``$XPNN_DATA_DIR``, else ``~/.cache/xpnn``), unless the user chose a cache
    of their own (``JAX_COMPILATION_CACHE_DIR``).
    """
    from ..data import default_data_dir

    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
        return
    jax.config.update(
        "jax_compilation_cache_dir", str(default_data_dir() / "jax-compilation-cache")
    )
    # The digits' steps compile in about a second: below JAX's default threshold.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)


def _loop_options(args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the training loop that every xpnn run takes (Solver and
    CaptioningSolver): update rule, learning rate and its decay, batch size, epochs,
    checkpoints, output, seed, and the settings a checkpoint records."""
    checkpoint_name = None
    if args.checkpoint_dir is not None:
        checkpoint_name = str(args.checkpoint_dir / f"{settings['model']}_{settings['dataset']}")
    return {
        "update_rule": settings["update_rule"],
        "optim_config": {"learning_rate": settings["lr"]},
        "lr_decay": 0.95,
        "batch_size": settings["batch_size"],
        "num_epochs": settings["epochs"],
        "checkpoint_name": checkpoint_name,
        "print_every": 50,
        "verbose": not args.quiet,
        "seed": settings["seed"],
        "run_info": {k: settings[k] for k in _RUN_INFO_KEYS},
    }


def _solver(
    args: argparse.Namespace,
    settings: dict[str, Any],
    data: dict[str, Any],
    loop: dict[str, Any],
    device: Any = None,
    devices: int | None = None,
) -> tuple[Any, str]:
    """The Solver of an ``--framework xpnn`` run, and its model's name."""
    from ..solver import Solver

    model = _model(settings["model"], data["X_train"].shape[1:], args.backend, device,
                   settings["seed"])  # fmt: skip
    solver = Solver(model, data, num_train_samples=1000, devices=devices, **loop)
    return solver, type(model).__name__


def _check_parallel_args(args: argparse.Namespace, settings: dict[str, Any]) -> bool:
    """Check --devices and the multi-process flags; True for a multi-process run."""
    flags = {"--coordinator": args.coordinator, "--num-processes": args.num_processes,
             "--process-id": args.process_id}  # fmt: skip
    given = [flag for flag, value in flags.items() if value is not None]
    if (given or args.devices is not None) and (
        settings["framework"] != "xpnn" or args.backend != "jax"
    ):
        first = given[0] if given else "--devices"
        raise UsageError(f"{first} needs --backend jax (data parallelism runs on JAX)")
    if args.devices is not None and args.devices < 1:
        raise UsageError(f"--devices must be a positive integer; got {args.devices}")
    if args.device is not None and (given or args.devices is not None):
        other = given[0] if given else "--devices"
        raise UsageError(
            f"--device picks the device of a one-device run; {other} makes a sharded run: "
            "give one of them"
        )
    if args.join_timeout is not None and "--coordinator" not in given:
        raise UsageError("--join-timeout needs --coordinator (a multi-process run)")
    if args.join_timeout is not None and not 0 < args.join_timeout < math.inf:
        raise UsageError(f"--join-timeout must be a positive number; got {args.join_timeout:g}")
    if not given:
        return False
    if len(given) < len(flags):
        missing = ", ".join(flag for flag in flags if flag not in given)
        raise UsageError(f"{given[0]} needs {missing} too")
    host, _, port = args.coordinator.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UsageError(
            f"--coordinator must be HOST:PORT (a port in 1..65535), e.g. 127.0.0.1:12355; "
            f"got {args.coordinator!r}"
        )
    if args.num_processes < 1:
        raise UsageError(f"--num-processes must be a positive integer; got {args.num_processes}")
    if not 0 <= args.process_id < args.num_processes:
        raise UsageError(
            f"--process-id must be in 0 .. {args.num_processes - 1}; got {args.process_id}"
        )
    return True


def _join(args: argparse.Namespace) -> tuple[int, int]:
    """``jax.distributed.initialize``: this process's index and the number of processes.

    JAX ends the process (no exception) when the coordinator cannot be reached in time,
    so the address is checked first: process 0 must be able to listen on it, the others
    to connect to it within ``--join-timeout``.
    """
    import jax

    host, _, port = args.coordinator.rpartition(":")
    timeout = 300.0 if args.join_timeout is None else args.join_timeout
    deadline = time.monotonic() + timeout
    if args.process_id == 0:
        _check_can_listen(int(port))
    else:
        _wait_for_coordinator(host, int(port), timeout)
    _stop_on_signals(args.process_id)  # the join itself can be interrupted too
    try:
        jax.distributed.initialize(
            args.coordinator,
            args.num_processes,
            args.process_id,
            initialization_timeout=max(round(deadline - time.monotonic()), 1),
        )
    except (RuntimeError, ValueError) as err:
        raise UsageError(f"cannot join the run at {args.coordinator}: {err}") from None
    _stop_on_signals(args.process_id)  # again: initialize installs JAX's SIGTERM handler
    return jax.process_index(), jax.process_count()


def _data_parallel(
    args: argparse.Namespace,
    settings: dict[str, Any],
    data: dict[str, Any],
    process: int,
    processes: int,
) -> tuple[int, dict[str, Any]]:
    """The number of devices of a sharded JAX run, and this process's data."""
    import jax

    devices = args.devices or len(jax.devices())  # a coordinated run: all of them
    _check_batch_splits(settings["batch_size"], devices, args, processes)
    if processes > 1:
        data = _process_shard(data, devices, process, processes)
    return devices, data


_signal_pipe: list[int] = []


def _stop_on_signals(process: int) -> None:
    """Ctrl-C and SIGTERM end this process at once, with one line (status 130 / 143).

    A normal exit would wait in ``jax.distributed.shutdown`` for processes that are
    themselves waiting for this one, and JAX's own SIGTERM handler only logs. A Python
    handler would run only when the main thread is back in Python, not while it waits in
    a collective, so the signal is taken from Python's wakeup file descriptor by a thread
    of its own. The other processes stop when they miss this one's heartbeat (JAX ends
    them then).
    """
    import signal
    import threading

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda number, frame: None)  # the thread below acts
    if _signal_pipe:
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    _signal_pipe[:] = [read_end, write_end]

    def stop() -> None:
        number = os.read(read_end, 1)[0]
        name = "interrupted" if number == signal.SIGINT else "terminated"
        try:
            where = f" {_interrupt_hint[0]()}" if _interrupt_hint and process == 0 else ""
        except Exception:  # a hint is not worth a hang: the main thread is anywhere
            where = ""
        try:  # no print: the main thread may hold the lock of sys.stderr
            os.write(2, f"\nxpnn train: {name} (process {process}){where}\n".encode())
        finally:
            os._exit(128 + number)

    threading.Thread(target=stop, name="xpnn-stop-on-signal", daemon=True).start()


def _check_devices_of_every_process(args: argparse.Namespace) -> None:
    """``--devices`` must take the same number of devices of every process.

    Every process sees the whole list of devices after the join, so each one decides
    alike, without a collective.
    """
    import jax

    from .._data_parallel import DataParallel

    try:
        DataParallel(args.devices or len(jax.devices()))  # builds the mesh; no collective
    except ValueError as err:
        raise SharedUsageError(str(err)) from None


def _agree(settings: dict[str, Any], args: argparse.Namespace) -> None:
    """Every process must run the same training: a mismatch would hang in a collective."""
    import zlib

    from jax.experimental import multihost_utils

    run = {k: settings[k] for k in (*_RUN_INFO_KEYS, "epochs")}
    run.update(devices=args.devices, resume=None if args.resume is None else args.resume.name)
    digest = zlib.crc32(json.dumps(run, sort_keys=True).encode())
    digests = np.asarray(multihost_utils.process_allgather(np.uint32(digest))).reshape(-1)
    if len(set(digests.tolist())) > 1:
        raise SharedUsageError(
            "the processes were started with different settings (model, dataset, seed, "
            "update rule, batch size, learning rate, epochs, devices or resume checkpoint); "
            "give every process the same arguments except --process-id"
        )


def _device(backend: str, spec: str | None) -> Any:
    """``--device`` on ``backend``, checked: one line naming the devices there are."""
    from . import devices

    try:
        return devices.resolve(backend, spec)
    except devices.DeviceError as err:
        raise UsageError(str(err)) from None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _check_batch_splits(
    batch_size: int, devices: int, args: argparse.Namespace, processes: int
) -> None:
    if batch_size % devices == 0:
        return
    if args.resume is not None:
        import jax

        usable = [d for d in range(processes, jax.device_count() + 1, processes)
                  if batch_size % d == 0]  # fmt: skip
        where = "" if args.devices is not None else " (all the run's devices)"
        choice = (
            f"give --devices one of {', '.join(map(str, usable))}"
            if usable
            else "no number of this run's devices splits it"
        )
        raise UsageError(
            f"the checkpoint's batch size {batch_size} does not split over {devices} "
            f"devices{where}; {choice}"
        )
    multiple = max(batch_size // devices, 1) * devices
    raise UsageError(
        f"--batch-size {batch_size} does not split over {devices} devices; use a multiple "
        f"of {devices}, e.g. --batch-size {multiple}"
    )


def _check_can_listen(port: int) -> None:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError as err:
            raise UsageError(
                f"--coordinator: process 0 cannot listen on port {port}: {err.strerror}"
            ) from None


def _wait_for_coordinator(host: str, port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as err:
            if time.monotonic() >= deadline:
                raise UsageError(
                    f"--coordinator: nothing answers at {host}:{port} after {timeout:g} s "
                    f"({err.strerror or err}); start process 0 there first, or raise "
                    "--join-timeout"
                ) from None
            time.sleep(0.2)


def _process_shard(
    data: dict[str, Any], devices: int, process: int, processes: int
) -> dict[str, Any]:
    """This process's rows: its devices' equal parts of the training set, its share of the
    others (see ``xpnn._data_parallel``: the run is then that of one process with all the
    devices)."""
    if devices % processes:
        raise UsageError(f"--devices {devices} does not split over {processes} processes")
    part = len(data["X_train"]) // devices
    per_process = part * devices // processes
    train = slice(process * per_process, (process + 1) * per_process)
    shard = {"X_train": data["X_train"][train], "y_train": data["y_train"][train]}
    for split in ("val", "test"):
        rows = np.array_split(np.arange(len(data[f"X_{split}"])), processes)[process]
        shard[f"X_{split}"], shard[f"y_{split}"] = (
            data[f"X_{split}"][rows],
            data[f"y_{split}"][rows],
        )
    return shard


#: Settings a checkpoint records, so that a resumed run continues the same training.
_RUN_KEYS = ("model", "dataset", "seed", "update_rule", "batch_size", "lr")
#: What a checkpoint records of its run: those, and ``--num-train`` (not in xpnn 0.2.0's).
_RUN_INFO_KEYS = (*_RUN_KEYS, "num_train")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings: the command line's, the checkpoint's when resuming, else defaults.

    A resumed run takes model, dataset, seed, update rule, batch size and learning rate
    from the checkpoint (the seed also chose the data split), and the framework from its
    kind (``.pt``: torch, else xpnn); giving a different value is an error rather than a
    silently different run.
    """
    from ..solver import Solver

    framework = args.framework or "xpnn"
    given = {
        "model": args.model,
        "dataset": args.dataset,
        "seed": args.seed,
        "update_rule": args.update_rule,
        "batch_size": args.batch_size,
        "lr": args.lr,
    }
    if args.resume is not None:
        framework = "torch" if args.resume.suffix == ".pt" else "xpnn"
        if args.framework is not None and args.framework != framework:
            raise UsageError(
                f"--framework {args.framework} differs from the checkpoint's {framework} "
                f"({args.resume.name}); leave --framework out to continue that run"
            )
        if framework == "torch":
            from . import train_torch

            recorded = train_torch.read_run_info(args.resume)
        else:
            recorded = Solver.checkpoint_info(args.resume).get("run_info", {})
        missing = [k for k in _RUN_KEYS if k not in recorded]
        if missing:
            raise UsageError(
                f"{args.resume} was not written by xpnn train (no {', '.join(missing)}); "
                "resume it from Python with Solver.load_checkpoint"
            )
        for key in _RUN_KEYS:
            if given[key] is not None and given[key] != recorded[key]:
                flag = "--" + key.replace("_", "-")
                raise UsageError(
                    f"{flag} {given[key]} differs from the checkpoint's {recorded[key]}; "
                    f"leave {flag} out to continue that run"
                )
        if args.num_train is not None and args.num_train != recorded.get("num_train"):
            had = recorded.get("num_train") or "all"
            raise UsageError(
                f"--num-train {args.num_train} differs from the checkpoint's {had}; leave "
                "--num-train out to continue that run"
            )
        given = {k: recorded[k] for k in _RUN_KEYS}
        given["num_train"] = recorded.get("num_train")  # absent: all (xpnn 0.2.0)
    else:
        given["num_train"] = args.num_train
    given["model"] = given["model"] or "cnn"
    given["dataset"] = given["dataset"] or "digits"
    if (given["model"], given["dataset"]) not in DEFAULTS:
        fits = "cnn and fcn" if given["dataset"] == "cifar10" else "rnn and lstm"
        raise UsageError(
            f"--dataset {given['dataset']} is for --model {fits}; --model "
            f"{given['model']} trains on digits or "
            f"{'coco' if given['model'] in CAPTIONING else 'cifar10'}"
        )
    defaults = DEFAULTS[(given["model"], given["dataset"])]
    given["seed"] = 0 if given["seed"] is None else given["seed"]
    given["update_rule"] = given["update_rule"] or "adam"
    for key in ("batch_size", "lr"):
        if given[key] is None:
            given[key] = defaults[key]
    given["epochs"] = args.epochs if args.epochs is not None else defaults["epochs"]
    given["framework"] = framework
    given["threads"] = _threads(args.threads, given["dataset"])
    return given


def _check_outputs(args: argparse.Namespace) -> None:
    """Fail before training, not after it, when an output cannot be written."""
    if args.plot is not None and args.plot.suffix.lower() not in PLOT_FORMATS:
        raise UsageError(
            f"--plot {args.plot}: the suffix picks the format; give a file name ending in "
            f"{', '.join(PLOT_FORMATS)}"
        )
    for flag, path in (("--metrics-out", args.metrics_out), ("--plot", args.plot)):
        if path is None:
            continue
        if path.is_dir():
            raise UsageError(f"{flag} {path} is a directory; give a file name")
        _require_writable_dir(flag, path.parent if str(path.parent) else Path("."))
    if args.checkpoint_dir is None:
        return
    if args.checkpoint_dir.exists() and not args.checkpoint_dir.is_dir():
        raise UsageError(f"--checkpoint-dir {args.checkpoint_dir} is a file, not a directory")
    _require_writable_dir("--checkpoint-dir", args.checkpoint_dir)
    existing = sorted(
        p for suffix in ("npz", "pt") for p in args.checkpoint_dir.glob(f"*_epoch_*.{suffix}")
    )
    resuming_here = args.resume is not None and any(
        p.resolve() == args.resume.resolve() for p in existing
    )
    if existing and not resuming_here:
        raise UsageError(
            f"--checkpoint-dir {args.checkpoint_dir} already holds checkpoints of another run "
            f"({existing[0].name}, ...); choose an empty directory, or --resume one of them"
        )


def _require_writable_dir(flag: str, directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{flag}: cannot create {directory}: {err.strerror}") from None
    try:  # what the atomic write will do: a temporary file there (os.access trusts root)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise UsageError(f"{flag}: cannot write in {directory}: {err.strerror}") from None


def _cifar_root(data_dir: str | None) -> Path | None:
    """``--data-dir`` may name the folder holding cifar-10-batches-py, or that folder."""
    if data_dir is None:
        return None
    root = Path(data_dir)
    return root if (root / "data_batch_1").is_file() else root / "cifar-10-batches-py"


def _model(kind: str, input_shape: tuple[int, ...], backend: str, device: Any, seed: int) -> Any:
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
            device=device,
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
        device=device,
    )


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        from .._install import install_command

        raise UsageError(
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
    kind = path.suffix.lower().lstrip(".")
    write_atomically(path, lambda file: figure.savefig(file, format=kind))
    plt.close(figure)
