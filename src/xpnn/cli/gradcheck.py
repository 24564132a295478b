"""``xpnn gradcheck``: every gradient-check case on one backend, as a table.

The exit status is 1 if any case fails, 2 if the backend cannot run here or the
arguments are wrong.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Any

from .. import __version__
from .._backend import BACKENDS, get_namespace
from .._install import docs_page


def add_parser(commands: Any) -> None:
    """Add the ``gradcheck`` subcommand to the ``xpnn`` parser."""
    grad = commands.add_parser(
        "gradcheck",
        help="check every layer's backward pass against numerical gradients",
        description=(
            "Compare each layer's hand-written backward pass with central-difference "
            "numerical gradients (always taken in float64) on one backend, entry by entry."
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
    grad.add_argument(
        "--import",
        dest="modules",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (repeatable): a module that registers cases of its own "
        "layers with xpnn.gradcheck.register_case",
    )
    grad.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xpnn gradcheck``; returns the exit status."""
    from ..gradcheck import TOLERANCES, registered_cases, run_case

    for module in args.modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            print(f"xpnn gradcheck: cannot import {module!r}: {err}", file=sys.stderr)
            return 2
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
    rows, failures = [], []
    start = time.perf_counter()
    for case in cases:
        try:
            result = run_case(case, xp, dtype=args.dtype, seed=args.seed, compile=compile_)
        except Exception as err:  # a crashing layer is a failed check, reported as such
            rows.append((case.name, case.describe(), "error", "error", "FAIL"))
            failures.append(f"{case.name} {case.describe()}: {type(err).__name__}: {err}")
            continue
        rows.append(
            (
                case.name,
                case.describe(),
                f"{result.rel_error:.2e}",
                f"{result.ratio:.2e}",
                "pass" if result.passed else "FAIL",
            )
        )
        if not result.passed:
            failures.append(f"{case.name} {case.describe()}: {result.summary}")
    elapsed = time.perf_counter() - start

    header = ("layer", "input", "rel error", "worst/allowed", "result")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(
        f"xpnn {__version__} gradcheck: backend={args.backend} dtype={args.dtype} "
        f"(numerical reference in float64, seed {args.seed})"
    )
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if failures:
        print("\nfailures (worst entry: input[index], analytic and numerical value):")
        for line in failures:
            print(f"  {line}")
    tol = TOLERANCES[args.dtype]
    print(
        f"\n{len(rows) - len(failures)} passed, {len(failures)} failed in {elapsed:.1f}s\n"
        f"pass: every entry |a - n| <= atol + {tol.rtol:.0e}*|n|, atol from the "
        "finite-difference noise and the rounding of the dtype; worst/allowed is the "
        "largest ratio (<= 1 passes); rel error is CS231n's rel_error, not the criterion "
        "(where the true gradient is ~0, as for a bias before batch norm, it can be 1).\n"
        f"how it is judged: {docs_page('gradient_checking', 'the-pass-criterion')}"
    )
    return 1 if failures else 0
