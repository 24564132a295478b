"""Writing files so that nothing a user saved is ever half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["write_atomically"]


def write_atomically(
    path: str | os.PathLike, write: Callable[[IO[Any]], None], binary: bool = True
) -> Path:
    """Write a file through ``write(file)`` so that ``path`` is never half-written.

    The data goes to a temporary file in the same directory, is flushed and fsynced, and
    the file is renamed over ``path`` (atomic on POSIX and Windows); the directory entry is
    fsynced too where the platform allows. A failure leaves the old file (or none) and no
    temporary file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb" if binary else "w") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, _mode_for(path))  # mkstemp makes 0600; keep what users expect
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):
        directory = os.open(path.parent, os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    return path


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0o022)  # read the umask (there is no getter) and put it back
        os.umask(umask)
        return 0o666 & ~umask
