"""Batch-norm backward: the staged graph derivation vs the simplified closed form.

Usage::

    python benchmarks/bench_batchnorm.py            # print the table
    python benchmarks/bench_batchnorm.py --write    # also write results/batchnorm_cpu.md

Both backward passes run on the same forward cache, in the same process: with NumPy, and
with JAX arrays inside ``jax.jit`` (one compiled function per backward, timed after
compilation with ``block_until_ready``). The ratio staged / simplified says how much
faster the closed form is (above 1: faster).
"""

from __future__ import annotations

import argparse
import datetime
import platform

import numpy as np
from _common import best_of, machine, write_result

import xpnn
from xpnn import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward

SHAPES = [(4096, 1024), (100, 500)]


def numpy_case(shape, dtype, repeat):
    rng = np.random.default_rng(0)
    x, dout = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    gamma, beta = (rng.standard_normal(shape[1]).astype(dtype) for _ in range(2))
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    staged = best_of(lambda: batchnorm_backward(dout, cache), repeat)
    simple = best_of(lambda: batchnorm_backward_alt(dout, cache), repeat)
    return staged, simple


def jax_case(shape, dtype, repeat):
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    x, dout = (jnp.asarray(rng.standard_normal(shape).astype(dtype)) for _ in range(2))
    gamma, beta = (jnp.asarray(rng.standard_normal(shape[1]).astype(dtype)) for _ in range(2))

    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    fields = ("x", "xhat", "mu", "inv_std", "gamma")
    arrays = tuple(getattr(cache, name) for name in fields)

    def make(backward):
        # The cache also holds the mode string and the dtypes, which jit cannot take as
        # arguments: pass the arrays, close over the rest.
        run = jax.jit(
            lambda dout, arrays: backward(
                dout, cache._replace(**dict(zip(fields, arrays, strict=True)))
            )
        )
        return lambda: jax.block_until_ready(run(dout, arrays))

    staged = best_of(make(batchnorm_backward), repeat)
    simple = best_of(make(batchnorm_backward_alt), repeat)
    return staged, simple


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    import jax

    jax.config.update("jax_enable_x64", True)
    lines = [
        "| backend | x shape | dtype | staged (ms) | simplified (ms) | staged / simplified |",
        "|---|---|---|---:|---:|---:|",
    ]
    for name, runner in (("NumPy", numpy_case), ("JAX, jax.jit", jax_case)):
        for shape in SHAPES:
            for dtype in ("float64", "float32"):
                staged, simple = runner(shape, dtype, args.repeat)
                lines.append(
                    f"| {name} | {shape} | {dtype} | {staged * 1e3:.2f} | {simple * 1e3:.2f} "
                    f"| {staged / simple:.2f} |"
                )
                print(lines[-1], flush=True)
    if args.write:
        report = [
            "# Batch-norm backward: staged vs simplified",
            "",
            f"Measured {datetime.date.today()} by `python benchmarks/bench_batchnorm.py --write`.",
            f"Machine: {machine()}. Python {platform.python_version()}, NumPy "
            f"{np.__version__}, JAX {jax.__version__} (CPU), xpnn {xpnn.__version__}.",
            "",
            f"Backward pass only (dx, dgamma, dbeta from the same forward cache), best of "
            f"{args.repeat} runs; JAX timed after compilation, with `block_until_ready`.",
            "",
            *lines,
        ]
        write_result("batchnorm_cpu.md", report)


if __name__ == "__main__":
    main()
