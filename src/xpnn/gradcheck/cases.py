"""The gradient-check cases of xpnn's own layers: one table, grouped by layer module.

Every public forward pass and loss of :mod:`xpnn` has at least one case here (a test
fails otherwise). Shapes are small: the numerical gradient calls the forward four times
per input element, and on JAX each shape is compiled once.
"""

from __future__ import annotations

import itertools

from .. import layer_utils as sandwich
from ..layers import affine, conv, dropout, losses, norm, pool, relu
from .spec import GradCase, distinct, labels, nonzero

__all__ = ["BUILTIN_CASES"]


def _affine() -> list[GradCase]:
    return [
        GradCase(
            "affine_forward",
            affine.affine_forward,
            affine.affine_backward,
            inputs={"x": x, "w": w, "b": (w[1],)},
        )
        for x, w in (((3, 2, 4), (8, 5)), ((4, 6), (6, 3)))
    ]


def _relu() -> list[GradCase]:
    return [
        GradCase("relu_forward", relu.relu_forward, relu.relu_backward, {"x": nonzero(4, 3, 5)})
    ]


def _conv() -> list[GradCase]:
    # Padding, stride 2, non-square filters, a window as large as the padded input. The
    # naive reference gets smaller inputs of the same kinds: its per-output loops are
    # what a gradient check (and jax.jit) pays for.
    fast = [
        ((2, 3, 5, 5), (2, 3, 3, 3), {"stride": 1, "pad": 1}),
        ((2, 2, 7, 7), (3, 2, 3, 3), {"stride": 2, "pad": 1}),
        ((1, 2, 6, 5), (2, 2, 2, 3), {"stride": 1, "pad": 0}),
        ((2, 1, 4, 4), (2, 1, 4, 4), {"stride": 2, "pad": 1}),
    ]
    naive = [
        ((1, 2, 4, 4), (2, 2, 3, 3), {"stride": 1, "pad": 1}),
        ((1, 2, 5, 5), (2, 2, 3, 3), {"stride": 2, "pad": 1}),
        ((1, 2, 4, 3), (2, 2, 2, 3), {"stride": 1, "pad": 0}),
        ((2, 1, 4, 4), (1, 1, 4, 4), {"stride": 2, "pad": 1}),
    ]
    return [
        GradCase(
            forward.__name__,
            forward,
            backward,
            inputs={"x": x, "w": w, "b": (w[0],)},
            params={"conv_param": param},
        )
        for forward, backward, geometries in (
            (conv.conv_forward_fast, conv.conv_backward_fast, fast),
            (conv.conv_forward_naive, conv.conv_backward_naive, naive),
        )
        for x, w, param in geometries
    ]


def _pool() -> list[GradCase]:
    geometries = [
        ((2, 3, 4, 4), {"pool_height": 2, "pool_width": 2, "stride": 2}),
        ((2, 2, 7, 7), {"pool_height": 3, "pool_width": 3, "stride": 2}),  # overlapping
        ((1, 2, 5, 7), {"pool_height": 1, "pool_width": 3, "stride": 2}),
        ((2, 1, 7, 7), {"pool_height": 2, "pool_width": 2, "stride": 5}),  # gaps
    ]
    implementations = [
        (pool.max_pool_forward_fast, pool.max_pool_backward_fast),
        (pool.max_pool_forward_naive, pool.max_pool_backward_naive),
    ]
    return [
        GradCase(
            forward.__name__,
            forward,
            backward,
            inputs={"x": distinct(*x)},
            params={"pool_param": param},
        )
        for (x, param), (forward, backward) in itertools.product(geometries, implementations)
    ]


def _norm() -> list[GradCase]:
    train = {"mode": "train"}
    cases = [
        GradCase(
            "batchnorm_forward",
            norm.batchnorm_forward,
            backward,
            inputs={"x": (6, 4), "gamma": (4,), "beta": (4,)},
            params={"bn_param": train},
            label=backward.__name__,
        )
        for backward in (norm.batchnorm_backward, norm.batchnorm_backward_alt)
    ]
    cases.append(
        GradCase(
            "spatial_batchnorm_forward",
            norm.spatial_batchnorm_forward,
            norm.spatial_batchnorm_backward,
            inputs={"x": (2, 3, 4, 5), "gamma": (3,), "beta": (3,)},
            params={"bn_param": train},
        )
    )
    cases.append(
        GradCase(
            "layernorm_forward",
            norm.layernorm_forward,
            norm.layernorm_backward,
            inputs={"x": (4, 7), "gamma": (7,), "beta": (7,)},
            params={"ln_param": {}},
        )
    )
    cases.extend(
        GradCase(
            "spatial_groupnorm_forward",
            norm.spatial_groupnorm_forward,
            norm.spatial_groupnorm_backward,
            inputs={"x": (2, 6, 3, 4), "gamma": (1, 6, 1, 1), "beta": (1, 6, 1, 1)},
            params={"G": groups, "gn_param": {}},
        )
        for groups in (1, 2, 6)
    )
    return cases


def _dropout() -> list[GradCase]:
    return [
        GradCase(
            "dropout_forward",
            dropout.dropout_forward,
            dropout.dropout_backward,
            inputs={"x": (10, 12)},
            params={"dropout_param": {"mode": mode, "p": p, "seed": 123}},
            random=mode == "train",
        )
        for mode, p in (("train", 0.25), ("train", 0.8), ("test", 0.5))
    ]


def _losses() -> list[GradCase]:
    return [
        GradCase(loss.__name__, loss, None, inputs={"x": (6, 5), "y": labels(6, 5)})
        for loss in (losses.softmax_loss, losses.svm_loss)
    ]


def _sandwiches() -> list[GradCase]:
    conv_param = {"stride": 1, "pad": 1}
    return [
        GradCase(
            "affine_relu_forward",
            sandwich.affine_relu_forward,
            sandwich.affine_relu_backward,
            inputs={"x": (3, 2, 3), "w": (6, 4), "b": (4,)},
        ),
        GradCase(
            "conv_relu_forward",
            sandwich.conv_relu_forward,
            sandwich.conv_relu_backward,
            inputs={"x": (2, 3, 5, 5), "w": (3, 3, 3, 3), "b": (3,)},
            params={"conv_param": conv_param},
        ),
        GradCase(
            "conv_relu_pool_forward",
            sandwich.conv_relu_pool_forward,
            sandwich.conv_relu_pool_backward,
            inputs={"x": distinct(2, 3, 6, 6), "w": (3, 3, 3, 3), "b": (3,)},
            params={
                "conv_param": conv_param,
                "pool_param": {"pool_height": 2, "pool_width": 2, "stride": 2},
            },
        ),
        GradCase(
            "affine_bn_relu_forward",
            sandwich.affine_bn_relu_forward,
            sandwich.affine_bn_relu_backward,
            inputs={"x": (5, 2, 3), "w": (6, 4), "b": (4,), "gamma": (4,), "beta": (4,)},
            params={"bn_param": {"mode": "train"}},
        ),
        GradCase(
            "affine_ln_relu_forward",
            sandwich.affine_ln_relu_forward,
            sandwich.affine_ln_relu_backward,
            inputs={"x": (3, 2, 3), "w": (6, 5), "b": (5,), "gamma": (5,), "beta": (5,)},
            params={"ln_param": {}},
        ),
        GradCase(
            "conv_bn_relu_forward",
            sandwich.conv_bn_relu_forward,
            sandwich.conv_bn_relu_backward,
            inputs={"x": (2, 3, 5, 5), "w": (3, 3, 3, 3), "b": (3,), "gamma": (3,), "beta": (3,)},
            params={"conv_param": conv_param, "bn_param": {"mode": "train"}},
        ),
    ]


BUILTIN_CASES: tuple[GradCase, ...] = tuple(
    itertools.chain(
        _affine(), _relu(), _conv(), _pool(), _norm(), _dropout(), _losses(), _sandwiches()
    )
)
