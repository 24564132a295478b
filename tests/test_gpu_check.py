"""The prepared GPU check (``tools/gpu_check.py``): its plan fits the lent machine's time,
and its dry run (no CUDA) runs every step's plumbing and says what it skipped."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "tools" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
sys.modules["gpu_check"] = gpu_check  # dataclasses look their module up there
_spec.loader.exec_module(gpu_check)


def test_the_plan_covers_the_issue_and_fits_in_eight_minutes(tmp_path):
    steps = gpu_check.plan(tmp_path, workers=16)
    names = [s.name for s in steps]
    assert names == ["tests-cupy", "tests-jax-gpu", "tests-torch-cuda",
                     "bench-cupy", "bench-jax", "bench-torch"]  # fmt: skip
    assert gpu_check.wall_time_limit(steps) <= 8 * 60
    assert [s.side_by_side for s in steps] == [True] * 3 + [False] * 3
    # the three test steps share the 16 cores of the lent machine
    workers = [int(s.command[s.command.index("-n") + 1]) for s in steps[:3]]
    assert sum(workers) <= 16 and min(workers) >= 3
    by_name = {s.name: s for s in steps}
    assert by_name["tests-torch-cuda"].env["XPNN_DEVICE"] == "cuda"
    assert by_name["tests-jax-gpu"].env["JAX_ENABLE_X64"] == "1"
    assert by_name["tests-jax-gpu"].env["JAX_DEFAULT_MATMUL_PRECISION"] == "highest"
    for name in ("bench-cupy", "bench-jax", "bench-torch"):
        assert str(tmp_path / "gpu_results.md") in by_name[name].command


def test_the_dry_run_says_what_it_skipped(tmp_path, capsys):
    code = gpu_check.main(["--dry-run", "--out", str(tmp_path), "--workers", "1",
                           "--only", "tests-torch-cuda", "bench-cupy"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "device: none (dry run)" in out
    assert "bench-cupy: skipped (needs a CUDA device; none here)" in out
    assert "tests-torch-cuda: ok" in out and "collected only (no CUDA device)" in out
    assert (tmp_path / "gpu_summary.md").read_text().count("\n- ") == 2
    assert "tests-torch-cuda" in (tmp_path / "gpu_check.log").read_text()


def test_merge_copies_only_the_gpu_sections(tmp_path):
    results = tmp_path / "gpu_results.md"
    results.write_text(
        "# Benchmark results\n\n<!-- bench:cupy-gpu -->\n## Backend: cupy on H200\nnew\n"
        "<!-- /bench:cupy-gpu -->\n"
    )
    into = tmp_path / "RESULTS.md"
    into.write_text("# B\n\n<!-- bench:numpy -->\ncpu\n<!-- /bench:numpy -->\n")
    assert gpu_check.merge(results, into) == ["cupy-gpu"]
    text = into.read_text()
    assert "cpu" in text and "## Backend: cupy on H200\nnew" in text
    results.write_text(results.read_text().replace("new", "newer"))
    gpu_check.merge(results, into)
    assert into.read_text().count("<!-- bench:cupy-gpu -->") == 1 and "newer" in into.read_text()
