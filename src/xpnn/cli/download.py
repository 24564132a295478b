"""``xpnn download cifar10 [--dir DIR] [--url URL]``: fetch, verify and extract CIFAR-10."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(commands: Any) -> None:
    """Add the ``download`` subcommand to the ``xpnn`` parser."""
    from ..data import CIFAR10_URL

    parser = commands.add_parser(
        "download",
        help="download a dataset (CIFAR-10's python version)",
        description=(
            "Download the CIFAR-10 python tarball, verify its published MD5 and extract it "
            "into DIR/cifar-10-batches-py (nothing is written outside DIR)."
        ),
    )
    parser.add_argument("dataset", choices=("cifar10",))
    parser.add_argument(
        "--dir",
        default=None,
        help="target directory (default: $XPNN_DATA_DIR, else ~/.cache/xpnn)",
    )
    parser.add_argument(
        "--url", default=CIFAR10_URL, help=f"where to fetch (default {CIFAR10_URL})"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar (there is none without a terminal)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xpnn download``; returns the exit status."""
    from ..data import download_cifar10

    try:
        progress = not args.quiet and sys.stderr.isatty()
        path = download_cifar10(args.dir, url=args.url, progress=progress)
    except (OSError, ValueError) as err:
        print(f"xpnn download: {err}", file=sys.stderr)
        return 2
    print(f"CIFAR-10 is in {path}")
    return 0
