"""``CaptioningSolver``: the assignment's captioning loop, on the Solver's training loop.

The oracle of the loop is the assignment's algorithm written out here (sample_coco_minibatch,
model.loss, the update rule per parameter, the learning rate decayed per epoch); then what
the shared loop adds: exact resume from a checkpoint, a clean stop on a non-finite loss,
and a model on another backend than the data.
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnn import CaptioningRNN, CaptioningSolver, TrainingDiverged, optim
from xpnn.coco import decode_captions, sample_coco_minibatch

WORDS = ["<NULL>", "<START>", "<END>", "a", "cat", "dog", "sits", "runs", "big", "small"]


def _data(copies: int = 10) -> dict:
    """Four images with one caption each (repeated): captions that a small model can learn."""
    captions = np.array([
        [1, 3, 8, 4, 6, 2, 0],
        [1, 3, 9, 5, 7, 2, 0],
        [1, 3, 9, 4, 7, 2, 0],
        [1, 3, 8, 5, 6, 2, 0],
    ])  # fmt: skip
    rng = np.random.default_rng(0)
    return {
        "train_captions": np.tile(captions, (copies, 1)),
        "train_image_idxs": np.tile(np.arange(4), copies),
        "train_features": rng.standard_normal((4, 12)),
        "train_urls": np.array([f"u{i}" for i in range(4)]),
    }


def _model(cell_type="lstm", backend="numpy", seed=0):
    return CaptioningRNN({w: i for i, w in enumerate(WORDS)}, input_dim=12, wordvec_dim=8,
                         hidden_dim=16, cell_type=cell_type, dtype="float64", seed=seed,
                         backend=backend)  # fmt: skip


def _assignment_loop(model, data, update_rule, optim_config, lr_decay, batch_size, epochs):
    """The NumPy edition's CaptioningSolver.train, written out."""
    configs = {p: dict(optim_config) for p in model.params}
    update = getattr(optim, update_rule)
    per_epoch = max(data["train_captions"].shape[0] // batch_size, 1)
    losses = []
    for t in range(epochs * per_epoch):
        captions, features, _ = sample_coco_minibatch(data, batch_size=batch_size, split="train")
        loss, grads = model.loss(features, captions)
        losses.append(float(loss))
        for p, w in model.params.items():
            model.params[p], configs[p] = update(w, grads[p], configs[p])
        if (t + 1) % per_epoch == 0:
            for config in configs.values():
                config["learning_rate"] *= lr_decay
    return losses


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_the_loop_is_the_assignment_s(cell_type):
    data = _data()
    settings = {"update_rule": "adam", "optim_config": {"learning_rate": 5e-3},
                "lr_decay": 0.9, "batch_size": 8}  # fmt: skip
    np.random.seed(231)  # noqa: NPY002  (the assignment's solver draws from the global RNG)
    reference = _model(cell_type)
    want = _assignment_loop(reference, data, epochs=3, **settings)
    np.random.seed(231)  # noqa: NPY002
    model = _model(cell_type)
    solver = CaptioningSolver(model, data, num_epochs=3, verbose=False, **settings)
    solver.train()
    assert solver.loss_history == want
    assert solver.epoch == 3 and solver.iteration == 15
    for name, value in reference.params.items():
        np.testing.assert_array_equal(model.params[name], value)


def test_it_overfits_and_samples_the_training_captions(capsys):
    data = _data()
    model = _model()
    solver = CaptioningSolver(model, data, update_rule="adam",
                              optim_config={"learning_rate": 2e-2}, batch_size=8, num_epochs=30,
                              print_every=50, seed=0)  # fmt: skip
    solver.train()
    out = capsys.readouterr().out
    assert out.startswith("(Iteration 1 / 150) loss: ") and "(Iteration 101 / 150)" in out
    assert solver.loss_history[-1] < 0.02 * solver.loss_history[0]
    sampled = model.sample(data["train_features"], max_length=6)
    truth = decode_captions(data["train_captions"][:4], WORDS)
    assert decode_captions(sampled, WORDS) == [c.removeprefix("<START> ") for c in truth]
    with pytest.raises(NotImplementedError, match="no accuracy"):
        solver.check_accuracy(data["train_features"], data["train_captions"])


def test_a_resumed_run_continues_exactly(tmp_path):
    data = _data()
    settings = {"update_rule": "sgd_momentum", "optim_config": {"learning_rate": 1e-2},
                "lr_decay": 0.8, "batch_size": 8, "verbose": False, "seed": 3}  # fmt: skip
    straight = CaptioningSolver(_model(), data, num_epochs=3, **settings)
    straight.train()
    first = CaptioningSolver(_model(), data, num_epochs=2,
                             checkpoint_name=str(tmp_path / "run"), **settings)  # fmt: skip
    first.train()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "run_epoch_000.npz", "run_epoch_001.npz", "run_epoch_002.npz"]  # fmt: skip
    resumed = CaptioningSolver(_model(seed=9), data, num_epochs=3, **settings)
    resumed.load_checkpoint(tmp_path / "run_epoch_002.npz")
    resumed.train()
    assert resumed.loss_history == straight.loss_history
    for name, value in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[name], value)
    velocity = straight.optim_configs["Wh"]["velocity"]
    np.testing.assert_array_equal(resumed.optim_configs["Wh"]["velocity"], velocity)


def test_a_non_finite_loss_stops_before_the_update():
    data = _data()
    model = _model()
    solver = CaptioningSolver(model, data, optim_config={"learning_rate": 1e300},
                              batch_size=8, verbose=False, seed=0)  # fmt: skip
    with pytest.raises(TrainingDiverged, match="at iteration 2 of 50"):
        solver.train()
    assert all(np.isfinite(v).all() for v in model.params.values())
    assert len(solver.loss_history) == 1


def test_the_model_may_live_on_another_backend(bk):
    data = _data(copies=2)
    np.random.seed(0)  # noqa: NPY002
    model = _model(backend=bk.name)
    solver = CaptioningSolver(model, data, batch_size=4, num_epochs=1, verbose=False, seed=1)
    solver.train()
    assert len(solver.loss_history) == 2 and np.isfinite(solver.loss_history).all()
    reference = _model(backend="numpy")
    twin = CaptioningSolver(reference, data, batch_size=4, num_epochs=1, verbose=False, seed=1)
    twin.train()
    np.testing.assert_allclose(solver.loss_history, twin.loss_history, rtol=1e-10)


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [
        ({}, {}, ValueError, "data must hold train_captions"),
        (None, {"learning_rate": 1}, ValueError, "Unrecognized arguments learning_rate"),
        (None, {"update_rule": "nesterov"}, ValueError, "Invalid update_rule"),
        (None, {"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_arguments_name_themselves(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        CaptioningSolver(_model(), _data() if data is None else data, **kwargs)


def test_on_jax_the_compiled_step_equals_the_eager_one(bk):
    """One jax.jit step (forward, backward, update; the LSTM's loop a lax.scan), compiled
    once, gives the eager step's losses and parameters."""
    if bk.name != "jax":
        pytest.skip("the compiled step is JAX's")
    data = _data(copies=4)
    runs = {}
    for jit in (True, False):
        np.random.seed(0)  # noqa: NPY002
        solver = CaptioningSolver(_model(backend="jax"), data, update_rule="adam",
                                  optim_config={"learning_rate": 1e-2}, lr_decay=0.9,
                                  batch_size=4, num_epochs=2, verbose=False, jit=jit)  # fmt: skip
        solver.train()
        runs[jit] = solver
    assert runs[True].jit and not runs[False].jit
    assert runs[True]._compiled.traces["step"] == 1
    np.testing.assert_allclose(runs[True].loss_history, runs[False].loss_history, rtol=1e-10)
    for name, value in runs[False].model.params.items():
        np.testing.assert_allclose(np.asarray(runs[True].model.params[name]), np.asarray(value),
                                   rtol=1e-9, atol=1e-12)  # fmt: skip


def test_captions_outside_the_vocabulary_are_refused_before_training():
    data = _data()
    data["train_captions"] = data["train_captions"].copy()
    data["train_captions"][7, 3] = len(WORDS)
    solver = CaptioningSolver(_model(), data, verbose=False, seed=0)
    with pytest.raises(ValueError, match=r"train_captions hold word indices outside the model's"):
        solver.train()
    assert solver.loss_history == []


class _Bigram:
    """A model that is not a CaptioningRNN: scores of the next word from the current one."""

    def __init__(self, vocabulary):
        self.params = {"W": np.zeros((vocabulary, vocabulary))}

    def loss(self, features, captions):
        W = self.params["W"]
        words, targets = captions[:, :-1].ravel(), captions[:, 1:].ravel()
        scores = W[words]
        scores = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(len(words)), targets]).sum() / captions.shape[0]
        p[np.arange(len(words)), targets] -= 1
        dW = np.zeros_like(W)
        np.add.at(dW, words, p / captions.shape[0])
        return loss, {"W": dW}


def test_any_model_with_params_and_loss_trains():
    """The assignment's solver asks a model for params and loss(features, captions) only."""
    model = _Bigram(len(WORDS))
    solver = CaptioningSolver(model, _data(), update_rule="adam",
                              optim_config={"learning_rate": 0.1}, batch_size=8, num_epochs=5,
                              verbose=False, seed=0)  # fmt: skip
    solver.train()
    assert solver.loss_history[-1] < 0.5 * solver.loss_history[0]
