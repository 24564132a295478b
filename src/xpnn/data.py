"""Datasets: CIFAR-10 in its original Python format, its download, and an offline default.

* :func:`load_CIFAR_batch`, :func:`load_CIFAR10` and :func:`get_CIFAR10_data` behave as
  the CS231n assignment's ``data_utils`` functions of the same names, over the official
  ``cifar-10-batches-py`` files.
* :func:`download_cifar10` fetches and checks the official archive and unpacks it safely
  (also available as ``xpnn download cifar10 --dir DIR``).
* :func:`load_digits` is the dataset that needs no download: scikit-learn's bundled 8x8
  handwritten digits, split and shaped like :func:`get_CIFAR10_data`'s output.

Where the data lives: :func:`default_data_dir` is xpnn's own data directory,
``$XPNN_DATA_DIR`` when that environment variable is set and ``~/.cache/xpnn`` otherwise;
:func:`download_cifar10` unpacks CIFAR-10 into its ``cifar-10-batches-py`` folder. The
loaders, given no root, take the first complete ``cifar-10-batches-py`` of
:func:`cifar10_search_path`: ``$XPNN_DATA_DIR`` if set, then the CS231n assignment's
``cs231n/datasets`` under the current directory (where its ``get_datasets.sh`` puts the
data), then ``~/.cache/xpnn`` if ``$XPNN_DATA_DIR`` is not set. :func:`find_cifar10` says
which one that is.

The loaders return NumPy arrays unless told otherwise: ``backend=`` moves every array of
the result with :func:`xpnn.to_backend`.
"""

from __future__ import annotations

import os
import pickle
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from . import _download
from ._backend import get_backend, to_backend
from ._params import count as _count

__all__ = [
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "cifar10_search_path",
    "default_data_dir",
    "download_cifar10",
    "find_cifar10",
    "get_CIFAR10_data",
    "load_CIFAR10",
    "load_CIFAR_batch",
    "load_digits",
]

#: The official CIFAR-10 archive for Python (about 163 MiB).
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
#: Its published MD5 (https://www.cs.toronto.edu/~kriz/cifar.html).
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"

#: Environment variable naming the directory that holds xpnn's datasets.
DATA_DIR_ENV = "XPNN_DATA_DIR"
_CIFAR10_DIRNAME = "cifar-10-batches-py"
#: The CS231n assignment's CIFAR-10 folder, relative to the current directory: its
#: ``cs231n/datasets/get_datasets.sh`` unpacks the archive there, and its ``data_utils``
#: reads it from there (the notebooks run in the assignment's top folder).
_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_FILE = "test_batch"
_CIFAR10_FILES = (*_TRAIN_FILES, _TEST_FILE)
_IMAGE_SIZE = 3 * 32 * 32
_NUM_CLASSES = 10


# --------------------------------------------------------------------------- where data lives


def default_data_dir() -> Path:
    """The directory that holds xpnn's datasets when no directory is given.

    Returns
    -------
    pathlib.Path
        ``$XPNN_DATA_DIR`` if that environment variable is set (and not empty), else
        ``~/.cache/xpnn``. CIFAR-10 is expected in its ``cifar-10-batches-py`` folder. The
        directory need not exist.
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path("~/.cache/xpnn").expanduser()


def cifar10_search_path() -> list[Path]:
    """Where the CIFAR-10 loaders look when they are given no root, in order.

    Returns
    -------
    list of pathlib.Path
        Absolute ``cifar-10-batches-py`` directories (they need not exist), without
        duplicates:

        1. ``$XPNN_DATA_DIR/cifar-10-batches-py``, when that environment variable is set
           (and not empty): a directory the user chose comes first.
        2. ``cs231n/datasets/cifar-10-batches-py`` under the current working directory:
           where the CS231n assignment's ``get_datasets.sh`` puts CIFAR-10, so a notebook
           or script run from the assignment's folder uses the copy it already has.
        3. ``~/.cache/xpnn/cifar-10-batches-py``, when ``$XPNN_DATA_DIR`` is not set (the
           variable replaces this default, as it does for :func:`download_cifar10`).

        The list is computed at each call, from the environment and the current
        directory of that moment.

    See Also
    --------
    find_cifar10 : the first of these that holds all six batch files.
    """
    return [path for path, _ in _cifar10_places()]


def _cifar10_places() -> list[tuple[Path, str]]:
    """:func:`cifar10_search_path`, each directory with what it is (for messages)."""
    return dataset_search_places(_CIFAR10_DIRNAME)


def dataset_search_places(dirname: str) -> list[tuple[Path, str]]:
    """Where a dataset's folder ``dirname`` is looked for, in order, each with what it is
    (for messages): ``$XPNN_DATA_DIR/dirname`` when the variable is set, the assignment's
    ``cs231n/datasets/dirname`` under the current directory, and ``~/.cache/xpnn/dirname``
    when the variable is not set; absolute, without duplicates (CIFAR-10's and COCO's
    search)."""
    assignment = (_absolute(Path("cs231n", "datasets", dirname)), "the CS231n assignment's folder")
    default = _absolute(default_data_dir() / dirname)
    if os.environ.get(DATA_DIR_ENV):
        places = [(default, f"${DATA_DIR_ENV}"), assignment]
    else:
        places = [assignment, (default, "xpnn's default")]
    unique = {}
    for path, what in places:
        unique.setdefault(path, what)
    return list(unique.items())


def _absolute(path: Path) -> Path:
    try:
        return path.absolute()
    except OSError:  # the current directory was removed
        return path


def find_cifar10() -> Path:
    """The directory the CIFAR-10 loaders read when they are given no root.

    Returns
    -------
    pathlib.Path
        The first directory of :func:`cifar10_search_path` that holds ``data_batch_1`` ...
        ``data_batch_5`` and ``test_batch``. A directory that lacks some of them is
        passed over (the message below names what it lacks, if none is complete).

    Raises
    ------
    FileNotFoundError
        No directory of the search path holds CIFAR-10. The message lists every place
        looked at, in order, with what is wrong with each, and the ``xpnn download
        cifar10`` command that unpacks the data into the one of them that is xpnn's data
        directory (:func:`default_data_dir`).
    """
    places = _cifar10_places()
    looked = []
    for number, (path, what) in enumerate(places, start=1):
        problem = _cifar10_problem(path)
        if problem is None:
            return path
        if _complete(path.parent):
            problem += f", but {path.parent} holds the batch files: pass root={str(path.parent)!r}"
        looked.append(f"({number}) {path} ({what}) {problem}")
    raise FileNotFoundError(_cifar10_not_found(looked, [path for path, _ in places]))


def _cifar10_not_found(looked: list[str], searched: list[Path]) -> str:
    """The message of :func:`find_cifar10`: the places, then how to fill one of them."""
    number = 1 + searched.index(_absolute(default_data_dir() / _CIFAR10_DIRNAME))
    return (
        f"CIFAR-10 not found; looked in, in order: {'; '.join(looked)}. Download it with: "
        f"{_download_command(default_data_dir())} (it unpacks into ({number}); in Python "
        "xpnn.data.download_cifar10()), or run the assignment's get_datasets.sh in "
        "cs231n/datasets, or give root= the folder that holds the batch files."
    )


def _download_command(directory: Path) -> str:
    """The ``xpnn download cifar10`` command that unpacks CIFAR-10 into ``directory``."""
    if directory == default_data_dir():
        return "xpnn download cifar10"
    return f"xpnn download cifar10 --dir {shlex.quote(str(directory))}"


def _how_to_get_cifar10(root: Path) -> str:
    """How to get the files that should be in ``root``, for error messages."""
    directory = root.parent if root.name == _CIFAR10_DIRNAME else root
    hint = (
        f"Get them with: {_download_command(directory)} "
        f"(or xpnn.data.download_cifar10({str(directory)!r})), or download {CIFAR10_URL} "
        f"and unpack it in {directory}."
    )
    if directory == root:
        hint += f" Either way they land in {root / _CIFAR10_DIRNAME}: pass that as root."
    return hint


# --------------------------------------------------------------------------- CIFAR-10 files


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds NumPy arrays and plain Python values, nothing else.

    The CIFAR-10 batches are pickles, and unpickling can run arbitrary code; these files
    need only the globals below (the ones NumPy's array pickling uses, under Python 2 and
    3), so any other global is refused.
    """

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"it refers to {module}.{name}, which a CIFAR-10 batch never needs"
            )
        return super().find_class(module, name)


def _read_batch(filename: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The raw rows of one batch: uint8 ``(N, 3072)`` and int64 ``(N,)``, checked."""
    with open(filename, "rb") as f:
        try:
            batch = _BatchUnpickler(f, encoding="latin1").load()
        except Exception as err:
            raise ValueError(
                f"{filename} is not a CIFAR-10 Python batch (a pickled dict with 'data' and "
                f"'labels'): {err}"
            ) from err
    if not isinstance(batch, dict):
        raise ValueError(
            f"{filename} is not a CIFAR-10 Python batch: expected a pickled dict with 'data' "
            f"and 'labels', got a {type(batch).__name__}"
        )
    # The official files were written by Python 2: loaded with latin1, their keys are str.
    # Files re-pickled by Python 3 from bytes keys have b'data'; accept both.
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    missing = [key for key in ("data", "labels") if key not in batch]
    if missing:
        raise ValueError(
            f"{filename} is not a CIFAR-10 Python batch: it has no {' or '.join(missing)!s} "
            f"entry (keys: {sorted(map(str, batch))})"
        )
    return _check_rows(filename, batch["data"], batch["labels"])


def _check_rows(filename: Any, data: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _IMAGE_SIZE:
        raise ValueError(
            f"{filename}: 'data' must be a uint8 array of shape (N, {_IMAGE_SIZE}) "
            f"(N images of 3x32x32, channel-major); got {data.dtype} {data.shape}"
        )
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{filename}: 'labels' must be a list of integers: {err}") from err
    if labels.shape != (data.shape[0],):
        raise ValueError(
            f"{filename}: 'labels' must hold one label per image ({data.shape[0]}); "
            f"got shape {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= _NUM_CLASSES):
        raise ValueError(
            f"{filename}: labels must lie in [0, {_NUM_CLASSES}); got values from "
            f"{labels.min()} to {labels.max()}"
        )
    return data, labels


def _nhwc_float(rows: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 3072)`` rows to float64 ``(N, 32, 32, 3)``, as the assignment does."""
    return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float64, order="C")


def _nchw_float(rows: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 3072)`` rows to float64 ``(N, 3, 32, 32)`` (the rows are channel-major)."""
    return rows.reshape(-1, 3, 32, 32).astype(np.float64)


def load_CIFAR_batch(filename: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load one batch file of CIFAR-10's Python version.

    Parameters
    ----------
    filename : str or path
        A ``data_batch_<i>`` or ``test_batch`` file: a pickled dict whose ``'data'`` is a
        uint8 array ``(N, 3072)`` (each row 1024 red, 1024 green, 1024 blue values, rows of
        the image in order) and whose ``'labels'`` is a list of N integers in ``[0, 10)``.

    Returns
    -------
    X : numpy.ndarray
        float64, ``(N, 32, 32, 3)`` (height, width, channel), values 0..255.
    Y : numpy.ndarray
        int64, ``(N,)``.

    Raises
    ------
    FileNotFoundError
        There is no such file.
    ValueError
        The file is not a CIFAR-10 batch (not a pickle, or other keys, shapes or dtypes).

    Notes
    -----
    The batches are Python pickles, and unpickling a file can run code that the file
    contains. Load only files you trust, from the path you give: this function reads
    nothing else. As a second line of defence it unpickles with a restricted unpickler that
    refuses every global except the few that NumPy arrays need, and it uses
    ``encoding='latin1'``, which the official files (written by Python 2) require.
    """
    data, labels = _read_batch(filename)
    return _nhwc_float(data), labels


def _read_cifar10(root: str | os.PathLike | None) -> tuple[np.ndarray, ...]:
    """Raw uint8 rows and int64 labels of the training and test sets in ``root``
    (``None``: :func:`find_cifar10`)."""
    root = find_cifar10() if root is None else Path(root).expanduser()
    _require_cifar10_files(root)
    train = [_read_batch(root / name) for name in _TRAIN_FILES]
    x_test, y_test = _read_batch(root / _TEST_FILE)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test


def _require_cifar10_files(root: Path) -> None:
    expected = f"{', '.join(_TRAIN_FILES[:1])} ... {_TRAIN_FILES[-1]}, {_TEST_FILE} in {root}"
    if not root.is_dir():
        raise FileNotFoundError(
            f"CIFAR-10 not found: {root} {_cifar10_problem(root)}; expected the files "
            f"{expected}. " + _how_to_get_cifar10(root)
        )
    missing = _missing_cifar10_files(root)
    if missing:
        hint = ""
        if (root / _CIFAR10_DIRNAME).is_dir():
            hint = f" (did you mean root={str(root / _CIFAR10_DIRNAME)!r}?)"
        raise FileNotFoundError(
            f"CIFAR-10 is incomplete: {', '.join(missing)} missing; expected the files "
            f"{expected}{hint}. " + _how_to_get_cifar10(root)
        )


def _missing_cifar10_files(root: Path) -> list[str]:
    return [name for name in _CIFAR10_FILES if not (root / name).is_file()]


def _cifar10_problem(root: Path) -> str | None:
    """What keeps ``root`` from being a complete CIFAR-10 folder, or None if nothing."""
    if not root.is_dir():
        return "is not a directory" if root.exists() else "does not exist"
    missing = _missing_cifar10_files(root)
    return f"lacks {', '.join(missing)}" if missing else None


def load_CIFAR10(
    root: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load all of CIFAR-10 from a ``cifar-10-batches-py`` directory.

    Parameters
    ----------
    root : str or path, optional
        The directory holding ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``
        (:func:`download_cifar10` returns it). ``None`` (an xpnn extension: the
        assignment's function requires it) means :func:`find_cifar10`: the first complete
        folder of :func:`cifar10_search_path`.

    Returns
    -------
    Xtr : numpy.ndarray
        float64 ``(50000, 32, 32, 3)``: the five training batches in order.
    Ytr : numpy.ndarray
        int64 ``(50000,)``.
    Xte : numpy.ndarray
        float64 ``(10000, 32, 32, 3)``.
    Yte : numpy.ndarray
        int64 ``(10000,)``.

    Raises
    ------
    FileNotFoundError
        ``root`` is missing or lacks one of the files; the message lists them and says how
        to get them. With ``root=None``: no folder of the search path is complete; the
        message lists each, in order.
    ValueError
        A file is not a CIFAR-10 batch.

    Notes
    -----
    The files are pickles: load only a directory you trust (see :func:`load_CIFAR_batch`;
    with ``root=None`` that includes ``cs231n/datasets`` under the current directory).
    The float64 arrays take about 1.4 GB; :func:`get_CIFAR10_data` converts only the rows
    it returns.
    """
    x_train, y_train, x_test, y_test = _read_cifar10(root)
    return _nhwc_float(x_train), y_train, _nhwc_float(x_test), y_test


def _finish(data: dict[str, np.ndarray], subtract_mean: bool, backend: str | None) -> dict:
    """Subtract the training mean image in place, then move to the backend."""
    if subtract_mean:
        mean_image = data["X_train"].mean(axis=0)
        for key in ("X_train", "X_val", "X_test"):
            data[key] -= mean_image
    name = get_backend() if backend is None else backend
    return data if name == "numpy" else to_backend(data, name)


def get_CIFAR10_data(
    num_training: int = 49000,
    num_validation: int = 1000,
    num_test: int = 1000,
    subtract_mean: bool = True,
    root: str | os.PathLike | None = None,
    *,
    backend: str | None = None,
) -> dict[str, Any]:
    """CIFAR-10 split and preprocessed for a classifier, as in the CS231n assignment.

    Parameters
    ----------
    num_training : int, default 49000
        The first ``num_training`` training images form the training set.
    num_validation : int, default 1000
        The next ``num_validation`` training images (rows ``num_training`` to
        ``num_training + num_validation - 1``) form the validation set. The two together
        may not exceed the 50000 training images.
    num_test : int, default 1000
        The first ``num_test`` images of the test batch.
    subtract_mean : bool, default True
        Subtract the mean image of the training set (only the ``num_training`` training
        images) from all three sets.
    root : str or path, optional
        The ``cifar-10-batches-py`` directory. ``None`` means :func:`find_cifar10`: the
        first complete ``cifar-10-batches-py`` of :func:`cifar10_search_path`, which is

        1. ``$XPNN_DATA_DIR/cifar-10-batches-py`` if that environment variable is set,
        2. ``cs231n/datasets/cifar-10-batches-py`` under the current directory (where the
           assignment's ``get_datasets.sh`` puts it, and where the assignment's
           ``get_CIFAR10_data`` reads it),
        3. ``~/.cache/xpnn/cifar-10-batches-py`` if ``$XPNN_DATA_DIR`` is not set (where
           :func:`download_cifar10` puts it then).
    backend : str, optional
        Backend to move every array to, with :func:`xpnn.to_backend`. ``None`` means the
        selected backend (:func:`xpnn.get_backend`), which is NumPy unless
        :func:`xpnn.use_backend` chose another.

    Returns
    -------
    dict
        ``X_train``, ``X_val``, ``X_test``: float64 ``(N, 3, 32, 32)`` (NCHW), values 0..255
        or mean-subtracted; ``y_train``, ``y_val``, ``y_test``: int64 ``(N,)``.

    Raises
    ------
    FileNotFoundError
        CIFAR-10 is not in ``root`` (with ``root=None``: in none of the places searched;
        the message lists them in order); the message says how to download it.
    TypeError, ValueError
        A count is not an integer, is negative, or asks for more images than there are
        (the message names the argument); ``num_training`` is 0 with ``subtract_mean``.

    Notes
    -----
    The batches are pickles: load only a directory you trust (see
    :func:`load_CIFAR_batch`; with ``root=None`` that includes ``cs231n/datasets`` under
    the current directory). The result equals the assignment's, which converts all 60000
    images to float64 before taking the subsets; here only the returned rows are.
    """
    num_training = _count(
        "num_training",
        num_training,
        minimum=1 if subtract_mean else 0,
        why=" (subtract_mean=True takes the mean of the training images)" if subtract_mean else "",
    )
    num_validation = _count("num_validation", num_validation)
    num_test = _count("num_test", num_test)
    x_train, y_train, x_test, y_test = _read_cifar10(root)
    available = x_train.shape[0]
    if num_training > available:
        raise ValueError(
            f"num_training must be at most {available} (the training images); got {num_training}"
        )
    if num_training + num_validation > available:
        raise ValueError(
            f"num_validation must be at most {available - num_training}: the validation "
            f"images are the training images after the first num_training={num_training}, "
            f"and there are {available}; got {num_validation}"
        )
    if num_test > x_test.shape[0]:
        raise ValueError(
            f"num_test must be at most {x_test.shape[0]} (the test images); got {num_test}"
        )
    val = slice(num_training, num_training + num_validation)
    data = {
        "X_train": _nchw_float(x_train[:num_training]),
        "y_train": y_train[:num_training].copy(),
        "X_val": _nchw_float(x_train[val]),
        "y_val": y_train[val].copy(),
        "X_test": _nchw_float(x_test[:num_test]),
        "y_test": y_test[:num_test].copy(),
    }
    return _finish(data, subtract_mean, backend)


# --------------------------------------------------------------------------- download


def _complete(path: Path) -> bool:
    return _cifar10_problem(path) is None


def download_cifar10(
    directory: str | os.PathLike | None = None,
    *,
    url: str = CIFAR10_URL,
    md5: str | None = CIFAR10_MD5,
    verify: bool = True,
    progress: bool = True,
) -> Path:
    """Download CIFAR-10 (Python version) and unpack it, unless it is there already.

    Parameters
    ----------
    directory : str or path, optional
        Where ``cifar-10-batches-py`` goes (created if needed). ``None`` means
        :func:`default_data_dir`: ``$XPNN_DATA_DIR`` if set, else ``~/.cache/xpnn``.
    url : str, default :data:`CIFAR10_URL`
        Where to get ``cifar-10-python.tar.gz``: a mirror, a ``file://`` URL, or the path
        of a copy downloaded by hand.
    md5 : str or None, default :data:`CIFAR10_MD5`
        The checksum to verify the archive against: 32 hexadecimal digits, in any case.
        The default is the official archive's published MD5, right for a mirror that
        serves that same archive; give another for a mirror whose archive differs.
        ``None`` skips the check, as ``verify=False`` does (kept for existing code).
    verify : bool, default True
        ``False`` skips the checksum, for an archive you trust whose MD5 you do not know.
        Allowed only with a ``url`` other than :data:`CIFAR10_URL` (the official archive's
        checksum is published, so it is always checked) and without an ``md5`` of your
        own (it would go unused).
    progress : bool, default True
        Show a progress bar (tqdm, on stderr) while downloading.

    Returns
    -------
    pathlib.Path
        ``directory / 'cifar-10-batches-py'``, ready for :func:`load_CIFAR10` and
        ``get_CIFAR10_data(root=...)``.

    Raises
    ------
    ConnectionError
        The archive could not be fetched; the message names the URL and the alternatives.
    TypeError
        ``md5`` is neither a string nor None.
    ValueError
        ``md5`` is not 32 hexadecimal digits, the check is skipped for the official URL,
        or ``verify=False`` comes with an ``md5`` of your own (all found before anything is
        fetched); the archive's MD5 differs from ``md5`` (the message gives both), it is
        not a tar archive, it holds an unsafe member, or it lacks a batch file. Nothing is
        extracted then.
    FileExistsError
        ``cifar-10-batches-py`` exists in ``directory`` but lacks some batch files; it is
        left alone, remove it to download again.

    Notes
    -----
    If ``cifar-10-batches-py`` already holds every batch file, nothing is downloaded.
    Otherwise the archive is streamed into a temporary file in ``directory``, its MD5 is
    checked, it is unpacked into a temporary folder there and the finished
    ``cifar-10-batches-py`` is moved into place with one rename, so an interrupted or failed
    run leaves neither a partial archive nor a half-written folder. Unpacking refuses
    absolute paths, ``..`` components, links, devices and anything else that is not a
    regular file or a directory inside the target (in addition to ``tarfile``'s ``'data'``
    filter where Python has it).
    """
    expected = _expected_md5(url, md5, verify)
    directory = default_data_dir() if directory is None else Path(directory).expanduser()
    target = directory / _CIFAR10_DIRNAME
    help_text = (
        "Check the connection, give another address (download_cifar10(url=...), or "
        f"xpnn download cifar10 --url URL), or download {CIFAR10_URL} by hand and pass its "
        "path as url (or unpack it yourself so that "
        f"{target} holds data_batch_1 ... data_batch_5 and test_batch)."
    )
    return _download.fetch_and_install(
        url, directory, _CIFAR10_DIRNAME, missing=_missing_cifar10_files, what="CIFAR-10",
        md5=expected, progress=progress, help_text=help_text, mismatch_help=_mismatch_help(url),
    )  # fmt: skip


def _expected_md5(url: str, md5: str | None, verify: bool) -> str | None:
    """The digest to check the download against (lower case), or None to skip the check."""
    if not verify and md5 not in (None, CIFAR10_MD5):
        raise ValueError(
            f"verify=False skips the checksum, so md5={md5!r} would go unused: pass one or "
            "the other"
        )
    expected = _download.as_md5(md5) if verify and md5 is not None else None
    if expected is None and url == CIFAR10_URL:
        raise ValueError(
            f"the official archive ({CIFAR10_URL}) has a published MD5 and is always "
            "checked: skipping the check (verify=False or md5=None) is for an archive from "
            "another url"
        )
    return expected


def _mismatch_help(url: str) -> str:
    if url == CIFAR10_URL:
        return ""
    return (
        f" If {url} serves another archive that you trust, pass its MD5 "
        "(download_cifar10(md5=...), xpnn download cifar10 --md5 HEX) or skip the check "
        "(verify=False, --no-verify)."
    )


# --------------------------------------------------------------------------- digits


def load_digits(
    num_validation: int = 200,
    num_test: int = 200,
    subtract_mean: bool = True,
    *,
    seed: int = 0,
    backend: str | None = None,
) -> dict[str, Any]:
    """The offline default dataset: scikit-learn's 8x8 handwritten digits, split.

    The 1797 grey-scale images (10 classes) ship with scikit-learn, so nothing is
    downloaded. They are shuffled with a fixed seed and split into training, validation and
    test sets in the format of :func:`get_CIFAR10_data`, so any code written for CIFAR-10
    runs on them (with ``input_dim=(1, 8, 8)`` or ``64`` and ``num_classes=10``).

    Parameters
    ----------
    num_validation : int, default 200
        Images in the validation set.
    num_test : int, default 200
        Images in the test set. The training set is the other
        ``1797 - num_validation - num_test`` images (1397 by default).
    subtract_mean : bool, default True
        Subtract the training set's mean image from all three sets.
    seed : int, default 0
        Seed of the shuffle (``numpy.random.default_rng(seed).permutation``): the same seed
        gives the same split on every machine.
    backend : str, optional
        Backend to move every array to, with :func:`xpnn.to_backend`. ``None`` means the
        selected backend (:func:`xpnn.get_backend`), NumPy unless
        :func:`xpnn.use_backend` chose another.

    Returns
    -------
    dict
        ``X_train``, ``X_val``, ``X_test``: float64 ``(N, 1, 8, 8)``, pixel values scaled to
        ``[0, 1]`` (divided by 16), then mean-subtracted if asked; ``y_train``, ``y_val``,
        ``y_test``: int64 ``(N,)``.

    Raises
    ------
    ImportError
        scikit-learn is not installed (the message says how to install it).
    TypeError, ValueError
        A count or the seed is not an integer, a count is negative, or the counts leave no
        training images (the message names the argument).
    """
    num_validation = _count("num_validation", num_validation)
    num_test = _count("num_test", num_test)
    seed = _count("seed", seed)
    images, labels = _sklearn_digits()
    total = images.shape[0]
    num_training = total - num_validation - num_test
    if num_training < 1:
        raise ValueError(
            f"num_validation + num_test must leave training images: there are {total} "
            f"digits, and num_validation={num_validation} + num_test={num_test} leaves "
            f"{num_training}"
        )
    order = np.random.default_rng(seed).permutation(total)
    parts = np.split(order, [num_training, num_training + num_validation])
    data = {}
    for split, rows in zip(("train", "val", "test"), parts, strict=True):
        data[f"X_{split}"] = images[rows]
        data[f"y_{split}"] = labels[rows]
    return _finish(data, subtract_mean, backend)


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """float64 ``(1797, 1, 8, 8)`` images in [0, 1] and int64 labels, in sklearn's order."""
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as err:
        raise ImportError(
            "load_digits needs scikit-learn, which is not installed; install it with: "
            "pip install scikit-learn"
        ) from err
    digits = sklearn_load_digits()
    images = np.asarray(digits.images, dtype=np.float64).reshape(-1, 1, 8, 8) / 16.0
    return images, np.asarray(digits.target, dtype=np.int64)
