"""Recurrent layers: the vanilla (tanh) RNN and the LSTM, one step and a whole sequence.

Names, shapes and gate order follow the assignment's ``rnn_layers.py``: x ``(N, D)`` per
step or ``(N, T, D)`` per sequence, hidden state ``(N, H)``, ``Wx (D, H)`` and ``Wh (H, H)``
(``4H`` columns for the LSTM, gates in the order i, f, o, g), ``b (H,)`` or ``(4H,)``.

Over a sequence, every input projection ``x_t @ Wx`` is one matrix product for all steps;
only the recurrence ``h_{t-1} @ Wh`` runs step by step, in :func:`xpnn._native.scan`
(``jax.lax.scan`` on JAX, so ``jax.jit`` compiles one step whatever T is). The backward
passes loop backwards through time the same way for the gradient of the pre-activations,
then take ``dx``, ``dWx``, ``dWh`` and ``db`` as single products over all steps.
Derivations: ``docs/derivations/rnn.md`` and ``docs/derivations/lstm.md``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import _native
from .._backend import array_namespace, device_of
from ._validate import (
    Array,
    Dtypes,
    cache_of,
    floating_inputs,
    in_argument_dtypes,
    require_cache,
    require_ndim,
    require_shape,
    upstream,
)

__all__ = [
    "lstm_backward",
    "lstm_forward",
    "lstm_step_backward",
    "lstm_step_forward",
    "rnn_backward",
    "rnn_forward",
    "rnn_step_backward",
    "rnn_step_forward",
]


def _check(x: Any, h: Any, Wx: Any, Wh: Any, b: Any, gates: int, *, sequence: bool, h_name: str):
    """Shapes of a recurrent layer's arguments; returns ``(N, D, H)``."""
    if sequence:
        require_ndim("x", x, 3, "(N, T, D)")
        if x.shape[1] < 1:
            raise ValueError(f"x must hold at least one time step (T >= 1); got shape "
                             f"{tuple(x.shape)}")  # fmt: skip
    else:
        require_ndim("x", x, 2, "(N, D)")
    n, d = x.shape[0], x.shape[-1]
    require_ndim(h_name, h, 2, "(N, H)")
    hidden = h.shape[1]
    require_shape(h_name, h, (n, hidden), "(N, H): one row per row of x")
    require_shape("Wx", Wx, (d, gates * hidden), f"(D, {'4H' if gates == 4 else 'H'})")
    require_shape("Wh", Wh, (hidden, gates * hidden), f"(H, {'4H' if gates == 4 else 'H'})")
    require_shape("b", b, (gates * hidden,), "(4H,)" if gates == 4 else "(H,)")
    return n, d, hidden


def _sigmoid(xp: Any, z: Any) -> Any:
    """``1 / (1 + exp(-z))``, as ``tanh(z / 2) / 2 + 1/2`` (the same function): it never
    overflows, and its error is an ulp or two of 1/2 (absolute, so an output below about
    1e-16 in float64, or 1e-7 in float32, loses its relative precision; the gates use
    it as a weight of numbers of order 1). One ``tanh`` costs less than the two ``exp`` of
    ``exp(min(z, 0)) / (1 + exp(-|z|))``, or its ``where``: 3x less in float64 on NumPy.
    """
    return 0.5 * xp.tanh(0.5 * z) + 0.5


def _time_major(xp: Any, a: Any) -> Any:
    return xp.permute_dims(a, (1, 0, 2))


def _rows(xp: Any, a: Any) -> Any:
    """``(N, T, K)`` as ``(N*T, K)``."""
    return xp.reshape(a, (a.shape[0] * a.shape[1], a.shape[2]))


def _previous(xp: Any, h0: Any, hs: Any) -> Any:
    """``h_{t-1}`` for every step, time-major ``(T, N, H)``: h0, then all but the last h."""
    return xp.concat([h0[None, ...], hs[:-1, ...]], axis=0)


def _time_major_rows(xp: Any, a: Any) -> Any:
    """``(N, T, K)`` as ``(T*N, K)``, the rows of step 0 first (one copy)."""
    return _rows(xp, _time_major(xp, a))


def _sequence_grads(xp: Any, x: Any, h_prev: Any, das: Any, Wx: Any) -> tuple[Any, Any, Any, Any]:
    """``dx, dWx, dWh, db`` of every step at once, from the pre-activation gradients:
    x ``(N, T, D)``; h_prev and das time-major ``(T, N, K)``. The products run on
    time-major rows, so that only x is reordered (the narrower of x and das)."""
    das_rows = _rows(xp, das)
    x_rows = _time_major_rows(xp, x)
    dx = _time_major(xp, xp.reshape(das_rows @ xp.matrix_transpose(Wx),
                                    (x.shape[1], x.shape[0], x.shape[2])))  # fmt: skip
    dWx = xp.matrix_transpose(x_rows) @ das_rows
    dWh = xp.matrix_transpose(_rows(xp, h_prev)) @ das_rows
    return dx, dWx, dWh, xp.sum(das_rows, axis=0)


def _projected(xp: Any, x: Any, Wx: Any, b: Any) -> Any:
    """``x_t @ Wx + b`` of every step in one product, time-major ``(T, N, K)``."""
    rows = _time_major_rows(xp, x) @ Wx
    rows += b  # into the product's memory where the library can (NumPy, torch)
    return xp.reshape(rows, (x.shape[1], x.shape[0], Wx.shape[1]))


def _step_grads(xp: Any, da: Any, x: Any, prev_h: Any, Wx: Any, Wh: Any) -> tuple[Any, ...]:
    """``dx, dprev_h, dWx, dWh, db`` of one step's pre-activations ``a = x Wx + prev_h Wh + b``."""
    return (
        da @ xp.matrix_transpose(Wx),
        da @ xp.matrix_transpose(Wh),
        xp.matrix_transpose(x) @ da,
        xp.matrix_transpose(prev_h) @ da,
        xp.sum(da, axis=0),
    )


# --------------------------------------------------------------------------- RNN


@cache_of("rnn_step_forward")
class RnnStepCache(NamedTuple):
    """What :func:`rnn_step_forward` keeps for :func:`rnn_step_backward`."""

    x: Array
    prev_h: Array
    Wx: Array
    Wh: Array
    next_h: Array
    dtypes: Dtypes


def rnn_step_forward(x: Any, prev_h: Any, Wx: Any, Wh: Any, b: Any) -> tuple[Any, RnnStepCache]:
    """One step of a vanilla RNN: ``next_h = tanh(x @ Wx + prev_h @ Wh + b)``.

    Parameters
    ----------
    x : array, shape (N, D)
    prev_h : array, shape (N, H)
    Wx : array, shape (D, H)
    Wh : array, shape (H, H)
    b : array, shape (H,)

    Returns
    -------
    next_h : array, shape (N, H)
    cache : RnnStepCache
        For :func:`rnn_step_backward`.
    """
    xp, (x, prev_h, Wx, Wh, b), dtypes = floating_inputs(x=x, prev_h=prev_h, Wx=Wx, Wh=Wh, b=b)
    _check(x, prev_h, Wx, Wh, b, 1, sequence=False, h_name="prev_h")
    next_h = xp.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, RnnStepCache(x, prev_h, Wx, Wh, next_h, dtypes)


def rnn_step_backward(dnext_h: Any, cache: RnnStepCache) -> tuple[Any, Any, Any, Any, Any]:
    """Backward pass of :func:`rnn_step_forward`.

    Parameters
    ----------
    dnext_h : array, shape (N, H)
    cache : RnnStepCache

    Returns
    -------
    dx : array, shape (N, D)
    dprev_h : array, shape (N, H)
    dWx : array, shape (D, H)
    dWh : array, shape (H, H)
    db : array, shape (H,)
        Each in the dtype of its argument.
    """
    x, prev_h, Wx, Wh, next_h, dtypes = require_cache(cache, RnnStepCache)
    xp, dnext_h = upstream(dnext_h, next_h, tuple(next_h.shape), name="dnext_h")
    da = dnext_h * (1 - next_h * next_h)  # tanh' = 1 - tanh^2, from the output
    dx, dprev_h, dWx, dWh, db = _step_grads(xp, da, x, prev_h, Wx, Wh)
    return in_argument_dtypes(xp, (dx, dprev_h, dWx, dWh, db), dtypes)


@cache_of("rnn_forward")
class RnnCache(NamedTuple):
    """What :func:`rnn_forward` keeps for :func:`rnn_backward` (``hs`` time-major)."""

    x: Array
    h0: Array
    Wx: Array
    Wh: Array
    hs: Array
    dtypes: Dtypes


def rnn_forward(x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> tuple[Any, RnnCache]:
    """A vanilla RNN over a whole sequence: ``h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b)``.

    Parameters
    ----------
    x : array, shape (N, T, D)
    h0 : array, shape (N, H)
        The hidden state before the first step.
    Wx : array, shape (D, H)
    Wh : array, shape (H, H)
    b : array, shape (H,)

    Returns
    -------
    h : array, shape (N, T, H)
        The hidden state after each step: a view of the states the cache keeps, so
        change a copy of it, not ``h`` itself in place, before :func:`rnn_backward`.
    cache : RnnCache
        For :func:`rnn_backward`.
    """
    xp, (x, h0, Wx, Wh, b), dtypes = floating_inputs(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b)
    _check(x, h0, Wx, Wh, b, 1, sequence=True, h_name="h0")

    def step(h: Any, a_x: Any) -> tuple[Any, Any]:
        h = xp.tanh(a_x + h @ Wh)
        return h, h

    _, hs = _native.scan(step, h0, (_projected(xp, x, Wx, b),))
    return _time_major(xp, hs), RnnCache(x, h0, Wx, Wh, hs, dtypes)


def rnn_backward(dh: Any, cache: RnnCache) -> tuple[Any, Any, Any, Any, Any]:
    """Backpropagation through time for :func:`rnn_forward`.

    ``dh`` is the upstream gradient of every hidden state; each step's state also feeds
    the next step, so the gradient reaching ``h_t`` is ``dh[:, t] + (gradient from step
    t + 1)``, accumulated from the last step back to ``h0``.

    Parameters
    ----------
    dh : array, shape (N, T, H)
    cache : RnnCache

    Returns
    -------
    dx : array, shape (N, T, D)
    dh0 : array, shape (N, H)
    dWx : array, shape (D, H)
    dWh : array, shape (H, H)
    db : array, shape (H,)
        Each in the dtype of its argument.
    """
    x, h0, Wx, Wh, hs, dtypes = require_cache(cache, RnnCache)
    n, steps = x.shape[0], x.shape[1]
    xp, dh = upstream(dh, hs, (n, steps, hs.shape[2]), name="dh")
    Wh_t = xp.matrix_transpose(Wh)

    def step(dnext: Any, dh_t: Any, h_t: Any) -> tuple[Any, Any]:
        da = (dh_t + dnext) * (1 - h_t * h_t)
        return da @ Wh_t, da

    dh0, das = _native.scan(step, xp.zeros_like(h0), (_time_major(xp, dh), hs),
                            reverse=True)  # fmt: skip
    dx, dWx, dWh, db = _sequence_grads(xp, x, _previous(xp, h0, hs), das, Wx)
    return in_argument_dtypes(xp, (dx, dh0, dWx, dWh, db), dtypes)


# --------------------------------------------------------------------------- LSTM


def torch_gate_order(a: Any, axis: int = -1) -> Any:
    """The LSTM's ``4H`` gate blocks of ``a`` along ``axis`` in the other gate order: xpnn's
    (i, f, o, g) as ``torch.nn.LSTM``'s (i, f, g, o), and torch's as xpnn's (the swap of
    the last two blocks is its own inverse). A new array, on ``a``'s backend and device;
    differentiable where the backend's ``take`` is (torch autograd, JAX).
    """
    xp = array_namespace(a)
    hidden = a.shape[axis] // 4
    blocks = [*range(2 * hidden), *range(3 * hidden, 4 * hidden), *range(2 * hidden, 3 * hidden)]
    return xp.take(a, xp.asarray(blocks, device=device_of(a)), axis=axis)


def _lstm_cell(xp: Any, a: Any, prev_c: Any, hidden: int) -> tuple[Any, ...]:
    """Gates (i, f, o, g) of the pre-activations ``a`` ``(N, 4H)``, then ``next_h, next_c``."""
    ifo = _sigmoid(xp, a[:, : 3 * hidden])  # the three sigmoid gates are adjacent columns
    i, f, o = ifo[:, :hidden], ifo[:, hidden : 2 * hidden], ifo[:, 2 * hidden :]
    g = xp.tanh(a[:, 3 * hidden :])
    next_c = f * prev_c + i * g
    return o * xp.tanh(next_c), next_c, i, f, o, g


def _lstm_cell_backward(
    xp: Any, dnext_h: Any, dnext_c: Any, prev_c: Any, next_c: Any, i: Any, f: Any, o: Any, g: Any
) -> tuple[Any, Any]:
    """``(da, dprev_c)``: the gradient of the pre-activations ``(N, 4H)`` and of ``prev_c``.

    ``dnext_c`` is the gradient reaching the cell state from outside the step (the next
    step's ``dprev_c``); the cell state also feeds ``next_h``, so its total gradient is
    ``dnext_c + dnext_h * o * (1 - tanh(next_c)^2)``.
    """
    tanh_c = xp.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)
    da = xp.concat(
        [
            dc * g * i * (1 - i),  # input gate
            dc * prev_c * f * (1 - f),  # forget gate
            dnext_h * tanh_c * o * (1 - o),  # output gate
            dc * i * (1 - g * g),  # candidate
        ],
        axis=1,
    )
    return da, dc * f


def _lstm_bptt(
    xp: Any, dh: Any, h0: Any, Wh: Any, cs: Any, gates: Any, hidden: int
) -> tuple[Any, Any]:
    """``das`` (T, N, 4H) and ``dh0``: the portable time loop of :func:`lstm_backward`."""
    Wh_t = xp.matrix_transpose(Wh)
    zeros = xp.zeros_like(h0)  # c0, and the gradients reaching the last step from after it
    c_prev = _previous(xp, zeros, cs)

    def step(carry: tuple[Any, Any], dh_t: Any, c_t: Any, cp_t: Any, gates_t: Any):
        dnext_h, dnext_c = carry
        i, f, o, g = (gates_t[:, k * hidden : (k + 1) * hidden] for k in range(4))
        da, dprev_c = _lstm_cell_backward(xp, dh_t + dnext_h, dnext_c, cp_t, c_t, i, f, o, g)
        return (da @ Wh_t, dprev_c), da

    (dh0, _), das = _native.scan(
        step, (zeros, zeros), (_time_major(xp, dh), cs, c_prev, gates), reverse=True
    )
    return das, dh0


@cache_of("lstm_step_forward")
class LstmStepCache(NamedTuple):
    """What :func:`lstm_step_forward` keeps for :func:`lstm_step_backward`."""

    x: Array
    prev_h: Array
    prev_c: Array
    Wx: Array
    Wh: Array
    next_c: Array
    i: Array
    f: Array
    o: Array
    g: Array
    dtypes: Dtypes


def lstm_step_forward(
    x: Any, prev_h: Any, prev_c: Any, Wx: Any, Wh: Any, b: Any
) -> tuple[Any, Any, LstmStepCache]:
    """One LSTM step; the ``4H`` columns of ``Wx``, ``Wh`` and ``b`` are the gates i, f, o, g.

    ``a = x @ Wx + prev_h @ Wh + b``; ``i, f, o = sigmoid(a_i), sigmoid(a_f),
    sigmoid(a_o)``, ``g = tanh(a_g)``; ``next_c = f * prev_c + i * g``, ``next_h = o *
    tanh(next_c)``. The sigmoid never overflows (it is ``tanh(a / 2) / 2 + 1/2``).

    Parameters
    ----------
    x : array, shape (N, D)
    prev_h, prev_c : arrays, shape (N, H)
    Wx : array, shape (D, 4H)
    Wh : array, shape (H, 4H)
    b : array, shape (4H,)

    Returns
    -------
    next_h, next_c : arrays, shape (N, H)
    cache : LstmStepCache
        For :func:`lstm_step_backward`.
    """
    xp, (x, prev_h, prev_c, Wx, Wh, b), dtypes = floating_inputs(
        x=x, prev_h=prev_h, prev_c=prev_c, Wx=Wx, Wh=Wh, b=b
    )
    n, _, hidden = _check(x, prev_h, Wx, Wh, b, 4, sequence=False, h_name="prev_h")
    require_shape("prev_c", prev_c, (n, hidden), "the shape of prev_h")
    next_h, next_c, i, f, o, g = _lstm_cell(xp, x @ Wx + prev_h @ Wh + b, prev_c, hidden)
    return next_h, next_c, LstmStepCache(x, prev_h, prev_c, Wx, Wh, next_c, i, f, o, g, dtypes)


def lstm_step_backward(
    dnext_h: Any, dnext_c: Any, cache: LstmStepCache
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """Backward pass of :func:`lstm_step_forward`.

    Parameters
    ----------
    dnext_h, dnext_c : arrays, shape (N, H)
    cache : LstmStepCache

    Returns
    -------
    dx : array, shape (N, D)
    dprev_h, dprev_c : arrays, shape (N, H)
    dWx : array, shape (D, 4H)
    dWh : array, shape (H, 4H)
    db : array, shape (4H,)
        Each in the dtype of its argument.
    """
    x, prev_h, prev_c, Wx, Wh, next_c, i, f, o, g, dtypes = require_cache(cache, LstmStepCache)
    xp, dnext_h = upstream(dnext_h, next_c, tuple(next_c.shape), name="dnext_h")
    _, dnext_c = upstream(dnext_c, next_c, tuple(next_c.shape), name="dnext_c")
    da, dprev_c = _lstm_cell_backward(xp, dnext_h, dnext_c, prev_c, next_c, i, f, o, g)
    dx, dprev_h, dWx, dWh, db = _step_grads(xp, da, x, prev_h, Wx, Wh)
    return in_argument_dtypes(xp, (dx, dprev_h, dprev_c, dWx, dWh, db), dtypes)


@cache_of("lstm_forward")
class LstmCache(NamedTuple):
    """What :func:`lstm_forward` keeps for :func:`lstm_backward` (time-major arrays)."""

    x: Array
    h0: Array
    Wx: Array
    Wh: Array
    hs: Array
    cs: Array
    gates: Array
    dtypes: Dtypes


def lstm_forward(x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> tuple[Any, LstmCache]:
    """An LSTM over a whole sequence, the cell state starting at zero.

    Parameters
    ----------
    x : array, shape (N, T, D)
    h0 : array, shape (N, H)
    Wx : array, shape (D, 4H)
    Wh : array, shape (H, 4H)
    b : array, shape (4H,)
        Gates in the order i, f, o, g (``torch.nn.LSTM`` uses i, f, g, o).

    Returns
    -------
    h : array, shape (N, T, H)
        The hidden state after each step: a view of the states the cache keeps, so
        change a copy of it, not ``h`` itself in place, before :func:`lstm_backward`.
    cache : LstmCache
        For :func:`lstm_backward`.
    """
    xp, (x, h0, Wx, Wh, b), dtypes = floating_inputs(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b)
    _, _, hidden = _check(x, h0, Wx, Wh, b, 4, sequence=True, h_name="h0")

    def step(carry: tuple[Any, Any], a_x: Any) -> tuple[tuple[Any, Any], tuple[Any, ...]]:
        h, c = carry
        h, c, i, f, o, g = _lstm_cell(xp, a_x + h @ Wh, c, hidden)
        return (h, c), (h, c, xp.concat([i, f, o, g], axis=1))

    native = _native.lstm_sequence(x, h0, Wx, Wh, b)  # NumPy: every pass in place
    if native is not None:
        hs, cs, gates = native
    else:
        c0 = xp.zeros_like(h0)
        _, (hs, cs, gates) = _native.scan(step, (h0, c0), (_projected(xp, x, Wx, b),))
    return _time_major(xp, hs), LstmCache(x, h0, Wx, Wh, hs, cs, gates, dtypes)


def lstm_backward(dh: Any, cache: LstmCache) -> tuple[Any, Any, Any, Any, Any]:
    """Backpropagation through time for :func:`lstm_forward`.

    Two gradients flow back across steps: ``dh`` into ``h_{t-1}`` (through ``Wh``) and
    ``dc`` into ``c_{t-1}`` (through the forget gate); both start at zero after the last
    step. ``c0`` is a constant zero, so its gradient is not returned.

    Parameters
    ----------
    dh : array, shape (N, T, H)
    cache : LstmCache

    Returns
    -------
    dx : array, shape (N, T, D)
    dh0 : array, shape (N, H)
    dWx : array, shape (D, 4H)
    dWh : array, shape (H, 4H)
    db : array, shape (4H,)
        Each in the dtype of its argument.
    """
    x, h0, Wx, Wh, hs, cs, gates, dtypes = require_cache(cache, LstmCache)
    n, steps, hidden = x.shape[0], x.shape[1], hs.shape[2]
    xp, dh = upstream(dh, hs, (n, steps, hidden), name="dh")
    native = _native.lstm_sequence_backward(_time_major(xp, dh), cs, gates, Wh)
    if native is not None:  # NumPy: every pass in place
        das, dh0 = native
    else:
        das, dh0 = _lstm_bptt(xp, dh, h0, Wh, cs, gates, hidden)
    dx, dWx, dWh, db = _sequence_grads(xp, x, _previous(xp, h0, hs), das, Wx)
    return in_argument_dtypes(xp, (dx, dh0, dWx, dWh, db), dtypes)
