"""The captioning data: the assignment's COCO files, their download, its helpers, and an
offline stand-in.

* :func:`load_coco_data`, :func:`decode_captions` and :func:`sample_coco_minibatch` behave
  as the CS231n assignment's ``coco_utils`` functions of the same names, over its
  ``coco_captioning`` folder: the captions in HDF5 (``coco2014_captions.h5``), the images'
  VGG-16 fc7 features in HDF5 (4096-d, and 512-d after PCA), the vocabulary in JSON and the
  images' URLs as text.
* :func:`download_coco` fetches the course's ``coco_captioning.zip`` and unpacks it safely
  (also ``xpnn download coco``).

* :func:`load_digit_captions` is a captioning task that needs no download: scikit-learn's
  8x8 digits as the images' features, each captioned in words (``seven is odd and prime``),
  in the format of :func:`load_coco_data`.

Reading HDF5 needs h5py: ``pip install 'xpnn[coco]'``.

Where the folder is, when no ``base_dir`` is given: the first complete
``coco_captioning`` of ``$XPNN_DATA_DIR`` (if set), the assignment's
``cs231n/datasets`` under the current directory (where its ``get_coco_dataset.sh`` puts
it), then ``~/.cache/xpnn`` (if ``$XPNN_DATA_DIR`` is not set): the order of CIFAR-10's
search (:func:`xpnn.data.cifar10_search_path`).
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from . import _download
from ._backend import to_numpy
from ._params import count
from .data import dataset_search_places, default_data_dir, load_digits

__all__ = [
    "COCO_URL",
    "coco_search_path",
    "decode_captions",
    "download_coco",
    "load_coco_data",
    "load_digit_captions",
    "sample_coco_minibatch",
]

#: The course's archive of the captioning data (about 1 GB): the assignment's
#: ``get_coco_dataset.sh`` fetches it. The course publishes no checksum of it.
COCO_URL = "http://cs231n.stanford.edu/coco_captioning.zip"

_DIRNAME = "coco_captioning"
_CAPTIONS = "coco2014_captions.h5"
_VOCABULARY = "coco2014_vocab.json"
_FEATURES = {
    True: ("train2014_vgg16_fc7_pca.h5", "val2014_vgg16_fc7_pca.h5"),
    False: ("train2014_vgg16_fc7.h5", "val2014_vgg16_fc7.h5"),
}
_URLS = ("train2014_urls.txt", "val2014_urls.txt")
#: What load_coco_data reads, with either kind of features.
_NEEDED = (_CAPTIONS, _VOCABULARY, *_URLS)
_SPLITS = ("train", "val")


# --------------------------------------------------------------------------- where it is


def coco_search_path() -> list[Path]:
    """Where :func:`load_coco_data` looks when it is given no ``base_dir``, in order.

    Returns
    -------
    list of pathlib.Path
        ``$XPNN_DATA_DIR/coco_captioning`` (when the variable is set), the assignment's
        ``cs231n/datasets/coco_captioning`` under the current directory, and
        ``~/.cache/xpnn/coco_captioning`` (when the variable is not set); absolute, without
        duplicates.
    """
    return [path for path, _ in dataset_search_places(_DIRNAME)]


def _missing(base_dir: Path, pca_features: bool) -> list[str]:
    return [n for n in (*_NEEDED, *_FEATURES[pca_features]) if not (base_dir / n).is_file()]


def _download_command(directory: Path) -> str:
    if directory == default_data_dir():
        return "xpnn download coco"
    return f"xpnn download coco --dir {shlex.quote(str(directory))}"


def _find(base_dir: str | os.PathLike | None, pca_features: bool) -> Path:
    """The folder to read, or a FileNotFoundError that names the missing files and
    ``xpnn download coco``."""
    if base_dir is not None:
        path = Path(base_dir).expanduser()
        missing = _missing(path, pca_features)
        if not missing:
            return path
        if path.name != _DIRNAME and not _missing(path / _DIRNAME, pca_features):
            return path / _DIRNAME  # the folder download_coco(directory) unpacked into
        directory = path.parent if path.name == _DIRNAME else path
        raise FileNotFoundError(
            f"COCO captioning data not found: {path} lacks {', '.join(missing)}. Get it with: "
            f"{_download_command(directory)} (it unpacks into {directory / _DIRNAME}), or the "
            "assignment's get_coco_dataset.sh"
        )
    looked = []
    for path in coco_search_path():
        missing = _missing(path, pca_features)
        if not missing:
            return path
        what = "does not exist" if not path.exists() else f"lacks {', '.join(missing)}"
        looked.append(f"{path} {what}")
    raise FileNotFoundError(
        f"COCO captioning data not found; looked in, in order: {'; '.join(looked)}. "
        f"Download it with: xpnn download coco (into {default_data_dir() / _DIRNAME}; in "
        "Python xpnn.coco.download_coco()), or run the assignment's get_coco_dataset.sh in "
        "cs231n/datasets, or pass base_dir= the folder that holds the files."
    )


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as err:
        raise ImportError(
            "reading the COCO captioning files (HDF5) needs h5py: pip install 'xpnn[coco]' "
            "(or pip install h5py)"
        ) from err
    return h5py


# --------------------------------------------------------------------------- the assignment's


def load_coco_data(
    base_dir: str | os.PathLike | None = None,
    max_train: int | None = None,
    pca_features: bool = True,
) -> dict[str, Any]:
    """The assignment's COCO captioning data, as its ``coco_utils.load_coco_data`` reads it.

    Parameters
    ----------
    base_dir : str or path, optional
        The ``coco_captioning`` folder, or the folder that holds it (where
        :func:`download_coco` unpacked it). ``None`` takes the first complete one of
        :func:`coco_search_path`.
    max_train : int, optional
        Keep this many training captions, drawn with replacement from NumPy's global RNG
        (``np.random.randint``, as the assignment draws them: a seeded notebook draws
        the same ones).
    pca_features : bool, default True
        The 512-d PCA features (``*_vgg16_fc7_pca.h5``); False reads the 4096-d fc7 ones.

    Returns
    -------
    dict
        ``train_captions`` (N, 17) and ``val_captions`` int arrays of word indices,
        ``train_image_idxs`` and ``val_image_idxs`` (N,) (the row of each caption's image
        in the features), ``train_features`` and ``val_features`` (images, 512 or 4096)
        float32, ``word_to_idx`` (dict), ``idx_to_word`` (list), ``train_urls`` and
        ``val_urls`` (arrays of str): NumPy and Python objects, as the assignment's.

    Raises
    ------
    FileNotFoundError
        A file is missing; the message names them and the ``xpnn download coco`` command.
    ImportError
        h5py is not installed (``pip install 'xpnn[coco]'``).
    ValueError
        ``max_train`` is not a positive integer.
    """
    if max_train is not None:
        max_train = count("max_train", max_train, minimum=1)
    h5py = _h5py()
    root = _find(base_dir, bool(pca_features))
    data: dict[str, Any] = {}
    with h5py.File(root / _CAPTIONS, "r") as f:
        for key, value in f.items():
            data[key] = np.asarray(value)
    for split, name in zip(_SPLITS, _FEATURES[bool(pca_features)], strict=True):
        with h5py.File(root / name, "r") as f:
            data[f"{split}_features"] = np.asarray(f["features"])
    with open(root / _VOCABULARY, encoding="utf-8") as f:
        data.update(json.load(f))
    for split, name in zip(_SPLITS, _URLS, strict=True):
        with open(root / name, encoding="utf-8") as f:
            data[f"{split}_urls"] = np.asarray([line.strip() for line in f])
    if max_train is not None:
        mask = np.random.randint(data["train_captions"].shape[0], size=max_train)  # noqa: NPY002
        data["train_captions"] = data["train_captions"][mask]
        data["train_image_idxs"] = data["train_image_idxs"][mask]
    return data


def decode_captions(captions: Any, idx_to_word: Any) -> str | list[str]:
    """Word indices back to text, as the assignment's ``decode_captions``.

    Parameters
    ----------
    captions : array of int, shape (N, T) or (T,)
        On any backend (read to the host once).
    idx_to_word : list or dict
        Word of each index.

    Returns
    -------
    list of str, or str for a 1-d ``captions``
        Each caption's words joined by spaces, without ``<NULL>``, up to and including
        the first ``<END>``.
    """
    captions = to_numpy(captions)
    if captions.ndim not in (1, 2):
        raise ValueError(f"captions must be (N, T) or (T,); got shape {captions.shape}")
    single = captions.ndim == 1
    decoded = []
    for row in np.atleast_2d(captions):
        words = []
        for index in row:
            word = idx_to_word[int(index)]
            if word != "<NULL>":
                words.append(word)
            if word == "<END>":
                break
        decoded.append(" ".join(words))
    return decoded[0] if single else decoded


def sample_coco_minibatch(
    data: dict[str, Any], batch_size: int = 100, split: str = "train"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``batch_size`` captions of ``split``, drawn with replacement from NumPy's global
    RNG (as the assignment's), with their images' features and URLs.

    Returns
    -------
    captions : (batch_size, T) int array
    image_features : (batch_size, D) array
    urls : (batch_size,) array of str
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'val'; got {split!r}")
    batch_size = count("batch_size", batch_size, minimum=1)
    size = data[f"{split}_captions"].shape[0]
    mask = np.random.choice(size, batch_size)  # noqa: NPY002
    captions = data[f"{split}_captions"][mask]
    image_idxs = data[f"{split}_image_idxs"][mask]
    return captions, data[f"{split}_features"][image_idxs], data[f"{split}_urls"][image_idxs]


# --------------------------------------------------------------------------- download


def _every_missing(path: Path) -> list[str]:
    return sorted(set(_missing(path, True)) | set(_missing(path, False)))


def download_coco(
    directory: str | os.PathLike | None = None,
    *,
    url: str = COCO_URL,
    md5: str | None = None,
    progress: bool = True,
) -> Path:
    """Download the course's ``coco_captioning.zip`` and unpack it, unless it is there.

    Parameters
    ----------
    directory : str or path, optional
        Where ``coco_captioning`` goes (created if needed); default
        :func:`xpnn.data.default_data_dir`.
    url : str, default :data:`COCO_URL`
        Where to get the archive: a mirror, a ``file://`` URL or a local path.
    md5 : str, optional
        The archive's MD5 (32 hexadecimal digits) to check it against. The course
        publishes none, so by default the archive is checked by the CRC-32 that the zip
        format keeps for each file, and by the files it must hold.
    progress : bool, default True
        Show a progress bar (tqdm, on stderr) while downloading.

    Returns
    -------
    pathlib.Path
        ``directory / 'coco_captioning'``, ready for :func:`load_coco_data`.

    Raises
    ------
    ConnectionError
        The archive could not be fetched.
    ValueError
        ``md5`` is malformed or differs; the archive is not a zip, a member is unsafe or
        corrupt, or a file of the data is missing from it. Nothing is installed then.
    FileExistsError
        ``coco_captioning`` exists but lacks files; it is left alone.
    """
    expected = None if md5 is None else _download.as_md5(md5)
    directory = default_data_dir() if directory is None else Path(directory).expanduser()
    help_text = (
        "Check the connection, give another address (download_coco(url=...), or xpnn "
        f"download coco --url URL), or download {COCO_URL} by hand and pass its path as url."
    )
    return _download.fetch_and_install(
        url, directory, _DIRNAME, missing=_every_missing, what="the COCO captioning data",
        md5=expected, progress=progress, help_text=help_text,
    )  # fmt: skip


# --------------------------------------------------------------------------- offline


_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_SPECIAL = ("<NULL>", "<START>", "<END>")


def digit_caption(digit: int) -> str:
    """The words of a digit's caption: ``'seven is odd and prime'``, ``'four is even'``."""
    words = [_DIGIT_NAMES[digit], "is", "odd" if digit % 2 else "even"]
    if digit in (2, 3, 5, 7):
        words += ["and", "prime"]
    return " ".join(words)


def load_digit_captions(num_validation: int = 200, *, seed: int = 0) -> dict[str, Any]:
    """An offline captioning task in the format of :func:`load_coco_data`.

    The images are scikit-learn's 8x8 digits (:func:`xpnn.data.load_digits`: shuffled with
    ``seed``, pixels in [0, 1], the training mean subtracted); an image's features are its
    64 pixels, and its caption describes the digit in words (:func:`digit_caption`), 5 or 7
    tokens with ``<START>`` and ``<END>``, padded with ``<NULL>``. A model must read the
    digit from the pixels to caption it, and can learn to in seconds.

    Parameters
    ----------
    num_validation : int, default 200
        Images (one caption each) in the validation split; the rest (1597) train.
    seed : int, default 0

    Returns
    -------
    dict
        ``train_captions`` / ``val_captions`` int64 (N, 7), ``train_image_idxs`` /
        ``val_image_idxs`` (N,), ``train_features`` / ``val_features`` float32 (N, 64),
        ``word_to_idx``, ``idx_to_word`` (18 words), ``train_urls`` / ``val_urls``
        (``digits:<label>``, where the COCO data has the image's URL), and
        ``train_labels`` / ``val_labels`` (the digits).
    """
    digits = load_digits(num_validation, 0, seed=seed, backend="numpy")
    vocabulary = sorted({w for d in range(10) for w in digit_caption(d).split()})
    idx_to_word = [*_SPECIAL, *vocabulary]
    word_to_idx = {w: i for i, w in enumerate(idx_to_word)}
    longest = max(len(digit_caption(d).split()) for d in range(10)) + 2
    data: dict[str, Any] = {"word_to_idx": word_to_idx, "idx_to_word": idx_to_word}
    for split in ("train", "val"):
        labels = digits[f"y_{split}"]
        captions = np.zeros((labels.shape[0], longest), dtype=np.int64)  # <NULL> is 0
        for row, label in zip(captions, labels, strict=True):
            words = ["<START>", *digit_caption(int(label)).split(), "<END>"]
            row[: len(words)] = [word_to_idx[w] for w in words]
        images = digits[f"X_{split}"]
        data[f"{split}_captions"] = captions
        data[f"{split}_image_idxs"] = np.arange(labels.shape[0])
        data[f"{split}_features"] = images.reshape(images.shape[0], -1).astype(np.float32)
        data[f"{split}_urls"] = np.asarray([f"digits:{int(y)}" for y in labels])
        data[f"{split}_labels"] = labels
    return data
