"""The GPU check: the test suite and the benchmarks on an NVIDIA GPU, in one prepared run.

Steps, each with its own time limit (about 7 minutes in all on the lent H200):

1. ``tests-cupy``: the whole suite with ``XPNN_BACKEND=cupy``;
2. ``tests-jax-gpu``: the layer, bridge, model and Solver tests with ``XPNN_BACKEND=jax``
   on JAX's default device (the GPU), x64 on, under the transfer-guard tests too;
3. ``tests-torch-cuda``: the same tests with ``XPNN_BACKEND=torch XPNN_DEVICE=cuda``, and the
   CUDA-only tests of ``tests/test_device_paths.py``;
4. ``bench-cupy``, ``bench-jax``, ``bench-torch``: ``xpnn bench --quick`` on the GPU, each
   writing its section into ``gpu_results.md``.

Everything goes to ``--out`` (``$OUT`` on the device machine): ``gpu_check.log`` (every
step's output), ``gpu_results.md`` (the benchmark sections) and ``gpu_summary.md`` (one line
per step). ``python tools/gpu_check.py --merge DIR/gpu_results.md`` then copies the GPU
sections into ``benchmarks/RESULTS.md``.

On the device machine (Python 3.12, CuPy, CUDA JAX, torch, pytest, pytest-xdist and
hypothesis are there; array-api-compat and array-api-extra are not, and nothing can be
fetched), carry the two as wheels. Once, here::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \\
        -d .whl array-api-compat==1.16.0 array-api-extra==0.11.5

(the versions of ``pip show`` in the dev environment), then run with ``carry=[".whl"]``::

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
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

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
    notes: list[str] = field(default_factory=list)


def _pytest(files: list[str], workers: int) -> list[str]:
    ignore = [f"--ignore={f}" for f in CPU_ONLY]
    parallel = ["-n", str(workers)] if workers > 1 else []
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *parallel,
            *ignore, *files]  # fmt: skip


def plan(out: Path, workers: int) -> list[Step]:
    """The steps of the check, in order."""
    results = out / "gpu_results.md"
    jax_env = {
        "XPNN_BACKEND": "jax",
        "JAX_ENABLE_X64": "1",
        # several test processes share the GPU: no process takes 75% of it up front
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
    }
    bench = [sys.executable, "-m", "xpnn", "bench", "--quick", "--out", str(results)]
    return [
        Step("tests-cupy", _pytest(["tests"], workers), {"XPNN_BACKEND": "cupy"}, 110,
             collect_when_dry=True),
        Step("tests-jax-gpu", _pytest(["tests"], workers), jax_env, 120, collect_when_dry=True),
        Step("tests-torch-cuda", _pytest(["tests"], workers),
             {"XPNN_BACKEND": "torch", "XPNN_DEVICE": "cuda"}, 100, collect_when_dry=True),
        Step("bench-cupy", [*bench, "--backend", "cupy"], {}, 40),
        Step("bench-jax", [*bench, "--backend", "jax"], {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
             50),
        Step("bench-torch", [*bench, "--backend", "torch"], {}, 40),
    ]  # fmt: skip


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


def run(out: Path, dry_run: bool, workers: int, only: list[str] | None) -> int:
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
    env_base = {**os.environ, "PYTHONUNBUFFERED": "1"}
    src = str(ROOT / "src")
    env_base["PYTHONPATH"] = os.pathsep.join(p for p in (src, env_base.get("PYTHONPATH", "")) if p)
    for step in plan(out, workers):
        if only and step.name not in only:
            continue
        command = step.command
        if gpu is None and step.needs_gpu:
            if not step.collect_when_dry:
                line = f"{step.name}: skipped (needs a CUDA device; none here)"
                summary.append(f"- {line}")
                print(line, flush=True)
                continue
            command = [*command, "--collect-only"]
        started = time.monotonic()
        try:
            done = subprocess.run(
                command, cwd=ROOT, env={**env_base, **step.env}, capture_output=True,
                text=True, timeout=step.timeout, check=False,
            )  # fmt: skip
            output, code = done.stdout + done.stderr, done.returncode
        except subprocess.TimeoutExpired as err:
            partial = err.stdout if isinstance(err.stdout, str) else (err.stdout or b"").decode()
            output, code = partial + f"\n(stopped after its limit of {step.timeout} s)", 124
        seconds = time.monotonic() - started
        log.write(f"\n===== {step.name}: {' '.join(command)}\n{output}\n")
        log.flush()
        what = "collected only (no CUDA device)" if command is not step.command else ""
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        failed += code != 0
        line = f"{step.name}: {status} in {seconds:.0f} s; {_summary_line(output)}"
        if what:
            line += f"; {what}"
        summary.append(f"- {line}")
        print(line, flush=True)
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
        "--workers", type=int, default=8, help="pytest-xdist processes per test step (1: no xdist)"
    )
    parser.add_argument("--only", nargs="+", metavar="STEP", help="run only these steps")
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
    return run(args.out, args.dry_run, args.workers, args.only)


if __name__ == "__main__":
    sys.exit(main())
