"""Dtypes as NumPy users expect (docs/layers.md, "Dtypes").

Floating arguments of mixed precision compute in the promoted dtype, integer and boolean
arguments are cast to the floating dtype of the data, and each gradient comes back in the
dtype of its argument. The oracle is the same call with every argument cast to float64
first: float32 -> float64 and small integers -> float64 are exact, so the mixed call must
give the float64 results (gradients rounded to their argument's dtype).
"""

from __future__ import annotations

import numpy as np
import pytest

import xpnn
from xpnn import (
    affine_backward,
    affine_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
    relu_forward,
    softmax_loss,
    spatial_batchnorm_forward,
)
from xpnn.registry import registered_cases

# Cases with a parameter besides the data (single-input layers are checked in float32
# and float64 alone by test_gradcheck_matrix.py, and with integer data below).
CASES = [
    c
    for c in registered_cases()
    if not c.random and sum(s.differentiable for s in c.specs.values()) >= 2
]
IDS = [f"{c.name}[{c.describe()}]" for c in CASES]


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _run(bk, case, host, dtypes, dout_host):
    """Forward (and backward) with each differentiable input in its given dtype."""
    arrays = [
        bk.asarray(v, dtypes.get(k)) if case.specs[k].differentiable else bk.asarray(v)
        for k, v in host.items()
    ]
    out, cache = case.run(*arrays)
    grads = (
        _as_tuple(cache)
        if case.is_loss
        else _as_tuple(case.backward(bk.asarray(dout_host), cache))
    )
    return out, grads


def _check_against_float64(bk, case, host, dtypes):
    names = [k for k, s in case.specs.items() if s.differentiable]
    ref_out, _ = case.run(*(bk.asarray(v) for v in host.values()))
    dout = np.random.default_rng(2).standard_normal(tuple(ref_out.shape))
    ref_out, ref_grads = _run(bk, case, host, dict.fromkeys(names, "float64"), dout)
    out, grads = _run(bk, case, host, dtypes, dout)
    assert out.dtype == bk.xp.float64
    np.testing.assert_allclose(xpnn.to_numpy(out), xpnn.to_numpy(ref_out), rtol=1e-12, atol=1e-14)
    for name, g, r in zip(names, grads, ref_grads, strict=True):
        expected = dtypes[name] if dtypes[name].startswith("float") else "float64"
        assert g.dtype == getattr(bk.xp, expected), f"d{name} has dtype {g.dtype}"
        np.testing.assert_allclose(
            xpnn.to_numpy(g),
            xpnn.to_numpy(r).astype(expected),
            rtol=1e-12 if expected == "float64" else 1e-6,
            atol=1e-14 if expected == "float64" else 1e-7,
            err_msg=f"d{name}",
        )


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("first", ["float64", "float32"])
def test_float32_with_float64_computes_in_float64(bk, case, first):
    names = [k for k, s in case.specs.items() if s.differentiable]
    other = "float32" if first == "float64" else "float64"
    dtypes = {k: first if i == 0 else other for i, k in enumerate(names)}
    host = case.draw_inputs(seed=3)
    host = {
        k: v.astype("float32").astype(np.float64) if k in names else v for k, v in host.items()
    }
    _check_against_float64(bk, case, host, dtypes)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_integer_parameters_are_cast_to_the_data_dtype(bk, case):
    """Every differentiable input but the first (the data) as an int64 array."""
    names = [k for k, s in case.specs.items() if s.differentiable]
    host = case.draw_inputs(seed=4)
    for k in names[1:]:
        host[k] = np.round(host[k] * 3)  # small integers, exactly representable
    dtypes = {k: "float64" if i == 0 else "int64" for i, k in enumerate(names)}
    _check_against_float64(bk, case, host, dtypes)


def test_integer_data_alone_uses_the_default_floating_dtype(bk):
    out, _ = relu_forward(bk.asarray(np.array([-2, 0, 3])))
    default = bk.xp.__array_namespace_info__().default_dtypes(device=bk.device)["real floating"]
    assert out.dtype == default
    np.testing.assert_array_equal(xpnn.to_numpy(out), [0, 0, 3])
    out, _ = relu_forward(bk.asarray(np.array([True, False])))
    assert out.dtype == default


def test_notebook_spatial_batchnorm_cell_with_integer_gamma(bk):
    """BatchNormalization notebook: integer ``gamma = np.asarray([3, 4, 5])`` and beta."""
    np.random.seed(231)  # noqa: NPY002
    x = 4 * np.random.randn(2, 3, 4, 5) + 10  # noqa: NPY002
    gamma, beta = np.asarray([3, 4, 5]), np.asarray([6, 7, 8])
    out, _ = spatial_batchnorm_forward(
        bk.asarray(x), bk.asarray(gamma), bk.asarray(beta), {"mode": "train"}
    )
    out = xpnn.to_numpy(out)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, rtol=1e-12)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), gamma, rtol=1e-5)


def test_three_layer_convnet_cell_float32_weights_float64_data(bk):
    """ConvolutionalNetworks notebook: a float32 ThreeLayerConvNet on float64 ``X``."""
    rng = np.random.default_rng(0)
    X = bk.asarray(rng.standard_normal((5, 3, 8, 8)))
    y = bk.asarray(rng.integers(0, 10, 5))
    W1 = bk.asarray(1e-3 * rng.standard_normal((4, 3, 3, 3)), "float32")
    b1 = bk.asarray(np.zeros(4), "float32")
    W2 = bk.asarray(1e-3 * rng.standard_normal((4 * 4 * 4, 10)), "float32")
    b2 = bk.asarray(np.zeros(10), "float32")
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    h, cache1 = conv_relu_pool_forward(X, W1, b1, conv_param, pool_param)
    scores, cache2 = affine_forward(h, W2, b2)
    loss, dscores = softmax_loss(scores, y)
    assert scores.dtype == bk.xp.float64 and loss.dtype == bk.xp.float64
    assert abs(float(xpnn.to_numpy(loss)) - np.log(10)) < 1e-3
    dh, dW2, db2 = affine_backward(dscores, cache2)
    dX, dW1, db1 = conv_relu_pool_backward(dh, cache1)
    assert dX.dtype == bk.xp.float64
    for param, grad in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)):
        assert grad.dtype == bk.xp.float32 and grad.shape == param.shape
        assert (param - 1e-3 * grad).dtype == bk.xp.float32  # an SGD step keeps the dtype
