"""``xpnn.jax``: the layers as JAX functions whose VJP is xpnn's own backward pass.

Each function's gradient (through ``jax.vjp`` with a random cotangent) is compared with
JAX's autodiff of a plain ``jax.numpy`` / ``jax.lax`` reference, in float64, to 1e-10;
``jax.test_util.check_grads`` checks it against finite differences; ``jax.jit`` and, where
``xpnn.jax`` claims it, ``jax.vmap`` give the same values.
"""

from __future__ import annotations

import itertools
import os

import pytest

if os.environ.get("XPNN_BACKEND") != "jax":
    pytest.skip("the JAX bridge is tested with XPNN_BACKEND=jax", allow_module_level=True)

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.test_util import check_grads

import xpnn
import xpnn.jax as xj
from xpnn.layers.affine import affine_backward, affine_forward

jax.config.update("jax_enable_x64", True)

TOL = 1e-10


# --------------------------------------------------------------------------- references


def ref_affine(x, w, b):
    return jnp.reshape(x, (x.shape[0], -1)) @ w + b


def ref_relu(x):
    return jnp.where(x > 0, x, 0.0)


def ref_conv(x, w, b, *, stride=1, pad=0):
    out = lax.conv_general_dilated(
        x,
        w,
        (stride, stride),
        [(pad, pad), (pad, pad)],
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision=lax.Precision.HIGHEST,
    )
    return out + b[None, :, None, None]


def ref_max_pool(x, *, pool_height=2, pool_width=2, stride=2):
    return lax.reduce_window(
        x, -jnp.inf, lax.max, (1, 1, pool_height, pool_width), (1, 1, stride, stride), "VALID"
    )


def _norm(x, axis, eps):
    mu = jnp.mean(x, axis=axis, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=axis, keepdims=True)  # biased
    return (x - mu) / jnp.sqrt(var + eps), mu, var


def ref_batchnorm(x, gamma, beta, rm, rv, *, train, momentum=0.9, eps=1e-5, spatial=False):
    axis = (0, 2, 3) if spatial else (0,)
    shape = (1, -1, 1, 1) if spatial else (1, -1)
    if train:
        xhat, mu, var = _norm(x, axis, eps)
        mu, var = jnp.reshape(mu, (-1,)), jnp.reshape(var, (-1,))
        rm, rv = momentum * rm + (1 - momentum) * mu, momentum * rv + (1 - momentum) * var
    else:
        xhat = (x - jnp.reshape(rm, shape)) / jnp.sqrt(jnp.reshape(rv, shape) + eps)
    return jnp.reshape(gamma, shape) * xhat + jnp.reshape(beta, shape), rm, rv


def ref_layernorm(x, gamma, beta, *, eps=1e-5):
    return gamma * _norm(x, (1,), eps)[0] + beta


def ref_groupnorm(x, gamma, beta, *, groups, eps=1e-5):
    n, c = x.shape[:2]
    xhat = jnp.reshape(_norm(jnp.reshape(x, (n, groups, -1)), (2,), eps)[0], x.shape)
    return jnp.reshape(gamma, (1, c, 1, 1)) * xhat + jnp.reshape(beta, (1, c, 1, 1))


def ref_softmax_loss(scores, y):
    logp = jax.nn.log_softmax(scores, axis=1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def ref_svm_loss(scores, y):
    correct = jnp.take_along_axis(scores, y[:, None], axis=1)
    margins = jnp.maximum(0.0, scores - correct + 1.0)
    margins = jnp.where(jnp.arange(scores.shape[1])[None, :] == y[:, None], 0.0, margins)
    return jnp.sum(margins) / scores.shape[0]


def ref_rnn_step(x, prev_h, Wx, Wh, b):
    return jnp.tanh(x @ Wx + prev_h @ Wh + b)


def _ref_lstm_cell(a, c):
    i, f, o, g = jnp.split(a, 4, axis=1)  # the assignment's gate order
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


def ref_lstm_step(x, prev_h, prev_c, Wx, Wh, b):
    return _ref_lstm_cell(x @ Wx + prev_h @ Wh + b, prev_c)


def _ref_scan(step, carry, x):
    _, hs = lax.scan(step, carry, jnp.swapaxes(x, 0, 1))
    return jnp.swapaxes(hs, 0, 1)


def ref_rnn(x, h0, Wx, Wh, b):
    def step(h, x_t):
        h = ref_rnn_step(x_t, h, Wx, Wh, b)
        return h, h

    return _ref_scan(step, h0, x)


def ref_lstm(x, h0, Wx, Wh, b):
    def step(carry, x_t):
        h, c = ref_lstm_step(x_t, *carry, Wx, Wh, b)
        return (h, c), h

    return _ref_scan(step, (h0, jnp.zeros_like(h0)), x)


def ref_temporal_softmax_loss(x, y, mask):
    logp = jax.nn.log_softmax(x, axis=-1)
    return -jnp.sum(jnp.take_along_axis(logp, y[..., None], axis=-1)[..., 0] * mask) / x.shape[0]


# --------------------------------------------------------------------------- cases

R = np.random.default_rng(0)


def _a(*shape):
    return jnp.asarray(R.standard_normal(shape))


Y = jnp.asarray(R.integers(0, 5, size=6))
RM, RV = _a(3), jnp.asarray(R.uniform(0.5, 2.0, 3))
XS = _a(2, 3, 6, 6)
G4 = _a(1, 4, 1, 1)

#: name -> (xpnn.jax function, reference, differentiable arrays, keyword params, vmap ok)
CASES = {
    "affine": (xj.affine, ref_affine, (_a(3, 2, 3), _a(6, 4), _a(4)), {}),
    "relu": (xj.relu, ref_relu, (_a(3, 5),), {}),
    "conv": (xj.conv, ref_conv, (_a(2, 3, 7, 7), _a(4, 3, 3, 3), _a(4)), {"stride": 2, "pad": 1}),
    "conv_s1": (xj.conv, ref_conv, (_a(2, 2, 5, 5), _a(3, 2, 2, 2), _a(3)), {}),
    "max_pool": (xj.max_pool, ref_max_pool, (XS,), {}),
    "max_pool_overlap": (
        xj.max_pool,
        ref_max_pool,
        (_a(2, 2, 5, 5),),
        {"pool_height": 3, "pool_width": 2, "stride": 1},
    ),
    "layernorm": (xj.layernorm, ref_layernorm, (_a(4, 5), _a(5), _a(5)), {}),
    "groupnorm": (xj.groupnorm, ref_groupnorm, (_a(2, 4, 3, 3), _a(4), _a(4)), {"groups": 2}),
    "groupnorm_4d": (xj.groupnorm, ref_groupnorm, (_a(2, 4, 3, 3), G4, G4 + 1), {"groups": 4}),
    "softmax_loss": (
        lambda s: xj.softmax_loss(s, Y),
        lambda s: ref_softmax_loss(s, Y),
        (_a(6, 5),),
        {},
    ),
    "svm_loss": (lambda s: xj.svm_loss(s, Y), lambda s: ref_svm_loss(s, Y), (_a(6, 5),), {}),
}
# The sequence layers; the embedding's indices repeat words, whose gradients accumulate.
IDX = jnp.asarray(R.integers(0, 4, size=(2, 5)))
YT, MASK = jnp.asarray(R.integers(0, 6, size=(2, 4))), jnp.asarray(R.random((2, 4)) > 0.3)
CASES.update(
    {
        "rnn_step": (xj.rnn_step, ref_rnn_step, (_a(3, 4), _a(3, 5), _a(4, 5), _a(5, 5), _a(5)),
                     {}),
        "rnn": (xj.rnn, ref_rnn, (_a(2, 4, 3), _a(2, 5), _a(3, 5), _a(5, 5), _a(5)), {}),
        "lstm_step": (xj.lstm_step, ref_lstm_step,
                      (_a(3, 4), _a(3, 5), _a(3, 5), _a(4, 20), _a(5, 20), _a(20)), {}),
        "lstm": (xj.lstm, ref_lstm, (_a(2, 4, 3), _a(2, 5), _a(3, 20), _a(5, 20), _a(20)), {}),
        "word_embedding": (lambda W: xj.word_embedding(IDX, W), lambda W: W[IDX], (_a(4, 3),),
                           {}),
        "temporal_affine": (xj.temporal_affine, lambda x, w, b: x @ w + b,
                            (_a(2, 3, 4), _a(4, 5), _a(5)), {}),
        "temporal_softmax_loss": (lambda x: xj.temporal_softmax_loss(x, YT, MASK),
                                  lambda x: ref_temporal_softmax_loss(x, YT, MASK),
                                  (_a(2, 4, 6),), {}),
    }
)  # fmt: skip
for _train in (True, False):
    _mode = "train" if _train else "test"
    CASES[f"batchnorm_{_mode}"] = (
        lambda x, g, b, t=_train: xj.batchnorm(x, g, b, RM, RV, train=t),
        lambda x, g, b, t=_train: ref_batchnorm(x, g, b, RM, RV, train=t),
        (_a(5, 3), _a(3), _a(3)),
        {},
    )
    CASES[f"spatial_batchnorm_{_mode}"] = (
        lambda x, g, b, t=_train: xj.spatial_batchnorm(x, g, b, RM, RV, train=t),
        lambda x, g, b, t=_train: ref_batchnorm(x, g, b, RM, RV, train=t, spatial=True),
        (XS, _a(3), _a(3)),
        {},
    )


def _bind(fn, params):
    return (lambda *a: fn(*a, **params)) if params else fn


def _vjp_grads(fn, args, seed=1):
    """Outputs and the VJP of a random cotangent (for every output of a tuple)."""
    out, vjp = jax.vjp(fn, *args)
    rng = np.random.default_rng(seed)
    ct = jax.tree_util.tree_map(lambda o: jnp.asarray(rng.standard_normal(o.shape)), out)
    return out, vjp(ct)


def _max_abs(a, b):
    leaves = jax.tree_util.tree_leaves(
        jax.tree_util.tree_map(lambda u, v: jnp.max(jnp.abs(u - v)), a, b)
    )
    return max(float(v) for v in leaves)


@pytest.mark.parametrize("name", sorted(CASES))
def test_vjp_matches_autodiff_of_reference(name):
    fn, ref, args, params = CASES[name]
    f, r = _bind(fn, params), _bind(ref, params)
    if "batchnorm" in name:  # the running statistics carry no gradient: no cotangent for them
        f, r = (lambda *a, f=f: f(*a)[0]), (lambda *a, r=r: r(*a)[0])
    out, grads = _vjp_grads(f, args)
    ref_out, ref_grads = _vjp_grads(r, args)
    assert _max_abs(out, ref_out) <= TOL
    assert _max_abs(grads, ref_grads) <= TOL
    for g, a in zip(grads, args, strict=True):
        assert g.shape == a.shape and g.dtype == a.dtype


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_grads(name):
    fn, _, args, params = CASES[name]
    f = _bind(fn, params)
    if name.startswith(("batchnorm", "spatial_batchnorm")):
        f = lambda *a, f=f: f(*a)[0]  # noqa: E731
    check_grads(f, args, order=1, modes=["rev"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_gives_the_same_values_and_gradients(name):
    fn, _, args, params = CASES[name]
    f = _bind(fn, params)

    def loss(*a):
        out = f(*a)
        out = out[0] if isinstance(out, tuple) else out
        return jnp.sum(out * jnp.cos(out))

    eager = jax.value_and_grad(loss, argnums=tuple(range(len(args))))(*args)
    jitted = jax.jit(jax.value_and_grad(loss, argnums=tuple(range(len(args)))))(*args)
    assert _max_abs(eager, jitted) <= TOL


#: vmap over an extra leading axis: each mapped slice is a whole xpnn input.
VMAP = ["affine", "relu", "conv", "max_pool", "layernorm", "groupnorm", "softmax_loss", "svm_loss",
        "temporal_affine"]  # fmt: skip


@pytest.mark.parametrize("name", VMAP)
def test_vmap_per_example_gradients(name):
    """Per-example gradients: vmap over the examples, each a minibatch of one."""
    fn, ref, args, params = CASES[name]
    if name in ("softmax_loss", "svm_loss"):  # the labels are mapped along with the scores
        xfn, rfn = (
            (xj.softmax_loss, ref_softmax_loss)
            if name == "softmax_loss"
            else (xj.svm_loss, ref_svm_loss)
        )
        got = jax.vmap(jax.grad(lambda s, y: xfn(s[None], y[None])))(args[0], Y)
        want = jax.vmap(jax.grad(lambda s, y: rfn(s[None], y[None])))(args[0], Y)
    else:
        argnums = tuple(range(len(args)))
        in_axes = (0, *([None] * (len(args) - 1)))

        def per_example(f):
            return lambda xi, *p: jnp.sum(jnp.sin(f(xi[None], *p, **params)))

        got = jax.vmap(jax.grad(per_example(fn), argnums), in_axes)(*args)
        want = jax.vmap(jax.grad(per_example(ref), argnums), in_axes)(*args)
        assert got[0].shape == args[0].shape
        for g, a in zip(got[1:], args[1:], strict=True):
            assert g.shape == (args[0].shape[0], *a.shape)
    assert _max_abs(got, want) <= TOL


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_vmap_of_the_recurrent_layers_over_a_batch_of_sequences(name):
    """vmap over sequences (each a minibatch of one, with its own h0): the values and the
    per-sequence weight gradients are the reference's."""
    fn, ref, (x, h0, *weights), _ = CASES[name]

    def per_sequence(f):
        return lambda x_i, h_i, *w: jnp.sum(jnp.sin(f(x_i[None], h_i[None], *w)))

    in_axes = (0, 0, None, None, None)
    assert (
        _max_abs(
            jax.vmap(lambda x_i, h_i: fn(x_i[None], h_i[None], *weights))(x, h0),
            jax.vmap(lambda x_i, h_i: ref(x_i[None], h_i[None], *weights))(x, h0),
        )
        <= TOL
    )
    argnums = tuple(range(5))
    got = jax.vmap(jax.grad(per_sequence(fn), argnums), in_axes)(x, h0, *weights)
    want = jax.vmap(jax.grad(per_sequence(ref), argnums), in_axes)(x, h0, *weights)
    assert got[2].shape == (x.shape[0], *weights[0].shape)
    assert _max_abs(got, want) <= TOL


def test_vmap_of_batchnorm_normalizes_each_mapped_minibatch():
    """Under vmap each slice is its own minibatch: the statistics are the slice's."""
    xs, g, b = _a(3, 5, 3), _a(3), _a(3)
    got = jax.vmap(lambda x: xj.batchnorm(x, g, b, RM, RV, train=True))(xs)
    want = jax.vmap(lambda x: ref_batchnorm(x, g, b, RM, RV, train=True))(xs)
    assert _max_abs(got, want) <= TOL
    gx = jax.vmap(
        jax.grad(lambda x: jnp.sum(jnp.sin(xj.batchnorm(x, g, b, RM, RV, train=True)[0])))
    )
    rx = jax.vmap(
        jax.grad(lambda x: jnp.sum(jnp.sin(ref_batchnorm(x, g, b, RM, RV, train=True)[0])))
    )
    assert _max_abs(gx(xs), rx(xs)) <= TOL


# --------------------------------------------------------------------------- a check can fail


def _affine_double_dw(dout, cache):
    dx, dw, db = affine_backward(dout, cache)
    return dx, 2 * dw, db


def test_a_wrong_backward_is_caught():
    bad = xj.from_layer(lambda x, w, b: affine_forward(x, w, b), _affine_double_dw)
    fn, ref, args, _ = CASES["affine"]
    _, grads = _vjp_grads(bad, args)
    _, ref_grads = _vjp_grads(ref, args)
    assert _max_abs(grads[0], ref_grads[0]) <= TOL  # dx is right ...
    assert _max_abs(grads[1], ref_grads[1]) > 1e-3  # ... dw is not, and it shows
    with pytest.raises(AssertionError):
        check_grads(bad, args, order=1, modes=["rev"])
    check_grads(fn, args, order=1, modes=["rev"])  # the right one passes the same check


def test_from_layer_rejects_a_wrong_number_of_gradients():
    bad = xj.from_layer(
        lambda x, w, b: affine_forward(x, w, b), lambda d, c: affine_backward(d, c)[:2]
    )
    with pytest.raises(ValueError, match="2 gradients for 3"):
        jax.grad(lambda *a: jnp.sum(bad(*a)))(*CASES["affine"][2])


# --------------------------------------------------------------------------- batchnorm, dropout


@pytest.mark.parametrize("spatial", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_running_stats_match_xpnn(spatial, train):
    x, g, b = (XS, _a(3), _a(3)) if spatial else (_a(5, 3), _a(3), _a(3))
    bn_param = {"mode": "train" if train else "test", "momentum": 0.8, "eps": 1e-4}
    bn_param.update(running_mean=RM, running_var=RV)
    forward = xpnn.spatial_batchnorm_forward if spatial else xpnn.batchnorm_forward
    want, _ = forward(x, g, b, bn_param)
    bridge = xj.spatial_batchnorm if spatial else xj.batchnorm
    got = jax.jit(lambda *a: bridge(*a, train=train, momentum=0.8, eps=1e-4))(x, g, b, RM, RV)
    assert _max_abs(got, (want, bn_param["running_mean"], bn_param["running_var"])) <= TOL
    ref = ref_batchnorm(x, g, b, RM, RV, train=train, momentum=0.8, eps=1e-4, spatial=spatial)
    assert _max_abs(got, ref) <= TOL


def test_batchnorm_running_stats_carry_no_gradient():
    x, g, b = _a(5, 3), _a(3), _a(3)

    def loss(rm, rv):
        out, new_mean, new_var = xj.batchnorm(x, g, b, rm, rv, train=False)
        return jnp.sum(out) + jnp.sum(new_mean) + jnp.sum(new_var)

    d_mean, d_var = jax.grad(loss, argnums=(0, 1))(RM, RV)
    assert not jnp.any(d_mean) and not jnp.any(d_var)


def test_dropout_same_key_same_mask_and_test_mode_is_identity():
    x, key = _a(4, 6), jax.random.PRNGKey(3)
    f = jax.jit(lambda x, k: xj.dropout(x, p=0.6, key=k, train=True))
    a, b = f(x, key), xj.dropout(x, p=0.6, key=key, train=True)
    keep = jax.random.bernoulli(key, 0.6, x.shape)
    assert _max_abs(a, b) == 0 and _max_abs(a, x * keep / 0.6) <= TOL
    assert not jnp.array_equal(a, f(x, jax.random.PRNGKey(4)))
    assert xj.dropout(x, p=0.6, key=key, train=False) is x
    ct = _a(4, 6)
    (dx,) = jax.vjp(lambda x: xj.dropout(x, p=0.6, key=key, train=True), x)[1](ct)
    assert _max_abs(dx, ct * keep / 0.6) <= TOL
    check_grads(lambda x: xj.dropout(x, p=0.6, key=key, train=True), (x,), 1, modes=["rev"])


def test_dropout_under_vmap_draws_one_mask_per_key():
    x, keys = _a(3, 2, 4), jax.random.split(jax.random.PRNGKey(0), 3)
    got = jax.vmap(lambda x, k: xj.dropout(x, p=0.5, key=k, train=True))(x, keys)
    for i in range(3):
        assert _max_abs(got[i], xj.dropout(x[i], p=0.5, key=keys[i], train=True)) == 0


# --------------------------------------------------------------------------- training


def test_small_mlp_trains_under_jit():
    rng = np.random.default_rng(5)
    X = jnp.asarray(rng.standard_normal((32, 6)))
    y = jnp.asarray(rng.integers(0, 3, size=32))
    params = {
        "w1": jnp.asarray(0.3 * rng.standard_normal((6, 16))),
        "b1": jnp.zeros(16),
        "w2": jnp.asarray(0.3 * rng.standard_normal((16, 3))),
        "b2": jnp.zeros(3),
    }

    def loss(p, X, y):
        h = xj.relu(xj.affine(X, p["w1"], p["b1"]))
        return xj.softmax_loss(xj.affine(h, p["w2"], p["b2"]), y)

    @jax.jit
    def step(p, X, y):
        value, grads = jax.value_and_grad(loss)(p, X, y)
        return value, jax.tree_util.tree_map(lambda a, g: a - 0.5 * g, p, grads)

    losses = []
    for _ in range(20):
        value, params = step(params, X, y)
        losses.append(float(value))
    assert losses[-1] < 0.8 * losses[0]
    assert all(b < a for a, b in itertools.pairwise(losses))


def test_import_xpnn_does_not_import_the_bridge():
    import subprocess
    import sys

    code = "import sys, xpnn; print('xpnn.jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
