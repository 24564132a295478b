"""Oracle tests: affine, ReLU, the sandwiches and max pooling against PyTorch autograd; two
identities of the batch-norm gradient; and every gradient-check case on non-contiguous inputs.

Each test says in its docstring which wrong implementation it catches. The PyTorch tests skip
where torch is not installed (the JAX session); the pooling tie rule and the ReLU subgradient
at zero are also checked there, without torch.
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import conv_geometries, pool_geometries

import xpnn
from xpnn import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    max_pool_backward_fast,
    max_pool_backward_naive,
    max_pool_forward_fast,
    max_pool_forward_naive,
    relu_backward,
    relu_forward,
)
from xpnn import layer_utils as lu
from xpnn._backend import array_namespace
from xpnn.registry import registered_cases

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
FEW = settings(max_examples=10, deadline=None, derandomize=True)
EPS = 1e-5
# Sandwiches: a conv or a normalization sums in a different order than PyTorch does.
RTOL, ATOL = 1e-8, 1e-10
POOL_2X2 = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _np(a):
    return xpnn.to_numpy(a)


def _ours(bk, forward, backward, arrays, dout, params=()):
    """``forward(*arrays, *params)`` then ``backward(dout, cache)``, jitted on JAX.

    Returns ``(out, [grads])`` as NumPy. The parameter dicts are copied inside the traced
    function, so batch norm's write-back of running averages never leaks out of it.
    """

    def forward_backward(dout, *arrays):
        out, cache = forward(*arrays, *copy.deepcopy(params))
        grads = backward(dout, cache)
        return out, grads if isinstance(grads, tuple) else (grads,)

    out, grads = bk.maybe_jit(forward_backward)(*(bk.asarray(a) for a in (dout, *arrays)))
    return _np(out), [_np(g) for g in grads]


def _autograd(torch, fn, arrays, seed):
    """PyTorch's output and gradients of ``fn`` at ``arrays``, and the random ``dout`` used."""
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    dout = np.random.default_rng(seed).standard_normal(tuple(out.shape))
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [t.grad.numpy() for t in ts], dout


def _assert_all_close(got, want, names, rtol, atol):
    for g, w, name in zip(got, want, names, strict=True):
        assert g.shape == w.shape, f"{name}: shape {g.shape}, expected {w.shape}"
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=name)


# --------------------------------------------------------------------------- 1. affine


@SETTINGS
@given(
    shape=st.tuples(st.integers(1, 5)).flatmap(
        lambda n: st.lists(st.integers(1, 3), max_size=3).map(lambda extra: (*n, *extra))
    ),
    m=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_affine_against_torch_linear(bk, shape, m, seed):
    """Catches a forward/backward that flattens x in the wrong order (x.T-style reshapes of
    (N, d1, d2)), a dw missing its transpose, dx not reshaped back, or db summed over the wrong
    axis."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(seed)
    n, d = shape[0], math.prod(shape[1:])
    x, w, b = rng.standard_normal(shape), rng.standard_normal((d, m)), rng.standard_normal(m)
    tout, tgrads, dout = _autograd(
        torch, lambda x, w, b: F.linear(x.reshape(n, d), w.T, b), (x, w, b), seed + 1
    )
    out, grads = _ours(bk, affine_forward, affine_backward, (x, w, b), dout)
    _assert_all_close(
        [out, *grads], [tout, *tgrads], ("out", "dx", "dw", "db"), rtol=1e-10, atol=1e-12
    )


# --------------------------------------------------------------------------- 2. ReLU


@st.composite
def relu_inputs(draw):
    """``(x, dout)``: x with exact zeros (signed), or integer-valued (many zeros)."""
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    kind = draw(st.sampled_from(["normal_with_zeros", "integer_valued"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "normal_with_zeros":
        x = rng.standard_normal(shape)
        x[rng.random(shape) < 0.3] = 0.0
        x[rng.random(shape) < 0.1] = -0.0
    else:
        x = rng.integers(-2, 3, size=shape).astype(np.float64)
    return x, rng.standard_normal(shape)


def _relu_backward_ge(dout, cache):
    """A planted bug: the gradient also flows at x == 0 (``x >= 0`` instead of ``x > 0``)."""
    xp = array_namespace(dout)
    return xp.where(cache.x >= 0, dout, xp.zeros_like(dout))


def _check_relu_against_torch(bk, torch, x, dout, backward):
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.relu(tx)
    tout.backward(torch.tensor(dout))
    out, (dx,) = _ours(bk, relu_forward, backward, (x,), dout)
    np.testing.assert_array_equal(out, tout.detach().numpy(), err_msg="out")
    np.testing.assert_array_equal(dx, tx.grad.numpy(), err_msg="dx")


@SETTINGS
@given(relu_inputs())
def test_relu_against_torch_with_exact_zeros(bk, inputs):
    """Catches a ReLU whose gradient at x == 0 (or -0.0) differs from PyTorch's 0, or whose
    forward keeps negative values."""
    torch = pytest.importorskip("torch")
    x, dout = inputs
    _check_relu_against_torch(bk, torch, x, dout, relu_backward)


def test_relu_of_non_finite_values_against_torch(bk):
    """NaN passes through ReLU and -inf becomes 0, as in PyTorch and JAX. The gradient is
    dout where x > 0, else 0: at x = NaN that is 0, JAX's choice (PyTorch passes dout)."""
    torch = pytest.importorskip("torch")
    x = np.array([-np.inf, np.inf, -1.0, 0.0, 2.0])
    _check_relu_against_torch(bk, torch, x, np.arange(1.0, 6.0), relu_backward)
    out, (dx,) = _ours(bk, relu_forward, relu_backward, (np.array([np.nan, 1.0]),), np.ones(2))
    assert np.isnan(out[0]) and out[1] == 1.0
    np.testing.assert_array_equal(dx, [0.0, 1.0])


def _hand_relu_dx(bk, backward):
    x, dout = np.array([-1.0, 0.0, 2.0]), np.array([5.0, 7.0, 11.0])
    return _ours(bk, relu_forward, backward, (x,), dout)[1][0]


def test_relu_subgradient_at_zero_by_hand(bk):
    """Catches ``x >= 0`` in the backward: at x == 0 the subgradient used is 0."""
    np.testing.assert_array_equal(_hand_relu_dx(bk, relu_backward), [0.0, 0.0, 11.0])


def test_planted_ge_relu_backward_is_caught(bk):
    """The at-zero checks fail for a backward with ``x >= 0`` (so they can catch it), and
    only because of the zeros: without zeros the planted backward agrees with torch."""
    assert not np.array_equal(_hand_relu_dx(bk, _relu_backward_ge), [0.0, 0.0, 11.0])
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = np.array([[-1.0, 0.0, 2.0], [0.0, -0.0, 3.0]])
    dout = rng.standard_normal(x.shape)
    with pytest.raises(AssertionError, match="dx"):
        _check_relu_against_torch(bk, torch, x, dout, _relu_backward_ge)
    no_zeros = np.where(x == 0, 0.5, x)
    _check_relu_against_torch(bk, torch, no_zeros, dout, _relu_backward_ge)


# --------------------------------------------------------------------------- 3. sandwiches


def _affine_arrays(rng, shape, m, with_norm):
    d = math.prod(shape[1:])
    arrays = [rng.standard_normal(shape), rng.standard_normal((d, m)), rng.standard_normal(m)]
    if with_norm:
        arrays += [rng.standard_normal(m), rng.standard_normal(m)]
    return arrays


def _conv_arrays(rng, shape_x, shape_w, with_norm):
    f = shape_w[0]
    arrays = [rng.standard_normal(shape_x), rng.standard_normal(shape_w), rng.standard_normal(f)]
    if with_norm:
        arrays += [rng.standard_normal(f), rng.standard_normal(f)]
    return arrays


def _check_sandwich(bk, torch, torch_fn, forward, backward, arrays, params, seed):
    names = ("out", "dx", "dw", "db", "dgamma", "dbeta")[: len(arrays) + 1]
    tout, tgrads, dout = _autograd(torch, torch_fn, arrays, seed)
    out, grads = _ours(bk, forward, backward, arrays, dout, params)
    _assert_all_close([out, *grads], [tout, *tgrads], names, rtol=RTOL, atol=ATOL)


def _affine_sandwich_shapes(min_n):
    return st.tuples(
        st.integers(min_n, 5), st.lists(st.integers(1, 3), min_size=1, max_size=2)
    ).map(lambda t: (t[0], *t[1]))


@st.composite
def conv_pool_geometries(draw):
    """Conv geometries whose output height and width are even, for a 2x2 stride-2 pool."""
    n, c, f = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    hh, ww = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    h_out, w_out = 2 * draw(st.integers(1, 2)), 2 * draw(st.integers(1, 2))
    h = (h_out - 1) * stride + hh - 2 * pad
    w = (w_out - 1) * stride + ww - 2 * pad
    while h < 1:  # two more output rows keep the output height even
        h += 2 * stride
    while w < 1:
        w += 2 * stride
    return (n, c, h, w), (f, c, hh, ww), stride, pad


def _more_than_one_value_per_channel(geometry):
    (n, _, h, w), (_, _, hh, ww), stride, pad = geometry
    return n * ((h + 2 * pad - hh) // stride + 1) * ((w + 2 * pad - ww) // stride + 1) > 1


@FEW
@given(shape=_affine_sandwich_shapes(1), m=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_affine_relu_against_torch(bk, shape, m, seed):
    """Catches a sandwich that runs ReLU's backward on the wrong cache or skips it."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    arrays = _affine_arrays(np.random.default_rng(seed), shape, m, with_norm=False)
    _check_sandwich(
        bk,
        torch,
        lambda x, w, b: F.relu(F.linear(x.reshape(x.shape[0], -1), w.T, b)),
        lu.affine_relu_forward,
        lu.affine_relu_backward,
        arrays,
        (),
        seed + 1,
    )


@FEW
@given(geometry=conv_geometries(), seed=st.integers(0, 2**16))
def test_conv_relu_against_torch(bk, geometry, seed):
    """Catches a conv_relu whose backward passes dout (not the ReLU-masked gradient) to the
    convolution, or that drops conv_param."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape_x, shape_w, stride, pad = geometry
    arrays = _conv_arrays(np.random.default_rng(seed), shape_x, shape_w, with_norm=False)
    _check_sandwich(
        bk,
        torch,
        lambda x, w, b: F.relu(F.conv2d(x, w, b, stride=stride, padding=pad)),
        lu.conv_relu_forward,
        lu.conv_relu_backward,
        arrays,
        ({"stride": stride, "pad": pad},),
        seed + 1,
    )


@FEW
@given(geometry=conv_pool_geometries(), seed=st.integers(0, 2**16))
def test_conv_relu_pool_against_torch(bk, geometry, seed):
    """Catches the three backward passes run in the wrong order, or the pool's gradient
    routed against the pre-ReLU values."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape_x, shape_w, stride, pad = geometry
    arrays = _conv_arrays(np.random.default_rng(seed), shape_x, shape_w, with_norm=False)
    _check_sandwich(
        bk,
        torch,
        lambda x, w, b: F.max_pool2d(
            F.relu(F.conv2d(x, w, b, stride=stride, padding=pad)), 2, stride=2
        ),
        lu.conv_relu_pool_forward,
        lu.conv_relu_pool_backward,
        arrays,
        ({"stride": stride, "pad": pad}, POOL_2X2),
        seed + 1,
    )


@FEW
@given(shape=_affine_sandwich_shapes(2), m=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_affine_bn_relu_against_torch(bk, shape, m, seed):
    """Catches a batch norm in the sandwich that is not in train mode, uses the unbiased
    variance, or returns dgamma/dbeta swapped or in the wrong position."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    arrays = _affine_arrays(np.random.default_rng(seed), shape, m, with_norm=True)
    _check_sandwich(
        bk,
        torch,
        lambda x, w, b, g, be: F.relu(
            F.batch_norm(
                F.linear(x.reshape(x.shape[0], -1), w.T, b), None, None, g, be, True, eps=EPS
            )
        ),
        lu.affine_bn_relu_forward,
        lu.affine_bn_relu_backward,
        arrays,
        ({"mode": "train"},),
        seed + 1,
    )


@FEW
@given(shape=_affine_sandwich_shapes(1), m=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_affine_ln_relu_against_torch(bk, shape, m, seed):
    """Catches layer norm normalizing over the batch axis instead of the features, or a
    backward that reuses batch norm's axis."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    arrays = _affine_arrays(np.random.default_rng(seed), shape, m, with_norm=True)
    _check_sandwich(
        bk,
        torch,
        lambda x, w, b, g, be: F.relu(
            F.layer_norm(F.linear(x.reshape(x.shape[0], -1), w.T, b), (m,), g, be, eps=EPS)
        ),
        lu.affine_ln_relu_forward,
        lu.affine_ln_relu_backward,
        arrays,
        ({},),
        seed + 1,
    )


@FEW
@given(
    geometry=conv_geometries().filter(_more_than_one_value_per_channel),
    seed=st.integers(0, 2**16),
)
def test_conv_bn_relu_against_torch(bk, geometry, seed):
    """Catches spatial batch norm taking statistics per (channel, position) instead of per
    channel over N, H and W, or a wrong permutation back to NCHW."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape_x, shape_w, stride, pad = geometry
    arrays = _conv_arrays(np.random.default_rng(seed), shape_x, shape_w, with_norm=True)
    _check_sandwich(
        bk,
        torch,
        lambda x, w, b, g, be: F.relu(
            F.batch_norm(
                F.conv2d(x, w, b, stride=stride, padding=pad), None, None, g, be, True, eps=EPS
            )
        ),
        lu.conv_bn_relu_forward,
        lu.conv_bn_relu_backward,
        arrays,
        ({"stride": stride, "pad": pad}, {"mode": "train"}),
        seed + 1,
    )


# --------------------------------------------------------------------------- 4. pooling ties

POOLS = [
    pytest.param(max_pool_forward_fast, max_pool_backward_fast, id="fast"),
    pytest.param(max_pool_forward_naive, max_pool_backward_naive, id="naive"),
]
TIES = settings(max_examples=20, deadline=None, derandomize=True)


def _tied_pool_inputs(geometry, seed):
    """Integer-valued x in {0, 1, 2} (most windows tie) and integer dout in [1, 100)."""
    shape, ph, pw, s = geometry
    param = {"pool_height": ph, "pool_width": pw, "stride": s}
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=shape).astype(np.float64)
    out_shape = (shape[0], shape[1], (shape[2] - ph) // s + 1, (shape[3] - pw) // s + 1)
    return x, param, rng.integers(1, 100, size=out_shape).astype(np.float64)


@TIES
@given(geometry=pool_geometries(), seed=st.integers(0, 2**16))
@pytest.mark.parametrize(("forward", "backward"), POOLS)
def test_max_pool_ties_against_torch(bk, forward, backward, geometry, seed):
    """Catches a tie rule other than torch's first maximum in row-major order (the last
    maximum, a column-major scan, or the gradient split or copied among tied entries)."""
    torch = pytest.importorskip("torch")
    x, param, dout = _tied_pool_inputs(geometry, seed)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(
        tx, (param["pool_height"], param["pool_width"]), stride=param["stride"]
    )
    tout.backward(torch.tensor(dout))
    out, (dx,) = _ours(bk, forward, backward, (x,), dout, (param,))
    np.testing.assert_array_equal(out, tout.detach().numpy())
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=0, atol=1e-12)


@TIES
@given(geometry=pool_geometries(), seed=st.integers(0, 2**16))
def test_max_pool_ties_conserve_gradient_and_fast_matches_naive(bk, geometry, seed):
    """Without torch too (the JAX leg). Catches a backward that sends a tied window's gradient
    to every maximum (the sum grows) or to none (it shrinks): each window passes on exactly its
    dout (sums exact in integers); and the fast backward's ``claimed`` bookkeeping disagreeing
    with the naive argmax on tied windows."""
    x, param, dout = _tied_pool_inputs(geometry, seed)
    results = {
        name: _ours(bk, forward, backward, (x,), dout, (param,))
        for name, forward, backward in (
            ("fast", max_pool_forward_fast, max_pool_backward_fast),
            ("naive", max_pool_forward_naive, max_pool_backward_naive),
        )
    }
    for name, (_, (dx,)) in results.items():
        assert dx.sum() == dout.sum(), f"{name}: dx.sum() {dx.sum()} != dout.sum() {dout.sum()}"
    (fast_out, (fast_dx,)), (naive_out, (naive_dx,)) = results["fast"], results["naive"]
    np.testing.assert_array_equal(fast_out, naive_out)
    np.testing.assert_array_equal(fast_dx, naive_dx)


# --------------------------------------------------------------------------- 5. batch norm


@st.composite
def bn_batches(draw):
    """``(x, gamma, dout)`` with per-feature scales from 1e-3 to 1e2 (var from well below
    eps = 1e-5 to far above it)."""
    n, d = draw(st.integers(2, 16)), draw(st.integers(1, 4))
    log_scales = draw(st.lists(st.floats(-3, 2), min_size=d, max_size=d))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, d)) * 10.0 ** np.array(log_scales) + rng.standard_normal(d)
    return x, rng.standard_normal(d), rng.standard_normal((n, d))


@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt])
@settings(max_examples=15, deadline=None, derandomize=True)
@given(batch=bn_batches())
def test_batchnorm_dx_against_xhat_identity(bk, backward, batch):
    """With dxhat = dout * gamma, inv_std = 1/sqrt(var + eps), xhat = (x - mean) * inv_std
    (biased var) and dx = inv_std/m * (m*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat)), using
    sum(xhat) = 0 and sum(xhat**2) = m*var/(var + eps):

        sum(dx * xhat) = inv_std * (sum(dxhat*xhat) - sum(dxhat*xhat) * var/(var + eps))
                       = inv_std * eps/(var + eps) * sum(dxhat * xhat)

    and sum(dx) = inv_std/m * (m*sum(dxhat) - m*sum(dxhat) - 0) = 0 (sums over the batch).
    Catches a backward that drops eps (it gives sum(dx*xhat) = 0 exactly, off by the right
    side: up to O(1) for the features with var < eps), uses the unbiased variance, or drops
    the mean or variance path; with eps = 1e-12, a dx not orthogonal to xhat (sum(dx*xhat)
    must then be ~0, below 1e-9 of the size of the terms it sums, wherever var > 1e-2).
    """
    x, gamma, dout = batch
    m = x.shape[0]
    for eps in (EPS, 1e-12):
        var = x.var(axis=0)
        inv_std = 1 / np.sqrt(var + eps)
        xhat = (x - x.mean(axis=0)) * inv_std
        dxhat = dout * gamma
        _, (dx, _, _) = _ours(
            bk,
            batchnorm_forward,
            backward,
            (x, gamma, np.zeros_like(gamma)),
            dout,
            ({"mode": "train", "eps": eps},),
        )
        # The size of the terms dx is computed from: rounding errors are a few ulps of it.
        term = inv_std / m * (m * np.abs(dxhat) + np.abs(dxhat.sum(0)))
        term = term + inv_std / m * np.abs(xhat) * np.abs((dxhat * xhat).sum(0))
        lhs = (dx * xhat).sum(axis=0)
        rhs = inv_std * eps / (var + eps) * (dxhat * xhat).sum(axis=0)
        scale = (term * np.abs(xhat)).sum(axis=0)
        np.testing.assert_array_less(np.abs(lhs - rhs), 1e-12 * scale + 1e-300)
        np.testing.assert_array_less(np.abs(dx.sum(axis=0)), 1e-12 * term.sum(axis=0))
        if eps == 1e-12:
            # ~0 where var > 1e-2, so that eps/(var + eps) < 1e-10 (at var = 1e-4 the exact
            # value is already 1e-8 of the scale: there the identity above is the check).
            tiny = var > 1e-2
            np.testing.assert_array_less(np.abs(lhs[tiny]), 1e-9 * scale[tiny])


# --------------------------------------------------------------------------- 6. layouts

BACKEND = os.environ.get("XPNN_BACKEND", "numpy")
CASES = [c for c in registered_cases() if not c.random]
IDS = [f"{c.name}[{c.describe()}]" for c in CASES]
# Negative strides exist only where the arrays are NumPy arrays underneath (array-api-strict
# wraps one): torch.flip copies, and JAX arrays have no strides.
LAYOUTS = ["flipped", "permuted"] if BACKEND in ("numpy", "array_api_strict") else ["permuted"]


def _strided_view(bk, v, layout):
    """``v``'s values as a non-contiguous array of the backend.

    ``flipped``: a view with negative strides. ``permuted``: a transposed array with its axes
    permuted back (2-d and up), or every other entry of a buffer whose gaps hold NaN (1-d).
    """
    rev = tuple(reversed(range(v.ndim)))
    several = sum(s > 1 for s in v.shape) > 1
    if layout == "flipped":
        if bk.name == "numpy":
            view = np.flip(np.flip(v).copy())
            assert v.size == 1 or all(s < 0 for s in view.strides)
            return view
        return bk.xp.flip(bk.asarray(np.flip(v).copy()))
    if v.ndim == 1:
        buffer = np.full(2 * v.shape[0], np.nan)
        buffer[::2] = v
        if bk.name == "torch":
            view = bk.asarray(buffer)[::2]
            assert v.size == 1 or not view.is_contiguous()
            return view
        if bk.name == "numpy":
            view = buffer[::2]
            assert v.size == 1 or not view.flags.c_contiguous
            return view
        return bk.asarray(buffer)[::2]
    transposed = np.ascontiguousarray(v.transpose(rev))
    if bk.name == "numpy":
        view = transposed.transpose(rev)
        assert not several or not view.flags.c_contiguous
        return view
    if bk.name == "torch":
        view = bk.asarray(transposed).permute(rev)
        assert not several or not view.is_contiguous()
        return view
    return bk.xp.permute_dims(bk.asarray(transposed), rev)


def _results(case, arrays, dout):
    out, cache = case.run(*arrays)
    if case.is_loss:
        return [_np(out), _np(cache)]
    grads = case.backward(dout, cache)
    return [_np(out)] + [_np(g) for g in (grads if isinstance(grads, tuple) else (grads,))]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_non_contiguous_inputs_match_contiguous(bk, case, layout):
    """Catches a layer that reads an array's memory as if it were contiguous (raw buffers,
    ``view`` instead of ``reshape``, stride assumptions), or that writes into its inputs."""
    host = case.draw_inputs(seed=5)
    originals = {k: v.copy() for k, v in host.items()}
    specs = case.specs
    contiguous = [bk.asarray(v) for v in host.values()]
    views = [
        _strided_view(bk, v, layout) if specs[k].differentiable else bk.asarray(v)
        for k, v in host.items()
    ]
    for k, view in zip(host, views, strict=True):
        np.testing.assert_array_equal(_np(view), host[k], err_msg=f"{k}: view built wrong")
    dout = dout_view = None
    if not case.is_loss:
        out_shape = tuple(case.run(*contiguous)[0].shape)
        dout_host = np.random.default_rng(6).standard_normal(out_shape)
        dout = bk.asarray(dout_host)
        dout_view = _strided_view(bk, dout_host, layout)  # a backward reads dout too
    want = _results(case, contiguous, dout)
    got = _results(case, views, None if case.is_loss else dout_view)
    names = ["out", *(f"d{k}" for k, s in specs.items() if s.differentiable)]
    _assert_all_close(got, want, names[: len(want)], rtol=1e-12, atol=1e-14)
    for k, c, v in zip(host, contiguous, views, strict=True):
        np.testing.assert_array_equal(_np(c), originals[k], err_msg=f"{k} was modified")
        np.testing.assert_array_equal(_np(v), originals[k], err_msg=f"{k} (view) was modified")
