"""The GPU path, checked on the CPU: what a GPU would show, caught without one.

* Host reads. On a GPU every read of a device value stalls the pipeline, so layers make
  none and a training step makes one. PyTorch's ``meta`` tensors have shapes and no data:
  any read of a value (``float()``, ``bool()``, ``.item()``, a copy to NumPy) raises, so
  every layer, forward and backward, and one training step of each model run on them
  here. Under ``jax.transfer_guard_device_to_host("disallow")`` an implicit read of a JAX
  array raises on an accelerator (on the CPU JAX does not count it as a transfer, so those
  tests only bite in the GPU check, ``nox -s gpu``); every read xpnn means to make goes
  through ``xpnn.to_numpy``, an explicit ``jax.device_get``.
* The eager Solver step reads the host once: one array holding the loss and the
  finiteness flags. Labels are range-checked once per dataset, not per step.
* The torch Trainer loads a checkpoint on the CPU (``torch.set_rng_state`` refuses a
  tensor on a GPU) and moves only what belongs on the device.
* Sharded minibatches go to their devices with ``jax.device_put``, not through the host.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import xpnn
from xpnn.registry import BUILTIN_LAYERS

BACKEND = os.environ.get("XPNN_BACKEND", "numpy")
HAS_TORCH = importlib.util.find_spec("torch") is not None
CASES = [c for d in BUILTIN_LAYERS for c in d.grad_cases()]
IDS = [f"{c.name}[{c.describe()}]" for c in CASES]
# Under the JAX guard, one case per layer: eager JAX is slow on the CPU, and the guard only
# bites on an accelerator (where the GPU check runs these).
FIRST = [d.grad_cases()[0] for d in BUILTIN_LAYERS]
FIRST_IDS = [f"{c.name}[{c.describe()}]" for c in FIRST]


def _blobs(n=60, dim=12, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = 3 * rng.standard_normal((classes, dim))
    y = rng.integers(0, classes, n)
    X = centers[y] + 0.3 * rng.standard_normal((n, dim))
    return {"X_train": X[:40], "y_train": y[:40], "X_val": X[40:], "y_val": y[40:]}


# --------------------------------------------------------------------------- torch meta

needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="meta tensors are PyTorch's")


def _meta(spec, dtype):
    import torch

    kind = {"labels": torch.int64, "mask": torch.bool}.get(spec.kind, dtype)
    return torch.empty(spec.shape, dtype=kind, device="meta")


@needs_torch
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_layer_runs_on_meta_tensors(case):
    """Forward and backward without reading a value: a ``float()`` or a copy to the host
    anywhere inside would raise here. Losses run with the label range check off: that
    check is the one documented read (``xpnn.label_range_check``)."""
    import torch

    arrays = [_meta(spec, torch.float32) for spec in case.specs.values()]
    with xpnn.label_range_check(False):
        out, cache = case.run(*arrays)
        results = [out]
        if case.is_loss:
            results.append(cache)
        else:
            grads = case.backward(torch.empty(out.shape, dtype=out.dtype, device="meta"), cache)
            results.extend(grads if isinstance(grads, tuple) else (grads,))
    for r in results:
        assert r.device.type == "meta" and r.dtype == torch.float32


@needs_torch
def test_meta_tensors_catch_a_host_read():
    """The check can fail: the label range check reads one boolean, and meta refuses it."""
    import torch

    scores = torch.empty(4, 3, device="meta")
    labels = torch.empty(4, dtype=torch.int64, device="meta")
    with pytest.raises((RuntimeError, NotImplementedError)):
        xpnn.softmax_loss(scores, labels)


MODELS = {
    "TwoLayerNet": lambda: xpnn.TwoLayerNet(input_dim=3 * 8 * 8, hidden_dim=6, backend="torch",
                                            device="meta"),
    "FullyConnectedNet": lambda: xpnn.FullyConnectedNet(
        [10, 7], input_dim=3 * 8 * 8, normalization="batchnorm", dropout_keep_ratio=0.5,
        backend="torch", device="meta",
    ),
    "FullyConnectedNet-layernorm": lambda: xpnn.FullyConnectedNet(
        [10], input_dim=3 * 8 * 8, normalization="layernorm", backend="torch", device="meta",
    ),
    "ThreeLayerConvNet": lambda: xpnn.ThreeLayerConvNet(
        input_dim=(3, 8, 8), num_filters=4, filter_size=3, hidden_dim=6, backend="torch",
        device="meta",
    ),
}  # fmt: skip


@needs_torch
@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("rule", ["sgd_momentum", "adam"])
def test_one_training_step_of_each_model_on_meta_tensors(name, rule):
    import torch

    model = MODELS[name]()
    X = torch.empty(4, 3, 8, 8, device="meta")
    y = torch.empty(4, dtype=torch.int64, device="meta")
    with xpnn.label_range_check(False):
        loss, grads = model.loss(X, y)
    assert loss.device.type == "meta" and loss.ndim == 0
    for key, w in model.params.items():
        next_w, _ = getattr(xpnn, rule)(w, grads[key], None)
        assert next_w.device.type == "meta" and next_w.shape == w.shape
    assert model.loss(X).shape == (4, 10)  # test mode too


@needs_torch
@pytest.mark.parametrize("builder", ["three_layer_convnet", "deep_convnet"])
def test_one_training_step_of_the_torch_convnets_on_meta_tensors(builder):
    import torch

    import xpnn.torch.nn as xnn
    from xpnn.torch import models

    if builder == "three_layer_convnet":
        model = models.three_layer_convnet(3, 4, 5, 10, image_size=8, nn=xnn)
    else:
        model = models.deep_convnet(3, [4, 6], 10, image_size=8, nn=xnn)
    model = model.to("meta")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scores = model(torch.empty(4, 3, 8, 8, device="meta"))
    labels = torch.empty(4, dtype=torch.int64, device="meta")
    torch.nn.functional.cross_entropy(scores, labels).backward()
    optimizer.step()
    assert all(p.grad is not None and p.grad.device.type == "meta" for p in model.parameters())


# --------------------------------------------------------------------------- JAX guard

needs_jax = pytest.mark.skipif(BACKEND != "jax", reason="the JAX guard runs in tests-jax")


def _jax_on_cpu() -> bool:
    if BACKEND != "jax":
        return False
    import jax

    return jax.default_backend() == "cpu"


# On the CPU, JAX counts no device-to-host transfer, so the guard cannot fail there: every
# layer under it runs in the GPU check (tools/gpu_check.py), the compiled Solver step here too.
needs_accelerator = pytest.mark.skipif(
    _jax_on_cpu(), reason="the JAX transfer guard bites only on an accelerator (GPU check)"
)


@needs_jax
@needs_accelerator
@pytest.mark.parametrize("case", FIRST, ids=FIRST_IDS)
def test_every_layer_under_the_jax_transfer_guard(bk, case):
    import jax

    arrays = [
        bk.asarray(v, "float32" if case.specs[k].differentiable else None)
        for k, v in case.draw_inputs(seed=1).items()
    ]
    with jax.transfer_guard_device_to_host("disallow"), xpnn.label_range_check(False):
        out, cache = case.run(*arrays)
        if not case.is_loss:
            case.backward(jax.numpy.ones_like(out), cache)


@needs_jax
@pytest.mark.parametrize(
    "jit", [True, pytest.param(False, marks=needs_accelerator)], ids=["compiled", "eager"]
)
def test_the_solver_reads_the_host_only_through_to_numpy_under_the_jax_guard(jit):
    import jax

    model = xpnn.FullyConnectedNet([8], input_dim=12, num_classes=3, dtype=np.float32,
                                   backend="jax")  # fmt: skip
    solver = xpnn.Solver(model, _blobs(), batch_size=10, num_epochs=2, verbose=False, seed=0,
                         jit=jit)  # fmt: skip
    with jax.transfer_guard_device_to_host("disallow"):
        solver.train()
    assert len(solver.loss_history) == 8


# --------------------------------------------------------------------------- host reads


class _CountingModel:
    """Wraps a model; records whether the label range check was on in each training loss."""

    def __init__(self, model):
        self.model = model
        self.params = model.params
        self.checks_on = []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def loss(self, X, y=None):
        if y is not None:
            self.checks_on.append(xpnn._config.label_range_check_enabled())
        self.model.params = self.params
        return self.model.loss(X, y)


def test_the_eager_solver_step_reads_the_host_once(bk, monkeypatch):
    """One read per step (loss and finiteness flags in one array), and no per-step label
    check; the labels are checked once per dataset before the first step."""
    import xpnn.solver as solver_module

    reads = []
    real = solver_module.to_numpy

    def counting(array):
        reads.append(tuple(getattr(array, "shape", ())))
        return real(array)

    monkeypatch.setattr(solver_module, "to_numpy", counting)
    inner = xpnn.FullyConnectedNet([8], input_dim=12, num_classes=3, dtype=np.float64,
                                   backend=bk.name)  # fmt: skip
    model = _CountingModel(inner)
    solver = xpnn.Solver(model, _blobs(), batch_size=10, num_epochs=1, verbose=False, seed=0,
                         num_train_samples=None, jit=False)  # fmt: skip
    solver._check_and_keep_best = lambda bar: None  # accuracy checks read the host: not here
    solver.train()
    assert model.checks_on == [False] * 4
    # the labels of the two datasets (40 and 20), then one (1 + 1 + 6)-array per step:
    # the loss, its finiteness and that of W1, b1, W2, b2
    assert reads[:2] == [(40,), (20,)]
    assert reads[2:] == [(5,)] * 4


@needs_torch
def test_the_eager_solver_trains_on_meta_tensors_reading_only_through_to_numpy(monkeypatch):
    """The whole eager loop (sampling, the step, the optimizer, the bookkeeping) on meta
    tensors: the Solver's documented reads go through ``to_numpy``, here answered with ones
    (labels in range, a finite loss, finite parameters); any other read of a value, in the
    loop, the layers or the update rules, raises."""
    import torch

    import xpnn.solver as solver_module

    reads = []

    def ones(array):
        reads.append(tuple(array.shape))
        assert array.device.type == "meta"
        return np.ones(tuple(array.shape), dtype=str(array.dtype).removeprefix("torch."))

    monkeypatch.setattr(solver_module, "to_numpy", ones)
    data = {
        "X_train": torch.empty(40, 12, device="meta"),
        "y_train": torch.empty(40, dtype=torch.int64, device="meta"),
        "X_val": torch.empty(20, 12, device="meta"),
        "y_val": torch.empty(20, dtype=torch.int64, device="meta"),
    }
    model = xpnn.FullyConnectedNet(
        [8, 6], input_dim=12, num_classes=3, dropout_keep_ratio=0.7, normalization="batchnorm",
        backend="torch", device="meta",
    )  # fmt: skip
    for rule in ("sgd_momentum", "adam", "rmsprop"):
        reads.clear()
        solver = xpnn.Solver(model, data, update_rule=rule, batch_size=10, num_epochs=1,
                             verbose=False, seed=0, jit=False)  # fmt: skip
        solver._check_and_keep_best = lambda bar: None  # accuracy checks read predictions
        solver.train()
        assert reads == [(40,), (20,), *[(11,)] * 4]  # loss + 10 parameters per step


def test_a_label_out_of_range_is_caught_once_per_dataset(bk):
    data = _blobs()
    data["y_val"] = data["y_val"].copy()
    data["y_val"][3] = 3
    model = xpnn.FullyConnectedNet([8], input_dim=12, num_classes=3, backend=bk.name)
    solver = xpnn.Solver(model, data, batch_size=10, num_epochs=1, verbose=False)
    with pytest.raises(ValueError, match=r"y_val holds labels outside \[0, 3\)"):
        solver.train()
    assert solver.loss_history == []


def test_a_diverging_step_is_still_reported_with_one_read(bk):
    model = xpnn.FullyConnectedNet([8], input_dim=12, num_classes=3, dtype=np.float64,
                                   backend=bk.name)  # fmt: skip
    solver = xpnn.Solver(model, _blobs(), update_rule="sgd", optim_config={"learning_rate": 1e300},
                         batch_size=10, num_epochs=1, verbose=False, seed=0)  # fmt: skip
    with pytest.raises(xpnn.TrainingDiverged, match=r"non-finite|loss is"):
        solver.train()


# --------------------------------------------------------------------------- torch Trainer


@needs_torch
def test_the_torch_trainer_loads_checkpoints_on_the_cpu(tmp_path, monkeypatch):
    """``map_location=device`` would put the RNG states on a GPU, where
    ``torch.set_rng_state`` refuses them: the checkpoint is read on the CPU."""
    import torch

    from xpnn.torch import training

    data = {k: v.astype(np.float32) if k.startswith("X") else v for k, v in _blobs().items()}

    def trainer(epochs, **kwargs):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(12, 3))
        return training.Trainer(model, data, torch.optim.SGD(model.parameters(), lr=0.1),
                                batch_size=10, num_epochs=epochs, verbose=False, seed=0,
                                **kwargs)  # fmt: skip

    trainer(1, checkpoint_name=str(tmp_path / "run")).train()
    locations = []
    real_load = torch.load

    def spy(*args, **kwargs):
        locations.append(kwargs.get("map_location"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    resumed = trainer(2)
    resumed.load_checkpoint(tmp_path / "run_epoch_001.pt")
    assert locations == ["cpu"]
    resumed.train()
    straight = trainer(2)
    straight.train()
    assert resumed.loss_history == straight.loss_history


# --------------------------------------------------------------------------- sharding


@needs_jax
def test_sharded_minibatches_are_placed_without_the_host(monkeypatch):
    """A minibatch already on a device goes to the batch sharding with ``jax.device_put``:
    no ``np.asarray`` of it (a device-to-host copy) on the way, in the steps and in the
    accuracy checks."""
    import jax
    import jax.numpy as jnp

    import xpnn._data_parallel as dp

    if len(jax.devices()) < 2:
        pytest.skip("needs several JAX devices (tests-jax forces 4 CPU devices)")

    class NoDeviceArrays:
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def asarray(a, *args, **kwargs):
            if isinstance(a, jax.Array):
                raise AssertionError("a device array went through the host")
            return np.asarray(a, *args, **kwargs)

    monkeypatch.setattr(dp, "np", NoDeviceArrays())
    import xpnn.solver as solver_module

    read = []
    real = solver_module.to_numpy

    def recording(array):
        if isinstance(array, jax.Array):
            read.append(tuple(array.shape))
        return real(array)

    monkeypatch.setattr(solver_module, "to_numpy", recording)
    data = {k: jnp.asarray(v) for k, v in _blobs().items()}
    model = xpnn.FullyConnectedNet([8], input_dim=12, num_classes=3, dtype=np.float32,
                                   backend="jax")  # fmt: skip
    solver = xpnn.Solver(model, data, batch_size=8, num_epochs=1, verbose=False, seed=0,
                         devices=2)  # fmt: skip
    solver.train()  # the accuracy checks too: their batches stay on the devices
    assert len(solver.loss_history) == 5 and len(solver.val_acc_history) == 2
    assert read == [(40,), (20,)]  # the labels' range, once per dataset; no minibatch
    batch = solver.parallel.shard_batch(data["X_train"][:8])[0]
    assert batch.sharding == solver.parallel.batch_sharding


# --------------------------------------------------------------------------- on a CUDA GPU


def _cuda() -> bool:
    if not HAS_TORCH:
        return False
    import torch

    return torch.cuda.is_available()


needs_cuda = pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU (the GPU check)")


@needs_cuda
def test_the_torch_nn_twins_match_torch_nn_on_cuda():
    import torch

    import xpnn.torch.nn as xnn
    from xpnn.torch import models

    grads = []
    for nn in (torch.nn, xnn):
        torch.manual_seed(0)
        model = models.deep_convnet(3, [8, 16], 10, image_size=16, nn=nn).to("cuda")
        x = torch.randn(6, 3, 16, 16, device="cuda")
        y = torch.randint(0, 10, (6,), device="cuda")
        torch.nn.functional.cross_entropy(model(x), y).backward()
        grads.append([p.grad for p in model.parameters()])
    for ours, theirs in zip(grads[1], grads[0], strict=True):
        assert ours.device.type == "cuda"
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-4)


@needs_cuda
def test_the_torch_trainer_resumes_exactly_on_cuda(tmp_path):
    import torch

    from xpnn.torch import training

    data = {k: v.astype(np.float32) if k.startswith("X") else v for k, v in _blobs().items()}

    def trainer(epochs, **kwargs):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(12, 8), torch.nn.Dropout(0.3),
                                    torch.nn.Linear(8, 3)).to("cuda")  # fmt: skip
        return training.Trainer(model, data, torch.optim.SGD(model.parameters(), lr=0.1),
                                batch_size=10, num_epochs=epochs, verbose=False, seed=0,
                                **kwargs)  # fmt: skip

    trainer(1, checkpoint_name=str(tmp_path / "run")).train()
    resumed = trainer(2)
    resumed.load_checkpoint(tmp_path / "run_epoch_001.pt")
    resumed.train()
    straight = trainer(2)
    straight.train()
    assert resumed.loss_history == straight.loss_history


@needs_cuda
@pytest.mark.parametrize("framework", ["xpnn", "torch"])
def test_xpnn_train_on_cuda(framework, tmp_path, monkeypatch):
    from xpnn.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["train", "--backend", "torch", "--device", "cuda:0", "--epochs", "1", "--quiet"]
    if framework == "torch":
        argv = ["train", "--framework", "torch", "--device", "cuda:0", "--epochs", "1", "--quiet"]
    assert main(argv) == 0


def test_new_labels_are_checked_again(bk):
    data = _blobs()
    model = xpnn.FullyConnectedNet([8], input_dim=12, num_classes=3, backend=bk.name)
    solver = xpnn.Solver(model, data, batch_size=10, num_epochs=1, verbose=False)
    solver.train()
    solver.y_train = data["y_train"] + 5  # a notebook cell replaces the labels
    solver.num_epochs = 2
    with pytest.raises(ValueError, match=r"y_train holds labels outside \[0, 3\)"):
        solver.train()


class _FloatLoss:
    """An assignment-style model whose loss is a Python float."""

    def __init__(self, bk):
        self.params = {"W": bk.asarray(np.zeros((12, 3))), "b": bk.asarray(np.zeros(3))}

    def loss(self, X, y=None):
        scores, cache = xpnn.affine_forward(X, self.params["W"], self.params["b"])
        if y is None:
            return scores
        loss, dscores = xpnn.softmax_loss(scores, y)
        _, dW, db = xpnn.affine_backward(dscores, cache)
        return float(xpnn.to_numpy(loss)), {"W": dW, "b": db}


def test_a_model_whose_loss_is_a_python_float_trains(bk):
    solver = xpnn.Solver(_FloatLoss(bk), _blobs(), batch_size=10, num_epochs=1, verbose=False,
                         seed=0, jit=False)  # fmt: skip
    solver.train()
    assert all(isinstance(v, float) for v in solver.loss_history)
    assert solver.loss_history[0] == pytest.approx(np.log(3))
