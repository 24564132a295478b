"""Bad input gets a clear error that names the argument and what was expected."""

from __future__ import annotations

import numpy as np
import pytest

from xpnn import (
    affine_backward,
    affine_forward,
    batchnorm_forward,
    conv_backward_fast,
    conv_backward_naive,
    conv_forward_fast,
    conv_forward_naive,
    dropout_forward,
    layernorm_forward,
    max_pool_forward_fast,
    max_pool_forward_naive,
    relu_forward,
    softmax_loss,
    spatial_batchnorm_forward,
    spatial_groupnorm_forward,
    svm_loss,
)
from xpnn.registry import registered_cases

CONVS = [conv_forward_fast, conv_forward_naive]
POOLS = [max_pool_forward_fast, max_pool_forward_naive]


def _conv_args(bk, x=(2, 3, 8, 8), w=(4, 3, 3, 3), b=(4,), dtype="float64"):
    return tuple(bk.asarray(np.ones(s), dtype) for s in (x, w, b))


@pytest.mark.parametrize("conv", CONVS)
def test_conv_channel_mismatch(bk, conv):
    x, w, b = _conv_args(bk, w=(4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"channel mismatch: w has 2 .* x has 3"):
        conv(x, w, b, {"stride": 1, "pad": 1})


@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("stride", [0, -1])
def test_conv_stride_below_one(bk, conv, stride):
    with pytest.raises(ValueError, match=r"conv_param\['stride'\] must be at least 1; got"):
        conv(*_conv_args(bk), {"stride": stride, "pad": 1})


@pytest.mark.parametrize("conv", CONVS)
def test_conv_negative_pad(bk, conv):
    with pytest.raises(ValueError, match=r"conv_param\['pad'\] must be at least 0"):
        conv(*_conv_args(bk), {"stride": 1, "pad": -1})


@pytest.mark.parametrize("conv", CONVS)
def test_conv_stride_that_does_not_tile(bk, conv):
    # (8 + 2*1 - 3) = 7 is not a multiple of 2.
    with pytest.raises(ValueError, match=r"stride 2 does not tile the input height"):
        conv(*_conv_args(bk), {"stride": 2, "pad": 1})


@pytest.mark.parametrize("conv", CONVS)
def test_conv_filter_larger_than_input(bk, conv):
    x, w, b = _conv_args(bk, x=(1, 3, 2, 2), w=(4, 3, 5, 5))
    with pytest.raises(ValueError, match=r"filter height 5 is larger than the input height 2"):
        conv(x, w, b, {"stride": 1, "pad": 0})


@pytest.mark.parametrize("conv", CONVS)
def test_conv_non_integer_and_missing_params(bk, conv):
    with pytest.raises(TypeError, match=r"conv_param\['stride'\] must be an integer; got 1.5"):
        conv(*_conv_args(bk), {"stride": 1.5, "pad": 1})
    with pytest.raises(KeyError, match=r"conv_param needs the key 'pad'"):
        conv(*_conv_args(bk), {"stride": 1})


@pytest.mark.parametrize("conv", CONVS)
def test_conv_wrong_ndim_and_bias(bk, conv):
    x, w, b = _conv_args(bk)
    with pytest.raises(ValueError, match=r"x must be a 4-d array \(N, C, H, W\); got shape"):
        conv(bk.asarray(np.ones((3, 8, 8))), w, b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=r"w must be a 4-d array \(F, C, HH, WW\)"):
        conv(x, bk.asarray(np.ones((4, 3, 3))), b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        conv(x, w, bk.asarray(np.ones(3)), {"stride": 1, "pad": 1})


def test_conv_backward_wrong_dout_shape(bk):
    _, cache = conv_forward_fast(*_conv_args(bk), {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 8, 8\)"):
        conv_backward_fast(bk.asarray(np.ones((2, 4, 8, 7))), cache)


@pytest.mark.parametrize("pool", POOLS)
def test_pool_that_does_not_tile(bk, pool):
    x = bk.asarray(np.ones((1, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"pool_param: stride 2 does not tile the input height"):
        pool(x, {"pool_height": 2, "pool_width": 2, "stride": 2})


@pytest.mark.parametrize("pool", POOLS)
def test_pool_bad_params_and_ndim(bk, pool):
    x = bk.asarray(np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"pool_param\['stride'\] must be at least 1; got 0"):
        pool(x, {"pool_height": 2, "pool_width": 2, "stride": 0})
    with pytest.raises(ValueError, match=r"pool_height 5 is larger than the input height 4"):
        pool(x, {"pool_height": 5, "pool_width": 2, "stride": 1})
    with pytest.raises(ValueError, match=r"x must be a 4-d array"):
        pool(bk.asarray(np.ones((4, 4))), {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(KeyError, match=r"pool_param needs the key 'pool_width'"):
        pool(x, {"pool_height": 2, "stride": 2})


def test_affine_shape_mismatch(bk):
    x = bk.asarray(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"w must have shape \(D, M\) with D = 12"):
        affine_forward(x, bk.asarray(np.ones((10, 5))), bk.asarray(np.ones(5)))
    with pytest.raises(ValueError, match=r"w must be a 2-d array \(D, M\)"):
        affine_forward(x, bk.asarray(np.ones(12)), bk.asarray(np.ones(5)))
    with pytest.raises(ValueError, match=r"b must have shape \(5,\)"):
        affine_forward(x, bk.asarray(np.ones((12, 5))), bk.asarray(np.ones(4)))


@pytest.mark.parametrize("loss", [softmax_loss, svm_loss])
def test_labels_out_of_range(bk, loss):
    x = bk.asarray(np.zeros((3, 4)))
    for bad in ([0, 4, 1], [0, -1, 1]):
        with pytest.raises(ValueError, match=r"y holds labels outside \[0, 4\)"):
            loss(x, bk.asarray(np.array(bad, dtype=np.int64)))


@pytest.mark.parametrize("loss", [softmax_loss, svm_loss])
def test_labels_shape_and_dtype(bk, loss):
    x = bk.asarray(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"y must hold one label per row of x \(3\); got 2"):
        loss(x, bk.asarray(np.array([0, 1], dtype=np.int64)))
    with pytest.raises(TypeError, match=r"y must be an integer array"):
        loss(x, bk.asarray(np.array([0.0, 1.0, 2.0])))
    with pytest.raises(ValueError, match=r"x must be a 2-d array of class scores"):
        loss(bk.asarray(np.zeros(4)), bk.asarray(np.array([0], dtype=np.int64)))


# ------------------------------------------------------------------ norms and dropout


def _bn_args(bk, n=4, d=3):
    return bk.asarray(np.ones((n, d))), bk.asarray(np.ones(d)), bk.asarray(np.zeros(d))


@pytest.mark.parametrize("mode", ["eval", None, "Train"])
def test_batchnorm_bad_mode(bk, mode):
    with pytest.raises(ValueError, match=r"bn_param\['mode'\] must be 'train' or 'test'; got"):
        batchnorm_forward(*_bn_args(bk), {"mode": mode})


def test_batchnorm_shapes_and_running_stats(bk):
    x, gamma, beta = _bn_args(bk)
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        batchnorm_forward(x, bk.asarray(np.ones(4)), beta, {"mode": "train"})
    with pytest.raises(ValueError, match=r"x must be a 2-d array \(N, D\)"):
        batchnorm_forward(bk.asarray(np.ones((2, 3, 4))), gamma, beta, {"mode": "train"})
    with pytest.raises(ValueError, match=r"bn_param\['running_mean'\] must have shape \(3,\)"):
        batchnorm_forward(x, gamma, beta, {"mode": "test", "running_mean": bk.asarray(np.ones(2))})
    with pytest.raises(TypeError, match=r"bn_param\['running_var'\] must be a real floating"):
        batchnorm_forward(
            x, gamma, beta, {"mode": "test", "running_var": bk.asarray(np.ones(3), "int64")}
        )
    with pytest.raises(ValueError, match=r"bn_param\['eps'\] must be a positive number"):
        batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": 0})


def test_layernorm_and_spatial_shapes(bk):
    x, gamma, beta = _bn_args(bk)
    with pytest.raises(ValueError, match=r"beta must have shape \(3,\)"):
        layernorm_forward(x, gamma, bk.asarray(np.ones(2)), {})
    with pytest.raises(ValueError, match=r"x must be a 4-d array \(N, C, H, W\)"):
        spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        (4, r"G must be a positive divisor of .* C = 6; got 4"),
        (0, r"G must be at least 1 \(the number of groups\); got 0"),
        (-2, r"G must be at least 1 \(the number of groups\); got -2"),
    ],
)
def test_groupnorm_groups_must_divide_channels(bk, groups, message):
    x = bk.asarray(np.ones((2, 6, 3, 3)))
    g = bk.asarray(np.ones((1, 6, 1, 1)))
    with pytest.raises(ValueError, match=message):
        spatial_groupnorm_forward(x, g, g, groups, {})


def test_groupnorm_bad_gamma_and_group_type(bk):
    x = bk.asarray(np.ones((2, 6, 3, 3)))
    g = bk.asarray(np.ones((1, 6, 1, 1)))
    with pytest.raises(
        ValueError, match=r"gamma and beta must both have shape \(1, 6, 1, 1\) or both \(6,\)"
    ):
        spatial_groupnorm_forward(x, bk.asarray(np.ones((1, 3, 1, 1))), g, 2, {})
    with pytest.raises(ValueError, match=r"got gamma \(6,\), beta \(1, 6, 1, 1\)"):
        spatial_groupnorm_forward(x, bk.asarray(np.ones(6)), g, 2, {})
    with pytest.raises(TypeError, match=r"G must be an integer"):
        spatial_groupnorm_forward(x, g, g, 2.0, {})
    out, _ = spatial_groupnorm_forward(x, g, g, np.int64(2), {})  # NumPy integers are fine
    assert out.shape == x.shape


def test_numpy_scalars_are_numbers(bk):
    x, gamma, beta = _bn_args(bk)
    bn_param = {"mode": "train", "eps": np.float32(1e-5), "momentum": np.float64(0.8)}
    batchnorm_forward(x, gamma, beta, bn_param)
    with pytest.raises(TypeError, match=r"bn_param\['momentum'\] must be a real number"):
        batchnorm_forward(x, gamma, beta, {"mode": "train", "momentum": "0.9"})
    dropout_forward(bk.asarray(np.ones(3)), {"mode": "train", "p": np.float32(0.5)})


def test_spatial_batchnorm_names_channels(bk):
    x = bk.asarray(np.ones((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\) \(one value per channel"):
        spatial_batchnorm_forward(
            x, bk.asarray(np.ones(4)), bk.asarray(np.ones(3)), {"mode": "train"}
        )


def test_test_mode_warning_points_at_the_callers_line(bk):
    """Raised deep inside conv_bn_relu_forward, the warning names this file."""
    from xpnn import conv_bn_relu_forward

    x, w, b = _conv_args(bk, x=(1, 3, 4, 4), w=(2, 3, 3, 3), b=(2,))
    gamma, beta = bk.asarray(np.ones(2)), bk.asarray(np.zeros(2))
    with pytest.warns(UserWarning, match="test mode without") as record:
        conv_bn_relu_forward(x, w, b, gamma, beta, {"stride": 1, "pad": 1}, {"mode": "test"})
    assert record[0].filename == __file__


@pytest.mark.parametrize("p", [0, 1.5, -0.1, "0.5"])
def test_dropout_bad_keep_probability(bk, p):
    with pytest.raises(ValueError, match=r"dropout_param\['p'\] is the probability of keeping"):
        dropout_forward(bk.asarray(np.ones(3)), {"mode": "train", "p": p})


def test_dropout_bad_mode_and_missing_p(bk):
    with pytest.raises(ValueError, match=r"dropout_param\['mode'\] must be 'train' or 'test'"):
        dropout_forward(bk.asarray(np.ones(3)), {"mode": "eval", "p": 0.5})
    with pytest.raises(KeyError, match=r"dropout_param needs the key 'p'"):
        dropout_forward(bk.asarray(np.ones(3)), {"mode": "train"})


# ------------------------------------------------------- not arrays, wrong caches, warnings

CASES = [c for c in registered_cases() if not c.random]
CASE_IDS = [f"{c.name}[{c.describe()}]" for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_a_list_for_an_array_names_the_argument(bk, case):
    host = case.draw_inputs(seed=0)
    arrays = {k: bk.asarray(v) for k, v in host.items()}
    for name in host:
        args = dict(arrays, **{name: host[name].tolist()})
        with pytest.raises(TypeError, match=rf"^{name} must be an array .*; got list"):
            case.run(*args.values())


@pytest.mark.parametrize("case", [c for c in CASES if not c.is_loss], ids=lambda c: c.name)
def test_another_layers_cache_names_the_expected_one(bk, case):
    other = next(c for c in CASES if not c.is_loss and c.forward is not case.forward)
    out, _ = case.run(*(bk.asarray(v) for v in case.draw_inputs(seed=0).values()))
    _, wrong_cache = other.run(*(bk.asarray(v) for v in other.draw_inputs(seed=0).values()))
    with pytest.raises(
        TypeError,
        match=rf"cache must be the cache returned by {case.forward.__name__} \(an? \w+Cache\); "
        rf"got the cache of {other.forward.__name__}$",
    ):
        case.backward(bk.asarray(np.ones(tuple(out.shape))), wrong_cache)


def test_naive_backward_with_the_fast_cache(bk):
    x, w, b = _conv_args(bk)
    out, fast_cache = conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    with pytest.raises(
        TypeError,
        match=r"conv_forward_naive \(a ConvNaiveCache\); got the cache "
        r"of conv_forward_fast",
    ):
        conv_backward_naive(bk.asarray(np.ones(tuple(out.shape))), fast_cache)
    with pytest.raises(TypeError, match=r"\(a ConvFastCache\); got a list$"):
        conv_backward_fast(bk.asarray(np.ones(tuple(out.shape))), list(fast_cache))


def test_dout_must_be_an_array(bk):
    _, cache = affine_forward(*(bk.asarray(np.ones(s)) for s in ((2, 3), (3, 4), (4,))))
    with pytest.raises(TypeError, match=r"^dout must be an array"):
        affine_backward(np.ones((2, 4)).tolist(), cache)


def test_complex_input_is_refused(bk):
    if not hasattr(bk.xp, "complex128"):
        pytest.skip("no complex dtype")
    x = bk.xp.asarray(np.ones((2, 3), dtype=np.complex128), device=bk.device)
    with pytest.raises(TypeError, match=r"x must be a real floating, integer or boolean array"):
        relu_forward(x)


@pytest.mark.parametrize("missing", [("running_mean", "running_var"), ("running_var",)])
def test_batchnorm_test_mode_without_running_statistics_warns(bk, missing):
    x, gamma, beta = _bn_args(bk)
    bn_param = {"mode": "test", "running_mean": bk.asarray(np.zeros(3))}
    if "running_mean" in missing:
        del bn_param["running_mean"]
    with pytest.warns(UserWarning, match=rf"test mode without {' and '.join(missing)}"):
        batchnorm_forward(x, gamma, beta, bn_param)
    with pytest.warns(UserWarning, match="test mode without"):
        spatial_batchnorm_forward(bk.asarray(np.ones((2, 3, 2, 2))), gamma, beta, dict(bn_param))


def test_batchnorm_with_running_statistics_does_not_warn(bk, recwarn):
    x, gamma, beta = _bn_args(bk)
    bn_param = {"mode": "train"}
    batchnorm_forward(x, gamma, beta, bn_param)
    bn_param["mode"] = "test"
    batchnorm_forward(x, gamma, beta, bn_param)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_dropout_mask_must_be_boolean(bk):
    x = bk.asarray(np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"dropout_param\['mask'\] must be a boolean array"):
        dropout_forward(x, {"mode": "train", "p": 0.5, "mask": bk.asarray(np.ones((2, 3)))})
