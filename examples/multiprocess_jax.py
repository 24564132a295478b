"""Data-parallel training over two processes on this machine, with JAX's multi-process API.

Starts two ``xpnn train --backend jax`` processes that meet at a coordinator on
127.0.0.1 (``jax.distributed.initialize``). Each process sees 2 CPU devices (forced with
``XLA_FLAGS``), so the run spans 4 devices, and each process trains on its own shard of
the data. The run equals ``xpnn train --backend jax --devices 4 --batch-size 48`` in one
process with 4 devices (the default batch of 50 does not split over 4 devices). On GPU
hosts, start one such process per host instead (see docs/scaling.md).

    python examples/multiprocess_jax.py --epochs 2 --out runs/two-processes

Process 0 prints the summary and writes ``metrics.json`` and the checkpoints under
``--out``; the last lines of both processes' output are shown if one fails.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

PROCESSES = 2
DEVICES_PER_PROCESS = 2


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(epochs: int, out: Path, timeout: float, extra: list[str]) -> int:
    """Run the processes to the end; their exit status (the first non-zero one)."""
    out.mkdir(parents=True, exist_ok=True)
    coordinator = f"127.0.0.1:{free_port()}"
    forced = f"--xla_force_host_platform_device_count={DEVICES_PER_PROCESS}"
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=forced)
    processes = []
    for index in range(PROCESSES):
        command = [
            sys.executable, "-m", "xpnn", "train", "--backend", "jax", "--epochs", str(epochs),
            "--coordinator", coordinator, "--num-processes", str(PROCESSES),
            "--process-id", str(index), "--metrics-out", str(out / "metrics.json"),
            "--checkpoint-dir", str(out / "checkpoints"), "--batch-size", "48", "--quiet",
            *extra,
        ]  # fmt: skip
        log = open(out / f"process-{index}.log", "w")  # closed below
        processes.append((subprocess.Popen(command, env=env, stdout=log, stderr=log), log))
    status = 0
    deadline = time.monotonic() + timeout
    try:
        # Poll all of them: when one fails, the others would wait for it in a collective.
        while status == 0 and any(process.poll() is None for process, _ in processes):
            if time.monotonic() > deadline:
                status = 124
            time.sleep(0.1)
            status = status or next(
                (process.returncode for process, _ in processes if process.returncode), 0
            )
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    status = status or next((p.returncode for p, _ in processes if p.returncode), 0)
    for index in range(PROCESSES):
        lines = (out / f"process-{index}.log").read_text().splitlines()
        shown = lines if status else [line for line in lines if "acc" in line]
        for line in shown[-15:]:
            print(f"[process {index}] {line}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/two-processes"))
    parser.add_argument("--timeout", type=float, default=300, help="seconds, then stop both")
    args, extra = parser.parse_known_args(argv)
    return launch(args.epochs, args.out, args.timeout, extra)


if __name__ == "__main__":
    sys.exit(main())
