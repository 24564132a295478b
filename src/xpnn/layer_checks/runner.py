"""Run a gradient-check case on one backend and judge it entry by entry.

The analytic gradient (in float64 or float32) is compared with a central-difference
numerical gradient taken in float64 on the same backend and device. Every entry must
satisfy ``|a - n| <= atol + rtol * |n|``; the page ``docs/gradient_checking.md`` explains
the tolerances. Briefly, ``atol`` has two parts:

* the finite-difference noise of the numerical gradient, estimated from the numerical
  gradients at steps ``h`` and ``2h`` (their difference is about three times the
  truncation error at ``h``, plus the rounding noise of both);
* the rounding of the analytic computation: a few units of the dtype's machine epsilon
  times the largest gradient entry of the case. (The case's, not the input's: a gradient
  that is exactly zero in exact arithmetic, such as the bias before a batch norm, comes
  out as the rounding noise of the other gradients.)

A case whose numerical gradient is itself unreliable (the two steps disagree by more than
``NOISE_LIMIT`` of the gradient scale: a kink within ``2h`` of the input, or a function
that is not smooth) fails with that reason instead of passing on a loose tolerance.

On JAX the check runs under ``jax.default_matmul_precision("highest")``: on an NVIDIA GPU
JAX's default computes float32 matrix products and convolutions in TF32 (about three
significant digits), which would fail a float32 check of any correct derivation. The
check is of the derivation; the precision of the products stays JAX's setting elsewhere.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import to_numpy
from ..gradient_check import (
    PerturbationIgnoredWarning,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    rel_error,
)
from ..registry.spec import GradCase

__all__ = ["STEP", "TOLERANCES", "CaseResult", "Tolerance", "WorstEntry", "run_case"]

#: Step of the numerical gradient (the assignment's); the noise estimate also uses 2 * STEP.
STEP = 1e-5


@dataclass(frozen=True)
class Tolerance:
    """Pass criterion for one dtype of the analytic gradient (see the module notes)."""

    rtol: float
    """Relative part: ``|a - n| <= atol + rtol * |n|``."""
    rounding: float
    """Rounding part of ``atol``, in units of the case's largest gradient entry."""
    noise_factor: float = 4.0
    """Finite-difference part of ``atol``, in units of ``max|n(h) - n(2h)|``."""
    noise_limit: float = 1e-6
    """Largest ``max|n(h) - n(2h)|``, relative to the case's gradient scale, that still
    counts as a reliable numerical gradient."""


TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-7, rounding=64 * float(np.finfo(np.float64).eps)),
    "float32": Tolerance(rtol=1e-5, rounding=8 * float(np.finfo(np.float32).eps)),
}


@dataclass(frozen=True)
class WorstEntry:
    """The entry of a case's gradients that is closest to failing (or fails worst)."""

    input: str
    index: tuple[int, ...]
    analytic: float
    numeric: float
    allowed: float
    """``atol + rtol * |numeric|`` for this entry."""

    def __str__(self) -> str:
        where = f"{self.input}[{','.join(map(str, self.index))}]"
        return (
            f"{where}: analytic {self.analytic:.6e}, numeric {self.numeric:.6e}, "
            f"|difference| {abs(self.analytic - self.numeric):.2e} > allowed {self.allowed:.2e}"
            if abs(self.analytic - self.numeric) > self.allowed
            else f"{where}: analytic {self.analytic:.6e}, numeric {self.numeric:.6e}"
        )


@dataclass(frozen=True)
class CaseResult:
    """Outcome of :func:`run_case` for one case."""

    case: GradCase
    dtype: str
    ratio: float
    """Worst ``|a - n| / (atol + rtol * |n|)`` over every entry; the case passes at <= 1."""
    worst: WorstEntry | None
    """The entry where ``ratio`` is reached (``None`` for a case without inputs)."""
    rel_error: float
    """CS231n ``rel_error`` between analytic and numerical gradient, worst input."""
    noise: float
    """Finite-difference noise estimate ``max|n(h) - n(2h)|``, worst input."""
    reliable: bool
    """False when the numerical gradient is too noisy to judge the case."""

    @property
    def passed(self) -> bool:
        return self.reliable and self.ratio <= 1.0

    @property
    def summary(self) -> str:
        """One line: why the case failed, or its worst entry."""
        if not self.reliable:
            return (
                f"numerical gradient unreliable: steps h and 2h disagree by {self.noise:.2e} "
                "(a kink within 2h of an input value, or a function that is not smooth)"
            )
        return "" if self.worst is None else str(self.worst)


def run_case(
    case: GradCase,
    xp: Any,
    device: Any = None,
    dtype: str = "float64",
    seed: int = 0,
    compile: Callable[[Callable], Callable] | None = None,
) -> CaseResult:
    """Compare a case's analytic gradients with numerical ones on one backend.

    The inputs are drawn in float64 and rounded to ``dtype``, so that the analytic pass
    (in ``dtype``) and the numerical reference (always float64, on the same backend and
    device) are taken at the same point. The backend must have float64 (enable x64 on
    JAX).

    Parameters
    ----------
    case : GradCase
    xp : namespace
        Array-API namespace of the backend (``xpnn.get_namespace('jax')``).
    device : optional
        Device to put the inputs on.
    dtype : {'float64', 'float32'}
    seed : int
    compile : callable, optional
        Applied to the functions that are evaluated (``jax.jit`` on JAX, where it makes
        the many forward calls of the numerical gradient fast and checks that the layer
        traces).

    Returns
    -------
    CaseResult
    """
    if dtype not in TOLERANCES:
        raise ValueError(f"dtype must be one of {sorted(TOLERANCES)}; got {dtype!r}")
    with _full_precision(xp):
        return _run_case(case, xp, device, dtype, seed, compile)


def _full_precision(xp: Any) -> contextlib.AbstractContextManager:
    """JAX's highest matrix-product precision within the context (no TF32 on a GPU) when
    ``xp`` is JAX's namespace; else nothing."""
    if "jax" not in getattr(xp, "__name__", ""):
        return contextlib.nullcontext()
    import jax

    return jax.default_matmul_precision("highest")


def _run_case(
    case: GradCase,
    xp: Any,
    device: Any,
    dtype: str,
    seed: int,
    compile: Callable[[Callable], Callable] | None,
) -> CaseResult:
    specs = case.specs

    def forward(*arrays: Any) -> Any:
        return case.run(*arrays)[0]

    gradients = case.gradients
    if compile is not None:
        forward, gradients = compile(forward), compile(gradients)

    def at_precision(values: np.ndarray) -> np.ndarray:
        return values.astype(dtype).astype(np.float64)

    host = {
        k: at_precision(v) if specs[k].differentiable else v
        for k, v in case.draw_inputs(seed).items()
    }

    def put(values: Mapping[str, np.ndarray], float_dtype: Any) -> list[Any]:
        return [
            xp.asarray(v, dtype=float_dtype if specs[k].differentiable else None, device=device)
            for k, v in values.items()
        ]

    numeric_args = put(host, xp.float64)
    if any(
        specs[k].differentiable and a.dtype != xp.float64
        for k, a in zip(specs, numeric_args, strict=True)
    ):
        raise RuntimeError(
            "the numerical reference needs float64 arrays, and this backend made "
            f"{numeric_args[0].dtype} ones; on JAX enable 64-bit mode first: "
            'jax.config.update("jax_enable_x64", True)'
        )
    dout = numeric_dout = None
    if not case.is_loss:
        out_shape = tuple(forward(*numeric_args).shape)
        host_dout = at_precision(np.random.default_rng(seed + 1).standard_normal(out_shape))
        dout = xp.asarray(host_dout, dtype=getattr(xp, dtype), device=device)
        numeric_dout = xp.asarray(host_dout, dtype=xp.float64, device=device)
    analytic = gradients(tuple(put(host, getattr(xp, dtype))), dout)

    names = [k for k, spec in specs.items() if spec.differentiable]
    positions = [i for i, spec in enumerate(specs.values()) if spec.differentiable]
    triples = []
    for name, position, grad in zip(names, positions, analytic, strict=True):

        def f(value: Any, position: int = position) -> Any:
            args = list(numeric_args)
            args[position] = value
            return forward(*args)

        target = numeric_args[position]
        with warnings.catch_warnings():  # f uses its argument: a constant f is constant
            warnings.simplefilter("ignore", PerturbationIgnoredWarning)
            if case.is_loss:
                steps = [
                    eval_numerical_gradient(f, target, verbose=False, h=h)
                    for h in (STEP, 2 * STEP)
                ]
            else:
                steps = [
                    eval_numerical_gradient_array(f, target, numeric_dout, h=h)
                    for h in (STEP, 2 * STEP)
                ]
        a = to_numpy(grad).astype(np.float64)
        n, n2 = (to_numpy(s) for s in steps)
        if a.shape != n.shape:
            raise ValueError(
                f"{case.name}: gradient of {name} has shape {a.shape}, expected {n.shape}"
            )
        triples.append((name, a, n, n2))
    return judge(case, dtype, triples)


def judge(
    case: GradCase, dtype: str, triples: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]
) -> CaseResult:
    """Judge analytic gradients entry by entry.

    Parameters
    ----------
    case : GradCase
    dtype : str
        The dtype the analytic gradients were computed in (selects the tolerance).
    triples : list of (name, analytic, numeric at step h, numeric at step 2h)
        Float64 NumPy arrays, one triple per differentiable input.
    """
    tol = TOLERANCES[dtype]
    scales = [float(np.max(np.abs(n), initial=0.0)) for _, _, n, _ in triples]
    case_scale = max(scales, default=0.0)
    noises = [float(np.max(np.abs(n - n2), initial=0.0)) for _, _, n, n2 in triples]
    noise = max(noises, default=0.0)
    ratio, worst = 0.0, None
    atol = tol.noise_factor * noise + tol.rounding * case_scale
    for name, a, n, _ in triples:
        allowed = np.maximum(atol + tol.rtol * np.abs(n), np.finfo(np.float64).tiny)
        ratios = np.abs(a - n) / allowed
        if ratios.size and float(np.max(ratios)) >= ratio:
            index = np.unravel_index(int(np.argmax(ratios)), ratios.shape)
            ratio = float(ratios[index])
            worst = WorstEntry(
                name,
                tuple(int(i) for i in index),
                float(a[index]),
                float(n[index]),
                float(allowed[index]),
            )
    return CaseResult(
        case=case,
        dtype=dtype,
        ratio=ratio,
        worst=worst,
        rel_error=max((rel_error(a, n) for _, a, n, _ in triples), default=0.0),
        noise=noise,
        reliable=noise <= tol.noise_limit * case_scale or noise == 0.0,
    )
