"""CaptioningRNN: the assignment's published losses, gradients against numerical ones on
every backend, greedy sampling against a hand-written loop, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import xpnn
from xpnn.classifiers import CaptioningRNN
from xpnn.gradient_check import eval_numerical_gradient, rel_error

PUBLISHED = {  # RNN_Captioning.ipynb / LSTM_Captioning.ipynb (2017-2024): printed losses
    "rnn": ((-1.5, 0.3), 9.83235591003),
    "lstm": ((-0.5, 1.7), 9.82445935443),
}


@pytest.mark.parametrize("cell", sorted(PUBLISHED))
def test_the_published_loss_reproduces(bk, cell):
    N, D, W, H = 10, 20, 30, 40
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    V, T = len(word_to_idx), 13
    model = CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell,
                          dtype=np.float64, backend=bk.name, device=bk.device)  # fmt: skip
    for k, v in model.params.items():
        values = np.linspace(-1.4, 1.3, num=int(np.prod(v.shape)))
        model.params[k] = bk.asarray(values.reshape(*v.shape))
    (low, high), expected = PUBLISHED[cell]
    features = bk.asarray(np.linspace(low, high, num=N * D).reshape(N, D))
    captions = bk.asarray((np.arange(N * T) % V).reshape(N, T))
    loss, grads = model.loss(features, captions)
    assert abs(float(xpnn.to_numpy(loss)) - expected) < 1e-10  # the notebooks print ~2.5e-12
    assert set(grads) == set(model.params)


def _small(bk, cell, seed=231):
    word_to_idx = {"<NULL>": 0, "<START>": 1, "<END>": 2, "cat": 3, "dog": 4}
    np.random.seed(seed)  # noqa: NPY002 (the assignment's global-RNG initialisation)
    model = CaptioningRNN(word_to_idx, input_dim=4, wordvec_dim=5, hidden_dim=6, cell_type=cell,
                          dtype=np.float64, backend=bk.name, device=bk.device)  # fmt: skip
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((2, 4))
    captions = rng.integers(0, 5, size=(2, 4))
    captions[0, -1] = 0  # a padded step: masked out
    return model, bk.asarray(features), bk.asarray(captions)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_gradients_match_numerical(bk, cell):
    """The notebook's check, through functional_loss (so it also runs on JAX, whose arrays
    cannot be perturbed in place)."""
    model, features, captions = _small(bk, cell)
    params = dict(model.params)
    _, grads, _ = model.functional_loss(params, {}, features, captions)
    for name in sorted(params):

        @bk.maybe_jit  # on JAX: one compile for the many calls of the numerical gradient
        def f(value, name=name):
            return model.functional_loss({**params, name: value}, {}, features, captions)[0]

        numeric = xpnn.to_numpy(eval_numerical_gradient(f, params[name], verbose=False))
        analytic = xpnn.to_numpy(grads[name])
        # entrywise: rel_error of entries near 1e-4 is finite-difference noise (h = 1e-5)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9, err_msg=name)
        assert rel_error(analytic, numeric) < 1e-4, name


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_greedy_sampling_matches_a_hand_written_loop(bk, cell):
    model, features, _ = _small(bk, cell)
    captions = model.sample(features, max_length=7)
    assert tuple(captions.shape) == (2, 7)
    p = {k: xpnn.to_numpy(v) for k, v in model.params.items()}
    h = xpnn.to_numpy(features) @ p["W_proj"] + p["b_proj"]
    c = np.zeros_like(h)
    word = np.full(2, 1)
    expected = []
    for _ in range(7):
        a = p["W_embed"][word] @ p["Wx"] + h @ p["Wh"] + p["b"]
        if cell == "rnn":
            h = np.tanh(a)
        else:
            i, f, o, g = np.split(a, 4, axis=1)
            sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(c)
        word = np.argmax(h @ p["W_vocab"] + p["b_vocab"], axis=1)
        expected.append(word)
    np.testing.assert_array_equal(xpnn.to_numpy(captions), np.stack(expected, axis=1))


def test_bad_input(bk):
    with pytest.raises(ValueError, match="cell_type must be 'rnn' or 'lstm'; got 'gru'"):
        CaptioningRNN({"<NULL>": 0}, cell_type="gru")
    with pytest.raises(ValueError, match="holding '<NULL>'"):
        CaptioningRNN({"cat": 0})
    model, features, captions = _small(bk, "rnn")
    with pytest.raises(ValueError, match=r"captions hold word indices outside the vocabulary"):
        model.loss(features, captions + 5)
    with pytest.raises(ValueError, match=r"captions must be an integer array \(N, T \+ 1\)"):
        model.loss(features, captions[:, :1])
    no_start = CaptioningRNN({"<NULL>": 0, "a": 1}, input_dim=4, wordvec_dim=3, hidden_dim=3)
    with pytest.raises(ValueError, match="sample needs '<START>'"):
        no_start.sample(np.zeros((1, 4), np.float32))


def test_seeded_initialisation_is_the_assignments():
    """Weights come from NumPy's global RNG in the assignment's order and scales."""
    word_to_idx = {"<NULL>": 0, "a": 1, "b": 2}
    np.random.seed(0)  # noqa: NPY002
    model = CaptioningRNN(word_to_idx, input_dim=6, wordvec_dim=4, hidden_dim=3,
                          cell_type="lstm", dtype=np.float64, backend="numpy")  # fmt: skip
    rs = np.random.RandomState(0)
    expected = {
        "W_embed": rs.randn(3, 4) / 100,
        "W_proj": rs.randn(6, 3) / np.sqrt(6),
        "Wx": rs.randn(4, 12) / np.sqrt(4),
        "Wh": rs.randn(3, 12) / np.sqrt(3),
        "W_vocab": rs.randn(3, 3) / np.sqrt(3),
    }
    for name, value in expected.items():
        np.testing.assert_array_equal(model.params[name], value)
    for name in ("b_proj", "b", "b_vocab"):
        assert not model.params[name].any()
