"""``xpnn.coco`` (and ``xpnn.cs231n.coco_utils``): the assignment's COCO captioning files.

The files are written here in their real format (HDF5 captions and features, the JSON
vocabulary, the URL lists), small; the download comes from an HTTP server on 127.0.0.1
(the ``server`` fixture): nothing reaches outside.
"""

from __future__ import annotations

import hashlib
import json
import stat
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason="the COCO files are HDF5")

from xpnn import coco  # noqa: E402
from xpnn.cli import main  # noqa: E402

WORDS = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "cat", "on", "the", "mat", "dog"]
FILES = [
    "coco2014_captions.h5",
    "coco2014_vocab.json",
    "train2014_urls.txt",
    "val2014_urls.txt",
    "train2014_vgg16_fc7_pca.h5",
    "val2014_vgg16_fc7_pca.h5",
    "train2014_vgg16_fc7.h5",
    "val2014_vgg16_fc7.h5",
]


def write_coco(folder: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A ``coco_captioning`` folder in the course's format: 6 train and 3 val images,
    12 and 5 captions of 17 words; returns what was written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    written = {}
    for split, images, captions in (("train", 6, 12), ("val", 3, 5)):
        words = rng.integers(4, len(WORDS), size=(captions, 17)).astype(np.int32)
        words[:, 0] = 1
        words[:, 9] = 2  # <END>
        words[:, 10:] = 0  # <NULL>
        written[f"{split}_captions"] = words
        written[f"{split}_image_idxs"] = rng.integers(0, images, captions).astype(np.int32)
        written[f"{split}_features"] = rng.standard_normal((images, 512)).astype(np.float32)
        written[f"{split}_fc7"] = rng.standard_normal((images, 4096)).astype(np.float32)
        written[f"{split}_urls"] = [f"http://images.cocodataset.org/{split}2014/{i}.jpg"
                                    for i in range(images)]  # fmt: skip
        with h5py.File(folder / f"{split}2014_vgg16_fc7_pca.h5", "w") as f:
            f["features"] = written[f"{split}_features"]
        with h5py.File(folder / f"{split}2014_vgg16_fc7.h5", "w") as f:
            f["features"] = written[f"{split}_fc7"]
        (folder / f"{split}2014_urls.txt").write_text("\n".join(written[f"{split}_urls"]) + "\n")
    with h5py.File(folder / "coco2014_captions.h5", "w") as f:
        for key in ("train_captions", "train_image_idxs", "val_captions", "val_image_idxs"):
            f[key] = written[key]
    vocabulary = {"idx_to_word": WORDS, "word_to_idx": {w: i for i, w in enumerate(WORDS)}}
    (folder / "coco2014_vocab.json").write_text(json.dumps(vocabulary))
    return written


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "coco_captioning"
    return path, write_coco(path)


def test_load_coco_data_reads_every_file(folder):
    path, written = folder
    data = coco.load_coco_data(path)
    assert sorted(data) == sorted([
        "train_captions", "train_image_idxs", "val_captions", "val_image_idxs",
        "train_features", "val_features", "idx_to_word", "word_to_idx", "train_urls",
        "val_urls"])  # fmt: skip
    for key in ("train_captions", "train_image_idxs", "val_captions", "val_image_idxs",
                "train_features", "val_features"):  # fmt: skip
        np.testing.assert_array_equal(data[key], written[key])
        assert data[key].dtype == written[key].dtype and isinstance(data[key], np.ndarray)
    assert data["idx_to_word"] == WORDS and data["word_to_idx"]["cat"] == 5
    assert list(data["train_urls"]) == written["train_urls"]
    full = coco.load_coco_data(path, pca_features=False)
    np.testing.assert_array_equal(full["val_features"], written["val_fc7"])


def test_max_train_draws_as_the_assignment_does(folder):
    path, written = folder
    np.random.seed(7)  # noqa: NPY002  (the assignment draws from the global RNG)
    data = coco.load_coco_data(path, max_train=4)
    np.random.seed(7)  # noqa: NPY002  (the assignment draws from the global RNG)
    mask = np.random.randint(12, size=4)  # noqa: NPY002  (the assignment's draw)
    np.testing.assert_array_equal(data["train_captions"], written["train_captions"][mask])
    np.testing.assert_array_equal(data["train_image_idxs"], written["train_image_idxs"][mask])
    assert data["val_captions"].shape == (5, 17)
    with pytest.raises(ValueError, match="max_train"):
        coco.load_coco_data(path, max_train=0)


def test_sample_coco_minibatch_pairs_captions_with_their_images(folder):
    path, written = folder
    data = coco.load_coco_data(path)
    np.random.seed(3)  # noqa: NPY002  (the assignment draws from the global RNG)
    captions, features, urls = coco.sample_coco_minibatch(data, batch_size=4, split="val")
    np.random.seed(3)  # noqa: NPY002  (the assignment draws from the global RNG)
    mask = np.random.choice(5, 4)  # noqa: NPY002
    images = written["val_image_idxs"][mask]
    np.testing.assert_array_equal(captions, written["val_captions"][mask])
    np.testing.assert_array_equal(features, written["val_features"][images])
    assert list(urls) == [written["val_urls"][i] for i in images]
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        coco.sample_coco_minibatch(data, split="test")


def test_decode_captions():
    captions = np.array([[1, 4, 5, 6, 7, 8, 2, 9, 0], [1, 9, 0, 0, 2, 0, 0, 0, 0]])
    assert coco.decode_captions(captions, WORDS) == [
        "<START> a cat on the mat <END>",  # nothing after <END>
        "<START> dog <END>",  # <NULL> skipped
    ]
    assert coco.decode_captions(captions[0], WORDS) == "<START> a cat on the mat <END>"
    by_dict = dict(enumerate(WORDS))
    assert coco.decode_captions(captions, by_dict) == coco.decode_captions(captions, WORDS)
    with pytest.raises(ValueError, match=r"\(N, T\) or \(T,\)"):
        coco.decode_captions(captions[None], WORDS)


def test_missing_files_name_the_download_command(tmp_path, folder, monkeypatch):
    path, _ = folder
    (path / "val2014_vgg16_fc7_pca.h5").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks val2014_vgg16_fc7_pca\.h5") as err:
        coco.load_coco_data(path)
    assert f"xpnn download coco --dir {tmp_path}" in str(err.value)
    coco.load_coco_data(path, pca_features=False)  # the fc7 features are all there
    monkeypatch.setenv("XPNN_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="xpnn download coco") as err:
        coco.load_coco_data()
    assert str(tmp_path / "empty" / "coco_captioning") in str(err.value)


def test_base_dir_may_be_the_folder_the_download_unpacked_into(folder):
    path, written = folder
    data = coco.load_coco_data(path.parent)  # download_coco(path.parent) puts it there
    np.testing.assert_array_equal(data["val_captions"], written["val_captions"])


def test_the_search_path_finds_the_assignment_folder(tmp_path, monkeypatch):
    written = write_coco(tmp_path / "cs231n" / "datasets" / "coco_captioning")
    monkeypatch.delenv("XPNN_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert coco.coco_search_path()[0] == tmp_path / "cs231n" / "datasets" / "coco_captioning"
    np.testing.assert_array_equal(coco.load_coco_data()["val_captions"], written["val_captions"])
    monkeypatch.setenv("XPNN_DATA_DIR", str(tmp_path / "mine"))
    assert coco.coco_search_path()[0] == tmp_path / "mine" / "coco_captioning"


def test_without_h5py_the_error_says_what_to_install(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"pip install 'xpnn\[coco\]'"):
        coco.load_coco_data(folder[0])


def test_the_assignment_module_is_the_same_functions():
    from xpnn.cs231n import coco_utils

    for name in ("load_coco_data", "decode_captions", "sample_coco_minibatch"):
        assert getattr(coco_utils, name) is getattr(coco, name)


# --------------------------------------------------------------------------- download


def _zip(path: Path, source: Path, extra: dict[str, bytes] | None = None, drop=()) -> str:
    """``source`` zipped as coco_captioning/..., as the course's archive; its MD5."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name in FILES:
            if name not in drop:
                z.write(source / name, f"coco_captioning/{name}")
        for name, payload in (extra or {}).items():
            z.writestr(name, payload)
    return hashlib.md5(path.read_bytes()).hexdigest()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_download_unpacks_the_archive_and_loads(server, tmp_path):
    www, base, requests = server
    written = write_coco(tmp_path / "src")
    md5 = _zip(www / "coco_captioning.zip", tmp_path / "src")
    target = tmp_path / "data"
    path = coco.download_coco(target, url=f"{base}/coco_captioning.zip", md5=md5, progress=False)
    assert path == target / "coco_captioning" and _leftovers(target) == ["coco_captioning"]
    np.testing.assert_array_equal(coco.load_coco_data(path)["train_captions"],
                                  written["train_captions"])  # fmt: skip
    again = coco.download_coco(target, url=f"{base}/missing.zip", progress=False)
    assert again == path and requests == ["/coco_captioning.zip"]  # nothing fetched again


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("md5", "checksum mismatch"),
        ("crc", "its data is corrupt"),
        ("slip", "its path contains '..'"),
        ("link", "symbolic link"),
        ("missing", "lacks val2014_urls.txt"),
        ("not_a_zip", "neither a zip nor a readable tar"),
    ],
)
def test_a_bad_archive_installs_nothing(server, tmp_path, damage, match):
    www, base, _ = server
    write_coco(tmp_path / "src")
    archive = www / "coco_captioning.zip"
    md5 = None
    if damage == "slip":
        _zip(archive, tmp_path / "src", extra={"coco_captioning/../../evil.txt": b"x"})
    elif damage == "link":
        _zip(archive, tmp_path / "src")
        with zipfile.ZipFile(archive, "a") as z:
            info = zipfile.ZipInfo("coco_captioning/link")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    elif damage == "missing":
        _zip(archive, tmp_path / "src", drop=("val2014_urls.txt",))
    elif damage == "not_a_zip":
        archive.write_bytes(b"<html>not found</html>")
    else:
        _zip(archive, tmp_path / "src")
        if damage == "md5":
            md5 = "0" * 32
        else:  # flip a byte inside the first member's stored data
            raw = bytearray(archive.read_bytes())
            with zipfile.ZipFile(archive) as z:
                first = z.infolist()[0]
            offset = first.header_offset + 30 + len(first.filename) + len(first.extra) + 10
            raw[offset] ^= 0xFF
            archive.write_bytes(bytes(raw))
    target = tmp_path / "data"
    with pytest.raises(ValueError, match=match):
        coco.download_coco(target, url=f"{base}/coco_captioning.zip", md5=md5, progress=False)
    assert _leftovers(target) == []
    assert not (tmp_path / "evil.txt").exists()


def test_an_incomplete_folder_is_left_alone(server, tmp_path):
    _, base, requests = server
    (tmp_path / "data" / "coco_captioning").mkdir(parents=True)
    (tmp_path / "data" / "coco_captioning" / "coco2014_vocab.json").write_text("mine")
    with pytest.raises(FileExistsError, match=r"lacks coco2014_captions\.h5"):
        coco.download_coco(tmp_path / "data", url=f"{base}/x.zip", progress=False)
    assert (tmp_path / "data" / "coco_captioning" / "coco2014_vocab.json").read_text() == "mine"
    assert requests == []


def test_xpnn_download_coco(server, tmp_path, capsys):
    www, base, _ = server
    write_coco(tmp_path / "src")
    md5 = _zip(www / "c.zip", tmp_path / "src")
    target = tmp_path / "data"
    assert main(["download", "coco", "--dir", str(target), "--url", f"{base}/c.zip",
                 "--md5", md5.upper(), "--quiet"]) == 0  # fmt: skip
    assert (
        f"The COCO captioning data is in {target / 'coco_captioning'}" in capsys.readouterr().out
    )
    assert main(["download", "coco", "--dir", str(tmp_path / "b"), "--url", f"{base}/c.zip",
                 "--no-verify"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--no-verify is for cifar10" in err and "Traceback" not in err
    assert main(["download", "coco", "--dir", str(tmp_path / "c"), "--url", f"{base}/none.zip",
                 "--quiet"]) == 2  # fmt: skip
    assert "could not download" in capsys.readouterr().err
