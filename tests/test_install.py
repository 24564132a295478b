"""The install hint fits how xpnn was installed (index, clone, editable clone, source tree)."""

from __future__ import annotations

import importlib.metadata
import json
import tomllib
from pathlib import Path

import pytest

from xpnn import _install


class _Distribution:
    requires = ('jax>=0.4.30; extra == "jax"',)

    def __init__(self, direct_url):
        self._text = None if direct_url is None else json.dumps(direct_url)

    def read_text(self, name):
        return self._text if name == "direct_url.json" else None


def _installed(monkeypatch, direct_url):
    monkeypatch.setattr(
        _install.importlib.metadata, "distribution", lambda name: _Distribution(direct_url)
    )


def test_from_an_index(monkeypatch):
    _installed(monkeypatch, None)
    assert _install.install_command("jax") == (
        "pip install 'xpnn[jax]' (or the package alone: pip install 'jax>=0.4.30')"
    )


def test_from_a_clone(monkeypatch, tmp_path):
    _installed(monkeypatch, {"url": tmp_path.as_uri(), "dir_info": {}})
    assert _install.install_command("torch").startswith(f"pip install '{tmp_path}[torch]'")


def test_from_an_editable_clone(monkeypatch, tmp_path):
    _installed(monkeypatch, {"url": tmp_path.as_uri(), "dir_info": {"editable": True}})
    assert _install.install_command("jax").startswith(f"pip install -e '{tmp_path}[jax]'")


def test_from_a_git_url(monkeypatch):
    _installed(monkeypatch, {"url": "https://example.org/xpnn.git", "vcs_info": {"vcs": "git"}})
    assert _install.install_command("jax").startswith(
        "pip install 'xpnn[jax] @ git+https://example.org/xpnn.git'"
    )


def test_from_an_archive_url(monkeypatch):
    url = "https://example.org/xpnn-0.2.0.tar.gz"
    _installed(monkeypatch, {"url": url, "archive_info": {}})
    assert _install.install_command("torch").startswith(f"pip install 'xpnn[torch] @ {url}'")


def test_not_installed_but_imported_from_the_source_tree(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(_install.importlib.metadata, "distribution", missing)
    if not _install._is_source_tree(_install._SOURCE_ROOT):
        pytest.skip("xpnn is not imported from a source tree here")
    assert _install.install_command("jax").startswith(f"pip install -e '{_install._SOURCE_ROOT}[")


@pytest.mark.parametrize("extra", ["jax", "torch", "cupy", "strict"])
def test_every_hinted_extra_exists(extra):
    """The extras the hints name are the ones pyproject.toml declares."""
    from xpnn._backend import _BACKEND_MODULES

    root = Path(__file__).resolve().parents[1]  # the checkout these tests belong to
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extra in declared
    assert extra in {e for _, _, e in _BACKEND_MODULES.values()}
