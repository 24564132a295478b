"""Fetching an archive and unpacking it safely: the machinery behind :mod:`xpnn.data` and
:mod:`xpnn.coco`.

Two rules hold whatever the archive contains:

* A download is streamed into a temporary file next to its destination and checked
  against its MD5 before anything is unpacked; a failed or corrupt download leaves
  nothing behind.
* An archive may hold only regular files and directories with relative names that stay
  inside the destination. Absolute names, ``..`` components, symbolic and hard links,
  devices and FIFOs are refused before a single byte is written (and, where Python has it,
  ``tarfile``'s ``'data'`` filter is applied as well).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath

__all__ = [
    "as_md5",
    "download",
    "fetch_and_install",
    "md5_of",
    "safe_extract",
    "temporary_directory",
]

_CHUNK = 1 << 20
#: Seconds to wait for the server to answer (per blocking operation, not for the whole file).
TIMEOUT = 60.0


_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")


def as_md5(value: object, name: str = "md5") -> str:
    """``value`` as a lower-case hex MD5 digest, checked.

    Parameters
    ----------
    value : str
        32 hexadecimal digits, in any case (what ``md5sum`` prints before the file name).
    name : str, default 'md5'
        What to call the value in an error message (``'--md5'`` for the command line).

    Raises
    ------
    TypeError
        ``value`` is not a string.
    ValueError
        It is not 32 hexadecimal digits; the message shows what it got.
    """
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be a string of 32 hexadecimal digits; got {type(value).__name__}"
        )
    if not _MD5_HEX.fullmatch(value):
        raise ValueError(
            f"{name} must be an MD5 digest, 32 hexadecimal digits (0-9, a-f); got {value!r}"
            + (f" ({len(value)} characters)" if len(value) != 32 else "")
        )
    return value.lower()


def md5_of(path: str | os.PathLike) -> str:
    """Hex MD5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def as_url(url: str) -> str:
    """``url`` itself, or a ``file://`` URL when it is the path of an existing local file."""
    if not urllib.parse.urlparse(url).scheme or PureWindowsPath(url).drive:
        path = Path(url).expanduser()
        if path.is_file():
            return path.resolve().as_uri()
    return url


def download(
    url: str,
    directory: Path,
    *,
    md5: str | None,
    progress: bool,
    help_text: str,
    mismatch_help: str = "",
) -> Path:
    """Download ``url`` into a new temporary file in ``directory`` and check its MD5.

    Parameters
    ----------
    url : str
        What to fetch (any scheme urllib opens; a local path is accepted too).
    directory : pathlib.Path
        Existing directory that receives the temporary file.
    md5 : str or None
        Expected hex digest; ``None`` skips the check.
    progress : bool
        Show a tqdm progress bar on stderr.
    help_text : str
        What to tell the user when the download fails (alternatives to this URL).
    mismatch_help : str, optional
        What to add to the message when the MD5 differs.

    Returns
    -------
    pathlib.Path
        The temporary file. The caller removes it.

    Raises
    ------
    ConnectionError
        The URL could not be fetched; the message names it and adds ``help_text``.
    ValueError
        The MD5 differs; the message gives the expected and the actual digest. The
        temporary file has been removed.
    """
    fd, name = tempfile.mkstemp(dir=directory, prefix=".xpnn-download-", suffix=".part")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _fetch(as_url(url), out, progress=progress, help_text=help_text)
        if md5 is not None and actual != md5.lower():
            raise ValueError(
                f"checksum mismatch for {url}: expected MD5 {md5.lower()}, got {actual}. "
                "The download is corrupt or is not the expected archive; nothing was "
                "extracted and the partial file was removed." + mismatch_help
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _fetch(url: str, out, *, progress: bool, help_text: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            total = response.headers.get("Content-Length")
            with _progress_bar(progress, int(total) if total else None, url) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar(len(chunk))
    except (
        urllib.error.URLError,
        http.client.HTTPException,
        TimeoutError,
        ConnectionError,
        ValueError,
    ) as err:
        reason = getattr(err, "reason", None) or err
        raise ConnectionError(f"could not download {url}: {reason}. {help_text}") from err
    return digest.hexdigest()


@contextmanager
def _progress_bar(enabled: bool, total: int | None, url: str) -> Iterator:
    if not enabled:
        yield lambda n: None
        return
    from tqdm import tqdm

    name = PurePosixPath(urllib.parse.urlparse(url).path).name or url
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name) as bar:
        yield bar.update


@contextmanager
def temporary_directory(parent: Path, prefix: str) -> Iterator[Path]:
    """A new directory inside ``parent`` (same file system, so a rename out of it is
    atomic), removed with whatever is left in it on exit."""
    path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fetch_and_install(
    url: str,
    directory: Path,
    name: str,
    *,
    missing: Callable[[Path], list[str]],
    what: str,
    md5: str | None,
    progress: bool,
    help_text: str,
    mismatch_help: str = "",
) -> Path:
    """Make ``directory / name`` hold a dataset, downloading its archive if it does not.

    ``missing(path)`` lists the files a folder lacks (none: it is complete), and ``what``
    names the dataset in messages. A complete folder is returned as it is; an incomplete
    one raises a FileExistsError and is left alone. Otherwise the archive is downloaded
    (:func:`download`, checked against ``md5``), unpacked (:func:`safe_extract`) into a
    temporary folder of ``directory``, and its top folder ``name`` moved into place with
    one rename, so that an interrupted or failed run leaves neither a partial archive nor
    a half-written folder. An archive without every file raises a ValueError and installs
    nothing; another run that installed the same folder first is not an error.
    """
    target = directory / name
    absent = missing(target)
    if not absent:
        return target
    if target.exists():
        raise FileExistsError(
            f"{target} exists but lacks {', '.join(absent)}; it was left as it is: "
            f"remove it and run again to download {what}"
        )
    directory.mkdir(parents=True, exist_ok=True)
    archive = download(url, directory, md5=md5, progress=progress, help_text=help_text,
                       mismatch_help=mismatch_help)  # fmt: skip
    try:
        with temporary_directory(directory, ".xpnn-extract-") as staging:
            safe_extract(archive, staging)
            unpacked = staging / name
            lacking = missing(unpacked)
            if lacking:
                raise ValueError(
                    f"the archive does not hold {what}: {name}/ lacks {', '.join(lacking)}; "
                    "nothing was installed"
                )
            try:
                unpacked.rename(target)
            except OSError:
                if missing(target):  # not a concurrent run that finished first
                    raise
    finally:
        archive.unlink(missing_ok=True)
    return target


def safe_extract(archive: Path, destination: Path) -> None:
    """Unpack a zip or tar archive (any compression) into ``destination``, refusing unsafe
    members.

    Every member is checked before anything is written: it must be a regular file or a
    directory, and its name must be relative, free of ``..`` components and inside
    ``destination`` once resolved. A zip's members must also match the CRC-32 the archive
    records for them. Where ``tarfile`` has extraction filters (Python 3.12, 3.11.4 and
    later), the ``'data'`` filter is applied on top.

    Raises
    ------
    ValueError
        The archive is neither a readable zip nor tar file, a member is unsafe (the message
        names it and says why) or a zip member is corrupt. Nothing has been extracted then.
    """
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, destination)
        return
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            root = destination.resolve()
            for member in members:
                _check_member(member, root)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(root, members=members, filter="data")
            else:  # pragma: no cover - Python 3.11.0-3.11.3
                tar.extractall(root, members=members)
    except tarfile.TarError as err:
        raise ValueError(f"{archive} is neither a zip nor a readable tar archive: {err}") from err


def _extract_zip(archive: Path, destination: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            root = destination.resolve()
            for member in members:
                if stat.S_ISLNK(member.external_attr >> 16):
                    _refuse(member.filename, "it is a symbolic link; links are not extracted")
                _check_name(member.filename.rstrip("/"), root)
            for member in members:  # read through: zipfile checks each CRC-32 at the end
                try:
                    with zipped.open(member) as data:
                        while data.read(_CHUNK):
                            pass
                except (zipfile.BadZipFile, zlib.error, EOFError) as err:
                    _refuse(member.filename, f"its data is corrupt ({err})")
                except (RuntimeError, NotImplementedError) as err:  # encrypted; deflate64
                    _refuse(member.filename, f"it cannot be read ({err})")
            zipped.extractall(root, members=members)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{archive} is not a readable zip archive: {err}") from err


def _check_member(member: tarfile.TarInfo, root: Path) -> None:
    name = member.name
    if member.issym() or member.islnk():
        kind = "a symbolic link" if member.issym() else "a hard link"
        _refuse(name, f"it is {kind} (to {member.linkname!r}); links are not extracted")
    if not (member.isfile() or member.isdir()):
        _refuse(name, "it is not a regular file or a directory (device, FIFO or other)")
    _check_name(name, root)


def _check_name(name: str, root: Path) -> None:
    if "\x00" in name:
        _refuse(name, "its name contains a NUL character")
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or windows.root:
        _refuse(name, "its path is absolute")
    if ".." in posix.parts or ".." in windows.parts:
        _refuse(name, "its path contains '..'")
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        _refuse(name, f"it would be written outside {root}")


def _refuse(name: str, why: str) -> None:
    raise ValueError(f"refusing to extract archive member {name!r}: {why}")
