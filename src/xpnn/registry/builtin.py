"""The declarations of xpnn's own layers: the one place a layer is described.

Each :class:`~xpnn.registry.spec.Layer` below names a forward pass, its backward passes, its
array inputs, its gradient-check cases, its independent oracle, its derivation page, and,
when it is bridged, the keyword parameters of its :mod:`xpnn.jax` and
:mod:`xpnn.torch.functional` function. Shapes are small: the numerical gradient calls the
forward four times per input element, and on JAX each shape is compiled once. Adding a
layer: ``docs/adding_a_layer.md``.
"""

from __future__ import annotations

from typing import Any

from .. import layer_utils as sandwich
from ..layers import affine, conv, dropout, leaky_relu, losses, norm, pool, relu, rnn, temporal
from .spec import Layer, Oracle, Param, case, distinct, indices, labels, mask, nonzero

__all__ = ["BUILTIN_LAYERS"]


# --------------------------------------------------------------------------- oracles
# Each is called as fn(lib, *arrays, **params), lib being the torch or jax module.


def _torch_affine(torch: Any, x: Any, w: Any, b: Any) -> Any:
    return x.reshape(x.shape[0], -1) @ w + b


def _jax_affine(jax: Any, x: Any, w: Any, b: Any) -> Any:
    return x.reshape(x.shape[0], -1) @ w + b


def _torch_conv(torch: Any, x: Any, w: Any, b: Any, conv_param: dict) -> Any:
    return torch.nn.functional.conv2d(
        x, w, b, stride=conv_param["stride"], padding=conv_param["pad"]
    )


def _jax_conv(jax: Any, x: Any, w: Any, b: Any, conv_param: dict) -> Any:
    pad = conv_param["pad"]
    s = conv_param["stride"]
    out = jax.lax.conv_general_dilated(x, w, (s, s), [(pad, pad), (pad, pad)])
    return out + b[None, :, None, None]


def _torch_pool(torch: Any, x: Any, pool_param: dict) -> Any:
    window = (pool_param["pool_height"], pool_param["pool_width"])
    return torch.nn.functional.max_pool2d(x, window, pool_param["stride"])


def _jax_pool(jax: Any, x: Any, pool_param: dict) -> Any:
    window = (1, 1, pool_param["pool_height"], pool_param["pool_width"])
    strides = (1, 1, pool_param["stride"], pool_param["stride"])
    return jax.lax.reduce_window(x, -jax.numpy.inf, jax.lax.max, window, strides, "VALID")


def _torch_batchnorm(torch: Any, x: Any, gamma: Any, beta: Any, bn_param: dict) -> Any:
    eps = bn_param.get("eps", 1e-5)
    return torch.nn.functional.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)


def _torch_layernorm(torch: Any, x: Any, gamma: Any, beta: Any, ln_param: dict) -> Any:
    eps = ln_param.get("eps", 1e-5)
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), gamma, beta, eps)


def _jax_layernorm(jax: Any, x: Any, gamma: Any, beta: Any, ln_param: dict) -> Any:
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    return (x - mean) / jax.numpy.sqrt(var + ln_param.get("eps", 1e-5)) * gamma + beta


def _torch_groupnorm(torch: Any, x: Any, gamma: Any, beta: Any, G: int, gn_param: dict) -> Any:
    eps = gn_param.get("eps", 1e-5)
    return torch.nn.functional.group_norm(x, G, gamma.reshape(-1), beta.reshape(-1), eps)


def _torch_softmax(torch: Any, x: Any, y: Any) -> Any:
    return torch.nn.functional.cross_entropy(x, y)


def _jax_softmax(jax: Any, x: Any, y: Any) -> Any:
    logp = jax.nn.log_softmax(x, axis=1)
    return -jax.numpy.take_along_axis(logp, y[:, None], axis=1).mean()


def _torch_svm(torch: Any, x: Any, y: Any) -> Any:
    # multi_margin_loss divides each sample's hinge sum by C; the assignment's does not.
    return x.shape[1] * torch.nn.functional.multi_margin_loss(x, y, margin=1.0)


def _torch_affine_relu(torch: Any, x: Any, w: Any, b: Any) -> Any:
    return torch.relu(_torch_affine(torch, x, w, b))


def _torch_conv_relu(torch: Any, x: Any, w: Any, b: Any, conv_param: dict) -> Any:
    return torch.relu(_torch_conv(torch, x, w, b, conv_param))


def _torch_conv_relu_pool(
    torch: Any, x: Any, w: Any, b: Any, conv_param: dict, pool_param: dict
) -> Any:
    return _torch_pool(torch, _torch_conv_relu(torch, x, w, b, conv_param), pool_param)


def _torch_affine_bn_relu(torch, x, w, b, gamma, beta, bn_param):
    return torch.relu(
        _torch_batchnorm(torch, _torch_affine(torch, x, w, b), gamma, beta, bn_param)
    )


def _torch_affine_ln_relu(torch, x, w, b, gamma, beta, ln_param):
    return torch.relu(
        _torch_layernorm(torch, _torch_affine(torch, x, w, b), gamma, beta, ln_param)
    )


def _torch_conv_bn_relu(torch, x, w, b, gamma, beta, conv_param, bn_param):
    out = _torch_batchnorm(torch, _torch_conv(torch, x, w, b, conv_param), gamma, beta, bn_param)
    return torch.relu(out)


# The sequence layers' oracles run torch's own recurrent kernels (torch.nn.RNN, LSTM and
# LSTMCell) with our weights, through torch.func.functional_call so that autograd reaches
# them. torch orders the LSTM gates i, f, g, o; ours are i, f, o, g.


def _torch_recurrent(torch: Any, kind: str, x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> Any:
    d, hidden = x.shape[-1], h0.shape[-1]
    lstm = kind == "lstm"
    module = (torch.nn.LSTM if lstm else torch.nn.RNN)(d, hidden, batch_first=True)
    module = module.to(torch.float64)
    weights = rnn.torch_gate_order(Wx).T if lstm else Wx.T
    recurrent = rnn.torch_gate_order(Wh).T if lstm else Wh.T
    bias = rnn.torch_gate_order(b) if lstm else b
    state = {
        "weight_ih_l0": weights,
        "weight_hh_l0": recurrent,
        "bias_ih_l0": bias,
        "bias_hh_l0": torch.zeros_like(bias),
    }
    start = (h0[None], torch.zeros_like(h0)[None]) if lstm else h0[None]
    out, _ = torch.func.functional_call(module, state, (x, start))
    return out


def _torch_rnn_step(torch: Any, x: Any, prev_h: Any, Wx: Any, Wh: Any, b: Any) -> Any:
    return _torch_recurrent(torch, "rnn", x[:, None], prev_h, Wx, Wh, b)[:, 0]


def _torch_lstm_step(torch: Any, x: Any, prev_h: Any, prev_c: Any, Wx: Any, Wh: Any, b: Any):
    cell = torch.nn.LSTMCell(x.shape[1], prev_h.shape[1]).to(torch.float64)
    state = {
        "weight_ih": rnn.torch_gate_order(Wx).T,
        "weight_hh": rnn.torch_gate_order(Wh).T,
        "bias_ih": rnn.torch_gate_order(b),
        "bias_hh": torch.zeros_like(b),
    }
    h, c = torch.func.functional_call(cell, state, (x, (prev_h, prev_c)))
    return torch.cat([h.reshape(-1), c.reshape(-1)])  # the cases' flat output


def _jax_rnn(jax: Any, x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> Any:
    h, hs = h0, []
    for t in range(x.shape[1]):
        h = jax.numpy.tanh(x[:, t] @ Wx + h @ Wh + b)
        hs.append(h)
    return jax.numpy.stack(hs, axis=1)


def _jax_lstm_cell(jax: Any, a: Any, c: Any) -> tuple[Any, Any]:
    """The LSTM cell from ``jax.nn``, gates (i, f, o, g) as the assignment orders them."""
    i, f, o, g = jax.numpy.split(a, 4, axis=1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jax.numpy.tanh(g)
    return jax.nn.sigmoid(o) * jax.numpy.tanh(c), c


def _jax_lstm_step(jax: Any, x: Any, prev_h: Any, prev_c: Any, Wx: Any, Wh: Any, b: Any) -> Any:
    h, c = _jax_lstm_cell(jax, x @ Wx + prev_h @ Wh + b, prev_c)
    return jax.numpy.concatenate([h.reshape(-1), c.reshape(-1)])  # the cases' flat output


def _jax_lstm(jax: Any, x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> Any:
    h, c, hs = h0, jax.numpy.zeros_like(h0), []
    for t in range(x.shape[1]):
        h, c = _jax_lstm_cell(jax, x[:, t] @ Wx + h @ Wh + b, c)
        hs.append(h)
    return jax.numpy.stack(hs, axis=1)


def _torch_temporal_softmax(torch: Any, x: Any, y: Any, mask: Any) -> Any:
    n, vocabulary = x.shape[0], x.shape[2]
    per_step = torch.nn.functional.cross_entropy(
        x.reshape(-1, vocabulary), y.reshape(-1), reduction="none"
    )
    return (per_step * mask.reshape(-1)).sum() / n


def _jax_temporal_softmax(jax: Any, x: Any, y: Any, mask: Any) -> Any:
    log_probs = jax.nn.log_softmax(x, axis=-1)
    picked = jax.numpy.take_along_axis(log_probs, y[..., None], axis=-1)[..., 0]
    return -(picked * mask).sum() / x.shape[0]


# --------------------------------------------------------------------------- parameters

_BN_PARAMS = {
    "train": Param(
        "bn_param.mode",
        convert=lambda train: "train" if train else "test",
        doc="True: normalize with the batch statistics and update the running averages; "
        "False: normalize with the running averages (test mode).",
    ),
    "momentum": Param(
        "bn_param.momentum", 0.9, doc="``running = momentum * running + (1 - momentum) * batch``."
    ),
    "eps": Param("bn_param.eps", 1e-5, doc="Added to the variance."),
}
_BN_ARRAYS = ("bn_param.running_mean", "bn_param.running_var")
_CHANNEL_FILLS = {"gamma": (1.0, "x", 1), "beta": (0.0, "x", 1)}
_TRAIN = {"mode": "train"}
_CONV = {"stride": 1, "pad": 1}


# --------------------------------------------------------------------------- the layers

_FAST_CONV_GEOMETRIES = [
    # Padding, stride 2, non-square filters, a window as large as the padded input.
    ((2, 3, 5, 5), (2, 3, 3, 3), {"stride": 1, "pad": 1}),
    ((2, 2, 7, 7), (3, 2, 3, 3), {"stride": 2, "pad": 1}),
    ((1, 2, 6, 5), (2, 2, 2, 3), {"stride": 1, "pad": 0}),
    ((2, 1, 4, 4), (2, 1, 4, 4), {"stride": 2, "pad": 1}),
]
# The naive reference gets smaller inputs of the same kinds: its per-output loops are what
# a gradient check (and jax.jit) pays for.
_NAIVE_CONV_GEOMETRIES = [
    ((1, 2, 4, 4), (2, 2, 3, 3), {"stride": 1, "pad": 1}),
    ((1, 2, 5, 5), (2, 2, 3, 3), {"stride": 2, "pad": 1}),
    ((1, 2, 4, 3), (2, 2, 2, 3), {"stride": 1, "pad": 0}),
    ((2, 1, 4, 4), (1, 1, 4, 4), {"stride": 2, "pad": 1}),
]
_POOL_GEOMETRIES = [
    ((2, 3, 4, 4), {"pool_height": 2, "pool_width": 2, "stride": 2}),
    ((2, 2, 7, 7), {"pool_height": 3, "pool_width": 3, "stride": 2}),  # overlapping
    ((1, 2, 5, 7), {"pool_height": 1, "pool_width": 3, "stride": 2}),
    ((2, 1, 7, 7), {"pool_height": 2, "pool_width": 2, "stride": 5}),  # gaps
]


def _conv_cases(geometries: list) -> tuple:
    return tuple(case(x=x, w=w, b=(w[0],), conv_param=p) for x, w, p in geometries)


def _pool_cases() -> tuple:
    return tuple(case(x=distinct(*x), pool_param=p) for x, p in _POOL_GEOMETRIES)


_POOL_PARAMS = {
    "pool_height": Param("pool_param.pool_height", 2),
    "pool_width": Param("pool_param.pool_width", 2),
    "stride": Param("pool_param.stride", 2),
}

BUILTIN_LAYERS: tuple[Layer, ...] = (
    Layer(
        affine.affine_forward,
        affine.affine_backward,
        inputs=("x", "w", "b"),
        cases=(
            case(x=(3, 2, 4), w=(8, 5), b=(5,)),
            case(x=(4, 6), w=(6, 3), b=(3,)),
        ),
        derivation="affine",
        oracle=Oracle(torch=_torch_affine, jax=_jax_affine),
        bridge="affine",
        fills={"b": (0.0, "w", -1)},
    ),
    Layer(
        relu.relu_forward,
        relu.relu_backward,
        inputs=("x",),
        cases=(case(x=nonzero(4, 3, 5)),),
        derivation="relu",
        oracle=Oracle(
            torch=lambda torch, x: torch.relu(x), jax=lambda jax, x: jax.numpy.maximum(x, 0)
        ),
        bridge="relu",
    ),
    Layer(
        leaky_relu.leaky_relu_forward,
        leaky_relu.leaky_relu_backward,
        inputs=("x",),
        cases=(
            case(x=nonzero(4, 3, 5)),
            case(x=nonzero(6, 7), negative_slope=0.2),
            case(
                x=nonzero(
                    5,
                ),
                negative_slope=-1.5,
            ),
        ),
        derivation="leaky_relu",
        oracle=Oracle(
            torch=lambda torch, x, negative_slope=0.01: torch.nn.functional.leaky_relu(
                x, negative_slope
            ),
            jax=lambda jax, x, negative_slope=0.01: jax.nn.leaky_relu(x, negative_slope),
        ),
        bridge="leaky_relu",
        params={"negative_slope": Param("negative_slope", 0.01, doc="The slope for x <= 0.")},
    ),
    Layer(
        conv.conv_forward_fast,
        conv.conv_backward_fast,
        inputs=("x", "w", "b"),
        cases=_conv_cases(_FAST_CONV_GEOMETRIES),
        derivation="conv",
        oracle=Oracle(torch=_torch_conv, jax=_jax_conv),
        bridge="conv",
        params={
            "stride": Param("conv_param.stride", 1, doc="``conv_param['stride']``, an int >= 1."),
            "pad": Param("conv_param.pad", 0, doc="``conv_param['pad']``: zeros on H and W."),
        },
        fills={"b": (0.0, "w", 0)},
        input_grad_flag="input_grad",
    ),
    Layer(
        conv.conv_forward_naive,
        conv.conv_backward_naive,
        inputs=("x", "w", "b"),
        cases=_conv_cases(_NAIVE_CONV_GEOMETRIES),
        derivation="conv",
        oracle=Oracle(torch=_torch_conv, jax=_jax_conv),
    ),
    Layer(
        pool.max_pool_forward_fast,
        pool.max_pool_backward_fast,
        inputs=("x",),
        cases=_pool_cases(),
        derivation="max_pool",
        oracle=Oracle(torch=_torch_pool, jax=_jax_pool),
        bridge="max_pool",
        params=_POOL_PARAMS,
    ),
    Layer(
        pool.max_pool_forward_naive,
        pool.max_pool_backward_naive,
        inputs=("x",),
        cases=_pool_cases(),
        derivation="max_pool",
        oracle=Oracle(torch=_torch_pool, jax=_jax_pool),
    ),
    Layer(
        norm.batchnorm_forward,
        norm.batchnorm_backward,
        alternatives=(norm.batchnorm_backward_alt,),
        inputs=("x", "gamma", "beta"),
        cases=(case(x=(6, 4), gamma=(4,), beta=(4,), bn_param=_TRAIN),),
        derivation="batchnorm",
        oracle=Oracle(torch=_torch_batchnorm),
        bridge="batchnorm",
        params=_BN_PARAMS,
        param_arrays=_BN_ARRAYS,
        returns_param_arrays=True,
        fills=_CHANNEL_FILLS,
        bridge_backward=norm.batchnorm_backward_alt,
    ),
    Layer(
        norm.spatial_batchnorm_forward,
        norm.spatial_batchnorm_backward,
        inputs=("x", "gamma", "beta"),
        cases=(case(x=(2, 3, 4, 5), gamma=(3,), beta=(3,), bn_param=_TRAIN),),
        derivation="batchnorm",
        oracle=Oracle(torch=_torch_batchnorm),
        bridge="spatial_batchnorm",
        params=_BN_PARAMS,
        param_arrays=_BN_ARRAYS,
        returns_param_arrays=True,
        fills=_CHANNEL_FILLS,
    ),
    Layer(
        norm.layernorm_forward,
        norm.layernorm_backward,
        inputs=("x", "gamma", "beta"),
        cases=(case(x=(4, 7), gamma=(7,), beta=(7,), ln_param={}),),
        derivation="layernorm_groupnorm",
        oracle=Oracle(torch=_torch_layernorm, jax=_jax_layernorm),
        bridge="layernorm",
        params={"eps": Param("ln_param.eps", 1e-5, doc="Added to the variance.")},
        fills={"gamma": (1.0, "x", -1), "beta": (0.0, "x", -1)},
    ),
    Layer(
        norm.spatial_groupnorm_forward,
        norm.spatial_groupnorm_backward,
        inputs=("x", "gamma", "beta"),
        cases=tuple(
            case(x=(2, 6, 3, 4), gamma=(1, 6, 1, 1), beta=(1, 6, 1, 1), G=g, gn_param={})
            for g in (1, 2, 6)
        ),
        derivation="layernorm_groupnorm",
        oracle=Oracle(torch=_torch_groupnorm),
        bridge="groupnorm",
        params={
            "groups": Param("G", doc="The number of groups G, a divisor of C."),
            "eps": Param("gn_param.eps", 1e-5, doc="Added to the variance."),
        },
        fills=_CHANNEL_FILLS,
    ),
    Layer(
        dropout.dropout_forward,
        dropout.dropout_backward,
        inputs=("x",),
        cases=tuple(
            case(x=(10, 12), dropout_param={"mode": mode, "p": p, "seed": 123})
            for mode, p in (("train", 0.25), ("train", 0.8), ("test", 0.5))
        ),
        derivation="dropout",
        no_oracle="its mask is random; tests/test_dropout.py checks the mask's statistics",
        bridge="dropout",
        params={"p": Param("dropout_param.p", doc="The probability of KEEPING a unit.")},
        param_arrays=("dropout_param.mask",),
        fixed={"dropout_param.mode": "train"},
        random=True,
    ),
    Layer(
        losses.softmax_loss,
        None,
        inputs=("x", "y"),
        cases=(case(x=(6, 5), y=labels(6, 5)),),
        derivation="losses",
        oracle=Oracle(torch=_torch_softmax, jax=_jax_softmax),
        bridge="softmax_loss",
    ),
    Layer(
        losses.svm_loss,
        None,
        inputs=("x", "y"),
        cases=(case(x=(6, 5), y=labels(6, 5)),),
        derivation="losses",
        oracle=Oracle(torch=_torch_svm),
        bridge="svm_loss",
    ),
    # The sequence layers (the assignment's rnn_layers.py).
    Layer(
        rnn.rnn_step_forward,
        rnn.rnn_step_backward,
        inputs=("x", "prev_h", "Wx", "Wh", "b"),
        cases=(case(x=(3, 4), prev_h=(3, 5), Wx=(4, 5), Wh=(5, 5), b=(5,)),),
        derivation="rnn",
        oracle=Oracle(
            torch=_torch_rnn_step,
            jax=lambda jax, x, prev_h, Wx, Wh, b: jax.numpy.tanh(x @ Wx + prev_h @ Wh + b),
        ),
        bridge="rnn_step",
    ),
    Layer(
        rnn.rnn_forward,
        rnn.rnn_backward,
        inputs=("x", "h0", "Wx", "Wh", "b"),
        cases=(
            case(x=(2, 4, 3), h0=(2, 5), Wx=(3, 5), Wh=(5, 5), b=(5,)),
            case(x=(3, 1, 2), h0=(3, 4), Wx=(2, 4), Wh=(4, 4), b=(4,)),  # one step
        ),
        derivation="rnn",
        oracle=Oracle(
            torch=lambda torch, *arrays: _torch_recurrent(torch, "rnn", *arrays), jax=_jax_rnn
        ),
        bridge="rnn",
    ),
    Layer(
        rnn.lstm_step_forward,
        rnn.lstm_step_backward,
        inputs=("x", "prev_h", "prev_c", "Wx", "Wh", "b"),
        cases=(case(x=(3, 4), prev_h=(3, 5), prev_c=(3, 5), Wx=(4, 20), Wh=(5, 20), b=(20,)),),
        derivation="lstm",
        oracle=Oracle(torch=_torch_lstm_step, jax=_jax_lstm_step),
        outputs=lambda shapes: (shapes["prev_h"], shapes["prev_c"]),
        bridge="lstm_step",
    ),
    Layer(
        rnn.lstm_forward,
        rnn.lstm_backward,
        inputs=("x", "h0", "Wx", "Wh", "b"),
        cases=(
            case(x=(2, 4, 3), h0=(2, 5), Wx=(3, 20), Wh=(5, 20), b=(20,)),
            case(x=(3, 1, 2), h0=(3, 3), Wx=(2, 12), Wh=(3, 12), b=(12,)),  # one step
        ),
        derivation="lstm",
        oracle=Oracle(
            torch=lambda torch, *arrays: _torch_recurrent(torch, "lstm", *arrays), jax=_jax_lstm
        ),
        bridge="lstm",
    ),
    Layer(
        temporal.word_embedding_forward,
        temporal.word_embedding_backward,
        inputs=("x", "W"),
        # 24 indices into 5 words: repeated words, whose gradients must accumulate
        cases=(case(x=indices(4, 6, below=5), W=(5, 3)),),
        derivation="embedding",
        oracle=Oracle(
            torch=lambda torch, x, W: torch.nn.functional.embedding(x, W),
            jax=lambda jax, x, W: jax.numpy.take(W, x, axis=0),
        ),
        bridge="word_embedding",
    ),
    Layer(
        temporal.temporal_affine_forward,
        temporal.temporal_affine_backward,
        inputs=("x", "w", "b"),
        cases=(case(x=(2, 3, 4), w=(4, 5), b=(5,)),),
        derivation="temporal",
        oracle=Oracle(torch=lambda torch, x, w, b: x @ w + b, jax=lambda jax, x, w, b: x @ w + b),
        bridge="temporal_affine",
    ),
    Layer(
        temporal.temporal_softmax_loss,
        None,
        inputs=("x", "y", "mask"),
        cases=(case(x=(3, 4, 6), y=indices(3, 4, below=6), mask=mask(3, 4)),),
        derivation="temporal",
        oracle=Oracle(torch=_torch_temporal_softmax, jax=_jax_temporal_softmax),
        bridge="temporal_softmax_loss",
    ),
    # The sandwiches: their derivation is the chain rule over their parts' pages.
    Layer(
        sandwich.affine_relu_forward,
        sandwich.affine_relu_backward,
        inputs=("x", "w", "b"),
        cases=(case(x=(3, 2, 3), w=(6, 4), b=(4,)),),
        derivation="sandwiches",
        oracle=Oracle(torch=_torch_affine_relu),
    ),
    Layer(
        sandwich.conv_relu_forward,
        sandwich.conv_relu_backward,
        inputs=("x", "w", "b"),
        cases=(case(x=(2, 3, 5, 5), w=(3, 3, 3, 3), b=(3,), conv_param=_CONV),),
        derivation="sandwiches",
        oracle=Oracle(torch=_torch_conv_relu),
    ),
    Layer(
        sandwich.conv_relu_pool_forward,
        sandwich.conv_relu_pool_backward,
        inputs=("x", "w", "b"),
        cases=(
            case(
                x=distinct(2, 3, 6, 6),
                w=(3, 3, 3, 3),
                b=(3,),
                conv_param=_CONV,
                pool_param={"pool_height": 2, "pool_width": 2, "stride": 2},
            ),
        ),
        derivation="sandwiches",
        oracle=Oracle(torch=_torch_conv_relu_pool),
    ),
    Layer(
        sandwich.affine_bn_relu_forward,
        sandwich.affine_bn_relu_backward,
        inputs=("x", "w", "b", "gamma", "beta"),
        cases=(case(x=(5, 2, 3), w=(6, 4), b=(4,), gamma=(4,), beta=(4,), bn_param=_TRAIN),),
        derivation="sandwiches",
        oracle=Oracle(torch=_torch_affine_bn_relu),
    ),
    Layer(
        sandwich.affine_ln_relu_forward,
        sandwich.affine_ln_relu_backward,
        inputs=("x", "w", "b", "gamma", "beta"),
        cases=(case(x=(3, 2, 3), w=(6, 5), b=(5,), gamma=(5,), beta=(5,), ln_param={}),),
        derivation="sandwiches",
        oracle=Oracle(torch=_torch_affine_ln_relu),
    ),
    Layer(
        sandwich.conv_bn_relu_forward,
        sandwich.conv_bn_relu_backward,
        inputs=("x", "w", "b", "gamma", "beta"),
        cases=(
            case(
                x=(2, 3, 5, 5),
                w=(3, 3, 3, 3),
                b=(3,),
                gamma=(3,),
                beta=(3,),
                conv_param=_CONV,
                bn_param=_TRAIN,
            ),
        ),
        derivation="sandwiches",
        oracle=Oracle(torch=_torch_conv_bn_relu),
    ),
)
