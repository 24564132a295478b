"""``xpnn bench``: time xpnn against PyTorch (or ``jax.lax``) and write the results table."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ._help import DefaultsHelpFormatter

BENCH_BACKENDS = ("numpy", "torch", "jax", "cupy")


def add_parser(commands: Any) -> None:
    """Add the ``bench`` subcommand to the ``xpnn`` parser."""
    parser = commands.add_parser(
        "bench",
        formatter_class=DefaultsHelpFormatter,
        help="time the layers and training steps against PyTorch or jax.lax",
        description=(
            "Time conv, max pool, batch norm and whole training steps (forward and backward) "
            "against a reference in the same process (PyTorch; jax.lax under jax.jit on the "
            "JAX backend), each side in its own warm loop, and print the ratios. Needs "
            "PyTorch except on the JAX backend. Takes a few minutes (--quick: about one)."
        ),
    )
    parser.add_argument("--backend", choices=BENCH_BACKENDS, default="numpy")
    parser.add_argument(
        "--quick", action="store_true", help="fewer timing loops; no naive, memory or scaling runs"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the results into this Markdown file (e.g. benchmarks/RESULTS.md), "
        "replacing the section of this backend",
    )
    parser.add_argument(
        "--plot", type=Path, metavar="FILE", help="save the batch-size scaling plot (NumPy)"
    )
    parser.add_argument(
        "--only",
        metavar="TEXT",
        help="time only the rows whose operation contains TEXT (e.g. lstm, conv, 'training "
        "step'); not with --out, which writes a whole section",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xpnn bench``; returns the exit status."""
    try:
        return _bench(args)
    except (ImportError, RuntimeError, OSError, ValueError) as err:
        if os.environ.get("XPNN_DEBUG"):
            raise
        print(f"xpnn bench: {err}", file=sys.stderr)
        return 2


def _bench(args: argparse.Namespace) -> int:
    from .. import bench
    from .._install import install_command

    if args.backend != "jax":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ImportError(
                f"the references are PyTorch's, which is not installed; {install_command('torch')}"
            ) from None
    if args.backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)  # the float64 rows
    if args.plot is not None and (args.backend != "numpy" or args.quick or args.only):
        raise ValueError(
            "--plot needs the scaling runs: --backend numpy without --quick and --only"
        )
    if args.only is not None and args.out is not None:
        raise ValueError("--only times some rows and --out writes a whole section: give one")
    results = bench.run(
        args.backend, quick=args.quick, progress=lambda line: print(line, flush=True),
        only=args.only,
    )  # fmt: skip
    print()
    print("\n".join(bench.report(results)))
    if args.out is not None:
        print(f"\nwrote {bench.write_section(args.out, results)}")
    if args.plot is not None:
        print(f"wrote {bench.plot_scaling(results, args.plot)}")
    return 0
