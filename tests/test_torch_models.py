"""The notebook's convnets (``xpnn.torch.models``) and their trainer (``xpnn.torch.training``).

Every model is built twice by the same builder, from ``torch.nn`` (the oracle: PyTorch's
own layers and autograd) and from ``xpnn.torch.nn`` (xpnn's hand-written backward
passes), and the two must agree in float64 to rounding: outputs, gradients, batch-norm
buffers, and the loss trajectory under ``torch.optim``.
"""

from __future__ import annotations

import types

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch models need torch")

import torch.nn.functional as TF  # noqa: E402

import xpnn.torch.functional as XF  # noqa: E402
import xpnn.torch.nn as xnn  # noqa: E402
from xpnn.solver import TrainingDiverged  # noqa: E402
from xpnn.torch.models import deep_convnet, three_layer_convnet  # noqa: E402
from xpnn.torch.training import Trainer, make_optimizer  # noqa: E402

D = torch.float64
TOL = 1e-12

BUILDERS = {
    "three_layer": lambda nn, dtype=D: three_layer_convnet(3, 6, 4, 5, 8, nn=nn, dtype=dtype),
    "deep": lambda nn, dtype=D: deep_convnet(3, (4, 6), 5, 8, nn=nn, dtype=dtype),
}


def _data(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g, dtype=D), torch.randint(0, 5, (n,), generator=g)


def _grads(model, x, y):
    """Output, loss, and the gradients of the input and of every parameter (by name)."""
    x = x.clone().requires_grad_(True)
    model.zero_grad()
    out = model(x)
    loss = TF.cross_entropy(out, y)
    loss.backward()
    grads = {"x": x.grad, **{n: p.grad for n, p in model.named_parameters()}}
    return out.detach(), loss.detach(), grads


def _mismatch(reference, twin, x, y):
    """Where ``twin`` differs from ``reference`` (None if nowhere): outputs, gradients,
    buffers, all in max abs difference beyond TOL."""
    out_r, loss_r, grads_r = _grads(reference, x, y)
    out_t, loss_t, grads_t = _grads(twin, x, y)
    pairs = {"output": (out_r, out_t), "loss": (loss_r, loss_t)}
    pairs.update({f"grad {k}": (grads_r[k], grads_t[k]) for k in grads_r})
    twin_buffers = dict(twin.named_buffers())
    pairs.update({f"buffer {k}": (v, twin_buffers[k]) for k, v in reference.named_buffers()})
    bad = {
        k: float((a.double() - b.double()).abs().max())
        for k, (a, b) in pairs.items()
        if not torch.allclose(a.double(), b.double(), rtol=0, atol=TOL)
    }
    return bad or None


@pytest.mark.parametrize("name", BUILDERS)
def test_the_same_seed_gives_the_same_weights_in_both_namespaces(name):
    torch.manual_seed(3)
    reference = BUILDERS[name](torch.nn).state_dict()
    torch.manual_seed(3)
    twin = BUILDERS[name](xnn).state_dict()
    assert list(reference) == list(twin)
    for key, value in reference.items():
        assert torch.equal(value, twin[key]), key


@pytest.mark.parametrize("name", BUILDERS)
def test_twin_matches_torch_nn_after_loading_state_dicts_both_ways(name):
    x, y = _data()
    torch.manual_seed(0)
    reference = BUILDERS[name](torch.nn)
    torch.manual_seed(1)  # different initial weights: only load_state_dict makes them equal
    twin = BUILDERS[name](xnn)
    twin.load_state_dict(reference.state_dict())
    assert _mismatch(reference, twin, x, y) is None
    # ... and back: new weights in the twin (one optimizer step), loaded into torch.nn
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(0.05 * torch.randn_like(p))
    reference.load_state_dict(twin.state_dict())
    assert _mismatch(reference, twin, *_data(seed=4)) is None


def test_deep_model_honours_train_and_eval_mode():
    x, y = _data(n=10)
    torch.manual_seed(0)
    reference, twin = BUILDERS["deep"](torch.nn), BUILDERS["deep"](xnn)
    twin.load_state_dict(reference.state_dict())
    for _ in range(3):  # train mode: batch statistics, running averages updated alike
        assert _mismatch(reference, twin, x, y) is None
    assert int(twin[1].num_batches_tracked) == 3
    assert not torch.allclose(twin[1].running_mean, torch.zeros(4, dtype=D))
    reference.eval()
    twin.eval()
    before = {k: v.clone() for k, v in twin.state_dict().items()}
    assert _mismatch(reference, twin, x, y) is None  # eval: running averages, untouched
    assert all(torch.equal(before[k], v) for k, v in twin.state_dict().items())
    train_out = twin.train()(x)
    assert not torch.allclose(train_out, twin.eval()(x))  # the mode changes the function


def _without_relu():
    namespace = types.SimpleNamespace(**{k: getattr(xnn, k) for k in xnn.__all__})
    namespace.ReLU = torch.nn.Identity
    return namespace


class _ReshapedLinear(xnn.Linear):
    """A planted bug: the weight reshaped to (in, out) instead of transposed."""

    def forward(self, x):
        return XF.affine(x, self.weight.reshape(self.in_features, self.out_features), self.bias)


def _reshaped_linear():
    namespace = types.SimpleNamespace(**{k: getattr(xnn, k) for k in xnn.__all__})
    namespace.Linear = _ReshapedLinear
    return namespace


@pytest.mark.parametrize("broken", [_without_relu, _reshaped_linear], ids=["no_relu", "reshape"])
@pytest.mark.parametrize("name", BUILDERS)
def test_the_comparison_catches_a_wrong_twin(name, broken):
    x, y = _data()
    torch.manual_seed(0)
    reference, twin = BUILDERS[name](torch.nn), BUILDERS[name](broken())
    twin.load_state_dict(reference.state_dict())  # same names and shapes: loads silently
    bad = _mismatch(reference, twin, x, y)
    assert bad is not None and "output" in bad


@pytest.mark.parametrize("name", BUILDERS)
def test_both_frameworks_follow_the_same_loss_trajectory_under_torch_optim(name):
    x, y = _data(n=16)
    torch.manual_seed(0)
    models = {"torch": BUILDERS[name](torch.nn), "xpnn": BUILDERS[name](xnn)}
    models["xpnn"].load_state_dict(models["torch"].state_dict())
    losses = {}
    for key, model in models.items():
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        loss_fn = TF.cross_entropy if key == "torch" else XF.softmax_loss
        losses[key] = []
        for step in range(6):
            batch = slice(8 * (step % 2), 8 * (step % 2) + 8)
            optimizer.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            losses[key].append(loss.item())
    assert losses["xpnn"] == pytest.approx(losses["torch"], rel=0, abs=1e-10)
    assert losses["xpnn"][-1] < losses["xpnn"][0]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: three_layer_convnet(3, 0), ValueError, "channel_1 must be at least 1"),
        (lambda: three_layer_convnet(3, 8, 4, 10, 2.5), TypeError, "image_size"),
        (lambda: deep_convnet(3, ()), ValueError, "at least one block"),
        (lambda: deep_convnet(3, (4, 4, 4), image_size=4), ValueError, "too small for 3"),
        (lambda: three_layer_convnet(nn=types), TypeError, "lacks Conv2d"),
    ],
)
def test_builders_name_the_bad_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------- Trainer


def _dataset(n=60, seed=0):
    x, y = _data(n=n, seed=seed)
    x = x.float()
    x[torch.arange(n), 0, y, :] += 3.0  # learnable: the label is row y of channel 0
    return {"X_train": x[:40], "y_train": y[:40], "X_val": x[40:], "y_val": y[40:]}


def _trainer(data, epochs, checkpoint_name=None, seed=0, model=None):
    torch.manual_seed(seed)
    model = model or three_layer_convnet(3, 6, 4, 5, 8)
    optimizer = make_optimizer(model, "adam", 1e-2, reg=1e-3)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.9)
    return Trainer(model, data, optimizer, scheduler=scheduler, batch_size=10,
                   num_epochs=epochs, checkpoint_name=checkpoint_name, verbose=False,
                   seed=seed)  # fmt: skip


def test_trainer_learns_and_keeps_the_best_weights():
    data = _dataset()
    trainer = _trainer(data, epochs=3)
    trainer.train()
    assert len(trainer.loss_history) == 12 and len(trainer.val_acc_history) == 4
    assert trainer.loss_history[-1] < trainer.loss_history[0]
    assert trainer.best_val_acc == max(trainer.val_acc_history) > 0.5
    assert trainer.check_accuracy(data["X_val"], data["y_val"]) == trainer.best_val_acc
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.9**3)


def test_trainer_resumes_exactly(tmp_path):
    data = _dataset()
    straight = _trainer(data, epochs=3)
    straight.train()
    first = _trainer(data, epochs=1, checkpoint_name=str(tmp_path / "run"))
    first.train()
    resumed = _trainer(data, epochs=3, seed=7)  # other weights and seed: all restored
    resumed.load_checkpoint(tmp_path / "run_epoch_001.pt")
    resumed.train()
    assert resumed.loss_history == straight.loss_history
    assert resumed.val_acc_history == straight.val_acc_history
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_trainer_refuses_a_foreign_or_mismatched_checkpoint(tmp_path):
    data = _dataset()
    _trainer(data, epochs=1, checkpoint_name=str(tmp_path / "run")).train()
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    trainer = _trainer(data, epochs=2)
    with pytest.raises(ValueError, match="not a complete xpnn torch checkpoint"):
        trainer.load_checkpoint(other)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        trainer.load_checkpoint(tmp_path / "missing.pt")
    wide = _trainer(data, epochs=2, model=three_layer_convnet(3, 7, 4, 5, 8))
    with pytest.raises(ValueError, match="does not fit the model"):
        wide.load_checkpoint(tmp_path / "run_epoch_001.pt")


@pytest.mark.parametrize(
    ("plant", "message"),
    [
        ("bias", "loss is nan at iteration 1 of 4"),
        ("images", "loss is nan at iteration 1 of 4"),
        # a finite loss whose gradient is not: a hook makes the first weight's NaN
        ("hook", "the gradient of 0.weight is not finite at iteration 1 of 4"),
    ],
)
def test_a_non_finite_step_stops_training_before_the_update(plant, message):
    data = _dataset()
    model = deep_convnet(3, (4,), 5, 8)
    if plant == "images":
        data["X_train"] = torch.full_like(data["X_train"], float("nan"))
    elif plant == "hook":
        model[0].weight.register_hook(lambda grad: grad * float("nan"))
    else:
        with torch.no_grad():
            model[-1].bias[0] = float("nan")
    trainer = _trainer(data, epochs=1, model=model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingDiverged, match=message):
        trainer.train()
    for key, value in model.state_dict().items():  # weights and running averages kept
        assert torch.allclose(value, before[key], rtol=0, atol=0, equal_nan=True), key


def test_make_optimizer_puts_weight_decay_on_the_weights_only():
    model = deep_convnet(3, (4,), 5, 8)
    optimizer = make_optimizer(model, "sgd_momentum", 0.1, reg=0.5)
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] for p in g["params"]}
    assert decayed == {id(model[0].weight), id(model[5].weight)}
    with pytest.raises(ValueError, match="update_rule must be one of"):
        make_optimizer(model, "adagrad", 0.1)
