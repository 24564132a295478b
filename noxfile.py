"""Test matrix and project tasks: plain ``nox`` runs every session that works on a CPU.

Each ``tests-<backend>`` session installs only that backend's extra and runs the same
suite with ``XPNN_BACKEND=<backend>``. PyTorch is added as the independent oracle of the
conv, pool, loss and norm tests wherever the backend is not JAX (whose session checks
against ``jax.vjp`` instead).
"""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = [
    "lint",
    "tests-numpy",
    "tests-array_api_strict",
    "tests-torch",
    "tests-jax",
    "tests-cupy",
    "docs",
]
nox.options.error_on_missing_interpreters = True

# The CPU wheel of torch 2.13.0 is what this project is tested with: an unpinned torch
# pulls a multi-GB CUDA build on Linux.
TORCH = "torch==2.13.0"

# backend -> (extras of xpnn to install, further packages: oracles, and the torch pin)
MATRIX: dict[str, tuple[list[str], list[str]]] = {
    "numpy": (["test", "plot"], [TORCH]),
    "array_api_strict": (["strict", "test"], [TORCH]),
    "torch": (["torch", "test"], [TORCH]),
    "jax": (["jax", "test"], []),
    "cupy": (["cupy", "test"], [TORCH]),
}


#: Test files that start several processes: run after the others, not beside them.
ALONE = ["tests/test_ddp.py", "tests/test_multiprocess.py"]


def _cuda_device_visible() -> bool:
    return shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidiactl")


def _run_suite(session: nox.Session, backend: str) -> None:
    if backend == "cupy" and not _cuda_device_visible():
        session.skip(
            "tests-cupy: no CUDA device on this machine (no nvidia-smi, no /dev/nvidiactl); "
            "the CuPy backend is not tested here"
        )
    extras, oracles = MATRIX[backend]
    session.install(f".[{','.join(extras)}]", *oracles)
    env = {"XPNN_BACKEND": backend}
    if backend == "jax":
        env["JAX_ENABLE_X64"] = "1"
        # 4 CPU devices for the data-parallel tests (tests/test_data_parallel.py)
        forced = "--xla_force_host_platform_device_count=4"
        env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {forced}".strip()
    # pytest-xdist: a worker per core (2 on the CI machine), whole files per worker so that
    # each JAX process compiles a file's shapes once (the JAX session: 6 minutes on 2 cores
    # instead of 9). The tests that start processes of their own (DDP over gloo,
    # jax.distributed) run afterwards, alone: beside another worker, a gloo process was
    # seen to abort.
    parallel = ["pytest", "-n", "auto", "--dist", "loadfile"]
    if session.posargs:  # the user's selection, as given
        session.run(*parallel, *session.posargs, env=env)
        return
    session.run(*parallel, *(f"--ignore={path}" for path in ALONE), env=env)
    # 5: every test of these files skipped here (no JAX in this session, say)
    session.run("pytest", *ALONE, env=env, success_codes=[0, 5])


def _define_test_session(backend: str) -> None:
    def suite(session: nox.Session) -> None:
        _run_suite(session, backend)

    suite.__doc__ = f"Run the whole suite on the {backend} backend."
    nox.session(name=f"tests-{backend}")(suite)


for _backend in MATRIX:
    _define_test_session(_backend)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML docs (offline) into docs/_build/html; warnings are errors.

    The built pages must render without the network too: check_offline.py fails the
    session if any page loads a script or stylesheet from a remote URL (a CDN MathJax).
    """
    # api.md documents the bridges xpnn.torch and xpnn.jax, which import their frameworks.
    session.install(".[docs,jax]", TORCH)
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
    session.run("python", "docs/check_offline.py", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """``xpnn bench`` on NumPy and JAX, into benchmarks/RESULTS.md (not a test; minutes).

    ``nox -s bench -- --quick`` times fewer loops (and writes no plot).
    """
    session.install(".[bench,jax]", TORCH)
    quick = "--quick" in session.posargs
    plot = [] if quick else ["--plot", "docs/_static/bench_scaling.png"]
    session.run("xpnn", "bench", "--out", "benchmarks/RESULTS.md", *plot, *session.posargs)
    session.run(
        "xpnn", "bench", "--backend", "jax", "--out", "benchmarks/RESULTS.md", *session.posargs
    )


@nox.session
def gpu(session: nox.Session) -> None:
    """The GPU check (tools/gpu_check.py): cupy, JAX and torch-CUDA tests and ``xpnn bench``.

    Without a CUDA device it is the dry run: each step's tests are collected, not run, and
    the benchmarks are skipped, each with one line saying so. On a machine with a GPU and
    its CUDA builds of CuPy, JAX and PyTorch, it runs for real (about 7 minutes) and writes
    into ``gpu_check_out/``; ``python tools/gpu_check.py --merge
    gpu_check_out/gpu_results.md`` then records the results in benchmarks/RESULTS.md. On the
    lent device machine, run the script itself (its docstring says how).
    """
    if _cuda_device_visible():
        session.install(".[test,cupy]", "jax[cuda13]", "torch", "pytest-xdist")
        session.run("python", "tools/gpu_check.py", "--out", "gpu_check_out", *session.posargs)
    else:
        session.install(".[test]")
        session.run(
            "python", "tools/gpu_check.py", "--dry-run", "--out", "gpu_check_out",
            *session.posargs,
        )  # fmt: skip
