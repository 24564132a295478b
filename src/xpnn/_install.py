"""How this copy of xpnn was installed: for install hints and links to the docs that fit it.

A copy installed from a package index gets ``pip install 'xpnn[jax]'``; one installed
from a local clone (``pip install .``, ``pip install -e .``), or imported straight from a
source tree, gets the same command with the clone's path, and one installed from a URL
(git or an archive) the command with that URL: whatever works there.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

__all__ = ["docs_page", "install_command", "source_checkout"]

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _direct_url() -> dict | None:
    """pip's record of where this copy came from (PEP 610), or None for an index install."""
    try:
        text = importlib.metadata.distribution("xpnn").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    return json.loads(text) if text else None


def source_checkout() -> tuple[Path, bool] | None:
    """``(source tree, editable)`` if xpnn was installed from a local directory, else None.

    Read from the ``direct_url.json`` that pip records (PEP 610). A copy that is not
    installed at all but imported from a source tree counts as an editable one.
    """
    try:
        importlib.metadata.distribution("xpnn")
    except importlib.metadata.PackageNotFoundError:
        return (_SOURCE_ROOT, True) if _is_source_tree(_SOURCE_ROOT) else None
    info = _direct_url() or {}
    url = urlparse(info.get("url", ""))
    if "dir_info" not in info or url.scheme != "file":
        return None
    return Path(url2pathname(url.path)), bool(info["dir_info"].get("editable"))


def _is_source_tree(root: Path) -> bool:
    return (root / "pyproject.toml").is_file() and (root / "src" / "xpnn").is_dir()


def _requirement(extra: str) -> str | None:
    """The requirement that the extra ``extra`` adds (``'jax>=0.4.30'``), from the metadata."""
    try:
        requires = importlib.metadata.requires("xpnn") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for line in requires:
        requirement, _, marker = line.partition(";")
        if re.search(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]", marker):
            return requirement.strip()
    return None


def install_command(extra: str) -> str:
    """The pip command that installs xpnn's extra ``extra`` for this copy of xpnn."""
    source = source_checkout()
    info = _direct_url() or {}
    if source is None and "url" in info and "dir_info" not in info:
        vcs = info.get("vcs_info", {}).get("vcs")
        url = f"{vcs}+{info['url']}" if vcs else info["url"]
        command = f"pip install 'xpnn[{extra}] @ {url}'"
    elif source is None:
        command = f"pip install 'xpnn[{extra}]'"
    else:
        path, editable = source
        command = f"pip install {'-e ' if editable else ''}'{path}[{extra}]'"
    requirement = _requirement(extra)
    if requirement:
        command += f" (or the package alone: pip install '{requirement}')"
    return command


def docs_page(name: str, anchor: str = "") -> str:
    """Where to read the docs page ``name`` (``'gradient_checking'``) of this copy of xpnn."""
    source = source_checkout()
    fragment = f"#{anchor}" if anchor else ""
    if source is not None:
        built = source[0] / "docs" / "_build" / "html" / f"{name}.html"
        if built.is_file():
            return built.as_uri() + fragment
        page = source[0] / "docs" / f"{name}.md"
        if page.is_file():
            return str(page)
    return f"docs/{name}.md in the xpnn source distribution (built by: nox -s docs)"
