"""Training time of the PyTorch notebook's convnets: plain ``torch.nn`` vs ``xpnn.torch.nn``.

Usage::

    python benchmarks/bench_torch_convnets.py          # print the table
    python benchmarks/bench_torch_convnets.py --write  # also write results/torch_convnets_cpu.md

The same builder (:mod:`xpnn.torch.models`) makes both models, from ``torch.nn`` and from
``xpnn.torch.nn``, with the same weights; both train with ``torch.optim.Adam``, the
``torch.nn`` one on ``torch.nn.functional.cross_entropy`` and the xpnn one on
``xpnn.torch.functional.softmax_loss``. A timed unit is a whole warm loop of training
steps (zero_grad, forward, loss, backward, step):

* digits: one epoch of ``xpnn train --framework torch`` (27 minibatches of 50 8x8 digits,
  the three-layer convnet with 32 and 16 channels), accuracy checks left out;
* CIFAR-sized: a few steps on random (64, 3, 32, 32) batches, reported per 1000 images,
  for the three-layer convnet and for the deeper conv-batchnorm-ReLU-pool model.

Each side is timed in its own loop (best of ``--repeat`` runs after a warm-up), and the
pair is measured ``--pairs`` times, keeping each side's best, so that a burst of load on
the machine does not land on one side only.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from collections.abc import Callable

from _common import best_of, machine, write_result

import xpnn

DIGITS_BATCH, CIFAR_BATCH, CIFAR_STEPS = 50, 64, 4


def epoch_loop(torch, model, loss_fn, batches) -> Callable[[], None]:
    """One warm loop of training steps over ``batches`` (a list of (X, y))."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run() -> None:
        for X, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(X), y)
            loss.backward()
            optimizer.step()

    return run


def workloads(torch, dtype):
    """``(label, builder, batches, images)`` for each measured case."""
    from xpnn.data import load_digits
    from xpnn.torch.models import deep_convnet, three_layer_convnet

    data = load_digits(seed=0)
    X = torch.as_tensor(data["X_train"], dtype=dtype)
    y = torch.as_tensor(data["y_train"])
    g = torch.Generator().manual_seed(0)
    steps = X.shape[0] // DIGITS_BATCH
    rows = [torch.randint(X.shape[0], (DIGITS_BATCH,), generator=g) for _ in range(steps)]
    digits = [(X[r], y[r]) for r in rows]
    cifar = [
        (
            torch.randn(CIFAR_BATCH, 3, 32, 32, generator=g, dtype=dtype),
            torch.randint(0, 10, (CIFAR_BATCH,), generator=g),
        )
        for _ in range(CIFAR_STEPS)
    ]
    return [
        (
            f"digits epoch: three_layer_convnet(1, 32, 16), {steps} x N={DIGITS_BATCH}, 8x8",
            lambda nn: three_layer_convnet(1, 32, 16, 10, 8, nn=nn, dtype=dtype),
            digits,
        ),
        (
            "CIFAR-sized: three_layer_convnet(3, 32, 16), N=64, 3x32x32",
            lambda nn: three_layer_convnet(3, 32, 16, 10, 32, nn=nn, dtype=dtype),
            cifar,
        ),
        (
            "CIFAR-sized: deep_convnet(3, (32, 64, 128)), N=64, 3x32x32",
            lambda nn: deep_convnet(3, (32, 64, 128), 10, 32, nn=nn, dtype=dtype),
            cifar,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write results/torch_convnets_cpu.md")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side and pair")
    parser.add_argument("--pairs", type=int, default=2, help="measurements of each pair")
    args = parser.parse_args()
    import torch

    import xpnn.torch.functional as XF
    import xpnn.torch.nn as xnn

    load = os.getloadavg()[0]
    lines = [
        "| workload | dtype | torch.nn | xpnn.torch.nn | xpnn / torch |",
        "|---|---|---:|---:|---:|",
    ]
    for dtype in (torch.float32, torch.float64):
        for label, build, batches in workloads(torch, dtype):
            torch.manual_seed(0)
            reference = build(torch.nn)
            twin = build(xnn)
            twin.load_state_dict(reference.state_dict())
            loops = {
                "torch": epoch_loop(torch, reference, torch.nn.functional.cross_entropy, batches),
                "xpnn": epoch_loop(torch, twin, XF.softmax_loss, batches),
            }
            best = {"torch": float("inf"), "xpnn": float("inf")}
            for _ in range(args.pairs):
                for side, loop in loops.items():
                    best[side] = min(best[side], best_of(loop, args.repeat))
            if label.startswith("digits"):
                unit, scale = "s/epoch", 1.0
            else:
                unit, scale = "s/1000 images", 1000 / (len(batches) * CIFAR_BATCH)
            ours, ref = best["xpnn"] * scale, best["torch"] * scale
            lines.append(
                f"| {label} | {str(dtype).removeprefix('torch.')} | {ref:.3f} {unit} "
                f"| {ours:.3f} {unit} | {ours / ref:.2f} |"
            )
            print(lines[-1], flush=True)

    if args.write:
        report = [
            "# The PyTorch notebook's convnets: torch.nn vs xpnn.torch.nn, CPU",
            "",
            f"Measured {datetime.date.today()} by "
            "`python benchmarks/bench_torch_convnets.py --write`.",
            f"Machine: {machine()}. Python {platform.python_version()}, PyTorch "
            f"{torch.__version__} ({torch.get_num_threads()} threads), xpnn {xpnn.__version__}; "
            f"1-minute load average {load:.2f} at the start.",
            "",
            "Training steps with torch.optim.Adam (forward, loss, backward, update), best of "
            f"{args.repeat} warm runs per side, each pair measured {args.pairs} times. "
            "A ratio above 1 means xpnn is slower.",
            "",
            *lines,
        ]
        write_result("torch_convnets_cpu.md", report)


if __name__ == "__main__":
    main()
