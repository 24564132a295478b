"""Caches: a backward takes its forward's cache, or the same parts repacked as plain tuples.

The assignment's caches are plain tuples, and students' own layers unpack and repack
them (``fc_cache, relu_cache = cache`` ... ``return ..., (fc_cache, relu_cache)``). The
backward passes must give the same gradients for such a tuple, and still name the part
that is of the wrong kind.
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnn import (
    affine_relu_backward,
    affine_relu_forward,
    conv_backward_fast,
    conv_forward_fast,
    dropout_backward,
    dropout_forward,
    eval_numerical_gradient_array,
    relu_backward,
    relu_forward,
    to_numpy,
)
from xpnn.registry import registered_cases

LAYERS = [c for c in registered_cases() if not c.is_loss]
IDS = [f"{c.name}[{c.describe()}]" for c in LAYERS]


def _plain(cache):
    """Every named-tuple cache in ``cache`` (nested too) as a plain tuple of its parts."""
    if isinstance(cache, tuple) and hasattr(cache, "_fields"):
        return tuple(_plain(part) for part in cache)
    return cache


def _run(bk, case):
    arrays = [bk.asarray(v) for v in case.draw_inputs(seed=3).values()]
    out, cache = case.run(*arrays)
    dout = bk.asarray(np.random.default_rng(4).standard_normal(tuple(out.shape)))
    return cache, dout


def _as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


@pytest.mark.parametrize("case", LAYERS, ids=IDS)
def test_a_repacked_cache_gives_the_same_gradients(bk, case):
    cache, dout = _run(bk, case)
    expected = _as_tuple(case.backward(dout, cache))
    repacked = _as_tuple(case.backward(dout, _plain(cache)))
    assert type(_plain(cache)) is tuple
    for got, want in zip(repacked, expected, strict=True):
        assert got.dtype == want.dtype
        if bk.on_gpu:  # the same sums, in an order that atomics choose at each call
            rtol = 1e-12 if want.dtype == bk.xp.float64 else 1e-5
            np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=rtol, atol=rtol)
        else:
            np.testing.assert_array_equal(to_numpy(got), to_numpy(want))


def _swap_path(cache, path_indices, value):
    plain = _plain(cache)

    def swap(node, indices):
        node = list(node)
        head, *rest = indices
        node[head] = value if not rest else swap(node[head], rest)
        return tuple(node)

    return swap(plain, path_indices)


def _paths(cache, names=(), indices=()):
    for i, (name, part) in enumerate(zip(cache._fields, cache, strict=True)):
        here_names, here_indices = (*names, name), (*indices, i)
        yield ".".join(here_names), here_indices
        if isinstance(part, tuple) and hasattr(part, "_fields"):
            yield from _paths(part, here_names, here_indices)


@pytest.mark.parametrize("case", LAYERS, ids=IDS)
def test_a_part_of_the_wrong_kind_is_named(bk, case):
    cache, dout = _run(bk, case)
    for path, indices in _paths(cache):
        with pytest.raises(TypeError, match=rf"^cache part '{path}' must be .*; got an object$"):
            case.backward(dout, _swap_path(cache, indices, object()))


@pytest.mark.parametrize("case", LAYERS, ids=IDS)
def test_a_tuple_of_the_wrong_length_names_the_parts(bk, case):
    cache, dout = _run(bk, case)
    short = _plain(cache)[:1]
    with pytest.raises(TypeError, match=r"or a tuple of its .* parts \(.*\); got a tuple of 1$"):
        case.backward(dout, short)


def affine_relu_dropout_forward(x, w, b, dropout_param):
    """A student's own sandwich, as in a completed 2019 notebook: plain-tuple cache."""
    out, ar_cache = affine_relu_forward(x, w, b)
    out, do_cache = dropout_forward(out, dropout_param)
    return out, (ar_cache, do_cache)


def affine_relu_dropout_backward(dout, cache):
    ar_cache, do_cache = cache
    fc_cache, relu_cache = ar_cache  # unpacked ...
    da = dropout_backward(dout, do_cache)
    return affine_relu_backward(da, (fc_cache, relu_cache))  # ... and repacked


def test_a_students_repacking_sandwich_matches_the_numerical_gradient(bk):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s) for s in ((4, 6), (6, 5), (5,)))
    dout = rng.standard_normal((4, 5))
    param = {"mode": "train", "p": 0.6, "seed": 123}
    mask_param = dict(param)
    _, (_, do_cache) = affine_relu_dropout_forward(*map(bk.asarray, (x, w, b)), mask_param)
    keep = to_numpy(do_cache.mask) != 0

    def f(w_):  # the same mask for every perturbation: NumPy arithmetic as the oracle
        return np.maximum(x @ w_ + b, 0) * keep / param["p"]

    out, cache = affine_relu_dropout_forward(*map(bk.asarray, (x, w, b)), dict(param))
    np.testing.assert_allclose(to_numpy(out), f(w), rtol=1e-12)
    _, dw, _ = affine_relu_dropout_backward(bk.asarray(dout), cache)
    numerical = eval_numerical_gradient_array(f, w.copy(), dout)
    np.testing.assert_allclose(to_numpy(dw), numerical, rtol=1e-6, atol=1e-8)


def test_another_layers_cache_inside_a_tuple_is_named(bk):
    x = bk.asarray(np.ones((2, 3)))
    _, relu_cache = relu_forward(x)
    out, (fc_cache, _) = affine_relu_forward(x, bk.asarray(np.ones((3, 2))), bk.asarray([0.0, 1]))
    with pytest.raises(
        TypeError,
        match=r"^cache part 'fc_cache' must be the cache returned by affine_forward "
        r"\(an AffineCache\); got the cache of relu_forward$",
    ):
        affine_relu_backward(bk.asarray(np.ones(tuple(out.shape))), (relu_cache, relu_cache))
    # the layer's own parts in a tuple are fine
    dx = relu_backward(bk.asarray(np.ones((2, 3))), tuple(relu_cache))
    np.testing.assert_array_equal(to_numpy(dx), np.ones((2, 3)))
    assert isinstance(fc_cache, tuple)


def test_a_plain_tuple_cache_of_conv_fast(bk):
    x, w, b = (bk.asarray(np.ones(s)) for s in ((1, 2, 4, 4), (3, 2, 3, 3), (3,)))
    out, cache = conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    dout = bk.asarray(np.ones(tuple(out.shape)))
    for got, want in zip(
        conv_backward_fast(dout, tuple(cache)), conv_backward_fast(dout, cache), strict=True
    ):
        np.testing.assert_array_equal(to_numpy(got), to_numpy(want))
