"""``xpnn train`` with the BLAS (and torch) at 1, 2 and all threads, on a quiet machine
and under a parallel CPU burner (one busy process per core).

Usage::

    python benchmarks/bench_threads.py            # print the table
    python benchmarks/bench_threads.py --write    # also write results/threads_cpu.md

Each run is a fresh ``xpnn train --quiet --threads T`` process; the time is the training
time it reports in ``--metrics-out`` (``seconds``: the epochs, without the start-up), the
median of ``--repeat`` runs. Ratios are against the fastest setting of the same model and
condition, so each row says what a choice of threads costs there.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from _common import machine, write_result

RUNS = {
    "cnn (numpy)": ["--model", "cnn"],
    "fcn (numpy)": ["--model", "fcn"],
    "cnn (--framework torch)": ["--framework", "torch"],
}
THREADS = ("1", "2", "all")


def _burn() -> None:
    while True:
        pass


@contextlib.contextmanager
def burner(busy: bool) -> Iterator[None]:
    """One busy-looping process per core while the block runs (nothing when not busy)."""
    workers = [multiprocessing.Process(target=_burn, daemon=True)
               for _ in range(os.cpu_count() if busy else 0)]  # fmt: skip
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        for worker in workers:
            worker.terminate()
            worker.join()


def train_seconds(extra: list[str], threads: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.json"
        command = [sys.executable, "-m", "xpnn", "train", "--quiet", "--threads", threads,
                   "--metrics-out", str(out), *extra]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True,
                       env=dict(os.environ, XPNN_DATA_DIR=tmp))  # fmt: skip
        return json.loads(out.read_text())["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    report = [
        "# `xpnn train` and the number of BLAS threads",
        "",
        f"{datetime.date.today()}, {machine()}; `benchmarks/bench_threads.py`, the median "
        f"of {args.repeat} runs of each setting's training time (digits, the default run of "
        "each model). Ratio: against the fastest setting of the same row.",
        "",
        "| run | machine | 1 thread | 2 threads | all | ratio 1 / 2 / all |",
        "|---|---|---|---|---|---|",
    ]
    for busy in (False, True):
        with burner(busy):
            for name, extra in RUNS.items():
                times = [statistics.median(train_seconds(extra, t) for _ in range(args.repeat))
                         for t in THREADS]  # fmt: skip
                best = min(times)
                ratios = " / ".join(f"{t / best:.2f}" for t in times)
                cells = " | ".join(f"{t:.2f} s" for t in times)
                state = f"{os.cpu_count()} busy processes beside it" if busy else "quiet"
                report.append(f"| {name} | {state} | {cells} | {ratios} |")
                print(report[-1], flush=True)
    print("\n".join(report))
    if args.write:
        write_result("threads_cpu.md", report)


if __name__ == "__main__":
    main()
