"""Datasets: CIFAR-10 files in the official format, the splits, the digits, the download.

Every CIFAR-10 file here is written by the tests (20 images per batch), and every download
comes from an HTTP server on 127.0.0.1 started by the tests: nothing reaches outside.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import socket
import struct
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import xpnn
from xpnn import data as xdata
from xpnn._backend import backend_name
from xpnn.cli import main

ROWS = 20  # images per batch file
BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


# --------------------------------------------------------------------------- CIFAR-format files


def _binstring(s: bytes) -> bytes:
    """A Python 2 ``str`` as cPickle wrote it (SHORT_BINSTRING / BINSTRING)."""
    if len(s) < 256:
        return b"U" + bytes([len(s)]) + s
    return b"T" + struct.pack("<I", len(s)) + s


def _int(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)


def py2_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled as Python 2 and NumPy 1.x wrote the official files (protocol 2).

    Keys and the array's raw bytes are Python 2 ``str`` objects, and the array is rebuilt
    through ``numpy.core.multiarray._reconstruct``: loading it needs ``encoding='latin1'``.
    """
    dtype = (
        b"cnumpy\ndtype\n" + _binstring(b"u1") + _int(0) + _int(1) + b"\x87R"
        b"(" + _int(3) + _binstring(b"|") + b"NNN" + _int(-1) + _int(-1) + _int(0) + b"tb"
    )
    shape = b"(" + b"".join(_int(n) for n in data.shape) + b"t"
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        b"cnumpy\nndarray\n" + _int(0) + b"\x85" + _binstring(b"b") + b"\x87R"
        b"(" + _int(1) + shape + dtype + b"\x89" + _binstring(data.tobytes()) + b"tb"
    )
    label_list = b"](" + b"".join(_int(int(y)) for y in labels) + b"e"
    return (
        b"\x80\x02}("
        + _binstring(b"data")
        + array
        + _binstring(b"labels")
        + label_list
        + _binstring(b"batch_label")
        + _binstring(b"a batch \xe9")
        + b"u."
    )


def _batch_arrays(rng: np.random.Generator, rows: int = ROWS):
    return rng.integers(0, 256, size=(rows, 3072), dtype=np.uint8), [
        int(y) for y in rng.integers(0, 10, size=rows)
    ]


def write_cifar(root: Path, seed: int = 0, style: str = "py2") -> dict[str, tuple]:
    """Write the six batch files (and batches.meta) to ``root``; return their contents."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    contents = {}
    for name in BATCHES:
        data, labels = _batch_arrays(rng)
        contents[name] = (data, np.array(labels))
        (root / name).write_bytes(_encode(data, labels, style))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer"] * 2}
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return contents


def _encode(data: np.ndarray, labels: list[int], style: str) -> bytes:
    if style == "py2":
        return py2_pickle(data, labels)
    if style == "bytes-keys":
        return pickle.dumps({b"data": data, b"labels": labels}, protocol=2)
    return pickle.dumps({"data": data, "labels": labels}, protocol=int(style[-1]))


def _nchw(rows: np.ndarray) -> np.ndarray:
    return rows.reshape(-1, 3, 32, 32).astype(np.float64)


@pytest.fixture
def cifar(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    return root, write_cifar(root)


def test_py2_fixture_is_what_python2_wrote():
    """The hand-written pickle needs latin1, like the official files."""
    data, labels = _batch_arrays(np.random.default_rng(0))
    raw = py2_pickle(data, labels)
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(raw)
    batch = pickle.loads(raw, encoding="latin1")
    assert set(batch) == {"data", "labels", "batch_label"}
    np.testing.assert_array_equal(batch["data"], data)
    assert batch["labels"] == labels


@pytest.mark.parametrize("style", ["py2", "bytes-keys", "protocol2", "protocol4", "protocol5"])
def test_load_CIFAR_batch(tmp_path, style):
    data, labels = _batch_arrays(np.random.default_rng(1))
    path = tmp_path / "data_batch_1"
    path.write_bytes(_encode(data, labels, style))
    X, Y = xpnn.data.load_CIFAR_batch(path)
    assert X.shape == (ROWS, 32, 32, 3) and X.dtype == np.float64
    assert Y.shape == (ROWS,) and Y.dtype == np.int64
    np.testing.assert_array_equal(X, data.reshape(ROWS, 3, 32, 32).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(Y, labels)
    # pixel (row 2, column 5) of image 3: red, green and blue are 1024 apart in a row
    np.testing.assert_array_equal(X[3, 2, 5], data[3, [2 * 32 + 5 + c * 1024 for c in range(3)]])


def test_load_CIFAR10(cifar):
    root, contents = cifar
    Xtr, Ytr, Xte, Yte = xdata.load_CIFAR10(root)
    assert Xtr.shape == (5 * ROWS, 32, 32, 3) and Xte.shape == (ROWS, 32, 32, 3)
    assert Xtr.dtype == Xte.dtype == np.float64
    assert Ytr.dtype == Yte.dtype == np.int64
    train_rows = np.concatenate([contents[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(Xtr, _nchw(train_rows).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(
        Ytr, np.concatenate([contents[f"data_batch_{i}"][1] for i in range(1, 6)])
    )
    np.testing.assert_array_equal(Xte, _nchw(contents["test_batch"][0]).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(Yte, contents["test_batch"][1])


def test_missing_directory_says_what_and_how(tmp_path):
    root = tmp_path / "nowhere" / "cifar-10-batches-py"
    with pytest.raises(FileNotFoundError) as info:
        xdata.load_CIFAR10(root)
    message = str(info.value)
    assert f"data_batch_1 ... data_batch_5, test_batch in {root}" in message
    assert "xpnn download cifar10 --dir" in message
    assert xdata.CIFAR10_URL in message


def test_hint_for_a_root_with_another_name(tmp_path):
    root = tmp_path / "my-cifar"
    with pytest.raises(FileNotFoundError) as info:
        xdata.load_CIFAR10(root)
    assert f"--dir {root} " in str(info.value)
    assert f"they land in {root / 'cifar-10-batches-py'}: pass that as root" in str(info.value)


def test_missing_file_is_named(cifar):
    root, _ = cifar
    (root / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3 missing") as info:
        xdata.get_CIFAR10_data(root=root)
    assert "xpnn download cifar10" in str(info.value)


def test_parent_directory_gets_a_hint(cifar):
    root, _ = cifar
    with pytest.raises(FileNotFoundError, match="did you mean root="):
        xdata.load_CIFAR10(root.parent)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"not a pickle at all", "not a CIFAR-10 Python batch"),
        (pickle.dumps([1, 2, 3]), "got a list"),
        (pickle.dumps({"data": np.zeros((2, 3072), np.uint8)}), "no labels"),
        (pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}), r"\(N, 3072\)"),
        (pickle.dumps({"data": np.zeros((2, 3072)), "labels": [0, 1]}), "uint8"),
        (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}), "one label"),
        (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}), r"\[0, 10\)"),
    ],
)
def test_malformed_batch(tmp_path, payload, match):
    path = tmp_path / "test_batch"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=match) as info:
        xdata.load_CIFAR_batch(path)
    assert str(path) in str(info.value)


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    victim = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": _Exploit(str(victim)), "labels": []}))
    with pytest.raises(ValueError, match=r"refers to posix\.mkdir|refers to os\.mkdir"):
        xdata.load_CIFAR_batch(path)
    assert not victim.exists()


# --------------------------------------------------------------------------- get_CIFAR10_data


def test_get_CIFAR10_data_splits_and_mean(cifar):
    root, contents = cifar
    train_rows = np.concatenate([contents[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = np.concatenate([contents[f"data_batch_{i}"][1] for i in range(1, 6)])
    out = xdata.get_CIFAR10_data(70, 20, 10, root=root)
    assert sorted(out) == sorted(["X_train", "y_train", "X_val", "y_val", "X_test", "y_test"])
    x_train = _nchw(train_rows[:70])
    mean = x_train.mean(axis=0)
    np.testing.assert_allclose(out["X_train"], x_train - mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["X_val"], _nchw(train_rows[70:90]) - mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        out["X_test"], _nchw(contents["test_batch"][0][:10]) - mean, rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(out["y_train"], train_labels[:70])
    np.testing.assert_array_equal(out["y_val"], train_labels[70:90])
    np.testing.assert_array_equal(out["y_test"], contents["test_batch"][1][:10])
    for key in ("X_train", "X_val", "X_test"):
        assert out[key].dtype == np.float64 and out[key].flags.c_contiguous
    for key in ("y_train", "y_val", "y_test"):
        assert out[key].dtype == np.int64
    assert out["X_train"].shape == (70, 3, 32, 32)
    assert out["X_val"].shape == (20, 3, 32, 32) and out["X_test"].shape == (10, 3, 32, 32)


def test_get_CIFAR10_data_matches_the_assignment_recipe(cifar):
    """The assignment converts everything to NHWC float64, splits, subtracts, transposes."""
    root, _ = cifar
    X_train, y_train, X_test, _y_test = xdata.load_CIFAR10(root)
    X_val = X_train[list(range(60, 90))]
    X_train, X_test = X_train[list(range(60))], X_test[list(range(5))]
    mean_image = np.mean(X_train, axis=0)
    expected = [(x - mean_image).transpose(0, 3, 1, 2) for x in (X_train, X_val, X_test)]
    out = xdata.get_CIFAR10_data(60, 30, 5, root=root)
    for got, want in zip((out["X_train"], out["X_val"], out["X_test"]), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(out["y_train"], y_train[:60])


def test_without_mean_subtraction(cifar):
    root, contents = cifar
    out = xdata.get_CIFAR10_data(5, 5, 5, subtract_mean=False, root=root)
    np.testing.assert_array_equal(out["X_train"], _nchw(contents["data_batch_1"][0][:5]))
    np.testing.assert_array_equal(out["X_val"], _nchw(contents["data_batch_1"][0][5:10]))
    assert out["X_train"].min() >= 0 and out["X_train"].max() <= 255


def test_whole_training_set_and_empty_splits(cifar):
    root, _ = cifar
    out = xdata.get_CIFAR10_data(5 * ROWS, 0, 0, root=root)
    assert out["X_train"].shape[0] == 5 * ROWS
    assert out["X_val"].shape == (0, 3, 32, 32) and out["y_test"].shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_training": -1}, ValueError, "num_training must be at least 1"),
        ({"num_training": 0}, ValueError, "num_training must be at least 1"),
        ({"num_training": 101, "num_validation": 0}, ValueError, "num_training must be at most"),
        (
            {"num_training": 90, "num_validation": 11},
            ValueError,
            "num_validation must be at most 10",
        ),
        ({"num_validation": -3}, ValueError, "num_validation must be at least 0"),
        ({"num_training": 10, "num_test": 21}, ValueError, "num_test must be at most 20"),
        ({"num_test": -1}, ValueError, "num_test"),
        ({"num_training": 10.0}, TypeError, "num_training must be an integer"),
        ({"num_training": True}, TypeError, "num_training must be an integer"),
    ],
)
def test_bad_counts_name_the_argument(cifar, kwargs, error, match):
    root, _ = cifar
    kwargs = {"num_training": 10, "num_validation": 5, "num_test": 5, **kwargs}
    with pytest.raises(error, match=match):
        xdata.get_CIFAR10_data(root=root, **kwargs)


def test_numpy_integers_count(cifar):
    root, _ = cifar
    out = xdata.get_CIFAR10_data(np.int64(10), np.int32(2), np.uint8(3), root=root)
    assert out["X_val"].shape[0] == 2 and out["X_test"].shape[0] == 3


def test_default_root_from_the_environment(cifar, monkeypatch):
    root, _ = cifar
    monkeypatch.setenv("XPNN_DATA_DIR", str(root.parent))
    assert xdata.default_data_dir() == root.parent
    out = xdata.get_CIFAR10_data(10, 2, 2)
    assert out["X_train"].shape == (10, 3, 32, 32)


def test_default_root_is_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XPNN_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert xdata.default_data_dir() == tmp_path / ".cache" / "xpnn"
    monkeypatch.setenv("XPNN_DATA_DIR", "")  # empty counts as unset
    assert xdata.default_data_dir() == tmp_path / ".cache" / "xpnn"
    with pytest.raises(FileNotFoundError, match=str(tmp_path / ".cache" / "xpnn")):
        xdata.get_CIFAR10_data()


# --------------------------------------------------------------------------- search order

ASSIGNMENT_DIR = Path("cs231n", "datasets", "cifar-10-batches-py")


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A working directory and a home, both empty, and no $XPNN_DATA_DIR."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XPNN_DATA_DIR", raising=False)
    return {
        "assignment": work / ASSIGNMENT_DIR,
        "cache": home / ".cache" / "xpnn" / "cifar-10-batches-py",
        "env": tmp_path / "env" / "cifar-10-batches-py",
    }


def _labels(contents: dict) -> np.ndarray:
    return np.concatenate([contents[f"data_batch_{i}"][1] for i in range(1, 6)])


def test_search_path_without_the_variable(places):
    assert xdata.cifar10_search_path() == [places["assignment"], places["cache"]]


def test_search_path_with_the_variable(places, monkeypatch):
    monkeypatch.setenv("XPNN_DATA_DIR", str(places["env"].parent))
    assert xdata.cifar10_search_path() == [places["env"], places["assignment"]]


def test_search_path_is_absolute_and_follows_the_working_directory(places, monkeypatch, tmp_path):
    monkeypatch.setenv("XPNN_DATA_DIR", "relative")
    assert xdata.cifar10_search_path()[0] == tmp_path / "work" / "relative" / "cifar-10-batches-py"
    monkeypatch.chdir(tmp_path)
    assert xdata.cifar10_search_path() == [
        tmp_path / "relative" / "cifar-10-batches-py",
        tmp_path / ASSIGNMENT_DIR,
    ]


def test_search_path_has_no_duplicates(places, monkeypatch):
    monkeypatch.setenv("XPNN_DATA_DIR", str(places["assignment"].parent))
    assert xdata.cifar10_search_path() == [places["assignment"]]


def test_loaders_find_the_assignment_folder(places):
    contents = write_cifar(places["assignment"], seed=1)
    assert xdata.find_cifar10() == places["assignment"]
    out = xdata.get_CIFAR10_data(10, 2, 2, subtract_mean=False)
    np.testing.assert_array_equal(out["y_train"], _labels(contents)[:10])
    np.testing.assert_array_equal(out["X_train"], _nchw(contents["data_batch_1"][0][:10]))
    _, Ytr, _, Yte = xdata.load_CIFAR10()
    np.testing.assert_array_equal(Ytr, _labels(contents))
    np.testing.assert_array_equal(Yte, contents["test_batch"][1])


def test_the_assignment_folder_comes_before_the_cache(places):
    in_cache = write_cifar(places["cache"], seed=2)
    assert xdata.find_cifar10() == places["cache"]
    in_assignment = write_cifar(places["assignment"], seed=1)
    assert xdata.find_cifar10() == places["assignment"]
    _, Ytr, _, _ = xdata.load_CIFAR10()
    np.testing.assert_array_equal(Ytr, _labels(in_assignment))
    assert not np.array_equal(_labels(in_assignment), _labels(in_cache))


def test_the_variable_comes_first_and_replaces_the_cache(places, monkeypatch):
    write_cifar(places["cache"], seed=2)
    in_assignment = write_cifar(places["assignment"], seed=1)
    monkeypatch.setenv("XPNN_DATA_DIR", str(places["env"].parent))
    assert xdata.find_cifar10() == places["assignment"]  # the variable's folder is empty
    in_env = write_cifar(places["env"], seed=3)
    assert xdata.find_cifar10() == places["env"]
    out = xdata.get_CIFAR10_data(10, 2, 2)
    np.testing.assert_array_equal(out["y_train"], _labels(in_env)[:10])
    (places["assignment"] / "test_batch").unlink()
    (places["env"] / "test_batch").unlink()
    with pytest.raises(FileNotFoundError) as info:  # ~/.cache/xpnn is not searched now
        xdata.find_cifar10()
    assert str(places["cache"]) not in str(info.value)
    assert not np.array_equal(_labels(in_env), _labels(in_assignment))


def test_an_incomplete_folder_is_passed_over(places):
    write_cifar(places["assignment"], seed=1)
    (places["assignment"] / "data_batch_4").unlink()
    write_cifar(places["cache"], seed=2)
    assert xdata.find_cifar10() == places["cache"]


def test_an_explicit_root_is_not_searched_around(places, tmp_path):
    write_cifar(places["assignment"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        xdata.get_CIFAR10_data(root=tmp_path / "elsewhere")


def _not_found_message() -> str:
    with pytest.raises(FileNotFoundError) as info:
        xdata.get_CIFAR10_data()
    return str(info.value)


def test_not_found_lists_every_place_in_order(places):
    write_cifar(places["cache"])
    for name in ("data_batch_2", "test_batch"):
        (places["cache"] / name).unlink()
    message = _not_found_message()
    first = f"(1) {places['assignment']} (the CS231n assignment's folder) does not exist"
    second = f"(2) {places['cache']} (xpnn's default) lacks data_batch_2, test_batch"
    assert first in message and second in message
    assert message.index(first) < message.index(second)
    assert "Download it with: xpnn download cifar10 (it unpacks into (2);" in message
    assert "\n" not in message


def test_not_found_with_the_variable(places, monkeypatch):
    monkeypatch.setenv("XPNN_DATA_DIR", str(places["env"].parent))
    message = _not_found_message()
    first = f"(1) {places['env']} ($XPNN_DATA_DIR) does not exist"
    second = f"(2) {places['assignment']} (the CS231n assignment's folder) does not exist"
    assert message.index(first) < message.index(second)
    assert str(places["cache"]) not in message
    assert "Download it with: xpnn download cifar10 (it unpacks into (1);" in message


def test_not_found_when_the_variable_names_the_batches_folder(places, monkeypatch):
    write_cifar(places["env"])
    monkeypatch.setenv("XPNN_DATA_DIR", str(places["env"]))
    message = _not_found_message()
    assert f"but {places['env']} holds the batch files: pass root='{places['env']}'" in message


def test_explicit_root_messages_quote_the_download_directory(tmp_path):
    root = tmp_path / "with space" / "cifar-10-batches-py"
    with pytest.raises(FileNotFoundError) as info:
        xdata.load_CIFAR10(root)
    assert f"xpnn download cifar10 --dir '{root.parent}'" in str(info.value)


def test_backend_argument(cifar):
    strict = pytest.importorskip("array_api_strict")
    root, _ = cifar
    out = xdata.get_CIFAR10_data(10, 2, 2, root=root, backend="array_api_strict")
    assert {backend_name(v) for v in out.values()} == {"array_api_strict"}
    assert out["X_train"].dtype == strict.float64 and out["y_val"].dtype == strict.int64
    with pytest.raises(ValueError, match="backend must be one of"):
        xdata.get_CIFAR10_data(10, 2, 2, root=root, backend="tensorflow")


def test_backend_none_follows_the_selected_backend(cifar):
    pytest.importorskip("array_api_strict")
    root, _ = cifar
    assert isinstance(xdata.get_CIFAR10_data(10, 2, 2, root=root)["X_train"], np.ndarray)
    with xpnn.use_backend("array_api_strict"):
        out = xdata.get_CIFAR10_data(10, 2, 2, root=root)
        forced = xdata.get_CIFAR10_data(10, 2, 2, root=root, backend="numpy")
    assert backend_name(out["X_train"]) == "array_api_strict"
    assert isinstance(forced["X_train"], np.ndarray)


# --------------------------------------------------------------------------- load_digits


def _rows(d: dict) -> np.ndarray:
    """Every (image, label) row of the three splits, sorted: a multiset to compare."""
    xs = np.concatenate([d[f"X_{s}"].reshape(-1, 64) for s in ("train", "val", "test")])
    ys = np.concatenate([d[f"y_{s}"] for s in ("train", "val", "test")])
    rows = np.column_stack([xs, ys])
    return rows[np.lexsort(rows.T[::-1])]


def test_load_digits_shapes_dtypes_range():
    d = xdata.load_digits(subtract_mean=False)
    assert d["X_train"].shape == (1397, 1, 8, 8)
    assert d["X_val"].shape == (200, 1, 8, 8) and d["X_test"].shape == (200, 1, 8, 8)
    for s in ("train", "val", "test"):
        assert d[f"X_{s}"].dtype == np.float64 and d[f"y_{s}"].dtype == np.int64
        assert d[f"X_{s}"].min() >= 0 and d[f"X_{s}"].max() <= 1
    assert d["X_train"].max() == 1
    assert set(np.unique(d["y_train"])) == set(range(10))


def test_load_digits_is_a_partition_of_the_dataset():
    from sklearn.datasets import load_digits as sk_digits

    sk = sk_digits()
    whole = np.column_stack([sk.images.reshape(-1, 64) / 16, sk.target])
    np.testing.assert_array_equal(
        _rows(xdata.load_digits(150, 250, subtract_mean=False)),
        whole[np.lexsort(whole.T[::-1])],
    )


def test_load_digits_splits_are_disjoint():
    from sklearn.datasets import load_digits as sk_digits

    images = sk_digits().images.reshape(-1, 64) / 16
    d = xdata.load_digits(subtract_mean=False)
    index = {}
    for i, row in enumerate(images):
        index.setdefault(row.tobytes(), []).append(i)
    seen = {}
    for s in ("train", "val", "test"):
        for row in d[f"X_{s}"].reshape(-1, 64):
            seen.setdefault(row.tobytes(), []).append(s)
    for key, splits in seen.items():  # an image in two splits must occur twice in the data
        assert len(splits) <= len(index[key])


def test_load_digits_mean_and_determinism():
    a = xdata.load_digits(seed=3)
    b = xdata.load_digits(seed=3)
    raw = xdata.load_digits(seed=3, subtract_mean=False)
    other = xdata.load_digits(seed=4, subtract_mean=False)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    mean = raw["X_train"].mean(axis=0)
    np.testing.assert_allclose(a["X_train"].mean(axis=0), 0, atol=1e-12)
    for s in ("train", "val", "test"):
        np.testing.assert_allclose(a[f"X_{s}"], raw[f"X_{s}"] - mean, rtol=0, atol=1e-15)
    assert not np.array_equal(raw["y_train"], other["y_train"])


def test_load_digits_backend():
    torch = pytest.importorskip("torch")
    d = xdata.load_digits(backend="torch")
    assert isinstance(d["X_train"], torch.Tensor) and d["X_train"].dtype == torch.float64
    assert d["y_test"].dtype == torch.int64


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_validation": -1}, ValueError, "num_validation must be at least 0"),
        ({"num_test": -5}, ValueError, "num_test must be at least 0"),
        ({"num_validation": 1000, "num_test": 797}, ValueError, "num_validation \\+ num_test"),
        ({"num_test": 2.5}, TypeError, "num_test must be an integer"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_load_digits_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        xdata.load_digits(**kwargs)


def test_load_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        xdata.load_digits()


# --------------------------------------------------------------------------- download


def _file(name: str, payload: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    return info, payload


def _cifar_members(seed: int = 0) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    rng = np.random.default_rng(seed)
    folder = tarfile.TarInfo("cifar-10-batches-py")
    folder.type, folder.mode = tarfile.DIRTYPE, 0o755
    members = [(folder, None)]
    for name in BATCHES:
        members.append(_file(f"cifar-10-batches-py/{name}", py2_pickle(*_batch_arrays(rng))))
    members.append(_file("cifar-10-batches-py/batches.meta", pickle.dumps({"label_names": []})))
    members.append(_file("cifar-10-batches-py/readme.html", b"<html></html>"))
    return members


def make_archive(path: Path, members) -> str:
    """Write a .tar.gz of ``(TarInfo, payload or None)``; return its MD5."""
    with tarfile.open(path, "w:gz") as tar:
        for info, payload in members:
            tar.addfile(info, None if payload is None else io.BytesIO(payload))
    return hashlib.md5(path.read_bytes()).hexdigest()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_good_archive(server, tmp_path):
    www, base, requests = server
    md5 = make_archive(www / "cifar-10-python.tar.gz", _cifar_members())
    target = tmp_path / "data"
    root = xdata.download_cifar10(
        target, url=f"{base}/cifar-10-python.tar.gz", md5=md5, progress=False
    )
    assert root == target / "cifar-10-batches-py"
    assert _leftovers(target) == ["cifar-10-batches-py"]  # no archive, no temporary folder
    assert {p.name for p in root.iterdir()} >= set(BATCHES) | {"batches.meta"}
    Xtr, _, Xte, _ = xdata.load_CIFAR10(root)
    assert Xtr.shape == (5 * ROWS, 32, 32, 3) and Xte.shape == (ROWS, 32, 32, 3)
    assert requests == ["/cifar-10-python.tar.gz"]


def test_download_skips_a_complete_directory(server, tmp_path):
    www, base, requests = server
    md5 = make_archive(www / "c.tar.gz", _cifar_members())
    target = tmp_path / "data"
    first = xdata.download_cifar10(target, url=f"{base}/c.tar.gz", md5=md5, progress=False)
    again = xdata.download_cifar10(target, url=f"{base}/missing", md5="0" * 32, progress=False)
    assert first == again
    assert requests == ["/c.tar.gz"]
    write_cifar(tmp_path / "other" / "cifar-10-batches-py")  # present without any download
    assert xdata.download_cifar10(tmp_path / "other", url=f"{base}/x", progress=False).is_dir()
    assert requests == ["/c.tar.gz"]


def test_download_refuses_an_incomplete_directory(server, tmp_path):
    _, base, requests = server
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "data" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="lacks data_batch_2"):
        xdata.download_cifar10(tmp_path / "data", url=f"{base}/c.tar.gz", progress=False)
    assert (tmp_path / "data" / "cifar-10-batches-py" / "data_batch_1").read_bytes() == b"mine"
    assert requests == []


def test_download_default_directory(server, tmp_path, monkeypatch):
    www, base, _ = server
    md5 = make_archive(www / "c.tar.gz", _cifar_members())
    monkeypatch.setenv("XPNN_DATA_DIR", str(tmp_path / "env"))
    root = xdata.download_cifar10(url=f"{base}/c.tar.gz", md5=md5, progress=False)
    assert root == tmp_path / "env" / "cifar-10-batches-py"
    assert xdata.get_CIFAR10_data(10, 2, 2)["X_train"].shape == (10, 3, 32, 32)


def test_download_from_a_local_path(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    md5 = make_archive(archive, _cifar_members())
    root = xdata.download_cifar10(tmp_path / "data", url=str(archive), md5=md5, progress=False)
    assert (root / "test_batch").is_file()
    assert archive.is_file()  # the user's copy is not consumed


def test_download_with_a_progress_bar(server, tmp_path, capsys):
    www, base, _ = server
    md5 = make_archive(www / "c.tar.gz", _cifar_members())
    xdata.download_cifar10(tmp_path / "data", url=f"{base}/c.tar.gz", md5=md5, progress=True)
    assert "c.tar.gz" in capsys.readouterr().err


def test_download_wrong_checksum(server, tmp_path):
    www, base, _ = server
    actual = make_archive(www / "c.tar.gz", _cifar_members())
    expected = "0123456789abcdef0123456789abcdef"
    target = tmp_path / "data"
    with pytest.raises(ValueError, match="checksum mismatch") as info:
        xdata.download_cifar10(target, url=f"{base}/c.tar.gz", md5=expected, progress=False)
    assert expected in str(info.value) and actual in str(info.value)
    assert _leftovers(target) == []


def test_download_archive_without_cifar(server, tmp_path):
    www, base, _ = server
    members = [m for m in _cifar_members() if not m[0].name.endswith("test_batch")]
    md5 = make_archive(www / "c.tar.gz", members)
    target = tmp_path / "data"
    with pytest.raises(ValueError, match="does not hold CIFAR-10"):
        xdata.download_cifar10(target, url=f"{base}/c.tar.gz", md5=md5, progress=False)
    assert _leftovers(target) == []


def test_download_not_a_tar_file(server, tmp_path):
    www, base, _ = server
    (www / "c.tar.gz").write_bytes(b"<html>a login page</html>")
    target = tmp_path / "data"
    with pytest.raises(ValueError, match="neither a zip nor a readable tar archive"):
        xdata.download_cifar10(target, url=f"{base}/c.tar.gz", md5=None, progress=False)
    assert _leftovers(target) == []


def _symlink(name: str, to: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, to
    return info, None


def _unsafe_archives(tmp_path: Path) -> dict[str, list]:
    outside = tmp_path / "outside"
    device = tarfile.TarInfo("cifar-10-batches-py/null")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    return {
        "dotdot": [_file("../evil", b"x")],
        "dotdot-deep": [_file("cifar-10-batches-py/../../../evil", b"x")],
        "absolute": [_file(str(tmp_path / "evil"), b"x")],
        "symlink-out": [
            _symlink("cifar-10-batches-py/link", str(outside)),
            _file("cifar-10-batches-py/link/evil", b"x"),
        ],
        "symlink-relative": [
            _symlink("cifar-10-batches-py/link", "../../.."),
            _file("cifar-10-batches-py/link/evil", b"x"),
        ],
        "hardlink-out": [
            _symlink("cifar-10-batches-py/evil", str(outside / "f"), tarfile.LNKTYPE)
        ],
        "device": [(device, None)],
    }


@pytest.mark.parametrize(
    "case",
    [
        "dotdot",
        "dotdot-deep",
        "absolute",
        "symlink-out",
        "symlink-relative",
        "hardlink-out",
        "device",
    ],
)
@pytest.mark.parametrize("tar_filters", ["available", "absent"])
def test_download_refuses_unsafe_members(server, tmp_path, monkeypatch, case, tar_filters):
    """Our own check refuses every case, also on a Python without tarfile's filters."""
    if tar_filters == "absent":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    www, base, _ = server
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_bytes(b"keep")
    # the unsafe member comes last: a checker that extracts as it goes would already have
    # written the batches
    members = _cifar_members() + _unsafe_archives(tmp_path)[case]
    md5 = make_archive(www / "c.tar.gz", members)
    target = tmp_path / "data"
    with pytest.raises(ValueError, match="refusing to extract archive member"):
        xdata.download_cifar10(target, url=f"{base}/c.tar.gz", md5=md5, progress=False)
    assert _leftovers(target) == []
    assert sorted(p.name for p in outside.iterdir()) == ["f"]
    assert (outside / "f").read_bytes() == b"keep"
    assert not list(tmp_path.rglob("evil"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "outside", "www"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("where", ["missing-file", "closed-port"])
def test_download_network_error_names_the_url(server, tmp_path, where):
    _, base, _ = server
    url = (
        f"{base}/nothing-here.tar.gz"
        if where == "missing-file"
        else (f"http://127.0.0.1:{_closed_port()}/c.tar.gz")
    )
    target = tmp_path / "data"
    with pytest.raises(ConnectionError) as info:
        xdata.download_cifar10(target, url=url, progress=False)
    message = str(info.value)
    assert url in message and "--url" in message and xdata.CIFAR10_URL in message
    assert _leftovers(target) == []


# --------------------------------------------------------------------------- checksums


@pytest.fixture
def no_fetch(monkeypatch):
    """Fail the test if anything is fetched (these cases must stop before that)."""

    def urlopen(*args, **kwargs):
        raise AssertionError(f"nothing should be fetched; got urlopen{args}")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


@pytest.fixture
def mirror(server):
    """A mirror serving a CIFAR-10 archive that differs from the official one."""
    www, base, requests = server
    md5 = make_archive(www / "mirror.tar.gz", _cifar_members(seed=5))
    return f"{base}/mirror.tar.gz", md5, requests


def test_download_md5_in_any_case(mirror, tmp_path):
    url, md5, _ = mirror
    root = xdata.download_cifar10(tmp_path / "d", url=url, md5=md5.upper(), progress=False)
    assert (root / "test_batch").is_file()


def test_download_without_verification_from_a_mirror(mirror, tmp_path):
    url, _, requests = mirror
    root = xdata.download_cifar10(tmp_path / "d", url=url, verify=False, progress=False)
    assert xdata.load_CIFAR10(root)[0].shape == (5 * ROWS, 32, 32, 3)
    assert requests == ["/mirror.tar.gz"]


def test_download_mismatch_from_a_mirror_says_how_to_pass_its_checksum(mirror, tmp_path):
    url, md5, _ = mirror
    with pytest.raises(ValueError, match="checksum mismatch") as info:
        xdata.download_cifar10(tmp_path / "d", url=url, progress=False)  # the official MD5
    message = str(info.value)
    assert xdata.CIFAR10_MD5 in message and md5 in message
    assert "--md5 HEX" in message and "--no-verify" in message
    assert _leftovers(tmp_path / "d") == []


@pytest.mark.parametrize(
    "md5",
    [
        "xyz",
        "0" * 31,
        "0" * 33,
        "g" * 32,
        "0123456789abcdef0123456789abcdef\n",
        " 0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef  cifar-10-python.tar.gz",
        "",
    ],
)
def test_download_refuses_a_bad_md5_before_fetching(no_fetch, tmp_path, md5):
    with pytest.raises(ValueError, match="md5 must be an MD5 digest, 32 hexadecimal digits"):
        xdata.download_cifar10(tmp_path / "d", url="http://127.0.0.1:9/x", md5=md5)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("md5", [b"0123456789abcdef0123456789abcdef", 123])
def test_download_refuses_an_md5_that_is_not_a_string(no_fetch, tmp_path, md5):
    with pytest.raises(TypeError, match="md5 must be a string"):
        xdata.download_cifar10(tmp_path / "d", url="http://127.0.0.1:9/x", md5=md5)


@pytest.mark.parametrize("skip", [{"verify": False}, {"md5": None}])
def test_the_official_archive_is_always_verified(no_fetch, tmp_path, skip):
    with pytest.raises(ValueError, match="has a published MD5 and is always checked"):
        xdata.download_cifar10(tmp_path / "d", **skip)
    assert not (tmp_path / "d").exists()


def test_verify_false_with_an_md5_is_a_contradiction(no_fetch, tmp_path):
    with pytest.raises(ValueError, match="would go unused"):
        xdata.download_cifar10(
            tmp_path / "d", url="http://127.0.0.1:9/x", md5="0" * 32, verify=False
        )


# --------------------------------------------------------------------------- xpnn download


def _download(argv: list[str], capsys) -> tuple[int, str, str]:
    status = main(["download", "cifar10", "--quiet", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_md5_of_a_mirror(mirror, tmp_path, capsys):
    url, md5, _ = mirror
    status, out, err = _download(["--dir", str(tmp_path), "--url", url, "--md5", md5], capsys)
    assert status == 0, err
    assert out == f"CIFAR-10 is in {tmp_path / 'cifar-10-batches-py'}\n"


def test_cli_no_verify_with_a_mirror(mirror, tmp_path, capsys):
    url, _, requests = mirror
    status, _, err = _download(["--dir", str(tmp_path), "--url", url, "--no-verify"], capsys)
    assert status == 0, err
    assert requests == ["/mirror.tar.gz"]
    assert xdata.load_CIFAR10(tmp_path / "cifar-10-batches-py")[1].shape == (5 * ROWS,)


def test_cli_default_directory_is_what_the_loaders_search(mirror, places, monkeypatch, capsys):
    """The command the not-found message gives puts CIFAR-10 where the loaders look."""
    url, md5, _ = mirror
    monkeypatch.setenv("XPNN_DATA_DIR", str(places["env"].parent))
    assert "with: xpnn download cifar10 (it unpacks into (1);" in _not_found_message()
    assert _download(["--url", url, "--md5", md5], capsys)[0] == 0
    assert xdata.find_cifar10() == places["env"]
    assert xdata.get_CIFAR10_data(10, 2, 2)["X_train"].shape == (10, 3, 32, 32)


def test_cli_mismatch_is_one_line(mirror, tmp_path, capsys):
    url, _, _ = mirror
    status, _, err = _download(["--dir", str(tmp_path), "--url", url, "--md5", "0" * 32], capsys)
    assert status == 2
    assert err.startswith("xpnn download: checksum mismatch") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--md5", "nothex"], "--md5 must be an MD5 digest, 32 hexadecimal digits"),
        (["--url", "http://127.0.0.1:9/x", "--md5", "abc"], "got 'abc' (3 characters)"),
        (["--no-verify"], "--no-verify needs --url with another archive"),
        (["--no-verify", "--url", xdata.CIFAR10_URL], "--no-verify needs --url"),
        (
            ["--no-verify", "--url", "http://127.0.0.1:9/x", "--md5", "0" * 32],
            "--md5 and --no-verify contradict each other",
        ),
    ],
)
def test_cli_checksum_mistakes_get_one_line_and_status_2(
    no_fetch, tmp_path, capsys, argv, message
):
    status, out, err = _download(["--dir", str(tmp_path / "d"), *argv], capsys)
    assert status == 2 and out == ""
    assert err.startswith("xpnn download: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_public_names():
    assert sorted(xdata.__all__) == sorted(
        [
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
    )
    for name in xdata.__all__:
        obj = getattr(xdata, name)
        assert not callable(obj) or obj.__doc__, name
