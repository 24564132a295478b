"""The ``xpnn`` command.

``xpnn gradcheck [--backend NAME] [--dtype float32|float64]`` runs every registered
gradient-check case on one backend and prints a table; the exit status is 1 if any case
fails, 2 if the backend cannot run here.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from . import __version__
from ._backend import BACKENDS, get_namespace


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xpnn",
        description="Hand-derived neural-network layers on NumPy, CuPy, JAX and PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"xpnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    grad = commands.add_parser(
        "gradcheck",
        help="check every layer's backward pass against numerical gradients",
        description=(
            "Compare each layer's hand-written backward pass with central-difference "
            "numerical gradients (always taken in float64) on one backend."
        ),
    )
    grad.add_argument(
        "--backend",
        choices=BACKENDS,
        default="numpy",
        help="array library to run on (default: numpy)",
    )
    grad.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="dtype of the analytic forward/backward (default: float64)",
    )
    grad.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    grad.add_argument(
        "-k", "--filter", default="", help="only cases whose layer name contains this text"
    )
    return parser


def _gradcheck(args: argparse.Namespace) -> int:
    from .gradient_check import TOLERANCES, registered_cases, run_case

    compile_ = None
    if args.backend == "jax":
        try:
            import jax
        except ImportError:
            jax = None
        if jax is not None:
            # The numerical reference is float64; JAX needs x64 for that.
            jax.config.update("jax_enable_x64", True)
            compile_ = jax.jit
    try:
        xp = get_namespace(args.backend)
    except (ImportError, RuntimeError) as err:
        print(f"xpnn gradcheck: {err}", file=sys.stderr)
        return 2

    cases = [c for c in registered_cases() if args.filter in c.name]
    if not cases:
        print(f"xpnn gradcheck: no case matches {args.filter!r}", file=sys.stderr)
        return 2
    rows = []
    start = time.perf_counter()
    for case in cases:
        try:
            result = run_case(case, xp, dtype=args.dtype, seed=args.seed, compile=compile_)
        except Exception as err:  # a crashing layer is a failed check, reported as such
            rows.append((case.name, case.describe(), "error", type(err).__name__, "FAIL"))
            print(f"{case.name} {case.describe()}: {type(err).__name__}: {err}", file=sys.stderr)
            continue
        rows.append(
            (
                case.name,
                case.describe(),
                f"{result.rel_error:.2e}",
                f"{result.scaled_error:.2e}",
                "pass" if result.passed else "FAIL",
            )
        )
    elapsed = time.perf_counter() - start

    header = ("layer", "input", "rel error", "scaled error", "result")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(
        f"xpnn {__version__} gradcheck: backend={args.backend} dtype={args.dtype} "
        f"(numerical reference in float64, seed {args.seed})"
    )
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    failed = sum(r[-1] != "pass" for r in rows)
    tolerance = f"{TOLERANCES[args.dtype]:.0e}"
    print(
        f"\n{len(rows) - failed} passed, {failed} failed in {elapsed:.1f}s "
        f"(pass: scaled error <= {tolerance}; rel error is CS231n's rel_error)"
    )
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xpnn`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "gradcheck":
        return _gradcheck(args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse makes it required


if __name__ == "__main__":
    sys.exit(main())
