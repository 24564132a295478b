"""Data parallelism on JAX: ``Solver(devices=...)`` shards each minibatch over devices.

Oracles: the one-device compiled step on the same global batch (itself checked against
the eager step and numerical gradients) for the sharded step; the one-device accuracy for
the sharded one; an uninterrupted run for a resumed one; hand-computed indices for the
sampling rule. Needs 4 JAX devices: the tests-jax session forces 4 CPU devices with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``.
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnn import optim
from xpnn.classifiers import FullyConnectedNet, ThreeLayerConvNet
from xpnn.solver import Solver

jax = pytest.importorskip("jax")

DEVICES = 4


if not jax.config.jax_enable_x64:
    pytest.skip("float64 comparisons need JAX_ENABLE_X64=1 (the tests-jax session sets it)",
                allow_module_level=True)  # fmt: skip
if len(jax.devices()) < DEVICES:
    pytest.skip(
        f"needs {DEVICES} JAX devices; run with "
        f"XLA_FLAGS=--xla_force_host_platform_device_count={DEVICES} (tests-jax does)",
        allow_module_level=True,
    )


def _data(n_train=64, n_val=22, dim=16, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = 2 * rng.standard_normal((classes, dim))
    y = rng.integers(0, classes, n_train + n_val)
    X = centers[y] + rng.standard_normal((n_train + n_val, dim))
    return {"X_train": X[:n_train], "y_train": y[:n_train], "X_val": X[n_train:],
            "y_val": y[n_train:]}  # fmt: skip


def _fcn(normalization=None, keep=1.0, seed=0):
    np.random.seed(seed)  # noqa: NPY002  (the assignment draws the weights there)
    return FullyConnectedNet([12, 10], input_dim=16, num_classes=4, normalization=normalization,
                             dropout_keep_ratio=keep, reg=1e-3, weight_scale=0.2,
                             dtype="float64", backend="jax")  # fmt: skip


def _convnet(seed=0):
    np.random.seed(seed)  # noqa: NPY002
    return ThreeLayerConvNet(input_dim=(1, 8, 8), num_filters=4, filter_size=3, hidden_dim=10,
                             num_classes=4, weight_scale=0.1, reg=1e-3, dtype="float64",
                             backend="jax")  # fmt: skip


def _solver(model, data, **kwargs):
    settings = dict(update_rule="adam", optim_config={"learning_rate": 1e-2}, batch_size=16,
                    num_epochs=2, num_train_samples=None, verbose=False, seed=3)  # fmt: skip
    settings.update(kwargs)
    return Solver(model, data, **settings)


@pytest.mark.parametrize(
    "make_model",
    [
        pytest.param(_fcn, id="fcn"),
        pytest.param(lambda: _fcn("batchnorm"), id="fcn-batchnorm"),
        pytest.param(lambda: _fcn("layernorm", keep=0.7), id="fcn-layernorm-dropout"),
        pytest.param(_convnet, id="convnet"),
    ],
)
def test_a_four_device_step_equals_the_one_device_step(make_model):
    from xpnn._compiled_step import CompiledStep
    from xpnn._data_parallel import DataParallel

    model = make_model()
    data = _data()
    X = data["X_train"][:16]
    if isinstance(model, ThreeLayerConvNet):
        X = np.concatenate([X, X, X, X], axis=1).reshape(16, 1, 8, 8)
    y = data["y_train"][:16]
    configs = {n: optim.init_config("sgd_momentum", w, {"learning_rate": 0.1})
               for n, w in model.params.items()}  # fmt: skip
    outputs = []
    for parallel in (None, DataParallel(DEVICES)):
        step = CompiledStep(model, optim.sgd_momentum, parallel)
        batch = (jax.numpy.asarray(X), jax.numpy.asarray(y))
        if parallel is not None:
            batch = parallel.shard_batch(X, y)
            assert len(batch[0].sharding.device_set) == DEVICES
        outputs.append(step.step(model.params, model.state, configs, *batch, 7, 0))
    (loss, finite, params, state, new_configs), sharded = outputs
    assert sharded[0] == pytest.approx(loss, rel=1e-12) and sharded[1] == finite
    # the biases in front of batch norm have an exactly zero gradient: rounding noise moves
    # them, so every array is compared on the scale of the largest parameter
    scale = max(np.max(np.abs(np.asarray(w))) for w in params.values())
    for name, w in params.items():
        np.testing.assert_allclose(np.asarray(sharded[2][name]), np.asarray(w), rtol=1e-12,
                                   atol=1e-12 * scale, err_msg=name)  # fmt: skip
        assert sharded[2][name].sharding.is_fully_replicated
        np.testing.assert_allclose(np.asarray(sharded[4][name]["velocity"]),
                                   np.asarray(new_configs[name]["velocity"]), rtol=1e-12,
                                   atol=1e-12 * scale)  # fmt: skip
    # batch norm's running averages: statistics of the whole global batch, as on one device
    for name, value in state.items():
        np.testing.assert_allclose(np.asarray(sharded[3][name]), np.asarray(value), rtol=1e-12,
                                   err_msg=name)  # fmt: skip


def test_per_device_batch_norm_statistics_would_be_caught():
    """The oracle can tell global from per-device statistics: the latter differ."""
    model = _fcn("batchnorm")
    X, y = _data()["X_train"][:16], _data()["y_train"][:16]
    whole = model.functional_loss(model.params, model.state, jax.numpy.asarray(X),
                                  jax.numpy.asarray(y))  # fmt: skip
    quarters = [model.functional_loss(model.params, model.state, jax.numpy.asarray(X[i::4]),
                                      jax.numpy.asarray(y[i::4])) for i in range(4)]  # fmt: skip
    per_device = np.mean([float(q[0]) for q in quarters])
    assert abs(per_device - float(whole[0])) > 1e-3


def test_sampling_draws_from_every_devices_part():
    from xpnn._data_parallel import DataParallel

    parallel = DataParallel(DEVICES)
    rows = parallel.sample(np.random.RandomState(5), 41, 8)  # parts of 10 rows, 1 left over
    draws = np.random.RandomState(5).choice(10, (4, 2))
    np.testing.assert_array_equal(rows, (draws + 10 * np.arange(4)[:, None]).reshape(-1))
    one = DataParallel(1).sample(np.random.RandomState(5), 41, 8)
    np.testing.assert_array_equal(one, np.random.RandomState(5).choice(41, 8))


def test_bad_settings_are_refused_with_the_argument_named():
    data = _data()
    with pytest.raises(ValueError, match="batch_size 18 does not split over the 4 devices"):
        _solver(_fcn(), data, batch_size=18, devices=DEVICES)
    with pytest.raises(ValueError, match=r"devices=64, but JAX sees .*xla_force_host_platform"):
        _solver(_fcn(), data, devices=64)
    with pytest.raises(ValueError, match="devices= shards the compiled JAX step"):
        _solver(_fcn(), data, devices=DEVICES, jit=False)
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:DEVICES]), ("data",))
    with pytest.raises(ValueError, match="the mesh needs an axis named 'batch'"):
        _solver(_fcn(), data, devices=mesh)
    with pytest.raises(TypeError, match=r"devices must be an integer; got 2\.5"):
        _solver(_fcn(), data, devices=2.5)
    with pytest.raises(TypeError, match="devices must be an integer; got True"):
        _solver(_fcn(), data, devices=True)
    with pytest.raises(ValueError, match="devices must be a positive int, a sequence"):
        _solver(_fcn(), data, devices="two")
    with pytest.raises(ValueError, match="devices must be at least 1; got 0"):
        _solver(_fcn(), data, devices=0)
    with pytest.raises(ValueError, match="devices: an empty sequence"):
        _solver(_fcn(), data, devices=[])
    with pytest.raises(ValueError, match="devices lists a device more than once"):
        _solver(_fcn(), data, devices=[jax.devices()[0]] * 2)


def test_a_mesh_with_a_batch_axis_is_accepted():
    mesh = jax.make_mesh((2, 2), ("batch", "model"), devices=jax.devices()[:DEVICES])
    solver = _solver(_fcn(), _data(), devices=mesh, num_epochs=1)
    solver.train()
    assert solver.parallel.size == 2 and np.isfinite(solver.loss_history).all()


def test_sharded_accuracy_equals_the_one_device_accuracy():
    data = _data(n_val=22)  # not a multiple of 4: the last batch is padded and weighted 0
    model = _fcn("batchnorm")
    _solver(model, data, num_epochs=1).train()
    one = _solver(model, data).check_accuracy(data["X_val"], data["y_val"], batch_size=8)
    sharded = _solver(model, data, devices=DEVICES)
    assert sharded.check_accuracy(data["X_val"], data["y_val"], batch_size=8) == one
    assert 0 < one < 1
    # more samples asked for than there are rows: all rows, no draw, on both
    assert sharded.check_accuracy(data["X_val"], data["y_val"], num_samples=30) == one
    # fewer: 8 rows drawn, 2 from each device's part
    state = sharded.rng.get_state()[2]
    sampled = sharded.check_accuracy(data["X_val"], data["y_val"], num_samples=8)
    assert sampled * 8 == round(sampled * 8) and sharded.rng.get_state()[2] != state


def test_a_sharded_run_trains_and_resumes_exactly_and_on_other_device_counts(tmp_path):
    data = _data()
    whole = _solver(_fcn("batchnorm", keep=0.8), data, devices=DEVICES)
    whole.train()
    assert whole._compiled.traces["step"] == 1
    assert whole.val_acc_history[-1] > 0.5

    name = str(tmp_path / "run")
    first = _solver(_fcn("batchnorm", keep=0.8), data, devices=DEVICES, num_epochs=1,
                    checkpoint_name=name)  # fmt: skip
    first.train()
    checkpoint = first.last_checkpoint
    assert checkpoint.is_file()
    for devices, exact in ((DEVICES, True), (2, False), (None, False)):
        resumed = _solver(_fcn("batchnorm", keep=0.8, seed=9), data, devices=devices)
        resumed.load_checkpoint(checkpoint)
        _same_training_state(resumed, first)
        resumed.train()
        assert resumed.epoch == 2 and np.isfinite(resumed.loss_history).all()
        if exact:
            assert resumed.loss_history == whole.loss_history
            for k, w in whole.model.params.items():
                np.testing.assert_array_equal(np.asarray(resumed.model.params[k]), np.asarray(w))
        else:  # the minibatches are drawn per device part: another count, other batches
            assert resumed.loss_history[:4] == whole.loss_history[:4]


def test_only_the_first_process_writes_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setattr(Solver, "_is_first_process", staticmethod(lambda: False))
    solver = _solver(_fcn(), _data(), devices=DEVICES, num_epochs=1,
                     checkpoint_name=str(tmp_path / "run"))  # fmt: skip
    solver.train()
    assert solver.last_checkpoint == tmp_path / "run_epoch_001.npz"
    assert list(tmp_path.iterdir()) == []


def _same_training_state(resumed, first):
    """Everything a run continues from, restored exactly from the checkpoint."""
    assert resumed.key_seed == first.key_seed and resumed.iteration == first.iteration
    state = resumed.rng.get_state()
    np.testing.assert_array_equal(state[1], first.rng.get_state()[1])
    assert state[2:] == first.rng.get_state()[2:]
    for name, w in first.model.params.items():
        np.testing.assert_array_equal(np.asarray(resumed.model.params[name]), np.asarray(w))
        for key, value in first.optim_configs[name].items():
            np.testing.assert_array_equal(np.asarray(resumed.optim_configs[name][key]),
                                          np.asarray(value), err_msg=f"{name} {key}")  # fmt: skip
    for key, value in first.model.state.items():
        np.testing.assert_array_equal(np.asarray(resumed.model.state[key]), np.asarray(value))
