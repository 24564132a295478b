"""``xpnn download cifar10|coco [--dir DIR] [--url URL] [--md5 HEX | --no-verify]``: fetch,
verify and extract CIFAR-10 or the COCO captioning data."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._help import DefaultsHelpFormatter


def add_parser(commands: Any) -> None:
    """Add the ``download`` subcommand to the ``xpnn`` parser."""
    from ..coco import COCO_URL
    from ..data import CIFAR10_MD5, CIFAR10_URL

    parser = commands.add_parser(
        "download",
        formatter_class=DefaultsHelpFormatter,
        help="download a dataset (CIFAR-10's python version, or the COCO captioning data)",
        description=(
            "Download the CIFAR-10 python tarball, verify its MD5 and extract it into "
            "DIR/cifar-10-batches-py; or the course's coco_captioning.zip (about 1 GB; its "
            "CRC-32s and files checked, and its MD5 if --md5 is given) into "
            "DIR/coco_captioning. Nothing is written outside DIR."
        ),
    )
    parser.add_argument("dataset", choices=("cifar10", "coco"))
    parser.add_argument(
        "--dir",
        default=None,
        help="target directory (default: $XPNN_DATA_DIR, else ~/.cache/xpnn)",
    )
    parser.add_argument(
        "--url", default=None, help=f"where to fetch (default {CIFAR10_URL} or {COCO_URL})"
    )
    parser.add_argument(
        "--md5",
        default=None,
        metavar="HEX",
        help=f"the archive's MD5, for a mirror whose archive differs (default for cifar10: "
        f"{CIFAR10_MD5}; coco has no published one)",
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


def _coco_options(args: argparse.Namespace) -> dict[str, Any]:
    from .._download import as_md5
    from ..coco import COCO_URL

    if args.no_verify:
        raise ValueError(
            "--no-verify is for cifar10: the COCO archive has no published MD5 to skip (its "
            "CRC-32s and files are always checked)"
        )
    md5 = None if args.md5 is None else as_md5(args.md5, name="--md5")
    return {"url": args.url or COCO_URL, "md5": md5}


def run(args: argparse.Namespace) -> int:
    """Run ``xpnn download``; returns the exit status."""
    from ..coco import download_coco
    from ..data import download_cifar10

    coco = args.dataset == "coco"
    try:
        options = _coco_options(args) if coco else _checksum_options(args)
        progress = not args.quiet and sys.stderr.isatty()
        fetch = download_coco if coco else download_cifar10
        path = fetch(args.dir, progress=progress, **options)
    except (OSError, ValueError) as err:
        print(f"xpnn download: {err}", file=sys.stderr)
        return 2
    print(f"{'The COCO captioning data' if coco else 'CIFAR-10'} is in {path}")
    return 0
