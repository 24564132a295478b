"""The models' functional form and the Solver's compiled (``jax.jit``) step on JAX.

Oracles: the eager step (the assignment's loop, itself checked against published numbers
and numerical gradients) for the compiled one; ``model.loss`` for ``functional_loss``.
Compile-light: small models and data, each Solver compiles its step once.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from xpnn import optim, to_numpy
from xpnn.classifiers import FullyConnectedNet, ThreeLayerConvNet
from xpnn.solver import Solver, TrainingDiverged


def _data(n_train=60, n_val=20, dim=16, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = 2 * rng.standard_normal((classes, dim))
    y = rng.integers(0, classes, n_train + n_val)
    X = centers[y] + rng.standard_normal((n_train + n_val, dim))
    return {
        "X_train": X[:n_train],
        "y_train": y[:n_train],
        "X_val": X[n_train:],
        "y_val": y[n_train:],
    }


def _images(n_train=60, n_val=20, seed=0):
    data = _data(n_train, n_val, dim=64, seed=seed)
    return {k: v.reshape(-1, 1, 8, 8) if k.startswith("X") else v for k, v in data.items()}


def _fcn(backend, normalization="batchnorm", keep=1.0, seed=0, device=None):
    np.random.seed(seed)  # noqa: NPY002  (the assignment draws FullyConnectedNet's weights there)
    return FullyConnectedNet(
        [12, 10],
        input_dim=16,
        num_classes=4,
        normalization=normalization,
        dropout_keep_ratio=keep,
        reg=1e-3,
        weight_scale=0.2,
        dtype="float64",
        backend=backend,
        device=device,
    )


def _solver(model, data, **kwargs):
    settings = dict(
        update_rule="adam",
        optim_config={"learning_rate": 1e-2},
        lr_decay=0.9,
        batch_size=20,
        num_epochs=3,
        num_train_samples=None,
        verbose=False,
        seed=3,
    )
    settings.update(kwargs)
    return Solver(model, data, **settings)


def _close(a, b, what, rtol=1e-10):
    """Every array of dict ``a`` equals ``b``'s to ``rtol`` of the array's largest entry."""
    assert a.keys() == b.keys()
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        scale = max(float(np.max(np.abs(x))), 1e-300)
        assert float(np.max(np.abs(x - y))) <= rtol * scale, f"{what} {k}"


# --------------------------------------------------------------------- functional form


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_functional_loss_is_loss_without_touching_the_model(bk, normalization):
    data = _data()
    model = _fcn(bk.name, normalization, device=bk.device)
    X, y = bk.asarray(data["X_train"][:20]), bk.asarray(data["y_train"][:20])
    params, state = dict(model.params), model.state
    bn_before = [dict(p) for p in model.bn_params]

    loss, grads, new_state = model.functional_loss(params, state, X, y)
    assert [dict(p) for p in model.bn_params] == bn_before  # nothing written into the model
    scores = model.functional_loss(params, new_state, X)

    expected_loss, expected_grads = model.loss(X, y)  # the stateful form, the oracle
    np.testing.assert_allclose(to_numpy(loss), to_numpy(expected_loss), rtol=1e-14)
    _close({k: to_numpy(v) for k, v in grads.items()},
           {k: to_numpy(v) for k, v in expected_grads.items()}, "grad")  # fmt: skip
    _close({k: to_numpy(v) for k, v in new_state.items()},
           {k: to_numpy(v) for k, v in model.state.items()}, "state")  # fmt: skip
    assert sorted(new_state) == (
        ["running_mean1", "running_mean2", "running_var1", "running_var2"]
        if normalization == "batchnorm"
        else []
    )
    np.testing.assert_allclose(to_numpy(scores), to_numpy(model.loss(X)), rtol=1e-13)


def test_state_starts_as_zeros_and_load_state_checks_its_keys(bk):
    model = _fcn(bk.name, device=bk.device)
    assert all(float(np.max(np.abs(to_numpy(v)))) == 0 for v in model.state.values())
    state = {k: v + 1 for k, v in model.state.items()}
    model.load_state(state)
    assert float(to_numpy(model.bn_params[1]["running_var"])[0]) == 1
    with pytest.raises(ValueError, match="state must have the keys"):
        model.load_state({"running_mean1": state["running_mean1"]})
    with pytest.raises(ValueError, match="params must have the keys"):
        model.functional_loss({"W1": model.params["W1"]}, model.state, None)


def test_a_key_on_another_backend_is_refused(bk):
    if bk.name == "jax":
        pytest.skip("the key is JAX's own")
    model = _fcn(bk.name, keep=0.5, device=bk.device)
    X, y = bk.asarray(np.ones((4, 16))), bk.asarray(np.zeros(4, dtype=np.int64))
    with pytest.raises(TypeError, match="JAX random key"):
        model.functional_loss(model.params, model.state, X, y, key=object())


def test_init_config_fills_what_the_first_step_would(bk):
    w = bk.asarray(np.arange(6.0).reshape(2, 3))
    config = optim.init_config("adam", w, {"learning_rate": 0.5})
    assert config["learning_rate"] == 0.5 and config["t"] == 0 and config["beta2"] == 0.999
    assert float(np.max(np.abs(to_numpy(config["m"])))) == 0
    # A first step from the initialised config is the first step from the given one.
    dw = bk.asarray(np.linspace(-1, 1, 6).reshape(2, 3))
    a, _ = optim.adam(w, dw, config)
    b, _ = optim.adam(w, dw, {"learning_rate": 0.5})
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    with pytest.raises(ValueError, match="rule must be one of"):
        optim.init_config("lbfgs", w)


def test_jit_true_needs_jax_parameters(bk):
    if bk.name == "jax":
        pytest.skip("JAX parameters can be compiled")
    with pytest.raises(ValueError, match="jit=True needs a model with functional_loss"):
        _solver(_fcn(bk.name), _data(), jit=True)


# --------------------------------------------------------------------- the compiled step

jax = None


@pytest.fixture
def jx():
    global jax
    jax = pytest.importorskip("jax")
    if not jax.config.jax_enable_x64:
        pytest.skip("float64 comparisons need JAX_ENABLE_X64=1 (the tests-jax session sets it)")
    return jax


def _close_batchnorm_net(model, reference):
    """``_close`` for the parameters and running averages of two ``_fcn`` models.

    The biases in front of batch norm have an exactly zero gradient, so they move only on
    rounding noise (which a fused computation rounds differently): they must stay noise,
    tiny next to their layer's weights. Every other array agrees to 1e-10 of its scale.
    """
    mine, theirs = _params(model), _params(reference)
    for name in ("b1", "b2"):
        weight_scale = np.max(np.abs(theirs["W" + name[1:]]))
        for params in (mine, theirs):
            assert np.max(np.abs(params.pop(name))) < 1e-8 * weight_scale
    _close(mine, theirs, "param")
    _close(_states(model), _states(reference), "running average", rtol=1e-9)


def _params(model):
    return {k: np.asarray(v) for k, v in model.params.items()}


def _states(model):
    return {k: np.asarray(v) for k, v in model.state.items()}


def test_compiled_step_gives_the_eager_parameters(jx):
    data = _data()
    runs = {}
    for jit in (False, True):
        model = _fcn("jax")
        solver = _solver(model, data, jit=jit)
        solver.train()
        runs[jit] = (model, solver)
    (eager, eager_solver), (compiled, compiled_solver) = runs[False], runs[True]
    assert compiled_solver._compiled.traces["step"] == 1  # three epochs, lr decays: once
    np.testing.assert_allclose(compiled_solver.loss_history, eager_solver.loss_history,
                               rtol=1e-12)  # fmt: skip
    assert compiled_solver.val_acc_history == eager_solver.val_acc_history
    _close_batchnorm_net(compiled, eager)


def test_three_layer_convnet_compiled_equals_eager(jx):
    data = _images()
    runs = {}
    for jit in (False, True):
        np.random.seed(0)  # noqa: NPY002
        model = ThreeLayerConvNet((1, 8, 8), num_filters=4, filter_size=3, hidden_dim=12,
                                  num_classes=4, weight_scale=0.1, reg=1e-3, dtype="float64",
                                  backend="jax")  # fmt: skip
        solver = _solver(model, data, jit=jit, num_epochs=2)
        solver.train()
        runs[jit] = (model, solver)
    _close(_params(runs[True][0]), _params(runs[False][0]), "param")
    np.testing.assert_allclose(runs[True][1].loss_history, runs[False][1].loss_history,
                               rtol=1e-12)  # fmt: skip


def test_dropout_masks_come_from_the_step_key_and_resume_exactly(jx, tmp_path):
    data = _data()
    first = _fcn("jax", keep=0.6)
    straight = _solver(first, data, num_epochs=2, checkpoint_name=str(tmp_path / "run"))
    straight.train()
    straight.num_epochs = 3
    straight.train()  # continues in this process: the reference for the resumed run
    assert straight.jit and straight._compiled.traces["step"] == 1

    second = _fcn("jax", keep=0.6, seed=5)  # other weights: all must come from the file
    resumed = _solver(second, data, num_epochs=3)
    resumed.load_checkpoint(tmp_path / "run_epoch_002.npz")
    resumed.train()
    assert resumed.loss_history == straight.loss_history
    _close(_params(second), _params(first), "param", rtol=0)
    _close(_states(second), _states(first), "running average", rtol=0)

    # A fixed mask (a key baked in at trace time) would make the same minibatch give the
    # same loss at every step; a new key per step gives different masks.
    model = _fcn("jax", keep=0.6)
    X = jax.numpy.asarray(data["X_train"][:20])
    y = jax.numpy.asarray(data["y_train"][:20])
    losses = {
        float(model.functional_loss(model.params, model.state, X, y, key=jax.random.key(k))[0])
        for k in range(3)
    }
    assert len(losses) == 3


def test_a_non_finite_compiled_step_is_not_committed(jx):
    data = _data()
    model = _fcn("jax", normalization=None)
    solver = _solver(model, data, update_rule="sgd", optim_config={"learning_rate": float("inf")})
    before = _params(model)
    with pytest.raises(TrainingDiverged, match=r"non-finite|loss is"):
        solver.train()
    _close(_params(model), before, "param", rtol=0)
    assert solver.iteration == 0 and solver.loss_history == []


def test_checkpoints_cross_between_the_eager_and_the_compiled_step(jx, tmp_path):
    data = _data()
    eager = _solver(_fcn("jax"), data, jit=False, num_epochs=1, update_rule="sgd_momentum",
                    checkpoint_name=str(tmp_path / "eager"))  # fmt: skip
    eager.train()
    reference = _fcn("jax")
    straight = _solver(reference, data, jit=False, num_epochs=2, update_rule="sgd_momentum")
    straight.train()

    model = _fcn("jax", seed=9)
    resumed = _solver(model, data, num_epochs=2, update_rule="sgd_momentum")
    resumed.load_checkpoint(tmp_path / "eager_epoch_001.npz")
    resumed.train()
    assert resumed.jit
    np.testing.assert_allclose(resumed.loss_history, straight.loss_history, rtol=1e-12)
    _close_batchnorm_net(model, reference)


def test_nothing_traced_is_left_in_the_model(jx):
    model = _fcn("jax")
    params = model.params
    solver = _solver(model, _data(), num_epochs=1)
    solver._step(0, 1)
    assert model.params is params  # a step updates the dict in place, as the eager one does
    solver.train()
    leaves = [*model.params.values(), *model.state.values()]
    leaves += [v for c in solver.optim_configs.values() for v in c.values()]
    assert not any(isinstance(v, jax.core.Tracer) for v in leaves)
    assert type(solver.optim_configs["W1"]["t"]) is int
    assert type(solver.optim_configs["W1"]["learning_rate"]) is float


def test_a_subclass_that_overrides_loss_trains_eagerly(jx):
    class Custom(FullyConnectedNet):
        def loss(self, X, y=None):  # the assignment's extension point
            return super().loss(X, y)

    np.random.seed(0)  # noqa: NPY002
    model = Custom([5], input_dim=16, num_classes=4, dtype="float64", backend="jax")
    assert not _solver(model, _data()).jit
    assert _solver(_fcn("jax"), _data()).jit
    assert _solver(model, _data(), jit=True).jit  # asked for: compiled anyway


def test_a_seed_above_int32_trains_without_x64(jx):
    """NumPy takes seeds up to 2**32 - 1; the compiled step gets it as a uint32, which JAX
    traces without x64 too (a Python int above 2**31 - 1 overflowed int32)."""
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from xpnn.classifiers import FullyConnectedNet\n"
        "from xpnn.solver import Solver\n"
        "rng = np.random.default_rng(0)\n"
        "X, y = rng.standard_normal((40, 8)).astype('float32'), rng.integers(0, 3, 40)\n"
        "model = FullyConnectedNet([6], input_dim=8, num_classes=3, dropout_keep_ratio=0.8,\n"
        "                          dtype='float32', backend='jax')\n"
        "solver = Solver(model, {'X_train': X, 'y_train': y, 'X_val': X, 'y_val': y},\n"
        "                batch_size=10, num_epochs=1, seed=2**31 + 5, verbose=False)\n"
        "solver.train()\n"
        "assert solver.jit and np.isfinite(solver.loss_history).all()\n"
        "print('trained', len(solver.loss_history))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "trained 4"
