"""The GPU check: the test suite and the benchmarks on an NVIDIA GPU, in one prepared run.

Steps, each with its own time limit (about 8 minutes in all on the lent H200):

1. ``tests-cupy``: the whole suite with ``XPNN_BACKEND=cupy``;
2. ``tests-jax-gpu``: the layer, bridge, model and Solver tests with ``XPNN_BACKEND=jax``
   on JAX's default device (the GPU), x64 on, float32 products at float32 precision
   (``JAX_DEFAULT_MATMUL_PRECISION=highest``: JAX's GPU default is TF32), under the
   transfer-guard tests too;
3. ``tests-torch-cuda``: the same tests with ``XPNN_BACKEND=torch XPNN_DEVICE=cuda``, and the
   CUDA-only tests of ``tests/test_device_paths.py``;
4. ``bench-cupy``, ``bench-jax``, ``bench-torch``: ``xpnn bench --quick`` on the GPU, each
   writing its section into ``gpu_results.md``.

The three test steps run side by side, sharing the CPU cores between their pytest-xdist
workers (``--workers``, all cores by default); the benchmarks then run one at a time, with
nothing beside them. First run on the H200 (2026-12-04): the three test steps took 262 s
together, the benchmarks 51 s.

Everything goes to ``--out`` (``$OUT`` on the device machine): ``gpu_check.log`` (every
step's output), ``gpu_results.md`` (the benchmark sections) and ``gpu_summary.md`` (one line
per step). ``python tools/gpu_check.py --merge DIR/gpu_results.md`` then copies the GPU
sections into ``benchmarks/RESULTS.md``.

On the device machine (Python 3.12, CuPy, CUDA JAX, torch, pytest, pytest-xdist and
hypothesis are there; array-api-compat and array-api-extra are not, and nothing can be
fetched), carry the two as wheels. Once, here::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \\
        --implementation cp -d .whl array-api-compat==1.16.0 array-api-extra==0.11.5

(the versions of ``pip show`` in the dev environment), then run with ``carry=[".whl"]`` and
``timeout_s=540``::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
    PYTHONPATH=/tmp/site:$PWD/src python3 tools/gpu_check.py --out $OUT

Without a CUDA device, or with ``--dry-run``, every step runs what needs no GPU (the tests
are collected, not run; the benchmarks are skipped) and says in one line what it skipped:
the plumbing is checked on any machine (``nox -s gpu`` does this here).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Test files that need a second process, the network stand-in, the CLI or several JAX
#: devices: the CPU matrix runs them; on the GPU they would only repeat it, slower.
CPU_ONLY = [
    "tests/test_multiprocess.py",
    "tests/test_ddp.py",
    "tests/test_data_parallel.py",
    "tests/test_install.py",
    "tests/test_docs.py",
    "tests/test_cli.py",
    "tests/test_cli_train.py",
    "tests/test_data.py",
    "tests/test_architecture.py",
]


@dataclass
class Step:
    name: str
    command: list[str]
    env: dict[str, str]
    timeout: int
    needs_gpu: bool = True
    collect_when_dry: bool = False
    #: run side by side with the other side-by-side steps (the tests); the benchmarks run
    #: alone afterwards, so that nothing else competes while they time
    side_by_side: bool = False


def _pytest(files: list[str], workers: int) -> list[str]:
    ignore = [f"--ignore={f}" for f in CPU_ONLY]
    parallel = ["-n", str(workers)] if workers > 1 else []
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
            *parallel, *ignore, *files]  # fmt: skip


#: Share of the CPU cores (16 on the lent H200) each test step's xdist workers get: JAX's
#: compiles dominate its step (measured there, side by side: JAX 262 s on 9 workers,
#: torch 113 s on 4, CuPy 144 s on 5).
_WORKER_SHARE = {"tests-cupy": 4, "tests-jax-gpu": 8, "tests-torch-cuda": 3}


def plan(out: Path, workers: int) -> list[Step]:
    """The steps of the check, in order. ``workers``: CPU cores for the three test steps
    together (they run side by side); 1 runs each without xdist."""
    results = out / "gpu_results.md"
    jax_env = {
        "XPNN_BACKEND": "jax",
        "JAX_ENABLE_X64": "1",
        # several test processes share the GPU: no process takes 75% of it up front
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        # float32 products at float32 precision (JAX's GPU default is TF32), as on the
        # other backends: the suite's float32 tolerances are float32's
        "JAX_DEFAULT_MATMUL_PRECISION": "highest",
    }
    # any test process that imports JAX beside its own backend must not take the GPU
    others = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}

    def share(name: str) -> int:
        return 1 if workers <= 1 else max(1, workers * _WORKER_SHARE[name] // 16)

    def tests(name: str, env: dict[str, str], timeout: int) -> Step:
        return Step(name, _pytest(["tests"], share(name)), env, timeout,
                    collect_when_dry=True, side_by_side=True)  # fmt: skip

    bench = [sys.executable, "-m", "xpnn", "bench", "--quick", "--out", str(results)]
    return [
        tests("tests-cupy", {"XPNN_BACKEND": "cupy", **others}, 240),
        tests("tests-jax-gpu", jax_env, 330),
        tests("tests-torch-cuda", {"XPNN_BACKEND": "torch", "XPNN_DEVICE": "cuda", **others},
              240),
        Step("bench-cupy", [*bench, "--backend", "cupy"], others, 40),
        Step("bench-jax", [*bench, "--backend", "jax"], others, 50),
        Step("bench-torch", [*bench, "--backend", "torch"], others, 40),
    ]  # fmt: skip


def wall_time_limit(steps: list[Step]) -> int:
    """The longest the plan can take: the slowest side-by-side step, then the rest."""
    side = [s.timeout for s in steps if s.side_by_side]
    return max(side, default=0) + sum(s.timeout for s in steps if not s.side_by_side)


def cuda_device() -> str | None:
    """The name of the first CUDA device, or None (no driver, no device)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    name = done.stdout.strip().splitlines()
    return name[0] if done.returncode == 0 and name else None


def _summary_line(output: str) -> str:
    """pytest's last line (``12 passed, 1 skipped in 3.1s``), or the last line of output."""
    lines = [line for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.search(r"\d+ (passed|failed|error|tests? collected|skipped)", line):
            return line.strip("= ")
    return lines[-1] if lines else ""


@dataclass
class _Running:
    step: Step
    command: list[str]
    process: subprocess.Popen
    output: Any
    started: float


def _start(step: Step, command: list[str], env: dict[str, str], scratch: Path) -> _Running:
    output = (scratch / f"{step.name}.out").open("w+")
    process = subprocess.Popen(
        command, cwd=ROOT, env={**env, **step.env}, stdout=output, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    return _Running(step, command, process, output, time.monotonic())


def _finish(running: _Running, limit: float) -> tuple[str, int, float]:
    """Wait for a step until ``limit`` seconds after its start; stop it (SIGINT first, so
    that pytest prints its failures so far) when it runs over."""
    try:
        code = running.process.wait(max(0.0, limit - (time.monotonic() - running.started)))
    except subprocess.TimeoutExpired:
        os.killpg(running.process.pid, signal.SIGINT)
        try:
            running.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait()
        code = 124
    seconds = time.monotonic() - running.started
    running.output.seek(0)
    output = running.output.read()
    running.output.close()
    if code == 124:
        output += f"\n(stopped after its limit of {limit:.0f} s)"
    return output, code, seconds


def run(
    out: Path, dry_run: bool, workers: int, only: list[str] | None, timeout_scale: float = 1.0
) -> int:
    out.mkdir(parents=True, exist_ok=True)
    gpu = None if dry_run else cuda_device()
    if importlib.util.find_spec("xdist") is None:
        workers = 1  # pytest-xdist is on the device machine; without it, one process
    log = (out / "gpu_check.log").open("w")
    summary = [f"# GPU check, {time.strftime('%Y-%m-%d %H:%M')}", ""]
    header = f"device: {gpu or 'none'}" + (" (dry run)" if dry_run else "")
    summary.append(header)
    print(header, flush=True)
    failed = 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    steps = [s for s in plan(out, workers) if not only or s.name in only]

    def report(step: Step, command: list[str], output: str, code: int, seconds: float) -> None:
        nonlocal failed
        log.write(f"\n===== {step.name}: {' '.join(command)}\n{output}\n")
        log.flush()
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        failed += code != 0
        line = f"{step.name}: {status} in {seconds:.0f} s; {_summary_line(output)}"
        if command is not step.command:
            line += "; collected only (no CUDA device)"
        summary.append(f"- {line}")
        print(line, flush=True)

    with tempfile.TemporaryDirectory() as scratch:
        side_by_side: list[_Running] = []

        def finish_side_by_side() -> None:
            for waiting in side_by_side:
                limit = waiting.step.timeout * timeout_scale
                report(waiting.step, waiting.command, *_finish(waiting, limit))
            side_by_side.clear()

        for step in steps:
            if not step.side_by_side:
                finish_side_by_side()  # nothing runs beside a benchmark
            command = step.command
            if gpu is None and step.needs_gpu:
                if not step.collect_when_dry:
                    line = f"{step.name}: skipped (needs a CUDA device; none here)"
                    summary.append(f"- {line}")
                    print(line, flush=True)
                    continue
                command = [*command, "--collect-only"]
            if step.side_by_side:
                side_by_side.append(_start(step, command, env, Path(scratch)))
                continue
            running = _start(step, command, env, Path(scratch))
            report(step, command, *_finish(running, step.timeout * timeout_scale))
        finish_side_by_side()
    log.close()
    (out / "gpu_summary.md").write_text("\n".join(summary) + "\n")
    return 1 if failed else 0


def merge(results: Path, into: Path) -> list[str]:
    """Copy the ``<!-- bench:*-gpu -->`` sections of ``results`` into ``into``."""
    from xpnn._io import write_atomically

    text = results.read_text()
    target = into.read_text()
    keys = re.findall(r"<!-- bench:([\w-]+-gpu) -->", text)
    for key in keys:
        pattern = re.compile(
            re.escape(f"<!-- bench:{key} -->") + ".*?" + re.escape(f"<!-- /bench:{key} -->"),
            re.DOTALL,
        )
        section = pattern.search(text).group(0)
        if pattern.search(target):
            target = pattern.sub(lambda _, s=section: s, target)
        else:
            target = target.rstrip("\n") + "\n\n" + section + "\n"
    write_atomically(into, lambda file: file.write(target), binary=False)
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get("OUT", "gpu_check_out")),
        help="folder for the log, the results and the summary (default $OUT)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="run every step without CUDA: collect the tests, skip the bench",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="CPU cores shared by the three test steps, which run side by side (1: no xdist)",
    )
    parser.add_argument("--only", nargs="+", metavar="STEP", help="run only these steps")
    parser.add_argument(
        "--timeout-scale",
        type=float,
        default=1.0,
        help="multiply every step's time limit (steps run side by side share the machine)",
    )
    parser.add_argument(
        "--merge",
        type=Path,
        metavar="GPU_RESULTS",
        help="copy the GPU sections of this file into benchmarks/RESULTS.md",
    )
    args = parser.parse_args(argv)  # fmt: skip
    if args.merge is not None:
        keys = merge(args.merge, ROOT / "benchmarks" / "RESULTS.md")
        print(f"merged {', '.join(keys) or 'no GPU section'} into benchmarks/RESULTS.md")
        return 0
    return run(args.out, args.dry_run, args.workers, args.only, args.timeout_scale)


if __name__ == "__main__":
    sys.exit(main())
