"""``xpnn.cs231n`` mirrors the assignment's package: each star import gives its names."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import xpnn.cs231n

LAYERS = {
    "affine_forward", "affine_backward", "relu_forward", "relu_backward",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
    "layernorm_forward", "layernorm_backward", "dropout_forward", "dropout_backward",
    "conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
    "max_pool_backward_naive", "spatial_batchnorm_forward", "spatial_batchnorm_backward",
    "spatial_groupnorm_forward", "spatial_groupnorm_backward", "svm_loss", "softmax_loss",
    "np",
}  # fmt: skip
FAST = {
    "conv_forward_fast",
    "conv_backward_fast",
    "max_pool_forward_fast",
    "max_pool_backward_fast",
}
SANDWICHES = {
    "affine_relu_forward", "affine_relu_backward", "conv_relu_forward", "conv_relu_backward",
    "conv_bn_relu_forward", "conv_bn_relu_backward", "conv_relu_pool_forward",
    "conv_relu_pool_backward",
}  # fmt: skip

# What `from cs231n.<module> import *` gives in the 2019 assignment (the names notebooks use).
ASSIGNMENT = {
    "layers": LAYERS,
    "fast_layers": FAST,
    "layer_utils": LAYERS | FAST | SANDWICHES,
    "gradient_check": {
        "eval_numerical_gradient",
        "eval_numerical_gradient_array",
        "grad_check_sparse",
    },
    "optim": {"sgd", "sgd_momentum", "rmsprop", "adam"},
    "solver": {"Solver", "optim"},
    "data_utils": {"load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data"},
    "classifiers.fc_net": {"TwoLayerNet", "FullyConnectedNet"} | LAYERS | SANDWICHES,
    "classifiers.cnn": {"ThreeLayerConvNet"} | LAYERS | FAST | SANDWICHES,
    "vis_utils": {"visualize_grid", "vis_grid", "vis_nn", "np", "sqrt", "ceil"},
}
# The sequence half (assignment 3 in 2017-2024): rnn_layers.py and classifiers/rnn.py.
RNN_LAYERS = {
    "rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
    "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
    "word_embedding_forward", "word_embedding_backward", "temporal_affine_forward",
    "temporal_affine_backward", "temporal_softmax_loss", "np",
}  # fmt: skip
ASSIGNMENT["rnn_layers"] = RNN_LAYERS
ASSIGNMENT["classifiers.rnn"] = {"CaptioningRNN"} | RNN_LAYERS
ASSIGNMENT["coco_utils"] = {"load_coco_data", "decode_captions", "sample_coco_minibatch", "np"}
# image_from_url shows the COCO images in both editions' captioning notebooks.
ASSIGNMENT["image_utils"] = {"blur_image", "preprocess_image", "deprocess_image", "image_from_url",
                             "load_image", "SQUEEZENET_MEAN", "SQUEEZENET_STD", "np"}  # fmt: skip
ASSIGNMENT["captioning_solver"] = {"CaptioningSolver", "optim", "np", "sample_coco_minibatch",
                                   "decode_captions"}  # fmt: skip
# The 2025/2026 PyTorch edition's sequence modules (they need torch).
PYTORCH_LAYERS = {
    "affine_forward", "rnn_step_forward", "rnn_forward", "word_embedding_forward",
    "lstm_step_forward", "lstm_forward", "temporal_affine_forward", "temporal_softmax_loss",
    "sigmoid", "torch",
}  # fmt: skip
NEEDS_TORCH = {"rnn_layers_pytorch", "classifiers.rnn_pytorch", "captioning_solver_pytorch"}
ASSIGNMENT["rnn_layers_pytorch"] = PYTORCH_LAYERS
ASSIGNMENT["classifiers.rnn_pytorch"] = {"CaptioningRNN", "np"} | PYTORCH_LAYERS
ASSIGNMENT["captioning_solver_pytorch"] = {
    "CaptioningSolverPytorch", "sample_coco_minibatch", "decode_captions", "optim", "np",
    "torch",
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(ASSIGNMENT))
def test_star_import_gives_the_assignment_names(module):
    if module in NEEDS_TORCH:
        pytest.importorskip("torch", reason="the PyTorch edition's modules need torch")
    namespace: dict = {}
    exec(f"from xpnn.cs231n.{module} import *", namespace)
    missing = ASSIGNMENT[module] - set(namespace)
    assert not missing, f"xpnn.cs231n.{module} lacks {sorted(missing)}"
    exported = importlib.import_module(f"xpnn.cs231n.{module}").__all__
    assert len(exported) == len(set(exported))


def test_every_module_of_the_mirror_is_checked():
    modules = {
        name.removeprefix("xpnn.cs231n.")
        for _, name, is_package in pkgutil.walk_packages(xpnn.cs231n.__path__, "xpnn.cs231n.")
        if not is_package
    }
    assert modules == set(ASSIGNMENT)


def test_the_notebook_setup_cells_import():
    namespace: dict = {}
    exec(
        "from xpnn.cs231n.classifiers.fc_net import *\n"
        "from xpnn.cs231n.classifiers.cnn import *\n"
        "from xpnn.cs231n.data_utils import get_CIFAR10_data\n"
        "from xpnn.cs231n.gradient_check import eval_numerical_gradient, "
        "eval_numerical_gradient_array\n"
        "from xpnn.cs231n.solver import Solver\n"
        "from xpnn.cs231n.layers import *\n"
        "from xpnn.cs231n.fast_layers import *\n"
        "from xpnn.cs231n.layer_utils import conv_relu_pool_forward, conv_relu_pool_backward\n"
        "from xpnn.cs231n.vis_utils import visualize_grid\n",
        namespace,
    )
    import xpnn

    assert namespace["affine_forward"] is xpnn.affine_forward
    assert namespace["Solver"] is xpnn.Solver
    assert namespace["FullyConnectedNet"] is xpnn.FullyConnectedNet
    assert namespace["visualize_grid"] is xpnn.vis.visualize_grid


@pytest.mark.parametrize("edition", ["numpy", "pytorch"])
def test_the_captioning_notebooks_setup_cells_import(edition):
    """The setup cells of RNN_Captioning/LSTM_Captioning (NumPy edition) and of
    RNN_Captioning_pytorch (2025/2026), with the substitution; both import image_from_url."""
    if edition == "pytorch":
        pytest.importorskip("torch")
    suffix = "_pytorch" if edition == "pytorch" else ""
    solver = "CaptioningSolverPytorch" if edition == "pytorch" else "CaptioningSolver"
    namespace: dict = {}
    exec(
        "from xpnn.cs231n.gradient_check import eval_numerical_gradient, "
        "eval_numerical_gradient_array\n"
        f"from xpnn.cs231n.rnn_layers{suffix} import *\n"
        f"from xpnn.cs231n.captioning_solver{suffix} import {solver}\n"
        f"from xpnn.cs231n.classifiers.rnn{suffix} import CaptioningRNN\n"
        "from xpnn.cs231n.coco_utils import load_coco_data, sample_coco_minibatch, "
        "decode_captions\n"
        "from xpnn.cs231n.image_utils import image_from_url\n",
        namespace,
    )
    import xpnn.images

    assert namespace["image_from_url"] is xpnn.images.image_from_url
    assert {"rnn_forward", "lstm_forward", "word_embedding_forward", solver} <= set(namespace)
