"""Data-parallel training steps on JAX: measured here, and projected to many GPUs.

Usage::

    python benchmarks/bench_scaling.py            # print the tables
    python benchmarks/bench_scaling.py --write    # also write results/scaling_cpu.md

Measured: the compiled training step (forward, backward, Adam update) of the default
ThreeLayerConvNet (CIFAR-10 shapes, batch 50 per device) and FullyConnectedNet [100, 100]
with batch norm (batch 100 per device), float32, on 1, 2 and 4 devices of this machine
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``, set below: the 4 "devices" share
this machine's cores, so this shows the overhead of sharding, not a speed-up).

Projected (a model, not a measurement): steps per second at 1, 8, 64 and 512 GPUs with
the per-device batch fixed, from a single-device step time and the time of the gradient
all-reduce, ``2 (N-1)/N * bytes / bandwidth + 2 log2(N) * latency`` (bandwidth-optimal
ring, tree-like latency, as NCCL picks). The single-device time is this machine's
measurement unless ``--step-ms`` gives another (e.g. one measured on a GPU).
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()

import argparse
import datetime
import math

import jax
import numpy as np
from _common import best_of, machine, write_result

from xpnn import optim
from xpnn._compiled_step import CompiledStep
from xpnn._data_parallel import DataParallel
from xpnn.classifiers import FullyConnectedNet, ThreeLayerConvNet

#: Interconnects of the projection: (name, GPUs it serves, bytes/s per GPU, latency s).
LINKS = {
    "intra-node": ("NVLink/NVSwitch, 8 GPUs per node", 200e9, 5e-6),
    "inter-node": ("InfiniBand 400 Gb/s per GPU", 40e9, 10e-6),
}
GPUS = (1, 8, 64, 512)


def models() -> dict[str, tuple]:
    """name -> (model, per-device batch of X, y)."""
    rng = np.random.default_rng(0)
    np.random.seed(0)  # noqa: NPY002  (the models draw their weights there)
    cnn = ThreeLayerConvNet(dtype=np.float32, backend="jax")
    fcn = FullyConnectedNet([100, 100], normalization="batchnorm", dtype=np.float32,
                            backend="jax")  # fmt: skip
    return {
        "ThreeLayerConvNet": (cnn, rng.standard_normal((50, 3, 32, 32), np.float32),
                              rng.integers(0, 10, 50)),
        "FullyConnectedNet [100,100] + batch norm": (
            fcn, rng.standard_normal((100, 3072), np.float32), rng.integers(0, 10, 100)),
    }  # fmt: skip


def step_seconds(model, X, y, devices: int) -> float:
    """Seconds per compiled step with ``devices`` devices, the global batch devices x X."""
    parallel = DataParallel(devices) if devices > 1 else None
    step = CompiledStep(model, optim.adam, parallel)
    X, y = np.concatenate([X] * devices), np.concatenate([y] * devices)
    batch = parallel.shard_batch(X, y) if parallel else tuple(map(jax.numpy.asarray, (X, y)))
    configs = {n: optim.init_config("adam", w, {"learning_rate": 1e-4})
               for n, w in model.params.items()}  # fmt: skip
    # each step's outputs feed the next, as in the Solver: after the first step the
    # parameters and optimizer state stay where the step put them (replicated)
    carried = {"params": model.params, "state": model.state, "configs": configs}

    def one():
        _, _, params, state, new_configs = step.step(
            carried["params"], carried["state"], carried["configs"], *batch, np.uint32(0), 0
        )
        carried.update(params=params, state=state, configs=new_configs)

    return best_of(one, repeat=20, warmup=2)


def allreduce_seconds(nbytes: float, gpus: int) -> float:
    if gpus == 1:
        return 0.0
    _, bandwidth, latency = LINKS["intra-node" if gpus <= 8 else "inter-node"]
    return 2 * (gpus - 1) / gpus * nbytes / bandwidth + 2 * math.log2(gpus) * latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true")
    parser.add_argument(
        "--step-ms",
        type=float,
        nargs=2,
        metavar=("CNN", "FCN"),
        help="single-device step times to project from (default: measured)",
    )
    args = parser.parse_args()
    report = [
        "# Data-parallel training steps (JAX)",
        "",
        f"Measured {datetime.date.today()} by `python benchmarks/bench_scaling.py`, "
        f"jax {jax.__version__}, on {machine()}.",
        "",
        "## Measured on this machine: 1, 2 and 4 forced CPU devices",
        "",
        "The devices share this machine's 2 cores, so more devices do more work on the "
        "same cores: this shows that the sharded step runs and what it costs here, not a "
        "speed-up. Global batch = devices x per-device batch (50 images for the convnet, "
        "100 for the fully connected net); float32, Adam; each step's outputs feed the next.",
        "",
        "| model | parameters | gradient bytes (float32) | 1 device: ms (images/s) "
        "| 2 devices | 4 devices |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    measured = {}
    for name, (model, X, y) in models().items():
        count = sum(int(np.prod(w.shape)) for w in model.params.values())
        times = [step_seconds(model, X, y, d) for d in (1, 2, 4)]
        measured[name] = (count, times[0])
        cells = [
            f"{t * 1e3:.2f} ({d * len(X) / t:,.0f})" for d, t in zip((1, 2, 4), times, strict=True)
        ]
        report.append(f"| {name} | {count:,} | {4 * count / 1e6:.2f} MB | " + " | ".join(cells)
                      + " |")  # fmt: skip
        print(report[-1], flush=True)
    if args.step_ms:
        for name, ms in zip(measured, args.step_ms, strict=True):
            measured[name] = (measured[name][0], ms / 1e3)
    source = "--step-ms" if args.step_ms else "the 1-device time measured above (this CPU)"
    report += [
        "",
        "## Projection (a model, not a measurement): 1 to 512 GPUs",
        "",
        f"Single-device step time: {source}. Per-device batch fixed (weak scaling). "
        "Communication per step: one all-reduce of the float32 gradients, "
        "`2 (N-1)/N * bytes / bandwidth + 2 log2(N) * latency`, with "
        + "; ".join(
            f"{key}: {desc}, {bw / 1e9:.0f} GB/s per GPU, {lat * 1e6:.0f} us"
            for key, (desc, bw, lat) in LINKS.items()
        )
        + " (intra-node up to 8 GPUs). Batch norm's statistics (a few KB) and the loss are "
        "left out; the all-reduce is assumed not to overlap the backward pass, so this is a "
        "lower bound on steps per second for this model of the links.",
        "",
        "The last column is the single-device step time below which the all-reduce would "
        "cost more than 10% (9 x the all-reduce): a GPU whose step is shorter than that "
        "loses more than 10% at that scale.",
        "",
        "| model | GPUs | all-reduce (ms) | step (ms) | steps/s | images/s | efficiency "
        "| 90% needs a step of (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (count, single) in measured.items():
        per_device = 50 if name.startswith("Three") else 100
        for gpus in GPUS:
            comm = allreduce_seconds(4 * count, gpus)
            step = single + comm
            report.append(
                f"| {name} | {gpus} | {comm * 1e3:.3f} | {step * 1e3:.2f} | {1 / step:.1f} | "
                f"{gpus * per_device / step:,.0f} | {single / step:.0%} | {9 * comm * 1e3:.2f} |"
            )
    print("\n".join(report))
    if args.write:
        write_result("scaling_cpu.md", report)


if __name__ == "__main__":
    main()
