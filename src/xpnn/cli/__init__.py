"""The ``xpnn`` command: ``train`` (the main one), ``gradcheck``, ``download`` and ``bench``.

Each subcommand lives in its own module with an ``add_parser(commands)`` that registers
its arguments and a ``run(args) -> int`` that returns the exit status: 0 on success, 1
when the work itself fails (a failing gradient check, a diverged training), 2 for a user
mistake (bad arguments, missing data or backend), reported in one line without a
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from . import bench, download, gradcheck, train

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xpnn",
        description="Hand-derived neural-network layers on NumPy, CuPy, JAX and PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"xpnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (train, gradcheck, download, bench):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xpnn`` command; returns the exit status.

    Ctrl-C ends a command with status 130 and one line (a training run's checkpoints are
    written atomically, so the last one is intact). ``XPNN_DEBUG=1`` shows the traceback
    of any error instead.
    """
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt as err:
        if os.environ.get("XPNN_DEBUG"):
            raise
        where = f" {err}" if str(err) else ""  # xpnn train: the checkpoint to resume from
        print(f"\nxpnn {args.command}: interrupted{where}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
