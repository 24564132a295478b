"""Softmax and SVM losses against hand-computed values and PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpnn
from xpnn import softmax_loss, svm_loss


def _labels(bk, values):
    return bk.asarray(np.asarray(values, dtype=np.int64))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_of_equal_scores_is_log_num_classes(bk, dtype):
    n, c = 4, 10
    loss, dx = softmax_loss(bk.asarray(np.zeros((n, c)), dtype), _labels(bk, [0, 3, 9, 3]))
    assert loss.ndim == 0 and loss.dtype == getattr(bk.xp, dtype)
    assert math.isclose(float(xpnn.to_numpy(loss)), math.log(c), rel_tol=1e-6)
    expected = np.full((n, c), 1 / c)
    expected[np.arange(n), [0, 3, 9, 3]] -= 1
    np.testing.assert_allclose(xpnn.to_numpy(dx), expected / n, rtol=1e-6)


def test_softmax_is_stable_for_large_scores(bk):
    x = np.array([[1000.0, 0.0], [0.0, -1000.0]])
    loss, dx = softmax_loss(bk.asarray(x), _labels(bk, [1, 0]))
    # Row 0 costs 1000 (true class far below), row 1 costs ~0: mean 500.
    assert math.isclose(float(xpnn.to_numpy(loss)), 500.0, rel_tol=1e-12)
    assert np.all(np.isfinite(xpnn.to_numpy(dx)))


def test_svm_hand_computed(bk):
    x = np.array([[3.0, 1.0, 2.5], [0.0, 2.0, 1.0]])
    y = [0, 2]
    # Row 0: margins (.., 1-3+1=-1 -> 0, 2.5-3+1=0.5) -> 0.5, one violation.
    # Row 1: margins (0-1+1=0 -> 0, 2-1+1=2) -> 2, one violation (margin 0 is not).
    loss, dx = svm_loss(bk.asarray(x), _labels(bk, y))
    assert math.isclose(float(xpnn.to_numpy(loss)), (0.5 + 2.0) / 2, rel_tol=1e-12)
    np.testing.assert_allclose(xpnn.to_numpy(dx), np.array([[-1, 0, 1], [0, 1, -1]]) / 2)


def test_softmax_against_torch_cross_entropy(bk):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 5)) * 3
    y = rng.integers(0, 5, 7)
    tx = torch.tensor(x, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(y))
    tloss.backward()
    loss, dx = softmax_loss(bk.asarray(x), _labels(bk, y))
    assert math.isclose(float(xpnn.to_numpy(loss)), tloss.item(), rel_tol=1e-12)
    np.testing.assert_allclose(xpnn.to_numpy(dx), tx.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_svm_against_torch_multi_margin(bk):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4))
    y = rng.integers(0, 4, 6)
    tx = torch.tensor(x, requires_grad=True)
    # torch averages the hinge terms over the C classes too; ours sums over classes.
    tloss = torch.nn.functional.multi_margin_loss(tx, torch.tensor(y), margin=1.0) * 4
    tloss.backward()
    loss, dx = svm_loss(bk.asarray(x), _labels(bk, y))
    assert math.isclose(float(xpnn.to_numpy(loss)), tloss.item(), rel_tol=1e-12)
    np.testing.assert_allclose(xpnn.to_numpy(dx), tx.grad.numpy(), rtol=1e-10, atol=1e-14)


# ------------------------------------------------- the label range check and jax.jit

LOSSES = [softmax_loss, svm_loss]


@pytest.mark.parametrize("loss", LOSSES)
def test_jit_with_labels_closed_over(bk, loss):
    """The labels are concrete, the scores traced: the range check must not call bool()."""
    if bk.name != "jax":
        pytest.skip("jax.jit applies to the JAX backend only")
    import jax

    rng = np.random.default_rng(0)
    x, y = bk.asarray(rng.standard_normal((5, 4))), _labels(bk, [0, 3, 1, 2, 3])
    value, dx = jax.jit(lambda s: loss(s, y))(x)
    eager_value, eager_dx = loss(x, y)
    np.testing.assert_allclose(np.asarray(value), np.asarray(eager_value), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(dx), np.asarray(eager_dx), rtol=1e-12)
    # Both traced, and a constant array made inside the jitted function:
    jax.jit(loss)(x, y)
    jax.jit(lambda s: loss(s, bk.xp.asarray([0, 3, 1, 2, 3])))(x)


@pytest.mark.parametrize("loss", LOSSES)
def test_range_check_can_be_switched_off(bk, loss):
    x, bad = bk.asarray(np.zeros((3, 4))), _labels(bk, [0, 4, 1])
    with xpnn.label_range_check(False):
        value, _ = loss(x, bad)  # not reported: the row with label 4 has no true class
        assert np.isfinite(float(xpnn.to_numpy(value)))
        with pytest.raises(TypeError, match="y must be an integer array"):
            loss(x, bk.asarray(np.zeros(3)))  # dtypes and shapes are still checked
    with pytest.raises(ValueError, match=r"labels outside \[0, 4\)"):
        loss(x, bad)  # back on after the with block


def test_range_check_setter_and_bad_value():
    from xpnn._config import label_range_check_enabled

    try:
        xpnn.label_range_check(False)
        assert not label_range_check_enabled()
    finally:
        xpnn.label_range_check(True)
    assert label_range_check_enabled()
    with pytest.raises(TypeError, match="enabled must be True or False"):
        xpnn.label_range_check("no")


@pytest.mark.parametrize("loss", LOSSES)
def test_the_check_off_computes_no_reduction_to_read_back(bk, loss, monkeypatch):
    """The range check is the loss's only ``xp.any``: with the check off it never runs.

    (JAX's transfer guard would show the read-back on a GPU; on the CPU nothing is
    transferred, so the test watches the reduction whose result the check reads.)
    """
    x, y = bk.asarray(np.zeros((3, 4))), _labels(bk, [0, 3, 1])

    def reduction_to_read_back(*args, **kwargs):
        raise AssertionError("label range check ran")

    monkeypatch.setattr(bk.xp, "any", reduction_to_read_back)
    with xpnn.label_range_check(False):
        loss(x, y)
    with pytest.raises(AssertionError, match="label range check ran"):
        loss(x, y)


@pytest.mark.parametrize("loss", LOSSES)
def test_closed_over_labels_out_of_range_are_caught_at_trace_time(bk, loss):
    if bk.name != "jax":
        pytest.skip("jax.jit applies to the JAX backend only")
    import jax

    x, bad = bk.asarray(np.zeros((3, 4))), _labels(bk, [0, 4, 1])
    with pytest.raises(ValueError, match=r"labels outside \[0, 4\)"):
        jax.jit(lambda s: loss(s, bad))(x)


def test_svm_margin_exactly_zero_against_torch(bk):
    """A margin of exactly 0 is not a violation, in xpnn as in torch's multi_margin_loss."""
    torch = pytest.importorskip("torch")
    x = np.array([[3.0, 2.0, 1.0], [0.0, 1.0, 1.0]])  # row 0: margin of class 1 is 0
    y = np.array([0, 2])
    tx = torch.tensor(x, requires_grad=True)
    tloss = torch.nn.functional.multi_margin_loss(tx, torch.tensor(y), margin=1.0) * 3
    tloss.backward()
    loss, dx = svm_loss(bk.asarray(x), _labels(bk, y))
    assert math.isclose(float(xpnn.to_numpy(loss)), tloss.item(), rel_tol=1e-12)
    np.testing.assert_allclose(xpnn.to_numpy(dx), tx.grad.numpy(), rtol=1e-12, atol=1e-15)
