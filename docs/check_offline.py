"""Fail if a built HTML page loads a script, stylesheet, image or frame from the network.

(Tags only: a ``url(...)`` inside a bundled CSS file is not scanned.)

Usage: python docs/check_offline.py docs/_build/html
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REMOTE = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["'](?:https?:)?//""", re.I
)
# <a href="https://..."> is a link the reader may follow, not something the page loads;
# <link rel="..."> to a remote URL is a load, unless it is only a canonical/alternate name.
HARMLESS = re.compile(r"""rel\s*=\s*["'](?:canonical|alternate|author|license)["']""", re.I)


def remote_loads(root: Path) -> list[str]:
    found = []
    for page in sorted(root.rglob("*.html")):
        for match in REMOTE.finditer(page.read_text(encoding="utf-8")):
            tag = page.read_text(encoding="utf-8")[match.start() : match.start() + 300]
            tag = tag[: tag.find(">") + 1]
            if not HARMLESS.search(tag):
                found.append(f"{page.relative_to(root)}: {tag}")
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "docs/_build/html")
    if not root.is_dir():
        print(f"check_offline: {root} is not a built docs folder", file=sys.stderr)
        return 2
    found = remote_loads(root)
    for line in found:
        print(f"remote resource: {line}", file=sys.stderr)
    pages = len(list(root.rglob("*.html")))
    if not found:
        print(f"check_offline: {pages} pages, nothing loaded from the network")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
