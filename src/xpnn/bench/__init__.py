"""``xpnn bench``: xpnn's layers and training steps timed against a reference, in one process.

:func:`run` measures every case of :mod:`xpnn.bench.cases` on one backend (each side in
its own warm loop, the pair repeated, see :mod:`xpnn.bench._timing`) and, on NumPy, the
fast convolution against the naive loops, the peak extra memory of the convolution, and
how its time grows with the batch size. :func:`report` renders the results as Markdown and
:func:`write_section` puts them into a results file (``benchmarks/RESULTS.md``), one
section per backend, so that runs on different backends and machines share one file.

This package is not imported by ``import xpnn``; it needs PyTorch for the references on
the NumPy, PyTorch and CuPy backends.
"""

from __future__ import annotations

import datetime
import re
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import write_atomically
from ..layers import conv_backward_fast, conv_backward_naive, conv_forward_fast, conv_forward_naive
from ._timing import time_pair, time_per_call
from .cases import CONV_SHAPES, Case, cases, conv_label, torch_conv, xpnn_conv
from .machine import describe_machine, usable_cores

__all__ = ["Results", "TimedStage", "report", "run", "write_section"]

SCALING_BATCHES = (8, 32, 128)


@dataclass
class TimedStage:
    """Seconds per call of a stage (:class:`xpnn.bench.cases.Stage`) on both sides."""

    name: str
    ours: float
    reference: float | None
    yardstick: bool = False


@dataclass
class Row:
    """One timed case: seconds per call of xpnn and of the reference."""

    case: Case
    ours: float
    reference: float
    #: The case's stages timed, for a missed target.
    stages: list[TimedStage] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.ours / self.reference

    @property
    def met(self) -> bool | None:
        return None if self.case.target is None else self.ratio <= self.case.target


@dataclass
class Results:
    """Everything one ``xpnn bench`` run measured."""

    backend: str
    quick: bool
    rows: list[Row] = field(default_factory=list)
    naive: dict[str, float] = field(default_factory=dict)
    memory: list[tuple[str, float]] = field(default_factory=list)
    scaling: list[tuple[int, float, float]] = field(default_factory=list)
    gpu: str | None = None


def run(
    backend: str = "numpy",
    *,
    quick: bool = False,
    progress: Callable[[str], Any] = print,
    only: str | None = None,
) -> Results:
    """Measure every case on ``backend``; ``quick`` times fewer loops and skips the extras.

    Parameters
    ----------
    backend : {'numpy', 'torch', 'cupy', 'jax'}
    quick : bool
        One pair of loops of 3 timings each, and no naive, memory or scaling runs.
    progress : callable
        Called with one line per finished measurement.
    only : str, optional
        Time only the cases whose operation contains this text (case-insensitive), and
        none of the naive, memory or scaling runs.
    """
    timing = {"pairs": 1, "repeat": 3, "min_loop_seconds": 0.02} if quick else {
        "pairs": 2, "repeat": 5, "min_loop_seconds": 0.1}  # fmt: skip
    results = Results(backend, quick, gpu=_gpu_name(backend))
    _limit_torch_threads()
    for case in cases(backend):
        if only is not None and only.lower() not in case.op.lower():
            continue
        ours, ref = time_pair(
            case.ours, case.reference_fn, case.sync, case.reference_sync, **timing
        )
        row = Row(case, ours, ref)
        results.rows.append(row)
        progress(_row_line(row))
        if row.met is False and not quick:
            row.stages = _time_stages(case, timing)
            for t in row.stages:
                ref = "" if t.reference is None else f"  ref {t.reference * 1e3:9.2f} ms"
                progress(f"    {t.name:60s} xpnn {t.ours * 1e3:9.2f} ms{ref}")
        case.stages = ()  # their arrays (im2col-sized products) are not needed any more
    if backend == "numpy" and not quick and only is None:
        results.naive = _naive_vs_fast(progress)
        results.memory = _conv_memory(progress)
        results.scaling = _scaling(progress)
    return results


def _time_stages(case: Case, timing: dict) -> list[TimedStage]:
    """Each stage of a case whose target was missed, timed like the case itself."""
    timed = []
    for stage in case.stages:
        if stage.reference is None:
            ours = time_per_call(stage.ours, case.sync, repeat=timing["repeat"],
                                 min_loop_seconds=timing["min_loop_seconds"])  # fmt: skip
            ref = None
        else:
            ours, ref = time_pair(stage.ours, stage.reference, case.sync, case.reference_sync,
                                  **timing)  # fmt: skip
        timed.append(TimedStage(stage.name, ours, ref, stage.yardstick))
    return timed


def _limit_torch_threads() -> None:
    """PyTorch on as many threads as this process has cores (its default may use more)."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(usable_cores())


def _gpu_name(backend: str) -> str | None:
    try:
        if backend == "cupy":
            import cupy

            return cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            return None if device.platform == "cpu" else device.device_kind
        import torch

        if backend == "torch" and torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:
        return None
    return None


def _row_line(row: Row) -> str:
    c = row.case
    return (
        f"{c.op:32s} {c.shape:44s} {c.dtype:8s} xpnn {row.ours * 1e3:9.2f} ms  "
        f"ref {row.reference * 1e3:9.2f} ms  ratio {row.ratio:5.2f}"
        + ("" if c.target is None else f"  (target <= {c.target:g})")
    )


def _conv_case(xs, ws, stride, pad, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    param = {"stride": stride, "pad": pad}
    dout = rng.standard_normal(conv_forward_fast(x, w, b, param)[0].shape).astype(dtype)
    return x, w, b, param, dout


def _naive_vs_fast(progress: Callable) -> dict[str, float]:
    """Seconds of the naive loops and of the fast path, stride-2 shape, float64."""
    xs, ws, stride, pad = CONV_SHAPES[2]
    x, w, b, param, dout = _conv_case(xs, ws, stride, pad)

    fast = xpnn_conv(x, w, b, param, dout)
    start = time.perf_counter()
    conv_backward_naive(dout, conv_forward_naive(x, w, b, param)[1])  # one call: seconds
    naive = time.perf_counter() - start
    fast_time = time_per_call(fast, lambda r: r)
    progress(
        f"naive conv fwd+bwd {naive:.2f} s, fast {fast_time * 1e3:.2f} ms: "
        f"{naive / fast_time:.0f}x"
    )
    return {"shape": conv_label(xs, ws, stride, pad), "naive": naive, "fast": fast_time}


def _conv_memory(progress: Callable) -> list[tuple[str, float]]:
    """Peak memory allocated during conv fwd+bwd, as a multiple of the input's size."""
    measured = []
    for xs, ws, stride, pad in CONV_SHAPES:
        x, w, b, param, dout = _conv_case(xs, ws, stride, pad, "float32")
        tracemalloc.start()
        try:
            conv_backward_fast(dout, conv_forward_fast(x, w, b, param)[1])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        measured.append((conv_label(xs, ws, stride, pad), peak / x.nbytes))
        progress(
            f"conv fwd+bwd peak extra memory {measured[-1][1]:.1f} x the input, {measured[-1][0]}"
        )
    return measured


def _scaling(progress: Callable) -> list[tuple[int, float, float]]:
    """Per-image ms of the ThreeLayerConvNet conv fwd+bwd (float32) for N in SCALING_BATCHES."""
    _, ws, stride, pad = CONV_SHAPES[0]
    measured = []
    for n in SCALING_BATCHES:
        x, w, b, param, dout = _conv_case((n, 3, 32, 32), ws, stride, pad, "float32")
        ours, theirs = time_pair(
            xpnn_conv(x, w, b, param, dout),
            torch_conv(x, w, b, param, dout),
            lambda r: r,
            pairs=1,
            repeat=3,
        )
        measured.append((n, ours / n * 1e3, theirs / n * 1e3))
        progress(f"N={n}: xpnn {measured[-1][1]:.3f} ms/image, PyTorch {measured[-1][2]:.3f}")
    return measured


# --------------------------------------------------------------------------- output


def report(results: Results) -> list[str]:
    """The results as lines of Markdown (a section headed by the backend)."""
    lines = [
        f"## Backend: {results.backend}" + (f" on {results.gpu}" if results.gpu else ""),
        "",
        f"Measured {datetime.date.today()} by `xpnn bench --backend {results.backend}"
        + (" --quick" if results.quick else "")
        + "`.",
        "",
        *describe_machine(results.gpu),
        "",
        "Seconds per call: each side in its own warm loop, the fastest of several loops, "
        "the pair of loops repeated. Ratio = xpnn / reference (below 1: xpnn is faster).",
        "",
        "| op | shape | dtype | xpnn (ms) | reference | reference (ms) | ratio | target | met |",
        "|---|---|---|---:|---|---:|---:|---:|:-:|",
    ]
    for row in results.rows:
        c = row.case
        target = "" if c.target is None else f"<= {c.target:g}"
        met = {None: "", True: "yes", False: "**no**"}[row.met]
        lines.append(
            f"| {c.op} | {c.shape} | {c.dtype} | {row.ours * 1e3:.2f} | {c.reference} | "
            f"{row.reference * 1e3:.2f} | {row.ratio:.2f} | {target} | {met} |"
        )
    lines += _profile(results.rows)
    if results.naive:
        n = results.naive
        lines += [
            "",
            f"Naive loops vs the fast convolution, fwd+bwd, float64, {n['shape']}: naive "
            f"{n['naive']:.2f} s (one call), fast {n['fast'] * 1e3:.2f} ms, "
            f"**{n['naive'] / n['fast']:.0f}x** (target >= 500x).",
        ]
    if results.memory:
        lines += [
            "",
            "Peak extra memory of conv fwd+bwd (tracemalloc, float32), as a "
            "multiple of the input's size:",
            "",
            "| shape | peak / input |",
            "|---|---:|",
        ]
        lines += [f"| {shape} | {ratio:.1f} |" for shape, ratio in results.memory]
    if results.scaling:
        lines += [
            "",
            "Conv fwd+bwd time per image against the batch size, "
            f"{conv_label((0, 3, 32, 32), *CONV_SHAPES[0][1:]).replace('x(0,', 'x(N,')}, float32:",
            "",
            "| N | xpnn (ms/image) | PyTorch (ms/image) |",
            "|---:|---:|---:|",
        ]
        lines += [f"| {n} | {ours:.3f} | {ref:.3f} |" for n, ours, ref in results.scaling]
    return lines


def _profile(rows: list[Row]) -> list[str]:
    """Where the time goes in each case whose target was missed, with what limits it."""
    profiled = [row for row in rows if row.stages]
    if not profiled:
        return []
    lines = ["", "### Where the time goes, for each target not met"]

    def ms(seconds: float | None) -> str:
        return "" if seconds is None else f"{seconds * 1e3:.2f}"

    def ratio(ours: float, ref: float | None) -> str:
        return "" if ref is None else f"{ours / ref:.2f}"

    for row in profiled:
        c = row.case
        lines += [
            "",
            f"**{c.op}, {c.shape}, {c.dtype}: {row.ratio:.2f}x (target <= {c.target:g}).** "
            + c.limit,
            "",
            f"| part | xpnn (ms) | {c.reference} (ms) | ratio |",
            "|---|---:|---:|---:|",
            f"| the whole case | {ms(row.ours)} | {ms(row.reference)} | {row.ratio:.2f} |",
        ]
        for t in row.stages:
            lines.append(f"| {t.name} | {ms(t.ours)} | {ms(t.reference)} | "
                         f"{ratio(t.ours, t.reference)} |")  # fmt: skip
        first, ours_fwd, ref_fwd = (row.stages[0].name, row.stages[0].ours,
                                    row.stages[0].reference)  # fmt: skip
        note = None
        if first.startswith("forward") and ref_fwd is not None:
            ours_bwd, ref_bwd = row.ours - ours_fwd, row.reference - ref_fwd
            if not c.forward_in_whole:
                note = (
                    "Under jax.jit the whole case returns only gradients, which need no "
                    "forward output here, so XLA drops the forward computation on both "
                    "sides: the whole case is the backward pass."
                )
            elif ours_bwd > 0 and ref_bwd > 0:
                lines.append(
                    f"| the rest: backward (and update), whole case minus {first} | "
                    f"{ms(ours_bwd)} | {ms(ref_bwd)} | {ratio(ours_bwd, ref_bwd)} |"
                )
            else:
                side = "xpnn's" if ours_bwd <= 0 else "the reference's"
                note = (
                    f"On {side} side the {first} alone measured no faster than the whole "
                    "case (timing noise), so no backward time is derived."
                )
        if note:
            lines += ["", note]
        for t in row.stages:
            if t.yardstick and t.reference is not None:
                lines += [
                    "",
                    f"In units of {t.name} on its own side: xpnn's whole case costs "
                    f"{row.ours / t.ours:.1f} passes, the reference's "
                    f"{row.reference / t.reference:.1f}.",
                ]
    return lines


def write_section(path: str | Path, results: Results) -> Path:
    """Put the report of ``results`` into ``path``, replacing that backend's section (a
    GPU run has a section of its own, beside the CPU one).

    Sections of other backends already in the file are kept; the file is written
    atomically.
    """
    path = Path(path)
    key = f"{results.backend}-gpu" if results.gpu else results.backend
    begin, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    section = "\n".join([begin, *report(results), end])
    text = (
        path.read_text()
        if path.is_file()
        else (
            "# Benchmark results\n\nWritten by `xpnn bench --out benchmarks/RESULTS.md`; "
            "each backend's section is replaced by its own run. GPU sections come from "
            "`xpnn bench --backend cupy` (or jax, torch) on a machine with an NVIDIA GPU; "
            "there is none until such a run.\n"
        )
    )
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    return write_atomically(path, lambda file: file.write(text), binary=False)


def plot_scaling(results: Results, path: str | Path) -> Path:
    """Save the batch-size scaling as a PNG (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, ours, ref = zip(*results.scaling, strict=True)
    figure, axes = plt.subplots(figsize=(5, 3.5))
    axes.plot(n, ours, "o-", label="xpnn (NumPy)")
    axes.plot(n, ref, "s-", label="PyTorch CPU")
    axes.set(
        xscale="log",
        xlabel="batch size N",
        ylabel="ms per image",
        title="conv fwd+bwd, 3->32 channels, 7x7, 32x32, float32",
    )
    axes.set_xticks(n, [str(v) for v in n])
    axes.legend()
    figure.tight_layout()
    written = write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=100))
    plt.close(figure)
    return written
