"""``import xpnn.torch.nn as nn`` in place of ``import torch.nn as nn``.

The CS231n assignment 2 ``PyTorch.ipynb`` model-building cells (Parts III and IV) run
unchanged on either import, and train to the same losses; the layers are ``torch.nn``'s
classes (``isinstance``, ``type(m) == nn.Conv2d``, ``nn.init``, ``state_dict``, ``repr``)
whose backward passes are xpnn's. The oracle is always ``torch.nn`` itself.

Runs on CPU tensors in every session where torch is installed, whatever XPNN_BACKEND is.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the torch.nn drop-in needs torch")

import xpnn.torch.functional as XF  # noqa: E402
import xpnn.torch.nn as xnn  # noqa: E402

# --------------------------------------------------------------------------- the notebook

# The setup cell of CS231n assignment 2, PyTorch.ipynb (2021 to 2025 editions), with the
# data loaders, torchvision and the device choice left out; {nn} is the one line a port
# changes.
SETUP = """
import torch
{nn}
import torch.optim as optim
import torch.nn.functional as F  # useful stateless functions

dtype = torch.float32  # We will be using float throughout this tutorial.
"""

# The notebook's model-building cells, verbatim from PyTorch.ipynb (2021 to 2025 editions:
# Part II's flatten, Part III "PyTorch Module API", Part IV "PyTorch Sequential API"), in
# notebook order. The cells marked TODO are the student's to write; they hold a usual
# solution (kaiming_normal_ as Part III asks; the init_weights function that solutions of
# Part IV write for model.apply). Each training cell ends with the notebook's
# ``train_part34(model, optimizer)``; the tests pass a stand-in that trains on random data.
CELLS = {
    "flatten": """
def flatten(x):
    N = x.shape[0] # read in N, C, H, W
    return x.view(N, -1)  # "flatten" the C * H * W values into a single vector per image
""",
    "Module API: Two-Layer Network": """
class TwoLayerFC(nn.Module):
    def __init__(self, input_size, hidden_size, num_classes):
        super().__init__()
        # assign layer objects to class attributes
        self.fc1 = nn.Linear(input_size, hidden_size)
        # nn.init package contains convenient initialization methods
        # http://pytorch.org/docs/master/nn.html#torch-nn-init
        nn.init.kaiming_normal_(self.fc1.weight)
        self.fc2 = nn.Linear(hidden_size, num_classes)
        nn.init.kaiming_normal_(self.fc2.weight)

    def forward(self, x):
        # forward always defines connectivity
        x = flatten(x)
        scores = self.fc2(F.relu(self.fc1(x)))
        return scores

def test_TwoLayerFC():
    input_size = 50
    x = torch.zeros((64, input_size), dtype=dtype)  # minibatch size 64, feature dimension 50
    model = TwoLayerFC(input_size, 42, 10)
    scores = model(x)
    print(scores.size())  # you should see [64, 10]
test_TwoLayerFC()
""",
    "Module API: Three-Layer ConvNet (TODO)": """
class ThreeLayerConvNet(nn.Module):
    def __init__(self, in_channel, channel_1, channel_2, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channel, channel_1, kernel_size=5, padding=2)
        nn.init.kaiming_normal_(self.conv1.weight)
        self.conv2 = nn.Conv2d(channel_1, channel_2, kernel_size=3, padding=1)
        nn.init.kaiming_normal_(self.conv2.weight)
        self.fc = nn.Linear(channel_2 * 32 * 32, num_classes)
        nn.init.kaiming_normal_(self.fc.weight)

    def forward(self, x):
        scores = None
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        scores = self.fc(flatten(x))
        return scores


def test_ThreeLayerConvNet():
    x = torch.zeros((64, 3, 32, 32), dtype=dtype)  # minibatch size 64, image size [3, 32, 32]
    model = ThreeLayerConvNet(in_channel=3, channel_1=12, channel_2=8, num_classes=10)
    scores = model(x)
    print(scores.size())  # you should see [64, 10]
test_ThreeLayerConvNet()
""",
    "Module API: Train a Two-Layer Network": """
hidden_layer_size = 4000
learning_rate = 1e-2
model = TwoLayerFC(3 * 32 * 32, hidden_layer_size, 10)
optimizer = optim.SGD(model.parameters(), lr=learning_rate)

train_part34(model, optimizer)
""",
    "Module API: Train a Three-Layer ConvNet (TODO)": """
learning_rate = 3e-3
channel_1 = 32
channel_2 = 16

model = None
optimizer = None
model = ThreeLayerConvNet(3, channel_1, channel_2, 10)
optimizer = optim.SGD(model.parameters(), lr=learning_rate)

train_part34(model, optimizer)
""",
    "Sequential API: Two-Layer Network": """
# We need to wrap `flatten` function in a module in order to stack it
# in nn.Sequential
class Flatten(nn.Module):
    def forward(self, x):
        return flatten(x)

hidden_layer_size = 4000
learning_rate = 1e-2

model = nn.Sequential(
    Flatten(),
    nn.Linear(3 * 32 * 32, hidden_layer_size),
    nn.ReLU(),
    nn.Linear(hidden_layer_size, 10),
)

# you can use Nesterov momentum in optim.SGD
optimizer = optim.SGD(model.parameters(), lr=learning_rate,
                     momentum=0.9, nesterov=True)

train_part34(model, optimizer)
""",
    "Sequential API: Three-Layer ConvNet (TODO)": """
channel_1 = 32
channel_2 = 16
learning_rate = 1e-2

model = None
optimizer = None

model = nn.Sequential(
    nn.Conv2d(3, channel_1, kernel_size=5, padding=2),
    nn.ReLU(),
    nn.Conv2d(channel_1, channel_2, kernel_size=3, padding=1),
    nn.ReLU(),
    Flatten(),
    nn.Linear(channel_2 * 32 * 32, 10),
)

def init_weights(m):
    if type(m) == nn.Conv2d or type(m) == nn.Linear:
        nn.init.kaiming_normal_(m.weight.data)
        nn.init.zeros_(m.bias.data)

model.apply(init_weights)
optimizer = optim.SGD(model.parameters(), lr=learning_rate,
                     momentum=0.9, nesterov=True)

train_part34(model, optimizer)
""",
}

TORCH_NN = "import torch.nn as nn"
XPNN_NN = "import xpnn.torch.nn as nn"  # the port: this line only


def _batches(dtype, steps=3, n=8, seed=0):
    """Random CIFAR-shaped minibatches (the notebook's loader_train, offline)."""
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(n, 3, 32, 32, generator=g, dtype=dtype),
            torch.randint(0, 10, (n,), generator=g),
        )
        for _ in range(steps)
    ]


def run_notebook(nn_import, *, dtype=torch.float32, steps=3, seed=0):
    """Run the cells after ``nn_import``; return the namespace and, per training cell, the
    trained model and its losses."""
    batches = _batches(dtype, steps)
    trained = []

    def train_part34(model, optimizer, epochs=1):
        """The notebook's train_part34 on ``batches``, its accuracy checks left out."""
        model = model.to(dtype=dtype)  # the notebook moves the model to its device here
        losses = []
        for _ in range(epochs):
            for x, y in batches:
                model.train()  # put model to training mode
                scores = model(x)
                loss = torch.nn.functional.cross_entropy(scores, y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
        trained.append((model, losses))

    namespace = {"__name__": "PyTorch_ipynb", "train_part34": train_part34}
    torch.manual_seed(seed)
    exec(SETUP.format(nn=nn_import), namespace)
    for name, cell in CELLS.items():
        exec(compile(cell, f"PyTorch.ipynb: {name}", "exec"), namespace)
    return namespace, trained


def test_the_notebook_cells_run_unchanged_on_xpnn(capsys):
    namespace, trained = run_notebook(XPNN_NN, steps=1)
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["torch.Size([64, 10])", "torch.Size([64, 10])"]  # the cells' checks
    assert namespace["nn"] is xnn
    assert len(trained) == 4
    for model, _ in trained:
        layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
        assert layers and all(type(m).__module__ == "xpnn.torch.nn" for m in layers)


@pytest.mark.parametrize(
    ("dtype", "tol"),
    # float32: xpnn's and torch's kernels may round differently (measured: 1e-7 relative
    # on the losses, 2e-7 on the weights after three steps); float64: 2e-16 relative.
    [(torch.float32, 1e-5), (torch.float64, 1e-12)],
    ids=["float32", "float64"],
)
def test_the_notebook_models_train_to_the_same_losses_as_torch_nn(dtype, tol):
    _, reference = run_notebook(TORCH_NN, dtype=dtype)
    _, ported = run_notebook(XPNN_NN, dtype=dtype)
    for (torch_model, torch_losses), (xpnn_model, xpnn_losses) in zip(
        reference, ported, strict=True
    ):
        assert xpnn_losses == pytest.approx(torch_losses, rel=tol, abs=0)
        # ... and the same weights after the steps (they moved by far more than tol)
        trained = xpnn_model.state_dict()
        for key, value in torch_model.state_dict().items():
            torch.testing.assert_close(trained[key], value, rtol=tol, atol=tol)


def _spy_on_backwards(monkeypatch):
    """Count the calls of xpnn's backward passes (the autograd Functions' ``backward``)."""
    calls = {}
    for fn in (f.autograd_function for f in (XF.affine, XF.conv, XF.relu, XF.max_pool)):
        original = fn.backward

        def spy(ctx, *grads, _name=fn.__name__, _original=original):
            calls[_name] = calls.get(_name, 0) + 1
            return _original(ctx, *grads)

        monkeypatch.setattr(fn, "backward", staticmethod(spy))
    return calls


def _graph_nodes(tensor):
    """The names of the autograd nodes behind ``tensor``."""
    names, stack, seen = set(), [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


def test_the_ported_models_backpropagate_through_xpnn(monkeypatch):
    namespace, _ = run_notebook(XPNN_NN, steps=0)
    x, y = _batches(torch.float32, steps=1, n=4)[0]
    module_api = namespace["ThreeLayerConvNet"](3, 6, 4, 10)
    sequential = namespace["model"]  # the last cell's: nn.Sequential with nn.ReLU
    for model, expected in [
        # Part III calls torch's F.relu, so only the layers are xpnn's
        (module_api, {"Conv": 2, "Affine": 1}),
        (sequential, {"Conv": 2, "Relu": 2, "Affine": 1}),
    ]:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        nodes = _graph_nodes(loss)
        assert {f"{name}Backward" for name in expected} <= nodes
        # none of torch's own convolution or matmul backward nodes
        assert not nodes & {"ConvolutionBackward0", "AddmmBackward0", "MmBackward0"}, nodes
        calls = _spy_on_backwards(monkeypatch)
        loss.backward()
        assert calls == expected
        monkeypatch.undo()


def test_a_broken_xpnn_backward_shows_in_the_gradients(monkeypatch):
    """The gradients really come from xpnn: halving its affine backward halves them."""

    def grads():
        torch.manual_seed(0)
        model = xnn.Sequential(xnn.Flatten(), xnn.Linear(12, 3))
        x = torch.randn(5, 3, 2, 2)
        model(x).square().sum().backward()
        return model[1].weight.grad

    right = grads()
    original = XF.affine.autograd_function.backward

    def halved(ctx, dout):
        return tuple(None if g is None else g / 2 for g in original(ctx, dout))

    monkeypatch.setattr(XF.affine.autograd_function, "backward", staticmethod(halved))
    torch.testing.assert_close(grads(), right / 2)


# --------------------------------------------------------------------------- torch.nn's classes

#: Constructor calls, each made on both namespaces.
LAYERS = {
    "Linear": lambda nn: nn.Linear(6, 4),
    "LinearNoBias": lambda nn: nn.Linear(6, 4, bias=False, dtype=torch.float64),
    "Conv2d": lambda nn: nn.Conv2d(3, 8, 5, padding=2),
    "Conv2dFull": lambda nn: nn.Conv2d(
        3, 8, (3, 5), stride=(2, 2), padding=(1, 2), bias=False, padding_mode="reflect"
    ),
    "Conv2dSame": lambda nn: nn.Conv2d(3, 4, 4, padding="same"),
    "MaxPool2d": lambda nn: nn.MaxPool2d(2),
    "MaxPool2dFull": lambda nn: nn.MaxPool2d((3, 2), stride=1, padding=1),
    "ReLU": lambda nn: nn.ReLU(),
    "ReLUInplace": lambda nn: nn.ReLU(inplace=True),
    "Dropout": lambda nn: nn.Dropout(0.3),
    "BatchNorm1d": lambda nn: nn.BatchNorm1d(4, momentum=None),
    "BatchNorm2d": lambda nn: nn.BatchNorm2d(3, eps=1e-3, affine=False),
    "LayerNorm": lambda nn: nn.LayerNorm((3, 4), elementwise_affine=True),
    "GroupNorm": lambda nn: nn.GroupNorm(2, 4, eps=1e-4),
    "Flatten": lambda nn: nn.Flatten(),
    "RNN": lambda nn: nn.RNN(4, 5, batch_first=True),
    "RNNNoBias": lambda nn: nn.RNN(3, 2, bias=False, dtype=torch.float64),
    "LSTM": lambda nn: nn.LSTM(4, 5, batch_first=True),
    "LSTMTimeMajor": lambda nn: nn.LSTM(3, 2, bias=False),
}


@pytest.mark.parametrize("name", LAYERS)
def test_each_layer_is_the_torch_nn_class_of_its_name(name):
    ours, theirs = LAYERS[name](xnn), LAYERS[name](torch.nn)
    assert isinstance(ours, type(theirs))
    assert type(ours).__name__ == type(theirs).__name__
    assert repr(ours) == repr(theirs)
    assert [(k, v.shape, v.dtype) for k, v in ours.state_dict().items()] == [
        (k, v.shape, v.dtype) for k, v in theirs.state_dict().items()
    ]
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    assert [k for k, _ in ours.named_buffers()] == [k for k, _ in theirs.named_buffers()]


def test_the_rest_is_torch_nn_itself():
    for name in ("Module", "Sequential", "Parameter", "Flatten", "init", "functional"):
        assert getattr(xnn, name) is getattr(torch.nn, name), name
    namespace = {}
    exec("from xpnn.torch.nn import *", namespace)
    assert sorted(k for k in namespace if not k.startswith("__")) == sorted(xnn.__all__)


@pytest.mark.parametrize("name", [n for n in LAYERS if n != "Flatten"])
def test_type_checks_select_the_namespace_s_own_layers(name):
    ours = LAYERS[name](xnn)
    assert type(ours) is getattr(xnn, type(ours).__name__)  # the notebook's type(m) == nn.X
    assert type(ours) is not getattr(torch.nn, type(ours).__name__)
    assert type(LAYERS[name](torch.nn)) is not type(ours)


@pytest.mark.parametrize("name", [n for n in LAYERS if n != "Flatten"])
def test_the_same_seed_gives_the_same_parameters_and_reset_parameters_redraws_alike(name):
    torch.manual_seed(5)
    ours = LAYERS[name](xnn)
    torch.manual_seed(5)
    theirs = LAYERS[name](torch.nn)
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    if hasattr(theirs, "reset_parameters"):
        torch.manual_seed(6)
        ours.reset_parameters()
        torch.manual_seed(6)
        theirs.reset_parameters()
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value), key


@pytest.mark.parametrize(
    "initialise",
    [
        lambda nn, m: nn.init.kaiming_normal_(m.weight),
        lambda nn, m: nn.init.kaiming_normal_(m.weight.data),
        lambda nn, m: nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("relu")),
        lambda nn, m: nn.init.zeros_(m.bias.data),
        lambda nn, m: nn.init.constant_(m.bias, 0.3),
    ],
    ids=["kaiming_normal_", "kaiming_normal_data", "xavier_uniform_", "zeros_", "constant_"],
)
@pytest.mark.parametrize("name", ["Linear", "Conv2d"])
def test_nn_init_on_xpnn_layers_draws_what_it_draws_on_torch_nn(name, initialise):
    modules = {}
    for nn in (xnn, torch.nn):
        torch.manual_seed(9)
        modules[nn] = LAYERS[name](nn)
        initialise(nn, modules[nn])
    ours, theirs = modules[xnn], modules[torch.nn]
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    assert all(isinstance(p, torch.nn.Parameter) for p in ours.parameters())


def test_state_dicts_load_both_ways_between_a_torch_model_and_its_port():
    """Part III's model, built from each namespace with other weights, loaded strictly."""
    torch_ns, _ = run_notebook(TORCH_NN, steps=0, seed=1)
    xpnn_ns, _ = run_notebook(XPNN_NN, steps=0, seed=2)
    reference = torch_ns["ThreeLayerConvNet"](3, 6, 4, 10).double()
    port = xpnn_ns["ThreeLayerConvNet"](3, 6, 4, 10).double()
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    assert not torch.allclose(port(x), reference(x))
    port.load_state_dict(reference.state_dict())
    torch.testing.assert_close(port(x), reference(x), rtol=0, atol=1e-12)
    with torch.no_grad():
        for p in port.parameters():
            p.mul_(1.5)
    reference.load_state_dict(port.state_dict())
    torch.testing.assert_close(port(x), reference(x), rtol=0, atol=1e-12)
    # batch norm: the buffers travel too
    torch_bn, xpnn_bn = torch.nn.BatchNorm2d(3), xnn.BatchNorm2d(3)
    torch_bn(torch.randn(4, 3, 2, 2))
    xpnn_bn.load_state_dict(torch_bn.state_dict())
    for key, value in torch_bn.state_dict().items():
        assert torch.equal(xpnn_bn.state_dict()[key], value), key
    assert int(xpnn_bn.num_batches_tracked) == 1


def test_a_whole_model_prints_like_torch_nn():
    def build(nn):
        return nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
            nn.Flatten(),
            nn.Linear(16 * 4 * 4, 10),
        )

    assert repr(build(xnn)) == repr(build(torch.nn))


# --------------------------------------------------------------------------- what xpnn refuses


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: xnn.Conv2d(3, 4, 3, dilation=2), "dilation"),
        (lambda: xnn.Conv2d(4, 4, 3, groups=2), "groups"),
        (lambda: xnn.Conv2d(3, 4, 3, stride=(1, 2)), "stride"),
        (lambda: xnn.MaxPool2d(3, dilation=(2, 2)), "dilation"),
        (lambda: xnn.MaxPool2d(2, return_indices=True), "return_indices"),
        (lambda: xnn.MaxPool2d(3, 2, ceil_mode=True), "ceil_mode"),
        (lambda: xnn.MaxPool2d(2, stride=(2, 1)), "stride"),
        (lambda: xnn.MaxPool2d((2, 3)), "stride"),  # the stride defaults to the window
        (lambda: xnn.MaxPool2d(2, padding=2), "padding"),
        (lambda: xnn.RNN(3, 4, nonlinearity="relu"), "nonlinearity"),
        (lambda: xnn.RNN(3, 4, num_layers=2), "num_layers"),
        (lambda: xnn.LSTM(3, 4, bidirectional=True), "bidirectional"),
        (lambda: xnn.LSTM(3, 4, proj_size=2), "proj_size"),
    ],
)
def test_options_xpnn_cannot_compute_raise_at_construction(build, argument):
    with pytest.raises(ValueError, match=argument):
        build()


def test_batch_norm_refuses_one_value_per_channel_in_training_as_torch_does():
    x = torch.randn(1, 4)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel") as ours:
        xnn.BatchNorm1d(4)(x)
    with pytest.raises(ValueError) as theirs:
        torch.nn.BatchNorm1d(4)(x)
    assert str(ours.value) == str(theirs.value)
    assert xnn.BatchNorm1d(4).eval()(x).shape == (1, 4)  # the running averages need no batch


# --------------------------------------------------------------------------- RNN and LSTM


def _run_recurrent(module, x, hx):
    """Outputs, then the gradients of the parameters, x and hx, of a loss on every output."""
    x = x.clone().requires_grad_()
    states = tuple(h.clone().requires_grad_() for h in hx)
    given = None if not states else states[0] if len(states) == 1 else states
    output, last = module(x, given)
    finals = last if isinstance(last, tuple) else (last,)
    # weights on every output, so that each gets its own upstream gradient
    loss = (output * torch.linspace(-1, 2, output.numel(), dtype=output.dtype).reshape(
        output.shape)).sum() + sum((f**3).sum() for f in finals)  # fmt: skip
    loss.backward()
    grads = [p.grad for p in module.parameters()] + [x.grad] + [h.grad for h in states]
    return (output, *finals), grads


@pytest.mark.parametrize("with_state", [False, True], ids=["hx=None", "hx"])
@pytest.mark.parametrize("layout", ["batch_first", "time_major", "unbatched"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("name", ["RNN", "LSTM"])
def test_the_recurrent_twins_give_torch_nn_s_outputs_and_gradients(name, bias, layout, with_state):
    """torch.nn's weights (gate order i, f, g, o; two biases) loaded into the twin give the
    same outputs, final states and gradients (of the parameters, the input and hx)."""
    torch.manual_seed(3)
    reference = getattr(torch.nn, name)(4, 5, bias=bias, batch_first=layout == "batch_first")
    reference = reference.double()
    twin = getattr(xnn, name)(4, 5, bias=bias, batch_first=layout == "batch_first").double()
    twin.load_state_dict(reference.state_dict())
    n, steps = 3, 6
    shape = {"batch_first": (n, steps, 4), "time_major": (steps, n, 4), "unbatched": (steps, 4)}
    x = torch.randn(shape[layout], dtype=torch.float64)
    state = (1, 5) if layout == "unbatched" else (1, n, 5)
    hx = [torch.randn(state, dtype=torch.float64) for _ in range((name == "LSTM" and 2) or 1)]
    hx = hx if with_state else []
    want_out, want_grads = _run_recurrent(reference, x, hx)
    got_out, got_grads = _run_recurrent(twin, x, hx)
    for got, want in zip((*got_out, *got_grads), (*want_out, *want_grads), strict=True):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_the_recurrent_twins_run_xpnn_s_backward_passes(monkeypatch):
    """The gradients come from xpnn's rnn_backward and lstm_step_backward: their nodes,
    and none of torch's recurrence or matmul nodes, are in the graph; halving xpnn's
    backward halves them (one LSTM step, so that the halving does not compound)."""
    for name, bridge, steps in (("RNN", XF.rnn, 3), ("LSTM", XF.lstm_step, 1)):
        x = torch.randn(2, steps, 4, dtype=torch.float64)
        torch.manual_seed(0)
        twin = getattr(xnn, name)(4, 5, batch_first=True).double()
        output = twin(x)[0]
        nodes = _graph_nodes(output.sum())
        assert f"{bridge.autograd_function.__name__}Backward" in nodes, nodes
        assert not {n for n in nodes if n.startswith(("Rnn", "Lstm", "Mkldnn", "Mm"))} - {
            f"{bridge.autograd_function.__name__}Backward"
        }, nodes
        output.square().sum().backward()
        right = twin.weight_ih_l0.grad.clone()
        original = bridge.autograd_function.backward

        def halved(ctx, *douts, _original=original):
            return tuple(None if g is None else g / 2 for g in _original(ctx, *douts))

        monkeypatch.setattr(bridge.autograd_function, "backward", staticmethod(halved))
        twin.zero_grad()
        twin(x)[0].square().sum().backward()
        torch.testing.assert_close(twin.weight_ih_l0.grad, right / 2)
        monkeypatch.undo()


def test_a_wrong_gate_order_is_caught(monkeypatch):
    """The comparison with torch.nn.LSTM fails when the twin keeps torch's gate order."""
    import xpnn.torch.nn as module

    torch.manual_seed(1)
    reference = torch.nn.LSTM(4, 5, batch_first=True).double()
    twin = xnn.LSTM(4, 5, batch_first=True).double()
    twin.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(twin(x)[0], reference(x)[0])
    monkeypatch.setattr(module, "torch_gate_order", lambda a, axis=-1: a)
    assert not torch.allclose(twin(x)[0], reference(x)[0], atol=1e-3)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: xnn.RNN(4, 5)(torch.randn(2, 3, 4), torch.zeros(2, 5)), r"hx must have shape"),
        (lambda: xnn.LSTM(4, 5, batch_first=True)(torch.randn(2, 3, 4), torch.zeros(1, 2, 5)),
         r"hx must be a pair"),
        (lambda: xnn.LSTM(4, 5)(torch.randn(3, 2, 4), (torch.zeros(1, 2, 5), torch.zeros(1, 5))),
         r"c_0 must have shape \(1, 2, 5\)"),
        (lambda: xnn.RNN(4, 5)(torch.randn(1, 2, 3, 4)), r"input must be"),
        (lambda: xnn.LSTM(4, 5)(torch.nn.utils.rnn.pack_sequence([torch.randn(3, 4)])),
         r"PackedSequence"),
        (lambda: xnn.LSTM(4, 5)(torch.randn(3, 2, 4, dtype=torch.float64)),
         r"input must have the type torch.float32, got type torch.float64"),
        (lambda: xnn.RNN(4, 5, batch_first=True)(torch.randn(2, 0, 4)),
         r"Expected sequence length to be larger than 0"),
    ],
    ids=["rnn_hx_shape", "lstm_hx_not_pair", "lstm_c0_shape", "input_ndim", "packed",
         "dtype", "empty_sequence"],
)  # fmt: skip
def test_the_recurrent_twins_name_what_is_wrong(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
