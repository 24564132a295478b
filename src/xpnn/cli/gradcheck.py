"""``xpnn gradcheck``: every gradient-check case on one backend, as a table.

The exit status is 1 if any case fails, 2 if the backend cannot run here or the
arguments are wrong.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import textwrap
import time
from typing import Any

from .. import __version__
from .._backend import BACKENDS, get_namespace
from .._install import docs_page
from ._help import DefaultsHelpFormatter


def add_parser(commands: Any) -> None:
    """Add the ``gradcheck`` subcommand to the ``xpnn`` parser."""
    grad = commands.add_parser(
        "gradcheck",
        formatter_class=DefaultsHelpFormatter,
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
        "layers with xpnn.registry.register_layer or register_case",
    )
    grad.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xpnn gradcheck``; returns the exit status."""
    from ..layer_checks import TOLERANCES, run_case
    from ..registry import registered_cases

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

    width = _table_width()
    print(
        f"xpnn {__version__} gradcheck: backend={args.backend} dtype={args.dtype} "
        f"(numerical reference in float64, seed {args.seed})"
    )
    for line in _table(("layer", "input", "rel error", "worst/tol", "result"), rows, width):
        print(line)
    if failures:
        print("\nfailures (worst entry: input[index], analytic and numerical value):")
        for line in failures:
            print(textwrap.fill(line, width, initial_indent="  ", subsequent_indent="    "))
    tol = TOLERANCES[args.dtype]
    print(f"\n{len(rows) - len(failures)} passed, {len(failures)} failed in {elapsed:.1f}s")
    notes = (
        f"pass: every entry |a - n| <= atol + {tol.rtol:.0e}*|n|, atol from the "
        "finite-difference noise and the rounding of the dtype; worst/tol is the largest "
        "ratio of |a - n| to that bound (<= 1 passes); rel error is CS231n's rel_error, not "
        "the criterion (where the true gradient is ~0, as for a bias before batch norm, it "
        "can be 1).",
        f"how it is judged: {docs_page('gradient_checking', 'the-pass-criterion')}",
    )
    for note in notes:
        print(textwrap.fill(note, width, break_long_words=False, break_on_hyphens=False))
    return 1 if failures else 0


def _table_width() -> int:
    """The terminal's width, between 80 and 100 columns (100 without a terminal)."""
    return max(80, min(shutil.get_terminal_size((100, 24)).columns, 100))


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], width: int) -> list[str]:
    """Columns padded to their widest cell; the second (the inputs) wraps at its spaces so
    that a line fits ``width``."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    others = sum(widths) - widths[1] + 2 * (len(header) - 1)
    widths[1] = max(min(widths[1], width - others), 20)
    lines = []
    for row in [header, tuple("-" * w for w in widths), *rows]:
        wrapped = textwrap.wrap(row[1], widths[1]) or [""]
        for k, part in enumerate(wrapped):
            cells = (row[0], part, *row[2:]) if k == 0 else ("", part) + ("",) * (len(row) - 2)
            line = "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            lines.append(line.rstrip())
    return lines
