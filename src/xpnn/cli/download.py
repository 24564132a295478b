"""``xpnn download cifar10 [--dir DIR] [--url URL] [--md5 HEX | --no-verify]``: fetch,
verify and extract CIFAR-10."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._help import DefaultsHelpFormatter


def add_parser(commands: Any) -> None:
    """Add the ``download`` subcommand to the ``xpnn`` parser."""
    from ..data import CIFAR10_MD5, CIFAR10_URL

    parser = commands.add_parser(
        "download",
        formatter_class=DefaultsHelpFormatter,
        help="download a dataset (CIFAR-10's python version)",
        description=(
            "Download the CIFAR-10 python tarball, verify its MD5 and extract it into "
            "DIR/cifar-10-batches-py (nothing is written outside DIR)."
        ),
    )
    parser.add_argument("dataset", choices=("cifar10",))
    parser.add_argument(
        "--dir",
        default=None,
        help="target directory (default: $XPNN_DATA_DIR, else ~/.cache/xpnn)",
    )
    parser.add_argument("--url", default=None, help=f"where to fetch (default {CIFAR10_URL})")
    parser.add_argument(
        "--md5",
        default=None,
        metavar="HEX",
        help=f"the archive's MD5, for a mirror whose archive differs (default {CIFAR10_MD5})",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="do not check the archive's MD5 (only with --url, for an archive you trust)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar (there is none without a terminal)"
    )
    parser.set_defaults(run=run)


def _checksum_options(args: argparse.Namespace) -> dict[str, Any]:
    """``download_cifar10``'s ``url``, ``md5`` and ``verify`` from the options, checked."""
    from .._download import as_md5
    from ..data import CIFAR10_MD5, CIFAR10_URL

    if args.no_verify:
        if args.md5 is not None:
            raise ValueError("--md5 and --no-verify contradict each other: give one of them")
        if args.url in (None, CIFAR10_URL):
            raise ValueError(
                "--no-verify needs --url with another archive: the official archive's MD5 "
                "is published, so it is always checked"
            )
        return {"url": args.url, "md5": None, "verify": False}
    md5 = CIFAR10_MD5 if args.md5 is None else as_md5(args.md5, name="--md5")
    return {"url": args.url or CIFAR10_URL, "md5": md5, "verify": True}


def run(args: argparse.Namespace) -> int:
    """Run ``xpnn download``; returns the exit status."""
    from ..data import download_cifar10

    try:
        options = _checksum_options(args)
        progress = not args.quiet and sys.stderr.isatty()
        path = download_cifar10(args.dir, progress=progress, **options)
    except (OSError, ValueError) as err:
        print(f"xpnn download: {err}", file=sys.stderr)
        return 2
    print(f"CIFAR-10 is in {path}")
    return 0
