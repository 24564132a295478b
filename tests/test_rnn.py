"""The sequence layers: the assignment's published check values, planted wrong backward
passes that the gradient check must catch, the embedding's repeated indices on every
backend, the time loop under jax.jit, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn
from xpnn import _native
from xpnn.gradient_check import eval_numerical_gradient_array, rel_error
from xpnn.layers import rnn as R
from xpnn.layers import temporal as TL


def _np(a):
    return xpnn.to_numpy(a)


# --------------------------------------------------------------------------- published values
# RNN_Captioning.ipynb and LSTM_Captioning.ipynb (2017-2024): the same setups and expected
# arrays in every edition checked; the notebooks print errors of about 1e-8.


def test_rnn_step_forward_published(bk):
    N, D, H = 3, 10, 4
    x = np.linspace(-0.4, 0.7, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.2, 0.5, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.1, 0.9, num=D * H).reshape(D, H)
    Wh = np.linspace(-0.3, 0.7, num=H * H).reshape(H, H)
    b = np.linspace(-0.2, 0.4, num=H)
    next_h, _ = R.rnn_step_forward(*map(bk.asarray, (x, prev_h, Wx, Wh, b)))
    expected = np.asarray([
        [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
        [0.66854692, 0.79562378, 0.87755553, 0.92795967],
        [0.97934501, 0.99144213, 0.99646691, 0.99854353]])  # fmt: skip
    assert rel_error(_np(next_h), expected) < 1e-8


def test_rnn_forward_published(bk):
    N, T, D, H = 2, 3, 4, 5
    x = np.linspace(-0.1, 0.3, num=N * T * D).reshape(N, T, D)
    h0 = np.linspace(-0.3, 0.1, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.4, num=D * H).reshape(D, H)
    Wh = np.linspace(-0.4, 0.1, num=H * H).reshape(H, H)
    b = np.linspace(-0.7, 0.1, num=H)
    h, _ = R.rnn_forward(*map(bk.asarray, (x, h0, Wx, Wh, b)))
    expected = np.asarray([
        [[-0.42070749, -0.27279261, -0.11074945, 0.05740409, 0.22236251],
         [-0.39525808, -0.22554661, -0.0409454, 0.14649412, 0.32397316],
         [-0.42305111, -0.24223728, -0.04287027, 0.15997045, 0.35014525]],
        [[-0.55857474, -0.39065825, -0.19198182, 0.02378408, 0.23735671],
         [-0.27150199, -0.07088804, 0.13562939, 0.33099728, 0.50158768],
         [-0.51014825, -0.30524429, -0.06755202, 0.17806392, 0.40333043]]])  # fmt: skip
    assert rel_error(_np(h), expected) < 1e-7


def test_word_embedding_forward_published(bk):
    V, D = 5, 3
    x = np.asarray([[0, 3, 1, 2], [2, 1, 0, 3]])
    W = np.linspace(0, 1, num=V * D).reshape(V, D)
    out, _ = TL.word_embedding_forward(bk.asarray(x), bk.asarray(W))
    expected = np.asarray([
        [[0.0, 0.07142857, 0.14285714], [0.64285714, 0.71428571, 0.78571429],
         [0.21428571, 0.28571429, 0.35714286], [0.42857143, 0.5, 0.57142857]],
        [[0.42857143, 0.5, 0.57142857], [0.21428571, 0.28571429, 0.35714286],
         [0.0, 0.07142857, 0.14285714], [0.64285714, 0.71428571, 0.78571429]]])  # fmt: skip
    assert rel_error(_np(out), expected) < 1e-7


def test_temporal_softmax_loss_published(bk):
    """The notebook's three sanity checks, drawn from the same seeded global RNG (the
    temporal-affine cell before them draws four arrays after np.random.seed(231))."""
    rs = np.random.RandomState(231)
    rs.randn(2, 3, 4), rs.randn(4, 5), rs.randn(5), rs.randn(2, 3, 5)
    printed = [2.3027781774290146, 23.025985953127226, 2.2643611790293394]
    for (N, T, V, p), want in zip(
        [(100, 1, 10, 1.0), (100, 10, 10, 1.0), (5000, 10, 10, 0.1)], printed, strict=True
    ):
        x = 0.001 * rs.randn(N, T, V)
        y = rs.randint(V, size=(N, T))
        mask = rs.rand(N, T) <= p
        loss, _ = TL.temporal_softmax_loss(bk.asarray(x), bk.asarray(y), bk.asarray(mask))
        assert float(_np(loss)) == pytest.approx(want, rel=1e-12)


def test_lstm_step_forward_published(bk):
    N, D, H = 3, 4, 5
    x = np.linspace(-0.4, 1.2, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.3, 0.7, num=N * H).reshape(N, H)
    prev_c = np.linspace(-0.4, 0.9, num=N * H).reshape(N, H)
    Wx = np.linspace(-2.1, 1.3, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.7, 2.2, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.3, 0.7, num=4 * H)
    next_h, next_c, _ = R.lstm_step_forward(*map(bk.asarray, (x, prev_h, prev_c, Wx, Wh, b)))
    expected_h = np.asarray([
        [0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
        [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
        [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299]])  # fmt: skip
    expected_c = np.asarray([
        [0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
        [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
        [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676]])  # fmt: skip
    assert rel_error(_np(next_h), expected_h) < 1e-8
    assert rel_error(_np(next_c), expected_c) < 1e-8


def test_lstm_forward_published(bk):
    N, D, H, T = 2, 5, 4, 3
    x = np.linspace(-0.4, 0.6, num=N * T * D).reshape(N, T, D)
    h0 = np.linspace(-0.4, 0.8, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.9, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.3, 0.6, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.2, 0.7, num=4 * H)
    h, _ = R.lstm_forward(*map(bk.asarray, (x, h0, Wx, Wh, b)))
    expected = np.asarray([
        [[0.01764008, 0.01823233, 0.01882671, 0.0194232],
         [0.11287491, 0.12146228, 0.13018446, 0.13902939],
         [0.31358768, 0.33338627, 0.35304453, 0.37250975]],
        [[0.45767879, 0.4761092, 0.4936887, 0.51041945],
         [0.6704845, 0.69350089, 0.71486014, 0.7346449],
         [0.81733511, 0.83677871, 0.85403753, 0.86935314]]])  # fmt: skip
    assert rel_error(_np(h), expected) < 1e-7


# --------------------------------------------------------------------------- planted bugs


def _numeric_vs(forward, backward, arrays, which, seed=0):
    """rel_error of ``backward``'s gradient of ``arrays[which]`` against the numerical one
    (NumPy, float64; the assignment's eval_numerical_gradient_array)."""
    rng = np.random.default_rng(seed)
    out, cache = forward(*arrays)
    dout = rng.standard_normal(out.shape)
    analytic = backward(dout, cache)[which]

    def f(value):
        args = list(arrays)
        args[which] = value
        return forward(*args)[0]

    return rel_error(analytic, eval_numerical_gradient_array(f, arrays[which], dout))


def _rnn_inputs(gates=1, steps=None, seed=0):
    rng = np.random.default_rng(seed)
    n, d, h = 3, 4, 5
    x = rng.standard_normal((n, d) if steps is None else (n, steps, d))
    return [x, rng.standard_normal((n, h)), rng.standard_normal((d, gates * h)) * 0.5,
            rng.standard_normal((h, gates * h)) * 0.5, rng.standard_normal(gates * h)]  # fmt: skip


def test_a_wrong_rnn_step_backward_is_caught():
    """The derivative of tanh taken from the pre-activation instead of the output."""
    arrays = _rnn_inputs()

    def wrong(dnext_h, cache):
        x, prev_h, Wx, Wh, _next_h, _dtypes = cache
        da = dnext_h * (1 - (x @ Wx + prev_h @ Wh) ** 2)
        return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(0)

    assert _numeric_vs(R.rnn_step_forward, R.rnn_step_backward, arrays, 2) < 1e-7
    assert _numeric_vs(R.rnn_step_forward, wrong, arrays, 2) > 1e-3


def test_bptt_without_the_recurrent_term_is_caught():
    """The classic BPTT bug: each step sees only dh[:, t], not the gradient from t + 1."""
    arrays = _rnn_inputs(steps=4)

    def wrong(dh, cache):
        x, h0, Wx, Wh, hs, _dtypes = cache
        da = np.transpose(dh, (1, 0, 2)) * (1 - hs * hs)
        das = np.transpose(da, (1, 0, 2))
        dx = das @ Wx.T
        prev = np.concatenate([h0[None], hs[:-1]])
        dWx = np.einsum("ntd,nth->dh", x, das)
        dWh = np.einsum("tnh,tnk->hk", prev, da)
        return dx, da[0] @ Wh.T, dWx, dWh, das.sum((0, 1))

    for which in (0, 1, 2, 3):
        assert _numeric_vs(R.rnn_forward, R.rnn_backward, arrays, which) < 1e-7
    assert _numeric_vs(R.rnn_forward, wrong, arrays, 3) > 1e-3
    assert _numeric_vs(R.rnn_forward, wrong, arrays, 0) > 1e-3


def test_a_wrong_lstm_cell_gradient_is_caught():
    """The cell state's gradient without the path through next_h (dc = dnext_c only)."""
    rng = np.random.default_rng(1)
    x, prev_h, Wx, Wh, b = _rnn_inputs(gates=4)
    prev_c = rng.standard_normal(prev_h.shape)
    arrays = [x, prev_h, prev_c, Wx, Wh, b]

    def forward(*a):
        next_h, next_c, cache = R.lstm_step_forward(*a)
        return np.concatenate([next_h, next_c], axis=1), cache

    def backward(dout, cache):
        half = dout.shape[1] // 2
        return R.lstm_step_backward(dout[:, :half], dout[:, half:], cache)

    def wrong(dout, cache):
        half = dout.shape[1] // 2
        x, prev_h, prev_c, Wx, Wh, next_c, i, f, o, g, _ = cache
        dnext_h, dc = dout[:, :half], dout[:, half:]  # forgets dnext_h * o * tanh'(c)
        do = dnext_h * np.tanh(next_c)
        da = np.concatenate([dc * g * i * (1 - i), dc * prev_c * f * (1 - f),
                             do * o * (1 - o), dc * i * (1 - g * g)], axis=1)  # fmt: skip
        return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(0)

    for which in range(6):
        assert _numeric_vs(forward, backward, arrays, which) < 1e-7
    assert _numeric_vs(forward, wrong, arrays, 3) > 1e-3


def test_an_embedding_backward_that_drops_repeats_is_caught():
    """``dW[x] += dout`` applies one update per repeated word instead of their sum."""
    rng = np.random.default_rng(2)
    x = np.array([[0, 2, 2, 1], [2, 0, 3, 2]])
    W = rng.standard_normal((4, 3))

    def forward(x_, W_):
        return TL.word_embedding_forward(x_, W_)

    def wrong(dout, cache):
        dW = np.zeros_like(cache.W)
        dW[cache.x.reshape(-1)] += dout.reshape(-1, dout.shape[-1])
        return (None, dW)

    def right(dout, cache):
        return (None, TL.word_embedding_backward(dout, cache))

    assert _numeric_vs(forward, right, [x, W], 1) < 1e-7
    assert _numeric_vs(forward, wrong, [x, W], 1) > 1e-3


# --------------------------------------------------------------------------- backends


def test_embedding_repeats_accumulate_identically_native_and_portable(bk):
    """Word 2 occurs 4 times: every backend's scatter-add and the portable one-hot product
    give the same sums, exactly (the upstream values are small integers)."""
    x = np.array([[2, 0, 2, 1], [2, 4, 3, 2]])
    W = np.zeros((5, 3))
    dout = np.arange(24.0).reshape(2, 4, 3)
    expected = np.zeros((5, 3))
    np.add.at(expected, x.reshape(-1), dout.reshape(-1, 3))
    _, cache = TL.word_embedding_forward(bk.asarray(x), bk.asarray(W))
    native = TL.word_embedding_backward(bk.asarray(dout), cache)
    with _native.disabled():
        portable = TL.word_embedding_backward(bk.asarray(dout), cache)
    np.testing.assert_array_equal(_np(native), expected)
    np.testing.assert_array_equal(_np(portable), expected)


def test_the_time_loop_compiles_once_under_jit(bk):
    """On JAX the recurrence is one lax.scan: the traced program has the same size for
    T = 2 and T = 64 (a Python loop would grow with T)."""
    if bk.name != "jax":
        pytest.skip("jax.jit applies to the JAX backend only")
    import jax

    def size(steps, forward, backward, gates):
        x, h0, Wx, Wh, b = _rnn_inputs(gates=gates, steps=steps)

        def forward_backward(x, h0, Wx, Wh, b):
            h, cache = forward(x, h0, Wx, Wh, b)
            return backward(h, cache)

        return len(jax.make_jaxpr(forward_backward)(x, h0, Wx, Wh, b).jaxpr.eqns)

    for layer in ((R.rnn_forward, R.rnn_backward, 1), (R.lstm_forward, R.lstm_backward, 4)):
        assert size(2, *layer) == size(64, *layer)


# --------------------------------------------------------------------------- bad input


def test_bad_input_names_the_argument(bk):
    x, h0, Wx, Wh, b = map(bk.asarray, _rnn_inputs(steps=3))
    with pytest.raises(ValueError, match=r"h0 must have shape \(3, 5\)"):
        R.rnn_forward(x, bk.asarray(np.zeros((2, 5))), Wx, Wh, b)
    with pytest.raises(ValueError, match=r"x must be a 3-d array \(N, T, D\)"):
        R.rnn_forward(x[:, 0, ...], h0, Wx, Wh, b)
    empty = r"x must hold at least one time step \(T >= 1\); got shape \(3, 0, 4\)"
    with pytest.raises(ValueError, match=empty):  # as torch.nn.RNN refuses it
        R.rnn_forward(x[:, :0, ...], h0, Wx, Wh, b)
    W4, U4, b4 = (bk.asarray(np.zeros(s)) for s in ((4, 20), (5, 20), (20,)))
    with pytest.raises(ValueError, match=empty):  # the NumPy path would return empty arrays
        R.lstm_forward(x[:, :0, ...], h0, W4, U4, b4)
    lstm_wx = r"Wx must have shape \(4, 20\) \(\(D, 4H\)\); got \(4, 5\)"
    with pytest.raises(ValueError, match=lstm_wx):
        R.lstm_forward(x, h0, Wx, Wh, b)
    xs, hs, cs = (
        bk.asarray(np.zeros((3, 4))),
        bk.asarray(np.zeros((3, 5))),
        bk.asarray(np.zeros((3, 4))),
    )
    W4, U4, b4 = (bk.asarray(np.zeros(s)) for s in ((4, 20), (5, 20), (20,)))
    with pytest.raises(ValueError, match=r"prev_c must have shape \(3, 5\)"):
        R.lstm_step_forward(xs, hs, cs, W4, U4, b4)
    W = bk.asarray(np.zeros((5, 3)))
    with pytest.raises(TypeError, match="x must be an integer array of word indices"):
        TL.word_embedding_forward(bk.asarray(np.zeros((2, 3))), W)
    with pytest.raises(ValueError, match=r"x holds word indices outside \[0, 5\)"):
        TL.word_embedding_forward(bk.asarray(np.array([[0, 5]])), W)
    scores = bk.asarray(np.zeros((2, 3, 4)))
    y = bk.asarray(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 3\)"):
        TL.temporal_softmax_loss(scores, y, bk.asarray(np.ones((3, 2), dtype=bool)))
    with pytest.raises(ValueError, match=r"y holds words outside \[0, 4\)"):
        TL.temporal_softmax_loss(scores, y + 4, bk.asarray(np.ones((2, 3), dtype=bool)))
    with pytest.raises(TypeError, match="mask must be a boolean array"):
        TL.temporal_softmax_loss(scores, y, bk.asarray(np.ones((2, 3))))


def test_verbose_prints_the_flat_gradient_shape(capsys):
    TL.temporal_softmax_loss(np.zeros((2, 3, 4)), np.zeros((2, 3), int), np.ones((2, 3), bool),
                             verbose=True)  # fmt: skip
    assert capsys.readouterr().out.strip() == "dx_flat:  (6, 4)"


def test_the_lstm_native_loop_is_the_portable_one_to_the_bit(monkeypatch):
    """On NumPy the LSTM's time loop writes every pass in place (xpnn._native); it must run,
    give the portable loop's numbers exactly, forward and backward, in both dtypes, and
    leave its inputs as they were."""
    calls = []
    for name in ("lstm_sequence", "lstm_sequence_backward"):
        original = getattr(_native, name)

        def spy(*args, _original=original, _name=name):
            result = _original(*args)
            calls.append((_name, result is not None))
            return result

        monkeypatch.setattr(_native, name, spy)
    rng = np.random.default_rng(7)
    for dtype in ("float64", "float32"):
        arrays = [rng.standard_normal(s).astype(dtype)
                  for s in ((3, 5, 4), (3, 6), (4, 24), (6, 24), (24,))]  # fmt: skip
        dh = rng.standard_normal((3, 5, 6)).astype(dtype)
        before = [a.copy() for a in (*arrays, dh)]
        calls.clear()
        h, cache = R.lstm_forward(*arrays)
        grads = R.lstm_backward(dh, cache)
        assert calls == [("lstm_sequence", True), ("lstm_sequence_backward", True)]
        for a, b in zip((*arrays, dh), before, strict=True):
            np.testing.assert_array_equal(a, b)
        with _native.disabled():
            h2, cache2 = R.lstm_forward(*arrays)
            grads2 = R.lstm_backward(dh, cache2)
        for got, want in zip((h, *grads), (h2, *grads2), strict=True):
            assert got.dtype == want.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got, want)
