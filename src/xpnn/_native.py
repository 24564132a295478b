"""Native primitives, where a backend has one: the fast path beside the portable code.

Convolution (below), the time loop of the recurrent layers (:func:`scan`: ``jax.lax.scan``
on JAX), the scatter-add of the embedding's backward pass (:func:`scatter_add_rows`), and
the LSTM's forward and backward passes on NumPy with every pass written in place into
their outputs (:func:`lstm_sequence` and :func:`lstm_sequence_backward`).

The array API standard has no convolution, so :func:`xpnn.conv_forward_fast` builds one
from strided slices and a matrix multiply (im2col), which runs everywhere. Where the
library has a convolution primitive that is faster, the same hand-derived formulas run on
it instead:

* forward: ``out = x (*) w`` (cross-correlation, stride ``s``, zero padding ``p``);
* ``dx``: the full convolution of the upstream gradient, dilated by ``s``, with the filters
  rotated by 180 degrees and their two channel axes swapped (padding ``HH - 1 - p``);
* ``dw``: the correlation of the input with the upstream gradient used as a filter,
  dilated by ``s``, with the batch and channel axes swapped on both sides.

(Derived in ``docs/derivations/conv.md``.) The primitives:

* JAX: ``jax.lax.conv_general_dilated``, XLA's convolution (Eigen on the CPU, cuDNN on
  NVIDIA GPUs), always;
* PyTorch: ``conv2d``, its adjoint ``conv_transpose2d`` and, for ``dw``,
  ``torch.nn.grad.conv2d_weight`` (oneDNN on the CPU, cuDNN on GPUs, with TF32 turned off
  so that float32 keeps its precision), except for float64 on
  the CPU, where PyTorch's convolution is slower than im2col (measured: im2col takes
  0.78-0.91x its time on the benchmark shapes).

Every function returns ``None`` where the library of its arguments has no native path;
:func:`disabled` turns the native paths off (to test the portable one).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ._backend import backend_name

__all__ = [
    "conv_backward",
    "conv_forward",
    "disabled",
    "lstm_sequence",
    "lstm_sequence_backward",
    "scan",
    "scatter_add_rows",
]

_DIMENSIONS = ("NCHW", "OIHW", "NCHW")
_state = threading.local()


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within this context every layer takes its portable (array API) path."""
    before = getattr(_state, "disabled", False)
    _state.disabled = True
    try:
        yield
    finally:
        _state.disabled = before


def _native(x: Any) -> str | None:
    """The library whose native convolution runs for ``x``, or None."""
    if getattr(_state, "disabled", False):
        return None
    name = backend_name(x)
    if name == "jax":
        return name
    if name == "torch" and not (x.device.type == "cpu" and x.dtype.itemsize == 8):
        return name
    return None


def conv_forward(x: Any, w: Any, stride: int, pad: int) -> Any:
    """``x (*) w`` of shape (N, F, H', W') without the bias, or None (no native path).

    ``x`` (N, C, H, W) and ``w`` (F, C, HH, WW) share a floating dtype; the windows tile
    the padded input exactly (checked by the caller).
    """
    library = _native(x)
    if library is None:
        return None
    if library == "torch":
        import torch

        with _full_float32(x):
            return torch.nn.functional.conv2d(x, w, None, stride, pad)
    from jax import lax

    return lax.conv_general_dilated(
        x, w, (stride, stride), [(pad, pad), (pad, pad)], dimension_numbers=_DIMENSIONS
    )


def conv_backward(
    dout: Any, x: Any, w: Any, stride: int, pad: int, input_grad: bool
) -> tuple[Any, Any] | None:
    """``(dx, dw)`` of :func:`conv_forward` (``dx`` None unless ``input_grad``), or None."""
    library = _native(x)
    if library is None:
        return None
    if library == "torch":
        with _full_float32(x):
            return _torch_conv_backward(dout, x, w, stride, pad, input_grad)
    import jax.numpy as jnp
    from jax import lax

    hh, ww = w.shape[2], w.shape[3]
    # dw[f, c] = sum over n of x[n, c] correlated with dout[n, f], dout dilated by stride:
    # a convolution with N as the contracted channel axis on both sides.
    dw = lax.conv_general_dilated(
        jnp.transpose(x, (1, 0, 2, 3)),
        jnp.transpose(dout, (1, 0, 2, 3)),
        (1, 1),
        [(pad, pad), (pad, pad)],
        rhs_dilation=(stride, stride),
        dimension_numbers=_DIMENSIONS,
    )
    dw = jnp.transpose(dw, (1, 0, 2, 3))
    if not input_grad:
        return None, dw
    rotated = jnp.flip(jnp.transpose(w, (1, 0, 2, 3)), (2, 3))
    dx = lax.conv_general_dilated(
        dout,
        rotated,
        (1, 1),
        [(hh - 1 - pad, hh - 1 - pad), (ww - 1 - pad, ww - 1 - pad)],
        lhs_dilation=(stride, stride),
        dimension_numbers=_DIMENSIONS,
    )
    return dx, dw


@contextlib.contextmanager
def _full_float32(x: Any) -> Iterator[None]:
    """cuDNN without TF32 (PyTorch allows it for convolutions by default): xpnn's float32
    convolutions on a GPU keep float32's precision, as its matrix multiplies do."""
    import torch

    if x.device.type != "cuda" or not torch.backends.cudnn.allow_tf32:
        yield
        return
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = True


def _torch_conv_backward(
    dout: Any, x: Any, w: Any, stride: int, pad: int, input_grad: bool
) -> tuple[Any, Any]:
    """:func:`conv_backward` with PyTorch's ``conv2d`` and ``conv_transpose2d``."""
    import torch
    import torch.nn.functional as F

    # dw: the correlation of x with dout, dilated by the stride, as a filter. Written as a
    # conv2d (batch and channel axes swapped), it has an H'xW' filter, which cuDNN runs up
    # to 19x slower than its weight-gradient kernel (measured on an H200; 2.4x on the CPU):
    # conv2d_weight computes the same correlation with that kernel.
    dw = torch.nn.grad.conv2d_weight(x, tuple(w.shape), dout, stride, pad)
    if not input_grad:
        return None, dw
    # dx: the adjoint of the convolution (the full convolution with rotated filters of the
    # dilated dout), exactly what conv_transpose2d computes.
    return F.conv_transpose2d(dout, w, None, stride, pad), dw


# --------------------------------------------------------------------------- recurrences


def scan(
    step: Callable[..., tuple[Any, Any]], carry: Any, xs: tuple[Any, ...], reverse: bool = False
) -> tuple[Any, Any]:
    """``carry, ys`` of a loop over the leading (time) axis of the arrays ``xs``.

    ``step(carry, *slices) -> (carry, y)``, ``y`` an array or a tuple of arrays; ``ys``
    stacks them along a new leading axis, in the order of ``xs`` (also when ``reverse``
    runs the loop from the last slice to the first). Traced by JAX (under ``jax.jit``,
    ``jax.grad`` of a jitted function, ``jax.vmap``) this is ``jax.lax.scan``, so that the
    step is compiled once whatever the length; elsewhere, eager JAX included (where a scan
    would compile its step at every call), a Python loop: the one loop the recurrent
    layers have, since each step needs the one before.
    """
    from ._backend import array_namespace, is_traced

    if not getattr(_state, "disabled", False) and backend_name(xs[0]) == "jax":
        import jax

        if any(map(is_traced, jax.tree_util.tree_leaves((carry, xs)))):
            return jax.lax.scan(lambda c, x: step(c, *x), carry, xs, reverse=reverse)

    xp = array_namespace(*xs)
    length = xs[0].shape[0]
    order = range(length - 1, -1, -1) if reverse else range(length)
    outputs = []
    for t in order:
        carry, y = step(carry, *(x[t, ...] for x in xs))
        outputs.append(y)
    if reverse:
        outputs.reverse()
    if isinstance(outputs[0], tuple):
        ys: Any = tuple(xp.stack(parts, axis=0) for parts in zip(*outputs, strict=True))
    else:
        ys = xp.stack(outputs, axis=0)
    return carry, ys


# --------------------------------------------------------------------------- scatter-add


def scatter_add_rows(index: Any, values: Any, rows: int) -> Any:
    """``out[index[k]] += values[k]`` into zeros of shape ``(rows, D)``, repeated indices
    accumulating, with the library's own scatter-add; None where there is none (the layer
    then uses its portable one-hot product).

    ``index`` is 1-d integer, ``values`` ``(K, D)``; the result is a new array.
    """
    if getattr(_state, "disabled", False):
        return None
    name = backend_name(values)
    shape = (rows, values.shape[1])
    if name == "numpy":
        import numpy as np

        out = np.zeros(shape, dtype=values.dtype)
        np.add.at(out, index, values)  # accumulates repeated indices, unlike out[index] +=
        return out
    if name == "torch":
        import torch

        out = torch.zeros(shape, dtype=values.dtype, device=values.device)
        return out.index_add_(0, index, values)  # a fresh array: no input is changed
    if name == "jax":
        import jax.numpy as jnp

        return jnp.zeros(shape, dtype=values.dtype).at[index].add(values)
    if name == "cupy":
        import cupy
        import cupyx

        out = cupy.zeros(shape, dtype=values.dtype)
        cupyx.scatter_add(out, index, values)
        return out
    return None


# --------------------------------------------------------------------------- LSTM on NumPy


def lstm_sequence(x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> tuple[Any, Any, Any] | None:
    """The LSTM's forward pass on NumPy, or None elsewhere (the layer then runs :func:`scan`).

    The same formulas as ``xpnn.layers.rnn``'s portable path, in the same order, so the
    results are the same to the last bit: the input projection ``x_t Wx + b`` of every step
    in one product, then per step ``a = (x_t Wx + b) + h_{t-1} Wh``, the gates ``i, f, o``
    through the sigmoid ``0.5 tanh(0.5 z) + 0.5`` and ``g`` through ``tanh``,
    ``c_t = f c_{t-1} + i g`` from ``c_0 = 0``, ``h_t = o tanh(c_t)``. What differs is
    where they are written: the projection goes straight into the stacked gates (no
    second array of that size), each step's pre-activations, gates and states are made in
    place there, and every elementwise pass writes into a buffer with ``out=``. The one
    ``tanh`` of a step runs over all four gate blocks at once (contiguous memory; ``i, f,
    o`` are scaled by 1/2 before it, exactly).

    Parameters
    ----------
    x : (N, T, D)
    h0 : (N, H)
    Wx : (D, 4H)
    Wh : (H, 4H)
    b : (4H,)
        All of one floating dtype (the layer has promoted them).

    Returns
    -------
    hs, cs : (T, N, H)
    gates : (T, N, 4H)
        The activated gates i, f, o, g of every step.
    """
    if getattr(_state, "disabled", False) or backend_name(x) != "numpy":
        return None
    import numpy as np

    n, steps, dim = x.shape
    width = Wx.shape[1]
    hidden = width // 4
    dtype = np.result_type(x, h0, Wx, Wh, b)
    gates = np.empty((steps, n, width), dtype)
    rows = gates.reshape(steps * n, width)
    np.matmul(x.transpose(1, 0, 2).reshape(steps * n, dim), Wx, out=rows)
    rows += b
    hs = np.empty((steps, n, hidden), dtype)
    cs = np.empty((steps, n, hidden), dtype)
    recurrent = np.empty((n, width), dtype)
    ig = np.empty((n, hidden), dtype)
    h, c = h0, np.zeros((n, hidden), dtype)
    for t in range(steps):
        a = gates[t]
        np.matmul(h, Wh, out=recurrent)
        a += recurrent
        z = a[:, : 3 * hidden]
        np.multiply(0.5, z, out=z)  # the sigmoid: 0.5 tanh(0.5 z) + 0.5
        np.tanh(a, out=a)  # and g = tanh(a_g), in the same pass
        np.multiply(0.5, z, out=z)
        z += 0.5
        i, f, o = z[:, :hidden], z[:, hidden : 2 * hidden], z[:, 2 * hidden :]
        g = a[:, 3 * hidden :]
        np.multiply(f, c, out=cs[t])
        np.multiply(i, g, out=ig)
        cs[t] += ig
        np.tanh(cs[t], out=hs[t])
        hs[t] *= o
        h, c = hs[t], cs[t]
    return hs, cs, gates


def lstm_sequence_backward(dh: Any, cs: Any, gates: Any, Wh: Any) -> tuple[Any, Any] | None:
    """Backpropagation through the LSTM's time loop on NumPy, or None elsewhere.

    ``dh`` is the upstream gradient of every hidden state, time-major ``(T, N, H)``;
    ``cs`` and ``gates`` are :func:`lstm_sequence`'s. The formulas of
    ``xpnn.layers.rnn._lstm_cell_backward``, written with ``out=`` into the stacked
    ``das``. Returns ``das (T, N, 4H)``, the gradient of every step's pre-activations,
    and ``dh0 (N, H)``.
    """
    if getattr(_state, "disabled", False) or backend_name(dh) != "numpy":
        return None
    import numpy as np

    steps, n, hidden = cs.shape
    dtype = np.result_type(dh, cs, gates, Wh)
    das = np.empty((steps, n, 4 * hidden), dtype)
    dnext_h, dnext_c = np.zeros((n, hidden), dtype), np.zeros((n, hidden), dtype)
    dh_t, tanh_c, dc, work = (np.empty((n, hidden), dtype) for _ in range(4))
    work3 = np.empty((n, 3 * hidden), dtype)
    zeros = np.zeros((n, hidden), dtype)
    Wh_t = Wh.T
    for t in range(steps - 1, -1, -1):
        i, f, o, g = (gates[t][:, k * hidden : (k + 1) * hidden] for k in range(4))
        c_prev = cs[t - 1] if t else zeros
        da = das[t]
        da_i, da_f = da[:, :hidden], da[:, hidden : 2 * hidden]
        da_o, da_g = da[:, 2 * hidden : 3 * hidden], da[:, 3 * hidden :]
        np.add(dh[t], dnext_h, out=dh_t)
        np.tanh(cs[t], out=tanh_c)
        # dc = dnext_c + dh_t o (1 - tanh(c_t)^2): the cell feeds h_t and the next step
        np.multiply(tanh_c, tanh_c, out=work)
        np.subtract(1, work, out=work)
        np.multiply(dh_t, o, out=dc)
        dc *= work
        dc += dnext_c
        # the sigmoid gates, as one (N, 3H) block: (dc g, dc c_{t-1}, dh_t tanh(c_t)),
        # times (i, f, o), times (1 - (i, f, o))
        np.multiply(dc, g, out=da_i)
        np.multiply(dc, c_prev, out=da_f)
        np.multiply(dh_t, tanh_c, out=da_o)
        ifo, da_ifo = gates[t][:, : 3 * hidden], da[:, : 3 * hidden]
        da_ifo *= ifo
        np.subtract(1, ifo, out=work3)
        da_ifo *= work3
        np.multiply(dc, i, out=da_g)  # candidate: dc i (1 - g^2)
        np.multiply(g, g, out=work)
        np.subtract(1, work, out=work)
        da_g *= work
        np.multiply(dc, f, out=dnext_c)
        np.matmul(da, Wh_t, out=dnext_h)
    return das, dnext_h
