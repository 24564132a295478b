"""Every registered gradient-check case, on the selected backend.

(a) analytic vs numerical gradients in float64 (and float32 against a float64 reference),
(b) forward values against the NumPy result, (c) namespace/device/dtype preserved,
(d) on JAX, jitted forward and backward equal to eager.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpnn
from xpnn._backend import array_namespace
from xpnn.layer_checks import run_case
from xpnn.registry import registered_cases

CASES = registered_cases()
IDS = [f"{c.name}[{c.describe()}]" for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradients_match_numerical(bk, case, dtype):
    result = run_case(case, bk.xp, device=bk.device, dtype=dtype, compile=bk.compile)
    assert result.passed, f"{case.name} {case.describe()} {dtype}: {result.summary}"


def _inputs(bk, case, dtype):
    host = case.draw_inputs(seed=7)
    specs = case.specs
    arrays = tuple(
        bk.asarray(v, dtype if specs[k].differentiable else None) for k, v in host.items()
    )
    return host, arrays


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_and_backward_match_numpy(bk, case):
    if bk.name == "numpy":
        pytest.skip("NumPy is the reference backend of this comparison")
    if case.random:
        pytest.skip("each backend draws its own random numbers (see test_dropout.py)")
    host, arrays = _inputs(bk, case, "float64")
    ref_out, ref_cache = case.run(*host.values())
    out, cache = case.run(*arrays)
    np.testing.assert_allclose(xpnn.to_numpy(out), ref_out, rtol=1e-10, atol=1e-12)
    if case.is_loss:
        np.testing.assert_allclose(xpnn.to_numpy(cache), ref_cache, rtol=1e-10, atol=1e-12)
        return
    dout = np.random.default_rng(3).standard_normal(ref_out.shape)
    ref_grads = _as_tuple(case.backward(dout, ref_cache))
    grads = _as_tuple(case.backward(bk.asarray(dout), cache))
    for g, r in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(xpnn.to_numpy(g), r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_outputs_stay_in_namespace_device_and_dtype(bk, case, dtype):
    _, arrays = _inputs(bk, case, dtype)
    out, cache = case.run(*arrays)
    results = [out]
    if case.is_loss:
        assert out.ndim == 0, "a loss is a 0-d array of the backend"
        results.append(cache)
    else:
        dout = bk.asarray(np.ones(tuple(out.shape)), dtype)
        results.extend(_as_tuple(case.backward(dout, cache)))
    expected_dtype = getattr(bk.xp, dtype)
    for r in results:
        assert array_namespace(r) is bk.xp
        assert r.dtype == expected_dtype
        if bk.device is not None:
            assert r.device == bk.device
    grads = results[1:]
    diff = [a for k, a in zip(case.specs, arrays, strict=True) if case.specs[k].differentiable]
    for g, a in zip(grads, diff, strict=True):
        assert g.shape == a.shape


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_inputs_are_not_mutated(bk, case):
    host, arrays = _inputs(bk, case, "float64")
    out, cache = case.run(*arrays)
    if not case.is_loss:
        case.backward(bk.asarray(np.ones(tuple(out.shape))), cache)
    for a, h in zip(arrays, host.values(), strict=True):
        np.testing.assert_array_equal(xpnn.to_numpy(a), h)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_jit_equals_eager(bk, case):
    if bk.name != "jax":
        pytest.skip("jax.jit applies to the JAX backend only")
    import jax

    _, arrays = _inputs(bk, case, "float64")
    eager_out, _ = case.run(*arrays)
    jit_out = jax.jit(lambda *a: case.run(*a)[0])(*arrays)
    np.testing.assert_allclose(np.asarray(jit_out), np.asarray(eager_out), rtol=1e-12)
    dout = bk.asarray(np.random.default_rng(5).standard_normal(tuple(eager_out.shape)))
    eager = case.gradients(arrays, dout)
    jitted = jax.jit(case.gradients)(arrays, dout)
    for e, j in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(np.asarray(j), np.asarray(e), rtol=1e-12, atol=1e-14)


ARRAY_CACHES = [
    c
    for c in CASES
    if c.name in {"affine_forward", "relu_forward", "layernorm_forward", "affine_relu_forward"}
]


@pytest.mark.parametrize(
    "case", ARRAY_CACHES, ids=[f"{c.name}[{c.describe()}]" for c in ARRAY_CACHES]
)
def test_caches_cross_jit_and_move_between_backends(bk, case):
    """A cache of arrays is a pytree jax.jit takes and returns, and to_backend moves it."""
    host, arrays = _inputs(bk, case, "float64")
    out, cache = case.run(*host.values())  # a NumPy cache
    dout = np.random.default_rng(8).standard_normal(tuple(out.shape))
    expected = _as_tuple(case.backward(dout, cache))
    moved = xpnn.to_backend(cache, bk.name, device=bk.device)
    grads = _as_tuple(case.backward(bk.asarray(dout), moved))
    for g, e in zip(grads, expected, strict=True):
        np.testing.assert_allclose(xpnn.to_numpy(g), e, rtol=1e-12)
    if bk.name == "jax":
        import jax

        _, jit_cache = jax.jit(lambda *a: case.run(*a))(*arrays)
        jit_grads = _as_tuple(jax.jit(case.backward)(bk.asarray(dout), jit_cache))
        for g, e in zip(jit_grads, expected, strict=True):
            np.testing.assert_allclose(np.asarray(g), e, rtol=1e-12)
