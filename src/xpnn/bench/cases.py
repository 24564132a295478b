"""The benchmarked operations: xpnn's implementation and its reference, on one backend.

Each :class:`Case` holds two zero-argument callables that do the same work on the same
data (forward and backward, or a whole training step) and a ``sync`` that waits for a
result. References:

* NumPy, PyTorch and CuPy backends: PyTorch (CPU, or CUDA with cuDNN for CuPy and CUDA
  tensors), its functional ops with autograd, and ``nn.Module`` networks with
  ``torch.optim.SGD`` for the training steps;
* JAX: ``jax.lax.conv_general_dilated``, ``jax.lax.reduce_window`` and ``jax.numpy``
  batch norm, differentiated by ``jax.vjp``, both sides under ``jax.jit``.

The sequence rows (the LSTM, a captioning training step, JAX's compile time against the
sequence length) are in :mod:`xpnn.bench.sequence`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np

from .. import optim
from .._backend import get_namespace, to_backend
from ..classifiers import FullyConnectedNet, ThreeLayerConvNet
from ..layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward_alt,
    batchnorm_forward,
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
    relu_backward,
    relu_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from . import sequence
from ._case import Case, Stage

__all__ = ["CONV_SHAPES", "Case", "Stage", "cases"]

#: (x shape, w shape, stride, pad) of the benchmarked convolutions.
CONV_SHAPES = [
    ((50, 3, 32, 32), (32, 3, 7, 7), 1, 3),
    ((64, 64, 32, 32), (64, 64, 3, 3), 1, 1),
    ((100, 3, 31, 31), (25, 3, 3, 3), 2, 1),
]
POOL_SHAPE = (50, 32, 32, 32)
BATCHNORM_SHAPE = (4096, 1024)
SPATIAL_BATCHNORM_SHAPE = (64, 64, 32, 32)


def _no_sync(result: Any) -> Any:
    return result


def _describe(shape: tuple[int, ...]) -> str:
    return "(" + ",".join(str(n) for n in shape) + ")"


def conv_label(xs: tuple, ws: tuple, stride: int, pad: int) -> str:
    return f"x{_describe(xs)} w{_describe(ws)} s{stride} p{pad}"


#: What bounds xpnn's side of each op where it runs its portable code (printed with the
#: stages of a missed target).
LIMITS = {
    "conv": (
        "xpnn's side is an im2col copy, three matrix multiplies in the array library's BLAS "
        "and a col2im of slice-adds; the matrix-multiply row times those three products "
        "alone, on both libraries, at the same shapes."
    ),
    "elementwise": (
        "Each array operation of xpnn is one pass over memory (on NumPy: single-threaded, "
        "unfused, into a fresh array); the yardstick row is one such pass, so xpnn's time "
        "in passes counts its operations. PyTorch's kernel reads the data a few times in "
        "one fused loop on all threads."
    ),
    "jax conv": (
        "On JAX, xpnn's forward and backward formulas run on lax.conv_general_dilated "
        "(xpnn._native), the convolution the reference differentiates: the same XLA "
        "kernels on both sides, so what remains is how XLA fuses the bias and the sums."
    ),
    "step": (
        "A training step is the sum of its layers; the rows below time the largest ones "
        "(forward and backward, at the model's shapes) on both sides."
    ),
}

# --------------------------------------------------------------------------- xpnn sides


def xpnn_conv(x, w, b, param, dout):
    def run():
        _, cache = conv_forward_fast(x, w, b, param)
        return conv_backward_fast(dout, cache)

    return run


def torch_conv(x, w, b, param, dout, device="cpu"):
    """PyTorch's conv2d forward and autograd backward on the same (NumPy) data."""
    import torch

    tx, tw, tb = (torch.from_numpy(a).to(device).requires_grad_() for a in (x, w, b))
    tdout = torch.from_numpy(dout).to(device)

    def run():
        tx.grad = tw.grad = tb.grad = None
        out = torch.nn.functional.conv2d(tx, tw, tb, stride=param["stride"], padding=param["pad"])
        out.backward(tdout)
        return tx.grad

    return run


def _three_products(a, b, d):
    """The three GEMMs of an im2col convolution: forward, ``dw`` and ``dcols``."""
    return a @ b, d @ b.mT, a.mT @ d


def _xpnn_layer(forward, backward, inputs, dout, **backward_options):
    def run():
        _, cache = forward(*inputs)
        return backward(dout, cache, **backward_options)

    return run


def _xpnn_pool(x, param, dout):
    def run():
        _, cache = max_pool_forward_fast(x, param)
        return max_pool_backward_fast(dout, cache)

    return run


def _xpnn_norm(forward, backward, x, gamma, beta, dout):
    def run():
        _, cache = forward(x, gamma, beta, {"mode": "train"})
        return backward(dout, cache)

    return run


def _xpnn_train_step(model, X, y, learning_rate=1e-3):
    def run():
        _, grads = model.loss(X, y)
        for name, w in model.params.items():
            model.params[name], _ = optim.sgd(w, grads[name], {"learning_rate": learning_rate})
        return model.params[name]

    return run


# --------------------------------------------------------------------------- PyTorch


def conv_target(backend: str, cuda: bool, dtype: str) -> float:
    """The conv fwd+bwd target ratio against PyTorch.

    On a GPU (issue "GPU path", H200, float32): CuPy's im2col within 2x of cuDNN, xpnn on
    torch-CUDA (which runs torch's own convolution through ``xpnn._native``) within 1.2x.
    On the CPU: parity in float64, 2x in float32 (PyTorch's float32 CPU convolution is
    a tuned direct kernel; ours is im2col and one GEMM).
    """
    if cuda:
        return 2.0 if backend == "cupy" else 1.2
    return 1.0 if dtype == "float64" else 2.0


def _torch_cases(arrays: Callable, dtype: str, device: Any, ours: Callable) -> Iterator[Case]:
    """Every case against PyTorch; ``arrays(*np_arrays)`` moves NumPy data to our backend."""
    import torch
    import torch.nn.functional as F

    cuda = str(device).startswith("cuda")
    reference = (
        "PyTorch CUDA (cuDNN)" if cuda else f"PyTorch CPU ({torch.get_num_threads()} threads)"
    )

    def sync_torch(result: Any) -> Any:
        if cuda:
            torch.cuda.synchronize()
        return result

    def tensor(a: np.ndarray, grad: bool = True) -> Any:
        return torch.from_numpy(a).to(device).requires_grad_(grad)

    def no_grad(fn: Callable) -> Callable:
        def run():
            with torch.no_grad():
                return fn()

        return run

    rng = np.random.default_rng(0)

    def randn(*shape):
        return rng.standard_normal(shape).astype(dtype)

    def elementwise_pass(x: np.ndarray) -> Stage:
        ours_x, tx = arrays(x)[0], tensor(x, False)
        return Stage("one elementwise pass, x * 1.5 (the yardstick)", lambda: ours_x * 1.5,
                     lambda: tx * 1.5, yardstick=True)  # fmt: skip

    sync_ours = ours("sync")
    for xs, ws, stride, pad in CONV_SHAPES:
        x, w, b = randn(*xs), randn(*ws), randn(ws[0])
        h_out = (xs[2] + 2 * pad - ws[2]) // stride + 1
        dout = randn(xs[0], ws[0], h_out, h_out)
        param = {"stride": stride, "pad": pad}
        tx, tw, tb = tensor(x, False), tensor(w, False), tensor(b, False)
        rows, cols = math.prod(ws[1:]), xs[0] * h_out * h_out
        # the values do not change a matrix multiply's time: constants, quick to make
        products = [np.full(shape, 0.5, dtype) for shape in ((ws[0], rows), (rows, cols),
                                                            (ws[0], cols))]  # fmt: skip
        yield Case(
            "conv fwd+bwd",
            conv_label(xs, ws, stride, pad),
            dtype,
            reference,
            xpnn_conv(*arrays(x, w, b), param, arrays(dout)[0]),
            torch_conv(x, w, b, param, dout, device),
            sync_ours,
            sync_torch,
            conv_target(ours("backend"), cuda, dtype),
            stages=(
                Stage(
                    "forward",
                    partial(conv_forward_fast, *arrays(x, w, b), param),
                    no_grad(partial(F.conv2d, tx, tw, tb, stride=stride, padding=pad)),
                ),
                Stage(
                    f"the three matrix products of im2col alone, "
                    f"{3 * conv_flops(xs, ws, stride, pad) / 1e9:.1f} GFLOP",
                    partial(_three_products, *arrays(*products)),
                    no_grad(partial(_three_products, *(tensor(a, False) for a in products))),
                ),
            ),
            limit=LIMITS["conv"],
        )
    x = randn(*POOL_SHAPE)
    dout = randn(POOL_SHAPE[0], POOL_SHAPE[1], POOL_SHAPE[2] // 2, POOL_SHAPE[3] // 2)
    tx = tensor(x)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    yield Case(
        "max pool 2x2 fwd+bwd",
        f"x{_describe(POOL_SHAPE)}",
        dtype,
        reference,
        _xpnn_pool(*arrays(x), pool_param, arrays(dout)[0]),
        _autograd(lambda tx=tx: F.max_pool2d(tx, 2, 2), [tx], tensor(dout, False)),
        sync_ours,
        sync_torch,
        1.2,
        stages=(
            Stage(
                "forward",
                partial(max_pool_forward_fast, arrays(x)[0], pool_param),
                no_grad(lambda tx=tx: F.max_pool2d(tx, 2, 2)),
            ),
            elementwise_pass(x),
        ),
        limit=LIMITS["elementwise"],
    )
    for shape, forward, backward, op in (
        (BATCHNORM_SHAPE, batchnorm_forward, batchnorm_backward_alt, "batch norm fwd+bwd"),
        (
            SPATIAL_BATCHNORM_SHAPE,
            spatial_batchnorm_forward,
            spatial_batchnorm_backward,
            "spatial batch norm fwd+bwd",
        ),
    ):
        channels = shape[1]
        x, gamma, beta, dout = randn(*shape), randn(channels), randn(channels), randn(*shape)
        tx, tg, tbeta = tensor(x), tensor(gamma), tensor(beta)
        yield Case(
            op,
            f"x{_describe(shape)}",
            dtype,
            reference,
            _xpnn_norm(forward, backward, *arrays(x, gamma, beta, dout)),
            _autograd(
                lambda tx=tx, tg=tg, tbeta=tbeta: F.batch_norm(
                    tx, None, None, tg, tbeta, training=True
                ),
                [tx, tg, tbeta],
                tensor(dout, False),
            ),
            sync_ours,
            sync_torch,
            2.0,
            stages=(
                Stage(
                    "forward",
                    partial(forward, *arrays(x, gamma, beta), {"mode": "train"}),
                    no_grad(
                        lambda a=(tx, tg, tbeta): F.batch_norm(
                            a[0], None, None, *a[1:], training=True
                        )
                    ),
                ),
                elementwise_pass(x),
            ),
            limit=LIMITS["elementwise"],
        )

    # Training steps: the same networks as nn.Modules with torch.optim.SGD.
    X = randn(50, 3, 32, 32)
    y = rng.integers(0, 10, 50)
    np.random.seed(0)  # noqa: NPY002  (xpnn's models draw their weights there)
    model = ThreeLayerConvNet(dtype=dtype, backend=ours("backend"), device=ours("device"))
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 7, padding=3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 16 * 16, 100),
        torch.nn.ReLU(),
        torch.nn.Linear(100, 10),
    ).to(device=device, dtype=getattr(torch, dtype))
    yield Case(
        "training step (fwd, bwd, SGD)",
        "ThreeLayerConvNet, X(50,3,32,32)",
        dtype,
        reference.replace("PyTorch", "PyTorch nn.Module"),
        _xpnn_train_step(model, *arrays(X, y)),
        _torch_step(net, tensor(X, False), torch.from_numpy(y).to(device)),
        sync_ours,
        sync_torch,
        1.0 if dtype == "float64" else 2.0,
        stages=(
            Stage(
                "forward (scores)",
                partial(model.loss, arrays(X)[0]),
                no_grad(partial(net, tensor(X, False))),
            ),
            *_step_layer_stages(net, arrays, tensor, randn),
        ),
        limit=LIMITS["step"],
    )
    X = randn(100, 3 * 32 * 32)
    y = rng.integers(0, 10, 100)
    model = FullyConnectedNet(
        [100, 100],
        normalization="batchnorm",
        dtype=dtype,
        backend=ours("backend"),
        device=ours("device"),
    )
    layers = []
    for fan_in, fan_out in ((3072, 100), (100, 100)):
        layers += [
            torch.nn.Linear(fan_in, fan_out),
            torch.nn.BatchNorm1d(fan_out),
            torch.nn.ReLU(),
        ]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(100, 10))
    net = net.to(device=device, dtype=getattr(torch, dtype))
    yield Case(
        "training step (fwd, bwd, SGD)",
        "FullyConnectedNet [100,100] + batch norm, X(100,3072)",
        dtype,
        reference.replace("PyTorch", "PyTorch nn.Module"),
        _xpnn_train_step(model, *arrays(X, y)),
        _torch_step(net, tensor(X, False), torch.from_numpy(y).to(device)),
        sync_ours,
        sync_torch,
    )
    yield from sequence.torch_cases(arrays, dtype, device, ours, reference, sync_torch)


def _step_layer_stages(net, arrays, tensor, randn) -> Iterator[Stage]:
    """The conv, ReLU, pool and hidden affine layers of the ThreeLayerConvNet step."""
    import torch.nn.functional as F

    conv, pool = net[0], {"pool_height": 2, "pool_width": 2, "stride": 2}
    x, w, b = randn(50, 3, 32, 32), randn(32, 3, 7, 7), randn(32)
    h, dh, dpool = randn(50, 32, 32, 32), randn(50, 32, 32, 32), randn(50, 32, 16, 16)
    tx, tw, tb, th = tensor(x, False), tensor(w), tensor(b), tensor(h)
    yield Stage(
        "conv 3->32 7x7 fwd+bwd, no dx",
        _xpnn_layer(conv_forward_fast, conv_backward_fast, (*arrays(x, w, b), {"stride": 1,
                    "pad": 3}), arrays(dh)[0], input_grad=False),
        _autograd(lambda: F.conv2d(tx, tw, tb, padding=conv.padding), [tw, tb],
                 tensor(dh, False)),
    )  # fmt: skip
    yield Stage(
        "ReLU fwd+bwd, (50,32,32,32)",
        _xpnn_layer(relu_forward, relu_backward, arrays(h), arrays(dh)[0]),
        _autograd(lambda: F.relu(th), [th], tensor(dh, False)),
    )
    yield Stage(
        "max pool fwd+bwd, (50,32,32,32)",
        _xpnn_pool(arrays(h)[0], pool, arrays(dpool)[0]),
        _autograd(lambda: F.max_pool2d(th, 2, 2), [th], tensor(dpool, False)),
    )
    a, wa, ba, da = randn(50, 8192), randn(8192, 100), randn(100), randn(50, 100)
    ta, twa, tba = tensor(a), tensor(wa.T.copy()), tensor(ba)
    yield Stage(
        "affine 8192->100 fwd+bwd",
        _xpnn_layer(affine_forward, affine_backward, arrays(a, wa, ba), arrays(da)[0]),
        _autograd(lambda: F.linear(ta, twa, tba), [ta, twa, tba], tensor(da, False)),
    )


def _autograd(fn: Callable, inputs: list, dout: Any) -> Callable:
    """A run of ``fn()`` (PyTorch) and its backward pass from ``dout``; the first input's
    gradient."""

    def run():
        for t in inputs:
            t.grad = None
        fn().backward(dout)
        return inputs[0].grad

    return run


def _torch_step(net: Any, X: Any, y: Any) -> Callable:
    import torch

    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)

    def run():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(X), y).backward()
        optimizer.step()
        return X

    return run


# --------------------------------------------------------------------------- JAX


def _jax_cases(dtype: str) -> Iterator[Case]:
    import jax
    import jax.numpy as jnp
    from jax import lax

    def sync(result: Any) -> Any:
        return jax.block_until_ready(result)

    rng = np.random.default_rng(0)

    def randn(*shape):
        return jnp.asarray(rng.standard_normal(shape).astype(dtype))

    def vjp_of(fn: Callable) -> Callable:
        return jax.jit(lambda dout, *args: jax.vjp(fn, *args)[1](dout))

    reference = "jax.lax + jax.vjp under jax.jit"
    for xs, ws, stride, pad in CONV_SHAPES:
        x, w, b = randn(*xs), randn(*ws), randn(ws[0])
        h_out = (xs[2] + 2 * pad - ws[2]) // stride + 1
        dout = randn(xs[0], ws[0], h_out, h_out)
        param = {"stride": stride, "pad": pad}
        ours = jax.jit(lambda x, w, b, dout, param=param: xpnn_conv(x, w, b, param, dout)())

        def conv(x, w, b, stride=stride, pad=pad):
            out = lax.conv_general_dilated(
                x,
                w,
                (stride, stride),
                [(pad, pad)] * 2,
                dimension_numbers=("NCHW", "OIHW", "NCHW"),
            )
            return out + b[None, :, None, None]

        ref = vjp_of(conv)
        forward = jax.jit(lambda x, w, b, param=param: conv_forward_fast(x, w, b, param)[0])
        yield Case(
            "conv fwd+bwd",
            conv_label(xs, ws, stride, pad),
            dtype,
            reference,
            partial(ours, x, w, b, dout),
            partial(ref, dout, x, w, b),
            sync,
            sync,
            1.0 if jax.devices()[0].platform == "cpu" else 1.2,
            stages=(Stage("forward", partial(forward, x, w, b), partial(jax.jit(conv), x, w, b)),),
            limit=LIMITS["jax conv"],
            forward_in_whole=False,
        )
    x = randn(*POOL_SHAPE)
    dout = randn(POOL_SHAPE[0], POOL_SHAPE[1], POOL_SHAPE[2] // 2, POOL_SHAPE[3] // 2)
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    ours = jax.jit(lambda x, dout: _xpnn_pool(x, param, dout)())
    ref = vjp_of(
        lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    )
    yield Case(
        "max pool 2x2 fwd+bwd",
        f"x{_describe(POOL_SHAPE)}",
        dtype,
        reference,
        lambda: ours(x, dout),
        lambda: ref(dout, x),
        sync,
        sync,
        1.2,
    )
    for shape, forward, backward, axes, op in (
        (BATCHNORM_SHAPE, batchnorm_forward, batchnorm_backward_alt, (0,), "batch norm fwd+bwd"),
        (
            SPATIAL_BATCHNORM_SHAPE,
            spatial_batchnorm_forward,
            spatial_batchnorm_backward,
            (0, 2, 3),
            "spatial batch norm fwd+bwd",
        ),
    ):
        channels = shape[1]
        x, gamma, beta, dout = randn(*shape), randn(channels), randn(channels), randn(*shape)
        ours = jax.jit(lambda *a, f=forward, b=backward: _xpnn_norm(f, b, *a)())
        bshape = (1, channels) + (1,) * (len(shape) - 2)

        def norm(x, gamma, beta, axes=axes, bshape=bshape):
            mu = jnp.mean(x, axis=axes, keepdims=True)
            var = jnp.mean((x - mu) ** 2, axis=axes, keepdims=True)
            xhat = (x - mu) / jnp.sqrt(var + 1e-5)
            return jnp.reshape(gamma, bshape) * xhat + jnp.reshape(beta, bshape)

        ref = vjp_of(norm)
        yield Case(
            op,
            f"x{_describe(shape)}",
            dtype,
            reference,
            lambda ours=ours, a=(x, gamma, beta, dout): ours(*a),
            lambda ref=ref, a=(x, gamma, beta), dout=dout: ref(dout, *a),
            sync,
            sync,
            2.0,
        )
    yield from sequence.jax_cases(dtype)


# --------------------------------------------------------------------------- entry


def cases(backend: str, dtypes: tuple[str, ...] = ("float32", "float64")) -> Iterator[Case]:
    """The benchmark cases of ``backend`` ('numpy', 'torch', 'cupy' or 'jax')."""
    get_namespace(backend)  # a missing backend fails here, with its install command
    if backend == "jax":
        for dtype in dtypes:
            yield from _jax_cases(dtype)
        return
    import torch

    device: Any = "cpu"
    if backend == "cupy" or (backend == "torch" and torch.cuda.is_available()):
        device = "cuda"

    def ours(what: str) -> Any:
        if what == "backend":
            return backend
        if what == "device":
            return None if backend == "numpy" else (device if backend == "torch" else None)
        return _sync_for(backend)

    def arrays(*host: np.ndarray) -> list[Any]:
        return [to_backend(a, backend, ours("device")) for a in host]

    for dtype in dtypes:
        yield from _torch_cases(arrays, dtype, device, ours)


def _sync_for(backend: str) -> Callable[[Any], Any]:
    if backend == "cupy":
        import cupy

        return lambda result: (cupy.cuda.get_current_stream().synchronize(), result)[1]
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return lambda result: (torch.cuda.synchronize(), result)[1]
    return _no_sync


def conv_flops(xs: tuple, ws: tuple, stride: int, pad: int) -> float:
    """Multiply-adds x 2 of one convolution forward pass (the backward costs twice that)."""
    h_out = (xs[2] + 2 * pad - ws[2]) // stride + 1
    w_out = (xs[3] + 2 * pad - ws[3]) // stride + 1
    return 2.0 * xs[0] * ws[0] * h_out * w_out * math.prod(ws[1:])
