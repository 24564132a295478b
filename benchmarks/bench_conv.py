"""Convolution timings: xpnn fast vs the naive loops, and vs PyTorch CPU, in one process.

Usage::

    python benchmarks/bench_conv.py                # print the table
    python benchmarks/bench_conv.py --write        # also write benchmarks/results/conv_cpu.md

Every number is the best of several runs of forward + backward; ratios are taken against a
reference measured in the same run (PyTorch's ``conv2d`` forward + autograd backward on the
same CPU tensors, or the naive implementation), so they compare like with like on
whatever machine runs this.
"""

from __future__ import annotations

import argparse
import datetime
import platform

import numpy as np
from _common import best_of, machine, write_result

import xpnn
from xpnn import conv_backward_fast, conv_backward_naive, conv_forward_fast, conv_forward_naive

SHAPES = [
    # (label, x shape, w shape, stride, pad)
    ("CIFAR-like, 3->25 ch, s2", (100, 3, 31, 31), (25, 3, 3, 3), 2, 1),
    ("64->64 ch, 32x32, s1", (64, 64, 32, 32), (64, 64, 3, 3), 1, 1),
    ("3->32 ch, 7x7 filter (ThreeLayerConvNet)", (50, 3, 32, 32), (32, 3, 7, 7), 1, 3),
]
NAIVE_SHAPE = SHAPES[0]


def xpnn_step(forward, backward, x, w, b, param, dout):
    def step():
        _, cache = forward(x, w, b, param)
        return backward(dout, cache)

    return step


def torch_step(torch, x, w, b, stride, pad, dout):
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    tdout = torch.from_numpy(dout)

    def step():
        tx.grad = tw.grad = tb.grad = None
        out = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=pad)
        out.backward(tdout)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write results/conv_cpu.md")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-naive", action="store_true", help="skip the slow naive run")
    args = parser.parse_args()
    import torch

    rng = np.random.default_rng(0)
    lines = [
        "| shape | dtype | xpnn fast fwd+bwd (ms) | PyTorch CPU fwd+bwd (ms) | xpnn / PyTorch |",
        "|---|---|---:|---:|---:|",
    ]
    for label, xs, ws, stride, pad in SHAPES:
        for dtype in ("float64", "float32"):
            x = rng.standard_normal(xs).astype(dtype)
            w = rng.standard_normal(ws).astype(dtype)
            b = rng.standard_normal(ws[0]).astype(dtype)
            param = {"stride": stride, "pad": pad}
            out, _ = conv_forward_fast(x, w, b, param)
            dout = rng.standard_normal(out.shape).astype(dtype)
            ours = best_of(
                xpnn_step(conv_forward_fast, conv_backward_fast, x, w, b, param, dout),
                args.repeat,
            )
            ref = best_of(torch_step(torch, x, w, b, stride, pad, dout), args.repeat)
            shape = f"x{xs} w{ws} s{stride} p{pad}".replace(" ", "")
            lines.append(
                f"| {label}: {shape} | {dtype} | {ours * 1e3:.1f} | {ref * 1e3:.1f} "
                f"| {ours / ref:.2f} |"
            )
            print(lines[-1], flush=True)

    naive_lines = []
    if not args.skip_naive:
        label, xs, ws, stride, pad = NAIVE_SHAPE
        x = rng.standard_normal(xs)
        w = rng.standard_normal(ws)
        b = rng.standard_normal(ws[0])
        param = {"stride": stride, "pad": pad}
        dout = rng.standard_normal(conv_forward_fast(x, w, b, param)[0].shape)
        fast_f = best_of(lambda: conv_forward_fast(x, w, b, param), args.repeat)
        naive_f = best_of(lambda: conv_forward_naive(x, w, b, param), 1, warmup=0)
        _, fast_cache = conv_forward_fast(x, w, b, param)
        _, naive_cache = conv_forward_naive(x, w, b, param)
        fast_b = best_of(lambda: conv_backward_fast(dout, fast_cache), args.repeat)
        naive_b = best_of(lambda: conv_backward_naive(dout, naive_cache), 1, warmup=0)
        shape = f"x{xs} w{ws} s{stride} p{pad}".replace(" ", "")
        naive_lines = [
            "| pass | naive (s) | fast (ms) | naive / fast |",
            "|---|---:|---:|---:|",
            f"| forward | {naive_f:.2f} | {fast_f * 1e3:.2f} | {naive_f / fast_f:.0f} |",
            f"| backward | {naive_b:.2f} | {fast_b * 1e3:.2f} | {naive_b / fast_b:.0f} |",
        ]
        print(f"\nnaive vs fast, float64, {shape}")
        print("\n".join(naive_lines))

    if args.write:
        threads = torch.get_num_threads()
        report = [
            "# Convolution on the CPU",
            "",
            f"Measured {datetime.date.today()} by `python benchmarks/bench_conv.py --write`.",
            f"Machine: {machine()}. Python {platform.python_version()}, NumPy "
            f"{np.__version__}, PyTorch {torch.__version__} ({threads} threads), "
            f"xpnn {xpnn.__version__}.",
            "",
            "Forward + backward (dx, dw, db), best of "
            f"{args.repeat} runs. A ratio below 1 means xpnn is faster.",
            "",
            *lines,
        ]
        if naive_lines:
            report += ["", f"Naive loops vs fast, float64, {shape}:", "", *naive_lines]
        write_result("conv_cpu.md", report)


if __name__ == "__main__":
    main()
