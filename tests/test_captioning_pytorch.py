"""The 2025/2026 PyTorch edition (``RNN_Captioning_pytorch.ipynb``) by one substitution.

Its cells import ``cs231n.rnn_layers_pytorch``, ``cs231n.classifiers.rnn_pytorch`` and
``cs231n.captioning_solver_pytorch``; here they import the ``xpnn.cs231n`` modules of those
names and must reproduce the check values the assignment publishes (the same setups as the
NumPy edition), and gradients that autograd takes through xpnn's hand-derived backward
passes must agree with numerical gradients (the notebook's checks of autograd) and with
autograd of plain torch code. Runs wherever torch is installed, whatever XPNN_BACKEND is.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch edition needs torch")

import xpnn.torch.functional as XF  # noqa: E402
from xpnn.gradient_check import eval_numerical_gradient, rel_error  # noqa: E402

PORT = "xpnn.cs231n"

# The edition's check cells (setups and expected values as published, the NumPy edition's),
# written as the notebook writes them: NumPy inputs moved with torch.from_numpy, the
# module's star import.
CELLS = {
    "rnn_step_forward": (
        """
N, D, H = 3, 10, 4
x = torch.from_numpy(np.linspace(-0.4, 0.7, num=N*D).reshape(N, D))
prev_h = torch.from_numpy(np.linspace(-0.2, 0.5, num=N*H).reshape(N, H))
Wx = torch.from_numpy(np.linspace(-0.1, 0.9, num=D*H).reshape(D, H))
Wh = torch.from_numpy(np.linspace(-0.3, 0.7, num=H*H).reshape(H, H))
b = torch.from_numpy(np.linspace(-0.2, 0.4, num=H))
next_h = rnn_step_forward(x, prev_h, Wx, Wh, b)
expected_next_h = np.asarray([
  [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
  [ 0.66854692,  0.79562378,  0.87755553,  0.92795967],
  [ 0.97934501,  0.99144213,  0.99646691,  0.99854353]])
error = rel_error(expected_next_h, next_h.numpy())
""",
        1e-8,
    ),
    "rnn_forward": (
        """
N, T, D, H = 2, 3, 4, 5
x = torch.from_numpy(np.linspace(-0.1, 0.3, num=N*T*D).reshape(N, T, D))
h0 = torch.from_numpy(np.linspace(-0.3, 0.1, num=N*H).reshape(N, H))
Wx = torch.from_numpy(np.linspace(-0.2, 0.4, num=D*H).reshape(D, H))
Wh = torch.from_numpy(np.linspace(-0.4, 0.1, num=H*H).reshape(H, H))
b = torch.from_numpy(np.linspace(-0.7, 0.1, num=H))
h = rnn_forward(x, h0, Wx, Wh, b)
expected_h = np.asarray([
  [[-0.42070749, -0.27279261, -0.11074945,  0.05740409,  0.22236251],
   [-0.39525808, -0.22554661, -0.0409454,   0.14649412,  0.32397316],
   [-0.42305111, -0.24223728, -0.04287027,  0.15997045,  0.35014525]],
  [[-0.55857474, -0.39065825, -0.19198182,  0.02378408,  0.23735671],
   [-0.27150199, -0.07088804,  0.13562939,  0.33099728,  0.50158768],
   [-0.51014825, -0.30524429, -0.06755202,  0.17806392,  0.40333043]]])
error = rel_error(expected_h, h.numpy())
""",
        1e-7,
    ),
    "word_embedding_forward": (
        """
N, T, V, D = 2, 4, 5, 3
x = torch.from_numpy(np.asarray([[0, 3, 1, 2], [2, 1, 0, 3]]))
W = torch.from_numpy(np.linspace(0, 1, num=V*D).reshape(V, D))
out = word_embedding_forward(x, W)
expected_out = np.asarray([
 [[ 0.,          0.07142857,  0.14285714],
  [ 0.64285714,  0.71428571,  0.78571429],
  [ 0.21428571,  0.28571429,  0.35714286],
  [ 0.42857143,  0.5,         0.57142857]],
 [[ 0.42857143,  0.5,         0.57142857],
  [ 0.21428571,  0.28571429,  0.35714286],
  [ 0.,          0.07142857,  0.14285714],
  [ 0.64285714,  0.71428571,  0.78571429]]])
error = rel_error(expected_out, out.numpy())
""",
        1e-7,
    ),
    "lstm_step_forward": (
        """
N, D, H = 3, 4, 5
x = torch.from_numpy(np.linspace(-0.4, 1.2, num=N*D).reshape(N, D))
prev_h = torch.from_numpy(np.linspace(-0.3, 0.7, num=N*H).reshape(N, H))
prev_c = torch.from_numpy(np.linspace(-0.4, 0.9, num=N*H).reshape(N, H))
Wx = torch.from_numpy(np.linspace(-2.1, 1.3, num=4*D*H).reshape(D, 4 * H))
Wh = torch.from_numpy(np.linspace(-0.7, 2.2, num=4*H*H).reshape(H, 4 * H))
b = torch.from_numpy(np.linspace(0.3, 0.7, num=4*H))
next_h, next_c = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
expected_next_h = np.asarray([
    [ 0.24635157,  0.28610883,  0.32240467,  0.35525807,  0.38474904],
    [ 0.49223563,  0.55611431,  0.61507696,  0.66844003,  0.7159181 ],
    [ 0.56735664,  0.66310127,  0.74419266,  0.80889665,  0.858299  ]])
expected_next_c = np.asarray([
    [ 0.32986176,  0.39145139,  0.451556,    0.51014116,  0.56717407],
    [ 0.66382255,  0.76674007,  0.87195994,  0.97902709,  1.08751345],
    [ 0.74192008,  0.90592151,  1.07717006,  1.25120233,  1.42395676]])
error = max(rel_error(expected_next_h, next_h.numpy()),
            rel_error(expected_next_c, next_c.numpy()))
""",
        1e-8,
    ),
    "lstm_forward": (
        """
N, D, H, T = 2, 5, 4, 3
x = torch.from_numpy(np.linspace(-0.4, 0.6, num=N*T*D).reshape(N, T, D))
h0 = torch.from_numpy(np.linspace(-0.4, 0.8, num=N*H).reshape(N, H))
Wx = torch.from_numpy(np.linspace(-0.2, 0.9, num=4*D*H).reshape(D, 4 * H))
Wh = torch.from_numpy(np.linspace(-0.3, 0.6, num=4*H*H).reshape(H, 4 * H))
b = torch.from_numpy(np.linspace(0.2, 0.7, num=4*H))
h = lstm_forward(x, h0, Wx, Wh, b)
expected_h = np.asarray([
 [[ 0.01764008,  0.01823233,  0.01882671,  0.0194232 ],
  [ 0.11287491,  0.12146228,  0.13018446,  0.13902939],
  [ 0.31358768,  0.33338627,  0.35304453,  0.37250975]],
 [[ 0.45767879,  0.4761092,   0.4936887,   0.51041945],
  [ 0.6704845,   0.69350089,  0.71486014,  0.7346449 ],
  [ 0.81733511,  0.83677871,  0.85403753,  0.86935314]]])
error = rel_error(expected_h, h.numpy())
""",
        1e-7,
    ),
    "captioning_rnn_loss": (
        """
N, D, W, H = 10, 20, 30, 40
word_to_idx = {'<NULL>': 0, 'cat': 2, 'dog': 3}
V = len(word_to_idx)
T = 13
model = CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H,
                      cell_type='rnn', dtype=torch.float64)
for k, v in model.params.items():
    model.params[k] = torch.from_numpy(
        np.linspace(-1.4, 1.3, num=v.numel()).reshape(*v.shape))
features = torch.from_numpy(np.linspace(-1.5, 0.3, num=(N * D)).reshape(N, D))
captions = torch.from_numpy((np.arange(N * T) % V).reshape(N, T))
loss = model.loss(features, captions).item()
expected_loss = 9.83235591003
error = abs(loss - expected_loss)
""",
        1e-10,
    ),
    "captioning_lstm_loss": (
        """
N, D, W, H = 10, 20, 30, 40
word_to_idx = {'<NULL>': 0, 'cat': 2, 'dog': 3}
V = len(word_to_idx)
T = 13
model = CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H,
                      cell_type='lstm', dtype=torch.float64)
for k, v in model.params.items():
    model.params[k] = torch.from_numpy(
        np.linspace(-1.4, 1.3, num=v.numel()).reshape(*v.shape))
features = torch.from_numpy(np.linspace(-0.5, 1.7, num=N*D).reshape(N, D))
captions = torch.from_numpy((np.arange(N * T) % V).reshape(N, T))
loss = model.loss(features, captions).item()
expected_loss = 9.82445935443
error = abs(loss - expected_loss)
""",
        1e-10,
    ),
}

SETUP = """
import numpy as np
import torch
from {port}.rnn_layers_pytorch import *
from {port}.classifiers.rnn_pytorch import CaptioningRNN
from {port}.captioning_solver_pytorch import CaptioningSolverPytorch, decode_captions
from {port}.gradient_check import eval_numerical_gradient, rel_error
"""


def run_cell(name: str) -> dict:
    namespace: dict = {}
    exec(SETUP.format(port=PORT), namespace)
    exec(CELLS[name][0], namespace)
    return namespace


@pytest.mark.parametrize("name", CELLS)
def test_the_notebook_checks_reproduce_the_published_values(name):
    assert run_cell(name)["error"] < CELLS[name][1]


def test_the_edition_s_names_are_xpnn_s():
    namespace = run_cell("rnn_forward")
    assert namespace["rnn_forward"].__module__ == "xpnn.torch.captioning"
    assert namespace["torch"] is torch
    out = namespace["rnn_forward"](
        *(
            t.requires_grad_()
            for t in (
                namespace["x"],
                namespace["h0"],
                namespace["Wx"],
                namespace["Wh"],
                namespace["b"],
            )
        )
    )
    assert out.grad_fn is not None and type(out.grad_fn).__name__ == "RnnBackward"


# --------------------------------------------------------------------------- gradients


def _plain_torch_loss(model, features, captions):
    """The same model in plain torch code (the reference a student writes)."""
    p = model.params
    words, targets = captions[:, :-1], captions[:, 1:]
    h = features @ p["W_proj"] + p["b_proj"]
    c = torch.zeros_like(h)
    hs = []
    for t in range(words.shape[1]):
        a = p["W_embed"][words[:, t]] @ p["Wx"] + h @ p["Wh"] + p["b"]
        if model.cell_type == "rnn":
            h = torch.tanh(a)
        else:
            i, f, o, g = a.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    scores = torch.stack(hs, dim=1) @ p["W_vocab"] + p["b_vocab"]
    per_word = torch.nn.functional.cross_entropy(
        scores.reshape(-1, scores.shape[-1]), targets.reshape(-1), reduction="none"
    )
    return (per_word * (targets.reshape(-1) != 0)).sum() / features.shape[0]


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_autograd_through_xpnn_matches_numerical_and_plain_torch_gradients(cell_type):
    """The notebook's gradient check of the model: autograd (through xpnn's backward) against
    eval_numerical_gradient of the loss, each parameter; and against plain torch autograd."""
    namespace = run_cell("captioning_rnn_loss")
    torch.manual_seed(0)
    word_to_idx = {"<NULL>": 0, "<START>": 1, "<END>": 2, "cat": 3, "dog": 4}
    model = namespace["CaptioningRNN"](word_to_idx, input_dim=6, wordvec_dim=5, hidden_dim=4,
                                       cell_type=cell_type, dtype=torch.float64)  # fmt: skip
    for key, value in model.params.items():  # values of one scale: no vanishing gradient
        model.params[key] = 0.5 * torch.randn(value.shape, dtype=torch.float64)
    features = torch.randn(3, 6, dtype=torch.float64)
    captions = torch.randint(0, 5, (3, 6))
    for p in model.params.values():
        p.requires_grad_()
    model.loss(features, captions).backward()
    ours = {k: v.grad.clone() for k, v in model.params.items()}
    for p in model.params.values():
        p.grad = None
    _plain_torch_loss(model, features, captions).backward()
    for name, value in model.params.items():
        torch.testing.assert_close(ours[name], value.grad, rtol=1e-10, atol=1e-12)
        with torch.no_grad():
            original = value.detach().clone()

            def f(w, value=value, original=original):
                value.copy_(torch.as_tensor(w))
                loss = model.loss(features, captions).item()
                value.copy_(original)
                return loss

            numeric = eval_numerical_gradient(f, original.numpy().copy(), verbose=False)
        assert rel_error(ours[name].numpy(), numeric) < 1e-6, name


def test_a_wrong_backward_fails_the_comparison(monkeypatch):
    """The same comparison catches an xpnn backward that is wrong (the LSTM's, scaled)."""
    torch.manual_seed(1)
    model = run_cell("captioning_lstm_loss")["CaptioningRNN"](
        {"<NULL>": 0, "a": 1, "b": 2}, 4, 3, 2, "lstm", dtype=torch.float64
    )
    features, captions = torch.randn(2, 4, dtype=torch.float64), torch.randint(0, 3, (2, 5))
    original = XF.lstm.autograd_function.backward

    def scaled(ctx, *douts):
        return tuple(None if g is None else 1.5 * g for g in original(ctx, *douts))

    monkeypatch.setattr(XF.lstm.autograd_function, "backward", staticmethod(scaled))
    Wh = model.params["Wh"].requires_grad_()
    model.loss(features, captions).backward()
    ours, Wh.grad = Wh.grad.clone(), None
    monkeypatch.undo()
    _plain_torch_loss(model, features, captions).backward()
    assert not torch.allclose(ours, Wh.grad)


# --------------------------------------------------------------------------- model and solver


def test_the_parameters_are_drawn_as_the_edition_draws_them():
    torch.manual_seed(231)
    namespace = run_cell("rnn_forward")
    model = namespace["CaptioningRNN"]({"<NULL>": 0, "x": 1}, 6, 5, 4, "lstm")
    torch.manual_seed(231)
    expected = {
        "W_embed": torch.randn(2, 5) / 100,
        "W_proj": torch.randn(6, 4) / np.sqrt(6),
        "b_proj": torch.zeros(4),
        "Wx": torch.randn(5, 16) / np.sqrt(5),
        "Wh": torch.randn(4, 16) / np.sqrt(4),
        "b": torch.zeros(16),
        "W_vocab": torch.randn(4, 2) / np.sqrt(4),
        "b_vocab": torch.zeros(2),
    }
    assert list(model.params) == list(expected)
    for key, value in expected.items():
        torch.testing.assert_close(model.params[key], value, rtol=0, atol=0)
        assert model.params[key].dtype == torch.float32


def test_the_solver_overfits_a_small_dataset_and_samples_it():
    """The notebook's "overfit small data" cell on a made-up dataset of its format: the
    loss falls far, and sampling gives back the training captions."""
    words = ["<NULL>", "<START>", "<END>", "a", "cat", "dog", "sits", "runs"]
    word_to_idx = {w: i for i, w in enumerate(words)}
    captions = np.array([[1, 3, 4, 6, 2, 0], [1, 3, 5, 7, 2, 0]])
    data = {"train_captions": np.repeat(captions, 25, axis=0),
            "train_image_idxs": np.repeat(np.arange(2), 25),
            "train_features": np.eye(2, 8, dtype=np.float32),
            "train_urls": np.array(["u0", "u1"])}  # fmt: skip
    np.random.seed(231)  # noqa: NPY002  (the solver samples from the global RNG)
    torch.manual_seed(231)
    namespace = run_cell("rnn_forward")
    model = namespace["CaptioningRNN"](word_to_idx, input_dim=8, wordvec_dim=16, hidden_dim=32,
                                       cell_type="lstm")  # fmt: skip
    solver = namespace["CaptioningSolverPytorch"](model, data, learning_rate=5e-3, batch_size=25,
                                                  num_epochs=50, verbose=False)  # fmt: skip
    solver.train()
    assert len(solver.loss_history) == 100 and solver.epoch == 50
    assert float(solver.loss_history[-1]) < 0.05 * float(solver.loss_history[0])
    assert not any(p.requires_grad for p in model.params.values())
    sampled = model.sample(torch.from_numpy(data["train_features"]), max_length=5)
    decoded = namespace["decode_captions"](sampled.numpy(), words)
    assert decoded == ["a cat sits <END>", "a dog runs <END>"]


def test_bad_arguments_name_themselves():
    from xpnn.torch.captioning import CaptioningRNN, CaptioningSolverPytorch

    with pytest.raises(ValueError, match="cell_type"):
        CaptioningRNN({"<NULL>": 0}, cell_type="gru")
    with pytest.raises(TypeError, match="dtype"):
        CaptioningRNN({"<NULL>": 0}, dtype="float64")
    with pytest.raises(ValueError, match="Unrecognized arguments 'lr'"):
        CaptioningSolverPytorch(CaptioningRNN({"<NULL>": 0}), {}, lr=1)


def test_the_edition_s_sigmoid_helper_is_stable():
    """Finite at any magnitude, and 1 / (1 + exp(-x)) where that does not overflow."""
    namespace = run_cell("rnn_forward")
    x = torch.linspace(-30, 30, 61, dtype=torch.float64)
    want = 1 / (1 + np.exp(-x.numpy()))
    np.testing.assert_allclose(namespace["sigmoid"](x).numpy(), want, rtol=1e-14)
    extreme = namespace["sigmoid"](torch.tensor([-1e4, 1e4], dtype=torch.float32))
    assert extreme.tolist() == [0.0, 1.0]
