"""The Solver: the assignment's loop, exact resume from atomic checkpoints, NaN handling."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import xpnn
from xpnn import affine_backward, affine_forward, softmax_loss
from xpnn.solver import Solver, TrainingDiverged, save_npz_atomically


class SoftmaxRegression:
    """A one-layer model on the selected backend (independent of xpnn.classifiers)."""

    def __init__(self, bk, dim, classes, seed=0, reg=0.0):
        rng = np.random.default_rng(seed)
        self.params = {
            "W": bk.asarray(0.01 * rng.standard_normal((dim, classes))),
            "b": bk.asarray(np.zeros(classes)),
        }
        self.reg = reg
        self.calls = 0

    def loss(self, X, y=None):
        scores, cache = affine_forward(X, self.params["W"], self.params["b"])
        if y is None:
            return scores
        self.calls += 1
        loss, dscores = softmax_loss(scores, y)
        _, dW, db = affine_backward(dscores, cache)
        return loss, {"W": dW, "b": db}


def _blobs(n=120, dim=6, classes=3, seed=0):
    """Well-separated Gaussian blobs: a linear model fits them perfectly."""
    rng = np.random.default_rng(seed)
    centers = 4 * rng.standard_normal((classes, dim))
    y = rng.integers(0, classes, n)
    X = centers[y] + 0.3 * rng.standard_normal((n, dim))
    return {"X_train": X[:80], "y_train": y[:80], "X_val": X[80:], "y_val": y[80:]}


def _solver(bk, model, data, **kwargs):
    defaults = dict(
        update_rule="adam",
        optim_config={"learning_rate": 5e-2},
        batch_size=16,
        num_epochs=3,
        verbose=False,
        seed=7,
    )
    defaults.update(kwargs)
    return Solver(model, data, **defaults)


def test_trains_to_full_accuracy_and_keeps_histories(bk):
    data = _blobs()
    model = SoftmaxRegression(bk, 6, 3)
    solver = _solver(bk, model, data, num_epochs=4, lr_decay=0.9)
    solver.train()
    per_epoch = 80 // 16
    assert len(solver.loss_history) == 4 * per_epoch
    # Accuracy at the first iteration and each epoch's end (the last iteration is one).
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 4 + 1
    assert solver.best_val_acc == max(solver.val_acc_history) == 1.0
    assert solver.loss_history[-1] < solver.loss_history[0] / 10
    assert solver.optim_configs["W"]["learning_rate"] == pytest.approx(5e-2 * 0.9**4)
    assert xpnn._backend.backend_name(model.params["W"]) == bk.name


def test_data_on_numpy_model_on_the_backend(bk):
    """Each minibatch is moved to the model's backend; the data sets stay where they are."""
    data = _blobs()
    model = SoftmaxRegression(bk, 6, 3)
    _solver(bk, model, data, num_epochs=1).train()
    assert isinstance(data["X_train"], np.ndarray)
    assert xpnn._backend.backend_name(model.params["W"]) == bk.name


def test_unknown_arguments_and_update_rule():
    data = _blobs()

    model = SimpleNamespace(params={"W": np.zeros((6, 3))})
    with pytest.raises(ValueError, match="Unrecognized arguments learning_rate"):
        Solver(model, data, learning_rate=1e-3)
    with pytest.raises(ValueError, match='Invalid update_rule "nesterov"'):
        Solver(model, data, update_rule="nesterov")
    with pytest.raises(ValueError, match=r"data must hold .*missing \['y_val'\]"):
        Solver(model, {k: v for k, v in data.items() if k != "y_val"})


def test_resume_gives_exactly_the_uninterrupted_history(bk, tmp_path):
    data = _blobs()
    straight = _solver(bk, SoftmaxRegression(bk, 6, 3), data, num_epochs=3)
    straight.train()

    first = _solver(
        bk, SoftmaxRegression(bk, 6, 3), data, num_epochs=2, checkpoint_name=str(tmp_path / "run")
    )
    first.train()
    checkpoint = tmp_path / "run_epoch_002.npz"
    assert checkpoint.is_file() and first.last_checkpoint == checkpoint
    resumed = _solver(bk, SoftmaxRegression(bk, 6, 3, seed=99), data, num_epochs=3)
    resumed.load_checkpoint(checkpoint)
    resumed.train()

    assert resumed.loss_history == straight.loss_history
    assert resumed.train_acc_history == straight.train_acc_history
    assert resumed.val_acc_history == straight.val_acc_history
    assert resumed.best_val_acc == straight.best_val_acc
    for name in straight.model.params:
        np.testing.assert_array_equal(
            xpnn.to_numpy(resumed.model.params[name]), xpnn.to_numpy(straight.model.params[name])
        )
    assert resumed.model.params["W"].dtype == straight.model.params["W"].dtype


def test_checkpoint_is_npz_without_pickle(bk, tmp_path):
    solver = _solver(
        bk,
        SoftmaxRegression(bk, 6, 3),
        _blobs(),
        num_epochs=1,
        checkpoint_name=str(tmp_path / "c"),
    )
    solver.train()
    with np.load(tmp_path / "c_epoch_001.npz", allow_pickle=False) as archive:
        names = set(archive.files)
        assert {"param/W", "param/b", "best/W", "meta", "optim/W/m", "optim/W/v"} <= names
        for name in names:  # every member loads without pickle (no object arrays)
            assert archive[name].dtype != object
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c_epoch_000.npz", "c_epoch_001.npz"]


def test_a_failed_write_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save_npz_atomically(path, {"a": np.arange(3)})
    before = path.read_bytes()

    def broken(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        save_npz_atomically(path, {"a": np.arange(5)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # no temporary left


def test_nan_loss_stops_and_keeps_the_last_checkpoint(bk, tmp_path):
    data = _blobs()
    model = SoftmaxRegression(bk, 6, 3)
    original_loss = model.loss

    def loss(X, y=None):
        if y is not None and model.calls == 7:  # the 8th training step
            model.calls += 1
            return original_loss(X * np.nan, y)
        return original_loss(X, y)

    model.loss = loss
    solver = _solver(bk, model, data, num_epochs=3, checkpoint_name=str(tmp_path / "run"))
    with pytest.raises(TrainingDiverged, match=r"loss is nan at iteration 8 of 15 \(epoch 2\)"):
        solver.train()
    last = tmp_path / "run_epoch_001.npz"
    assert solver.last_checkpoint == last
    assert not (tmp_path / "run_epoch_002.npz").exists()
    resumed = _solver(bk, SoftmaxRegression(bk, 6, 3), data, num_epochs=3)
    resumed.load_checkpoint(last)  # intact and loadable
    assert resumed.iteration == 5 and resumed.epoch == 1


def test_load_checkpoint_errors(bk, tmp_path):
    solver = _solver(bk, SoftmaxRegression(bk, 6, 3), _blobs())
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        solver.load_checkpoint(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="is not a complete xpnn solver checkpoint"):
        solver.load_checkpoint(tmp_path / "junk.npz")
    other = _solver(
        bk,
        SoftmaxRegression(bk, 5, 3),
        _blobs(dim=5),
        num_epochs=1,
        checkpoint_name=str(tmp_path / "other"),
    )
    other.train()
    with pytest.raises(ValueError, match="parameter W has shape"):
        solver.load_checkpoint(tmp_path / "other_epoch_001.npz")


def test_verbose_without_a_terminal_prints_the_assignment_lines(bk, capsys):
    solver = _solver(
        bk, SoftmaxRegression(bk, 6, 3), _blobs(), num_epochs=1, verbose=True, print_every=2
    )
    solver.train()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("(Iteration 1 / 5) loss: ")
    assert any(line.startswith("(Epoch 0 / 1) train acc: ") for line in out)
    assert out[-1].startswith("(Epoch 1 / 1) train acc: ")


def test_progress_bar_when_asked(bk, capsys):
    _solver(
        bk, SoftmaxRegression(bk, 6, 3), _blobs(), num_epochs=1, verbose=True, progress=True
    ).train()
    captured = capsys.readouterr()
    assert "5/5" in captured.err  # tqdm's counter
    assert "(Epoch 1 / 1) train acc:" in captured.out + captured.err


def test_three_layer_convnet_overfits_fifty_images(bk):
    """The assignment's sanity check: a small conv net memorises a small training set."""
    digits = xpnn.load_digits(seed=1)
    small = {
        "X_train": digits["X_train"][:50].astype(np.float32),
        "y_train": digits["y_train"][:50],
        "X_val": digits["X_val"][:50].astype(np.float32),
        "y_val": digits["y_val"][:50],
    }
    np.random.seed(0)  # noqa: NPY002
    model = xpnn.ThreeLayerConvNet(
        input_dim=(1, 8, 8), num_filters=8, filter_size=3, hidden_dim=32,
        weight_scale=1e-1, backend=bk.name,
    )  # fmt: skip
    solver = Solver(
        model, small, update_rule="adam", optim_config={"learning_rate": 1e-2},
        batch_size=25, num_epochs=40, verbose=False, seed=0,
    )  # fmt: skip
    solver.train()
    assert solver.train_acc_history[-1] == 1.0
    assert solver.loss_history[-1] < 0.05


def test_resume_refuses_another_batch_size_and_a_finished_run(bk, tmp_path):
    data = _blobs()
    first = _solver(bk, SoftmaxRegression(bk, 6, 3), data, num_epochs=2,
                    checkpoint_name=str(tmp_path / "run"))  # fmt: skip
    first.train()
    other = _solver(bk, SoftmaxRegression(bk, 6, 3), data, num_epochs=3, batch_size=8)
    with pytest.raises(ValueError, match="trained with batch_size 16, this Solver has 8"):
        other.load_checkpoint(tmp_path / "run_epoch_002.npz")
    done = _solver(bk, SoftmaxRegression(bk, 6, 3), data, num_epochs=2)
    done.load_checkpoint(tmp_path / "run_epoch_002.npz")
    with pytest.raises(ValueError, match="nothing to train: the run is at epoch 2"):
        done.train()


def test_an_update_that_is_not_finite_is_not_applied(bk, tmp_path):
    """A finite loss whose update overflows: nothing is committed, the checkpoint is clean."""
    data = _blobs()
    model = SoftmaxRegression(bk, 6, 3)
    solver = _solver(bk, model, data, update_rule="sgd", optim_config={"learning_rate": np.inf},
                     num_epochs=2, checkpoint_name=str(tmp_path / "run"))  # fmt: skip
    before = {k: xpnn.to_numpy(v).copy() for k, v in model.params.items()}
    with pytest.raises(TrainingDiverged, match=r"the update made .* non-finite at iteration 1"):
        solver.train()
    for name, value in before.items():
        np.testing.assert_array_equal(xpnn.to_numpy(model.params[name]), value)
    assert solver.loss_history == [] and not list(tmp_path.iterdir())


def test_best_parameters_come_with_their_batchnorm_statistics(bk):
    data = {k: v.reshape(v.shape[0], -1) if k.startswith("X") else v for k, v in _blobs().items()}
    np.random.seed(0)  # noqa: NPY002
    model = xpnn.FullyConnectedNet([8], input_dim=6, num_classes=3, normalization="batchnorm",
                                   dtype=np.float64, backend=bk.name)  # fmt: skip
    solver = _solver(bk, model, data, num_epochs=3)
    solver.train()
    # After training, the model predicts with the best weights *and* their running averages.
    assert solver.check_accuracy(data["X_val"], data["y_val"]) == solver.best_val_acc
    for (i, key), value in solver.best_bn_stats.items():
        np.testing.assert_array_equal(xpnn.to_numpy(model.bn_params[i][key]), xpnn.to_numpy(value))


def test_numpy_integers_are_integers(bk):
    solver = _solver(bk, SoftmaxRegression(bk, 6, 3), _blobs(),
                     batch_size=np.int64(16), num_epochs=np.int32(1))  # fmt: skip
    solver.train()
    assert solver.epoch == 1
    with pytest.raises(TypeError, match=r"batch_size must be an integer; got 1\.5"):
        _solver(bk, SoftmaxRegression(bk, 6, 3), _blobs(), batch_size=1.5)


def test_a_truncated_checkpoint_is_a_clear_error(bk, tmp_path):
    solver = _solver(bk, SoftmaxRegression(bk, 6, 3), _blobs(), num_epochs=1,
                     checkpoint_name=str(tmp_path / "c"))  # fmt: skip
    solver.train()
    whole = (tmp_path / "c_epoch_001.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="is not a complete xpnn solver checkpoint"):
        solver.load_checkpoint(tmp_path / "cut.npz")


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os

    path = save_npz_atomically(tmp_path / "new.npz", {"a": np.arange(2)})
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o640)
    save_npz_atomically(path, {"a": np.arange(3)})  # an overwrite keeps the old mode
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_diverged_step_leaves_the_batchnorm_statistics(bk):
    data = {k: v.reshape(v.shape[0], -1) if k.startswith("X") else v for k, v in _blobs().items()}
    np.random.seed(0)  # noqa: NPY002
    model = xpnn.FullyConnectedNet([8], input_dim=6, num_classes=3, normalization="batchnorm",
                                   dtype=np.float64, backend=bk.name)  # fmt: skip
    solver = _solver(bk, model, data, update_rule="sgd", optim_config={"learning_rate": 1e-2},
                     num_epochs=2)  # fmt: skip
    solver.train()
    before = {
        k: xpnn.to_numpy(v).copy()
        for k, v in model.bn_params[0].items()
        if k.startswith("running")
    }
    data["X_train"] = data["X_train"] * np.nan
    solver.X_train = data["X_train"]
    solver.num_epochs = 3
    with pytest.raises(TrainingDiverged, match=r"loss is nan|non-finite"):
        solver.train()
    for key, value in before.items():
        np.testing.assert_array_equal(xpnn.to_numpy(model.bn_params[0][key]), value)


# --------------------------------------------------------------------------- best parameters


class ShrinkingSoftmax(SoftmaxRegression):
    """A model that changes its live weights in place on every loss (a max-norm-like
    shrink), as models with in-place constraints or state do: a best-parameter snapshot
    that aliased the live arrays would shrink with them."""

    def loss(self, X, y=None):
        out = super().loss(X, y)
        if y is not None:
            self.params["W"] *= 0.9
        return out


class ScriptedAccuracy(Solver):
    """A Solver whose accuracy checks return scripted values, in order, and which records
    the model's parameters at each check."""

    def __init__(self, *args, script, **kwargs):
        super().__init__(*args, **kwargs)
        self.script = list(script)
        self.snapshots = []

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        if X is self.X_train:
            self.snapshots.append(
                {k: xpnn.to_numpy(v).copy() for k, v in self.model.params.items()}
            )
            return self.script[len(self.snapshots) - 1][0]
        return self.script[len(self.snapshots) - 1][1]


def test_the_restored_parameters_are_the_best_on_validation_not_on_training(bk):
    """Train accuracy peaks at the last check, validation at the third: the Solver must keep
    and restore the third check's parameters (a survivor of the planted-bug review chose
    by train accuracy)."""
    data = _blobs()
    # checks: iteration 0, the end of epochs 1, 2, 3 (the last iteration)
    script = [(0.10, 0.20), (0.50, 0.40), (0.60, 0.80), (0.99, 0.30)]
    solver = ScriptedAccuracy(
        ShrinkingSoftmax(bk, 6, 3), data, script=script, update_rule="sgd",
        optim_config={"learning_rate": 0.1}, batch_size=16, num_epochs=3, verbose=False, seed=3,
    )  # fmt: skip
    solver.train()
    assert len(solver.snapshots) == 4
    assert solver.val_acc_history == [v for _, v in script]
    assert solver.train_acc_history == [t for t, _ in script]
    assert solver.best_val_acc == 0.80 and solver.best_epoch == 2
    for name, best in solver.snapshots[2].items():
        np.testing.assert_array_equal(xpnn.to_numpy(solver.model.params[name]), best)
        np.testing.assert_array_equal(xpnn.to_numpy(solver.best_params[name]), best)
    assert not np.array_equal(solver.snapshots[3]["W"], solver.snapshots[2]["W"])


def test_the_best_parameters_do_not_alias_the_live_ones(bk):
    """The snapshot is a copy: a model that changes its weights in place (on NumPy,
    PyTorch, array-api-strict) leaves it alone, during training and after the restore."""
    data = _blobs()
    script = [(0.1, 0.9), (0.2, 0.1), (0.3, 0.1), (0.4, 0.1)]  # the best is the first check
    solver = ScriptedAccuracy(
        ShrinkingSoftmax(bk, 6, 3), data, script=script, update_rule="sgd",
        optim_config={"learning_rate": 0.1}, batch_size=16, num_epochs=3, verbose=False, seed=3,
    )  # fmt: skip
    solver.train()
    first = solver.snapshots[0]["W"]
    np.testing.assert_array_equal(xpnn.to_numpy(solver.best_params["W"]), first)
    np.testing.assert_array_equal(xpnn.to_numpy(solver.model.params["W"]), first)
    # Training on from the restored weights changes them in place; the best stay.
    solver.model.loss(bk.asarray(data["X_train"][:4]), bk.asarray(data["y_train"][:4]))
    np.testing.assert_array_equal(xpnn.to_numpy(solver.best_params["W"]), first)
    assert solver.best_params["W"] is not solver.model.params["W"]


# --------------------------------------------------------------------------- global RNG


def _dropout_run(data, num_epochs, checkpoint_name=None):
    model = xpnn.FullyConnectedNet(
        [10], input_dim=6, num_classes=3, dropout_keep_ratio=0.5, dtype=np.float64,
        weight_scale=0.1,
    )  # fmt: skip
    solver = Solver(
        model, data, update_rule="sgd_momentum", optim_config={"learning_rate": 0.05},
        batch_size=10, num_epochs=num_epochs, verbose=False, checkpoint_name=checkpoint_name,
    )  # fmt: skip
    return solver


def test_resume_is_exact_with_the_global_rng_and_numpy_dropout(bk, tmp_path):
    """The assignment's defaults: no seed anywhere, so the minibatches and NumPy's dropout
    masks both come from NumPy's global RNG. A resumed run must continue that RNG from the
    checkpoint, whatever was drawn from it in between (a survivor of the planted-bug review
    did not checkpoint it)."""
    if bk.name != "numpy":
        pytest.skip("NumPy's dropout draws from NumPy's global RNG; the others use their own")
    data = _blobs()
    np.random.seed(5)  # noqa: NPY002
    straight = _dropout_run(data, 3)
    straight.train()

    np.random.seed(5)  # noqa: NPY002
    first = _dropout_run(data, 2, checkpoint_name=str(tmp_path / "run"))
    first.train()
    np.random.seed(999)  # noqa: NPY002  (another notebook cell draws in between)
    np.random.rand(1234)  # noqa: NPY002
    resumed = _dropout_run(data, 3)  # its own initial weights, replaced by the checkpoint's
    resumed.load_checkpoint(tmp_path / "run_epoch_002.npz")
    resumed.train()

    assert len(straight.loss_history) == 24
    assert resumed.loss_history == straight.loss_history
    assert resumed.val_acc_history == straight.val_acc_history
    for name, value in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[name], value)
