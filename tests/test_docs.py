"""Every ```python block of the README and the docs runs, in order, file by file.

A block that needs a backend or a GPU says so in an HTML comment on the line before it
(``<!-- requires: jax -->``, ``<!-- requires: cupy -->``, ``<!-- requires: torch -->``);
it is skipped, with that reason, where the requirement is missing. Blocks of one file run
in one namespace, so a later block may use what an earlier one defined; a test for block
``k`` runs blocks ``0..k-1`` of its file first (the ones that can run here).

JAX blocks run as a reader would run them: under JAX's default float32, unless a block of
the page enables x64 itself (the suite's JAX session enables it for everything else).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

import xpnn
from xpnn import registry

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FILES = [f for f in FILES if "_build" not in f.parts]
BLOCK = re.compile(
    r"(?:<!--\s*requires:\s*(?P<requires>[\w, ]+?)\s*-->\s*\n)?^```python\n(?P<code>.*?)^```",
    re.MULTILINE | re.DOTALL,
)


def _blocks(path: Path) -> list[tuple[set[str], str]]:
    return [
        ({r.strip() for r in (m["requires"] or "").split(",") if r.strip()}, m["code"])
        for m in BLOCK.finditer(path.read_text())
    ]


def _missing(requires: set[str]) -> str | None:
    """Why a block cannot run here, or None."""
    for name in sorted(requires):
        if name not in xpnn.BACKENDS:
            raise ValueError(f"unknown requirement {name!r} in a docs block")
        try:
            xpnn.get_namespace(name)
        except (ImportError, RuntimeError) as err:
            return f"needs {name}: {err}"
    return None


PARAMS = [
    pytest.param(path, k, id=f"{path.relative_to(ROOT)}:{k}")
    for path in FILES
    for k in range(len(_blocks(path)))
]


@pytest.mark.parametrize(("path", "index"), PARAMS)
def test_code_block_runs(path, index, monkeypatch, tmp_path):
    blocks = _blocks(path)
    reason = _missing(blocks[index][0])
    if reason:
        pytest.skip(reason)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "_CASES", list(registry._CASES))
    monkeypatch.setattr(registry, "_LAYERS", list(registry._LAYERS))  # blocks register
    with _jax_default_dtype(any("jax" in req for req, _ in blocks[: index + 1])):
        namespace: dict = {"__name__": f"docs_{path.stem}"}
        with xpnn.use_backend("numpy"):
            for requires, code in blocks[:index]:
                if _missing(requires) is None:
                    exec(compile(code, str(path), "exec"), namespace)
            exec(compile(blocks[index][1], f"{path}:block{index}", "exec"), namespace)


@contextlib.contextmanager
def _jax_default_dtype(uses_jax: bool):
    """x64 off while the page's blocks run (they may turn it on), as it was afterwards."""
    if not uses_jax or _missing({"jax"}) is not None:
        yield
        return
    import jax

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def test_blocks_are_found():
    assert len(PARAMS) >= 10
    assert any(path.name == "README.md" for path, _ in (p.values for p in PARAMS))
