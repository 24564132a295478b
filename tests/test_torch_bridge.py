"""The PyTorch bridge: xpnn's backward passes under torch autograd, and nn modules that
match ``torch.nn`` (state dicts both ways, outputs, gradients, running statistics).

Runs on CPU tensors in every session where torch is installed, whatever XPNN_BACKEND is.
"""

from __future__ import annotations

import math
import os

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch bridge needs torch")

from torch.autograd import gradcheck  # noqa: E402
from torch.autograd.gradcheck import GradcheckError  # noqa: E402

import xpnn.torch.functional as XF  # noqa: E402
import xpnn.torch.nn as xnn  # noqa: E402

D = torch.float64


def _t(*shape, seed=0, dtype=D, grad=True):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_(grad)


# --------------------------------------------------------------------------- functional


def _labels(n, c, seed=1):
    return torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(seed))


_RM = torch.rand(3, dtype=D, generator=torch.Generator().manual_seed(5))
_RV = _RM + 0.5

GRADCHECKS = {
    "affine": (
        lambda x, w, b: XF.affine(x, w, b),
        lambda: (_t(3, 2, 2), _t(4, 5, seed=1), _t(5, seed=2)),
    ),
    "relu": (XF.relu, lambda: (_t(4, 5),)),
    "conv": (
        lambda x, w, b: XF.conv(x, w, b, stride=2, pad=1),
        lambda: (_t(2, 2, 5, 5), _t(3, 2, 3, 3, seed=1), _t(3, seed=2)),
    ),
    "max_pool": (
        lambda x: XF.max_pool(x, pool_height=2, pool_width=2, stride=2),
        lambda: (_t(2, 2, 4, 4),),
    ),
    "batchnorm_train": (
        lambda x, g, b: XF.batchnorm(x, g, b, None, None, train=True)[0],
        lambda: (_t(6, 3), _t(3, seed=1), _t(3, seed=2)),
    ),
    "batchnorm_eval": (
        lambda x, g, b: XF.batchnorm(x, g, b, _RM, _RV, train=False)[0],
        lambda: (_t(6, 3), _t(3, seed=1), _t(3, seed=2)),
    ),
    "spatial_batchnorm": (
        lambda x, g, b: XF.spatial_batchnorm(x, g, b, None, None, train=True)[0],
        lambda: (_t(3, 2, 3, 3), _t(2, seed=1), _t(2, seed=2)),
    ),
    "layernorm": (
        lambda x, g, b: XF.layernorm(x, g, b),
        lambda: (_t(2, 3, 5), _t(5, seed=1), _t(5, seed=2)),
    ),
    "groupnorm": (
        lambda x, g, b: XF.groupnorm(x, g, b, groups=2),
        lambda: (_t(2, 4, 3, 3), _t(4, seed=1), _t(4, seed=2)),
    ),
    "groupnorm_3d": (
        lambda x, g, b: XF.groupnorm(x, g, b, groups=2),
        lambda: (_t(2, 4, 5), _t(4, seed=1), _t(4, seed=2)),
    ),
    "batchnorm_eval_without_running_stats": (
        lambda x, g, b: XF.batchnorm(x, g, b, None, None, train=False)[0],
        lambda: (_t(6, 3), _t(3, seed=1), _t(3, seed=2)),
    ),
    "dropout": (
        lambda x: XF.dropout(x, p=0.6, train=True, mask=torch.arange(20).reshape(4, 5) % 3 > 0),
        lambda: (_t(4, 5),),
    ),
    "softmax_loss": (lambda s: XF.softmax_loss(s, _labels(4, 5)), lambda: (_t(4, 5),)),
    "svm_loss": (lambda s: XF.svm_loss(s, _labels(4, 5)), lambda: (_t(4, 5),)),
}


@pytest.mark.parametrize("name", sorted(GRADCHECKS))
def test_gradcheck_float64(name):
    fn, inputs = GRADCHECKS[name]
    assert gradcheck(fn, inputs(), eps=1e-6, atol=1e-6)


def test_wrong_backward_is_caught_by_gradcheck():
    from xpnn.layers.relu import relu_backward, relu_forward

    wrong = XF.make_function(
        "WrongRelu", lambda _, x: relu_forward(x), lambda d, c: 0.5 * relu_backward(d, c)
    )
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: wrong.apply(None, x), (_t(4, 5),))


def test_batchnorm_running_stats_xpnn_convention():
    x = _t(8, 3, grad=False)
    rm, rv = torch.zeros(3, dtype=D), torch.ones(3, dtype=D)
    _, nm, nv = XF.batchnorm(x, None, None, rm, rv, train=True, momentum=0.9)
    torch.testing.assert_close(nm, 0.1 * x.mean(0))
    torch.testing.assert_close(nv, 0.9 + 0.1 * x.var(0, correction=0))
    assert not nm.requires_grad and nm is not rm and rm.eq(0).all()
    _, em, ev = XF.batchnorm(x, None, None, nm, nv, train=False)
    assert em is not nm and torch.equal(em, nm) and torch.equal(ev, nv)


def test_dropout_functional_keep_probability_and_generator():
    x = torch.ones(2000, dtype=D)
    out = XF.dropout(x, p=0.8, train=True, generator=torch.Generator().manual_seed(3))
    again = XF.dropout(x, p=0.8, train=True, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out, again)
    kept = out != 0
    assert abs(kept.double().mean().item() - 0.8) < 0.05
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / 0.8))
    assert XF.dropout(x, p=0.8, train=False) is x


def test_float32_and_device_preserved():
    x = _t(2, 3, 6, 6, dtype=torch.float32)
    conv = xnn.Conv2d(3, 4, 3, padding=1)
    out = XF.max_pool(conv(x))
    assert out.dtype == torch.float32 and out.device == x.device
    out.sum().backward()
    assert x.grad.dtype == torch.float32 and conv.weight.grad.dtype == torch.float32
    loss = XF.softmax_loss(out.reshape(2, -1), torch.tensor([0, 1]))
    assert loss.dtype == torch.float32 and loss.ndim == 0


# --------------------------------------------------------------------------- nn vs torch.nn


def _pair(make_xpnn, make_torch, seed=0):
    """The same layer built by xpnn and by torch.nn from the same torch seed."""
    torch.manual_seed(seed)
    ours = make_xpnn()
    torch.manual_seed(seed)
    theirs = make_torch()
    return ours, theirs


def _compare(ours, theirs, x, *, atol=1e-10):
    """Outputs and input/parameter gradients agree; returns the max abs difference."""
    ours.zero_grad(set_to_none=True)
    theirs.zero_grad(set_to_none=True)
    xa = x.detach().clone().requires_grad_(True)
    xb = x.detach().clone().requires_grad_(True)
    ya, yb = ours(xa), theirs(xb)
    assert ya.shape == yb.shape and ya.dtype == yb.dtype
    dout = _t(*ya.shape, seed=99, dtype=ya.dtype, grad=False)
    (ya * dout).sum().backward()
    (yb * dout).sum().backward()
    diffs = [(ya - yb).abs().max().item(), (xa.grad - xb.grad).abs().max().item()]
    for (name, pa), (name_b, pb) in zip(
        ours.named_parameters(), theirs.named_parameters(), strict=True
    ):
        assert name == name_b
        diffs.append((pa.grad - pb.grad).abs().max().item())
    assert max(diffs) <= atol, diffs
    return max(diffs)


MODULES = {
    "Linear": (lambda: xnn.Linear(6, 4), lambda: torch.nn.Linear(6, 4), (5, 6)),
    "Linear3d": (lambda: xnn.Linear(6, 4), lambda: torch.nn.Linear(6, 4), (2, 5, 6)),
    "LinearNoBias": (
        lambda: xnn.Linear(6, 4, bias=False),
        lambda: torch.nn.Linear(6, 4, bias=False),
        (5, 6),
    ),
    "Conv2d": (
        lambda: xnn.Conv2d(3, 4, (3, 3), stride=2, padding=1),
        lambda: torch.nn.Conv2d(3, 4, (3, 3), stride=2, padding=1),
        (2, 3, 7, 7),
    ),
    "Conv2dUntiled": (  # torch drops the last row/column: so does the bridge
        lambda: xnn.Conv2d(3, 2, 3, stride=2),
        lambda: torch.nn.Conv2d(3, 2, 3, stride=2),
        (2, 3, 8, 8),
    ),
    "Conv2dRectangular": (  # rectangular kernel, uneven padding pair
        lambda: xnn.Conv2d(3, 4, (2, 3), stride=2, padding=(1, 2)),
        lambda: torch.nn.Conv2d(3, 4, (2, 3), stride=2, padding=(1, 2)),
        (2, 3, 7, 8),
    ),
    "Conv2dSameEven": (  # torch puts the odd row/column of padding after
        lambda: xnn.Conv2d(3, 2, 4, padding="same"),
        lambda: torch.nn.Conv2d(3, 2, 4, padding="same"),
        (2, 3, 6, 5),
    ),
    "Conv2dReflect": (
        lambda: xnn.Conv2d(3, 2, 3, padding=1, padding_mode="reflect"),
        lambda: torch.nn.Conv2d(3, 2, 3, padding=1, padding_mode="reflect"),
        (2, 3, 5, 5),
    ),
    "Conv2dCircular": (
        lambda: xnn.Conv2d(3, 2, 3, stride=2, padding=2, padding_mode="circular"),
        lambda: torch.nn.Conv2d(3, 2, 3, stride=2, padding=2, padding_mode="circular"),
        (2, 3, 5, 6),
    ),
    "Conv2dUnbatched": (
        lambda: xnn.Conv2d(3, 2, 3, padding=1),
        lambda: torch.nn.Conv2d(3, 2, 3, padding=1),
        (3, 5, 5),
    ),
    "MaxPool2d": (lambda: xnn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (2, 3, 6, 6)),
    "MaxPool2dPadded": (  # -inf padding: a padded cell never wins
        lambda: xnn.MaxPool2d(3, stride=2, padding=1),
        lambda: torch.nn.MaxPool2d(3, stride=2, padding=1),
        (2, 3, 7, 8),
    ),
    "MaxPool2dRectangular": (
        lambda: xnn.MaxPool2d((2, 3), stride=1, padding=(1, 0)),
        lambda: torch.nn.MaxPool2d((2, 3), stride=1, padding=(1, 0)),
        (2, 3, 5, 6),
    ),
    "MaxPool2dUntiled": (
        lambda: xnn.MaxPool2d(3, stride=2),
        lambda: torch.nn.MaxPool2d(3, stride=2),
        (2, 3, 8, 8),
    ),
    "ReLU": (xnn.ReLU, torch.nn.ReLU, (4, 5)),
    "Flatten": (xnn.Flatten, torch.nn.Flatten, (2, 3, 4)),
    "LayerNorm": (lambda: xnn.LayerNorm(5), lambda: torch.nn.LayerNorm(5), (2, 3, 5)),
    "LayerNorm2d": (  # over the last two axes
        lambda: xnn.LayerNorm((3, 5), bias=False),
        lambda: torch.nn.LayerNorm((3, 5), bias=False),
        (2, 3, 5),
    ),
    "GroupNorm": (
        lambda: xnn.GroupNorm(2, 4),
        lambda: torch.nn.GroupNorm(2, 4),
        (3, 4, 3, 3),
    ),
    "GroupNorm3d": (lambda: xnn.GroupNorm(2, 4), lambda: torch.nn.GroupNorm(2, 4), (3, 4, 5)),
    "BatchNorm1d": (lambda: xnn.BatchNorm1d(4), lambda: torch.nn.BatchNorm1d(4), (6, 4)),
    "BatchNorm1d3d": (lambda: xnn.BatchNorm1d(4), lambda: torch.nn.BatchNorm1d(4), (3, 4, 5)),
    "BatchNorm2d": (lambda: xnn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 3, 3)),
}


def _randomize(module):
    """Non-default parameters and buffers, so that loading a state dict means something."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
        for name, b in module.named_buffers():
            if b.is_floating_point():
                b.copy_(torch.rand(b.shape, generator=g, dtype=b.dtype) + 0.5 * ("var" in name))


@pytest.mark.parametrize("name", sorted(MODULES))
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")  # torch's
def test_module_matches_torch_nn(name, mode):
    make_ours, make_theirs, shape = MODULES[name]
    ours, theirs = _pair(make_ours, make_theirs)
    ours, theirs = ours.double(), theirs.double()
    # same initialisation (same torch.nn.init calls), same names
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    # torch -> xpnn
    _randomize(theirs)
    ours.load_state_dict(theirs.state_dict())
    ours.train(mode == "train")
    theirs.train(mode == "train")
    _compare(ours, theirs, _t(*shape, seed=3))
    for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=k)  # running stats too
    # xpnn -> torch
    _randomize(ours)
    theirs.load_state_dict(ours.state_dict())
    _compare(ours, theirs, _t(*shape, seed=4))


@pytest.mark.parametrize(
    ("make_ours", "make_theirs", "shape"),
    [
        (lambda: xnn.BatchNorm1d(4), lambda: torch.nn.BatchNorm1d(4), (6, 4)),
        (
            lambda: xnn.BatchNorm2d(3, momentum=0.3),
            lambda: torch.nn.BatchNorm2d(3, momentum=0.3),
            (4, 3, 3, 3),
        ),
        (
            lambda: xnn.BatchNorm1d(4, momentum=None),
            lambda: torch.nn.BatchNorm1d(4, momentum=None),
            (6, 4),
        ),
        (
            lambda: xnn.BatchNorm2d(3, affine=False, track_running_stats=False),
            lambda: torch.nn.BatchNorm2d(3, affine=False, track_running_stats=False),
            (4, 3, 3, 3),
        ),
    ],
)
def test_batchnorm_running_stats_after_training_steps(make_ours, make_theirs, shape):
    ours, theirs = _pair(make_ours, make_theirs)
    ours, theirs = ours.double(), theirs.double()
    for step in range(4):
        x = _t(*shape, seed=10 + step) * 3 + 1
        _compare(ours, theirs, x)
    for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=k)
    ours.eval()
    theirs.eval()
    _compare(ours, theirs, _t(*shape, seed=20))


def test_dropout_module_torch_convention():
    x = torch.ones(4000, dtype=D)
    drop = xnn.Dropout(p=0.25)
    assert drop(x) is not x
    out = drop(x)
    kept = out != 0
    assert abs(kept.double().mean().item() - 0.75) < 0.04  # p = 0.25 DROPS a quarter
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / 0.75))
    # the same mask torch would use: gradient is mask / keep, like torch.nn.Dropout's
    xa = x.clone().requires_grad_(True)
    ya = drop(xa)
    ya.sum().backward()
    torch.testing.assert_close(xa.grad, ya.detach())
    drop.eval()
    assert drop(x) is x and torch.nn.Dropout(0.25).eval()(x) is x
    assert torch.equal(xnn.Dropout(p=1.0)(x), torch.zeros_like(x))
    assert torch.equal(xnn.Dropout(p=0.0)(x), x)


def test_bad_constructor_arguments():
    # what xpnn's layers cannot compute (more in test_torch_nn_dropin.py) ...
    with pytest.raises(ValueError, match="stride"):
        xnn.Conv2d(3, 4, (3, 5), stride=(1, 2))
    # ... and torch.nn's own checks, from torch.nn's constructors
    with pytest.raises(ValueError, match="dropout probability"):
        xnn.Dropout(1.5)
    with pytest.raises(ValueError, match="divisible by num_groups"):
        xnn.GroupNorm(3, 4)


# --------------------------------------------------------------------------- a whole network


def _three_layer_convnet(nn, c=3, f1=6, f2=4, classes=10, hw=8):
    """The CS231n PyTorch notebook's three-layer convnet."""
    return nn.Sequential(
        nn.Conv2d(c, f1, 5, padding=2),
        nn.ReLU(),
        nn.Conv2d(f1, f2, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(f2 * hw * hw, classes),
    )


def test_three_layer_convnet_matches_torch_and_trains():
    ours, theirs = _pair(lambda: _three_layer_convnet(xnn), lambda: _three_layer_convnet(torch.nn))
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    x = _t(4, 3, 8, 8, seed=5, dtype=torch.float32, grad=False)
    y = _labels(4, 10)
    diff = _compare(ours, theirs, x, atol=1e-5)
    assert diff < 1e-5
    # float64 copies agree to rounding
    _compare(ours.double(), theirs.double(), x.double(), atol=1e-12)
    ours.float()
    theirs.float()
    opt = torch.optim.SGD(ours.parameters(), lr=0.05)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = XF.softmax_loss(ours(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    assert math.isclose(
        losses[0], torch.nn.functional.cross_entropy(theirs(x), y).item(), rel_tol=1e-5
    )


def test_outputs_are_contiguous_for_view():
    """The im2col convolution (float64 on the CPU) returns a strided view; the bridge hands
    torch users a contiguous tensor, on which the notebook's ``x.view(N, -1)`` works."""
    conv = xnn.Conv2d(3, 4, 3, padding=1).double()
    out = torch.relu(conv(_t(2, 3, 5, 5)))
    assert out.is_contiguous()
    assert out.view(2, -1).shape == (2, 4 * 5 * 5)


# --------------------------------------------------------------------------- in-place, double


SAFETY_LAYERS = {
    "Linear": (lambda nn: nn.Linear(6, 4, dtype=D), (5, 6)),
    "Conv2d": (lambda nn: nn.Conv2d(2, 3, 3, padding=1, dtype=D), (2, 2, 5, 5)),
    "MaxPool2d": (lambda nn: nn.MaxPool2d(2), (2, 2, 4, 4)),
    "ReLU": (lambda nn: nn.ReLU(), (4, 5)),
    "BatchNorm1d": (lambda nn: nn.BatchNorm1d(5, dtype=D), (6, 5)),
    "BatchNorm2d": (lambda nn: nn.BatchNorm2d(3, dtype=D), (2, 3, 4, 4)),
    "LayerNorm": (lambda nn: nn.LayerNorm(5, dtype=D), (4, 5)),
    "GroupNorm": (lambda nn: nn.GroupNorm(2, 4, dtype=D), (2, 4, 3, 3)),
}
INPLACE_ERROR = "modified by an inplace operation"
# The GPU check runs this section on CUDA too (XPNN_DEVICE=cuda).
DEVICE = torch.device(os.environ.get("XPNN_DEVICE", "cpu"))


def _on_device(t):
    return t.detach().to(DEVICE).requires_grad_(t.requires_grad)


def _built(nn, name):
    make, shape = SAFETY_LAYERS[name]
    torch.manual_seed(0)
    layer = make(nn).to(DEVICE)
    with torch.no_grad():  # non-trivial affine parameters for the norms
        for p in layer.parameters():
            p.copy_(
                torch.randn(p.shape, dtype=p.dtype, generator=torch.Generator().manual_seed(9))
            )
    base = _on_device(_t(*shape, seed=3))
    return layer, base


def _gradients(nn, name, mutate):
    """Gradients of ``sum(layer(x) * r)`` wrt the input and parameters, with ``mutate`` applied
    to (x, y) after the forward pass; the exception instead, if backward raises."""
    layer, base = _built(nn, name)
    x = base * 1  # not a leaf: it may be changed in place
    y = layer(x)
    r = torch.randn(y.shape, dtype=D, generator=torch.Generator().manual_seed(4)).to(DEVICE)
    y = mutate(x, y)
    try:
        (y * r).sum().backward()
    except RuntimeError as err:
        return err
    return [base.grad, *(p.grad for p in layer.parameters())]


MUTATIONS = {
    # the input changed after the forward: the gradient is still the one at the old input
    "input": (lambda x, y: (x.mul_(0), y)[1], lambda x, y: y),
    # the output doubled in place: the gradient of 2 * layer(x)
    "output": (lambda x, y: y.mul_(2), lambda x, y: y * 2),
}


@pytest.mark.parametrize("where", sorted(MUTATIONS))
@pytest.mark.parametrize("name", sorted(SAFETY_LAYERS))
def test_an_in_place_change_raises_or_leaves_the_gradient_right(name, where):
    """torch's version counter guards what xpnn's backward reads: after an in-place change
    of a layer's input or output, backward raises torch's error, or gives the right gradient
    (torch.nn's, computed without the in-place change). The caches used to live on ``ctx``,
    unguarded: ``y.mul_(2)`` after MaxPool2d gave an input gradient summing to 0."""
    mutate, equivalent = MUTATIONS[where]
    expected = _gradients(torch.nn, name, equivalent)
    got = _gradients(xnn, name, mutate)
    if isinstance(got, RuntimeError):
        assert INPLACE_ERROR in str(got)
        return
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_an_in_place_change_of_a_linear_input_raises_as_in_torch():
    """The case the review reproduced: ``x.mul_(0)`` after Linear gave a zero weight.grad."""
    for nn in (torch.nn, xnn):
        err = _gradients(nn, "Linear", MUTATIONS["input"][0])
        assert isinstance(err, RuntimeError) and INPLACE_ERROR in str(err), nn.__name__


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: XF.dropout(
            x, p=0.6, train=True, mask=(torch.arange(20).reshape(4, 5) % 3 > 0).to(DEVICE)
        ),
        lambda x: XF.softmax_loss(x, _labels(4, 5).to(DEVICE)),
        lambda x: XF.svm_loss(x, _labels(4, 5).to(DEVICE)),
        lambda x: XF.leaky_relu(x, negative_slope=0.1),
    ],
    ids=["dropout", "softmax_loss", "svm_loss", "leaky_relu"],
)
def test_in_place_changes_after_the_other_functions(fn):
    for mutate, equivalent in MUTATIONS.values():
        base = _on_device(_t(4, 5, seed=2))
        y = fn(base * 1)
        r = torch.randn(y.shape, dtype=D, generator=torch.Generator().manual_seed(1)).to(DEVICE)
        (equivalent(None, y) * r).sum().backward()
        expected, base.grad = base.grad, None
        x = base * 1
        y = mutate(x, fn(x))
        try:
            (y * r).sum().backward()
        except RuntimeError as err:
            assert INPLACE_ERROR in str(err)
            continue
        torch.testing.assert_close(base.grad, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(SAFETY_LAYERS))
def test_double_backward_raises_instead_of_a_wrong_number(name):
    """xpnn's backward passes are not themselves differentiable by autograd: a second
    derivative raises (once_differentiable). Before, layernorm's second derivative came out
    as 16.69 where torch's is 42.45."""
    layer, x = _built(xnn, name)
    y = layer(x)
    (g,) = torch.autograd.grad((y * y).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        g.sum().backward()


def test_first_derivatives_with_create_graph_are_still_right():
    """``create_graph=True`` alone (for a gradient penalty's first step) gives the gradient."""
    layer, x = _built(xnn, "LayerNorm")
    theirs, x2 = _built(torch.nn, "LayerNorm")
    (g,) = torch.autograd.grad((layer(x) ** 2).sum(), x, create_graph=True)
    (e,) = torch.autograd.grad((theirs(x2) ** 2).sum(), x2)
    torch.testing.assert_close(g, e)


def test_outputs_never_alias_inputs_or_each_other():
    x = _on_device(_t(6, 3))
    rm, rv = torch.zeros(3, dtype=D, device=DEVICE), torch.ones(3, dtype=D, device=DEVICE)
    out, m, v = XF.batchnorm(x, None, None, rm, rv, train=False)
    pointers = {t.untyped_storage().data_ptr() for t in (x, rm, rv)}
    for t in (out, m, v):
        assert t.untyped_storage().data_ptr() not in pointers
    assert XF.relu(x).untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
