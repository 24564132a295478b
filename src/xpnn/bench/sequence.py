"""The sequence layers' benchmark cases.

* ``lstm fwd+bwd``: :func:`xpnn.lstm_forward` and :func:`xpnn.lstm_backward` against
  ``torch.nn.LSTM`` (one layer, ``batch_first``) with autograd, at N=50, T=16, D=H=512;
* a ``CaptioningRNN`` (LSTM) training step (loss, gradients, SGD) against a torch module
  doing the same work: a linear projection of the features to ``h0``, an ``Embedding``,
  ``torch.nn.LSTM``, a linear layer to the vocabulary and the masked cross-entropy summed
  over time and averaged over the captions, with ``torch.optim.SGD``;
* on JAX, the time to trace and compile the LSTM's forward and backward pass under
  ``jax.jit`` at T=128 against T=16: ``lax.scan`` compiles the step once, so the ratio
  stays near 1 where an unrolled loop would grow with T.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np

from .. import optim
from ..classifiers.rnn import CaptioningRNN
from ..layers.rnn import lstm_backward, lstm_forward, torch_gate_order
from ._case import Case, Stage

__all__ = ["CAPTIONING", "LSTM_SHAPE", "jax_cases", "torch_cases"]  # and the sides, for tests

#: N, T, D, H of the LSTM rows (the issue's shapes).
LSTM_SHAPE = {"n": 50, "steps": 16, "dim": 512, "hidden": 512}
#: The assignment's COCO model: 512-d PCA features, 256-d word vectors, 512 hidden units,
#: its vocabulary of 1004 words; 50 captions of 17 words (16 steps).
CAPTIONING = {"n": 50, "steps": 16, "input_dim": 512, "wordvec": 256, "hidden": 512,
              "vocabulary": 1004}  # fmt: skip

_LIMIT = (
    "xpnn's LSTM does the matrix products torch.nn.LSTM does (the input projection and the "
    "gradients of x and of the weights as one product each over all steps, the recurrence "
    "step by step, forward and back), in the array library's BLAS: on NumPy that is "
    "OpenBLAS, where torch has its own (MKL on x86). Around them, each step makes about a "
    "dozen elementwise passes over the (N, 4H) gates each way, on NumPy one thread each; "
    "torch's CPU LSTM makes as many separate passes, on all its threads."
)


def _lstm_label() -> str:
    s = LSTM_SHAPE
    return f"N={s['n']} T={s['steps']} D={s['dim']} H={s['hidden']}"


def _lstm_arrays(rng: np.random.Generator, dtype: str, steps: int) -> dict[str, np.ndarray]:
    s = LSTM_SHAPE
    scale = 1 / np.sqrt(s["hidden"])
    return {
        "x": rng.standard_normal((s["n"], steps, s["dim"])).astype(dtype),
        "h0": rng.standard_normal((s["n"], s["hidden"])).astype(dtype),
        "Wx": (scale * rng.standard_normal((s["dim"], 4 * s["hidden"]))).astype(dtype),
        "Wh": (scale * rng.standard_normal((s["hidden"], 4 * s["hidden"]))).astype(dtype),
        "b": (scale * rng.standard_normal(4 * s["hidden"])).astype(dtype),
        "dh": rng.standard_normal((s["n"], steps, s["hidden"])).astype(dtype),
    }


def xpnn_lstm(x: Any, h0: Any, Wx: Any, Wh: Any, b: Any, dh: Any) -> Callable[[], Any]:
    """A run of xpnn's LSTM forward and backward pass; the gradients."""

    def run():
        _, cache = lstm_forward(x, h0, Wx, Wh, b)
        return lstm_backward(dh, cache)

    return run


def _lstm_products(x_rows: Any, h_rows: Any, Wx: Any, Wh: Any, das_rows: Any, n: int) -> list:
    """The matrix products of an LSTM's forward and backward pass, at its shapes: the input
    projection, ``h_{t-1} Wh`` and ``da_t Wh^T`` of every step, then ``dx``, ``dWx`` and
    ``dWh`` over all steps (x_rows, h_rows and das_rows hold the T*N rows of every step,
    n = N of them per step)."""
    steps = x_rows.shape[0] // n
    products = [x_rows @ Wx]
    products += [h_rows[t * n : (t + 1) * n] @ Wh for t in range(steps)]
    products += [das_rows[t * n : (t + 1) * n] @ Wh.mT for t in range(steps)]
    products += [das_rows @ Wx.mT, x_rows.mT @ das_rows, h_rows.mT @ das_rows]
    return products


def _lstm_stages(arrays: Callable, host: dict[str, np.ndarray], device: Any) -> tuple:
    """The forward pass, and the matrix products alone, on both sides."""
    import torch

    s = LSTM_SHAPE
    rows = s["n"] * s["steps"]
    # the values do not change a matrix multiply's time: constants, quick to make
    products = [np.full(shape, 0.5, host["x"].dtype) for shape in (
        (rows, s["dim"]), (rows, s["hidden"]), (s["dim"], 4 * s["hidden"]),
        (s["hidden"], 4 * s["hidden"]), (rows, 4 * s["hidden"]))]  # fmt: skip
    forward_args = [host[k] for k in ("x", "h0", "Wx", "Wh", "b")]
    lstm = _torch_lstm(host, device, forward_only=True)
    flops = 2 * rows * 4 * s["hidden"] * 3 * (s["dim"] + s["hidden"]) / 1e9
    return (
        Stage("forward", partial(lstm_forward, *arrays(*forward_args)), lstm),
        Stage(
            f"the matrix products alone, {flops:.1f} GFLOP",
            partial(_lstm_products, *arrays(*products), s["n"]),
            partial(_lstm_products, *(torch.from_numpy(p).to(device) for p in products), s["n"]),
        ),
    )


def _torch_lstm(
    host: dict[str, np.ndarray], device: Any, *, forward_only: bool = False
) -> Callable[[], Any]:
    """torch.nn.LSTM with xpnn's weights, forward and backward from the same ``dh`` (or
    the forward pass alone, without autograd)."""
    import torch

    hidden = LSTM_SHAPE["hidden"]
    dtype = getattr(torch, str(host["x"].dtype))
    lstm = torch.nn.LSTM(LSTM_SHAPE["dim"], hidden, batch_first=True)
    lstm = lstm.to(device=device, dtype=dtype)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch_gate_order(torch.from_numpy(host["Wx"])).T)
        lstm.weight_hh_l0.copy_(torch_gate_order(torch.from_numpy(host["Wh"])).T)
        lstm.bias_ih_l0.copy_(torch_gate_order(torch.from_numpy(host["b"])))
        lstm.bias_hh_l0.zero_()
    x = torch.from_numpy(host["x"]).to(device).requires_grad_()
    h0 = torch.from_numpy(host["h0"]).to(device)[None].requires_grad_()
    c0 = torch.zeros_like(h0)
    dh = torch.from_numpy(host["dh"]).to(device)

    def run():
        lstm.zero_grad(set_to_none=True)
        x.grad = h0.grad = None
        lstm(x, (h0, c0))[0].backward(dh)
        return x.grad

    def forward():
        with torch.no_grad():
            return lstm(x, (h0, c0))[0]

    return forward if forward_only else run


def _captions(rng: np.random.Generator) -> np.ndarray:
    """Captions of ``<START>``, words and ``<END>``, padded with ``<NULL>`` (0) after it."""
    c = CAPTIONING
    captions = rng.integers(3, c["vocabulary"], size=(c["n"], c["steps"] + 1))
    captions[:, 0] = 1  # <START>
    ends = rng.integers(c["steps"] // 2, c["steps"] + 1, size=c["n"])
    for row, end in zip(captions, ends, strict=True):
        row[end] = 2  # <END>
        row[end + 1 :] = 0  # <NULL>
    return captions


def _vocabulary() -> dict[str, int]:
    words = {"<NULL>": 0, "<START>": 1, "<END>": 2}
    words.update({f"word{i}": i for i in range(3, CAPTIONING["vocabulary"])})
    return words


def xpnn_captioning_step(model: CaptioningRNN, features: Any, captions: Any) -> Callable:
    def run():
        _, grads = model.loss(features, captions)
        for name, w in model.params.items():
            model.params[name], _ = optim.sgd(w, grads[name], {"learning_rate": 1e-3})
        return model.params[name]

    return run


def torch_captioner(dtype: Any, device: Any) -> Any:
    """The torch module of the captioning rows (``net(features, words) -> scores``)."""
    import torch

    c = CAPTIONING

    class Captioner(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(c["input_dim"], c["hidden"])
            self.embed = torch.nn.Embedding(c["vocabulary"], c["wordvec"])
            self.lstm = torch.nn.LSTM(c["wordvec"], c["hidden"], batch_first=True)
            self.vocab = torch.nn.Linear(c["hidden"], c["vocabulary"])

        def forward(self, features: Any, words: Any) -> Any:
            h0 = self.proj(features)[None]
            hidden, _ = self.lstm(self.embed(words), (h0, torch.zeros_like(h0)))
            return self.vocab(hidden)

    return Captioner().to(device=device, dtype=dtype)


def torch_captioning_loss(net: Any, features: Any, captions: Any) -> Any:
    """The assignment's loss: cross-entropy of each next word but ``<NULL>``, summed over
    time, averaged over the captions."""
    import torch

    words, targets = captions[:, :-1], captions[:, 1:]
    scores = net(features, words)
    per_word = torch.nn.functional.cross_entropy(
        scores.reshape(-1, scores.shape[-1]), targets.reshape(-1), reduction="none"
    )
    return (per_word * (targets.reshape(-1) != 0)).sum() / features.shape[0]


def _torch_captioning_step(features: Any, captions: Any, dtype: Any, device: Any) -> Callable:
    import torch

    net = torch_captioner(dtype, device)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)

    def run():
        optimizer.zero_grad(set_to_none=True)
        torch_captioning_loss(net, features, captions).backward()
        optimizer.step()
        return features

    return run


def torch_cases(
    arrays: Callable, dtype: str, device: Any, ours: Callable, reference: str, sync_torch: Callable
) -> Iterator[Case]:
    """The sequence rows against PyTorch (the NumPy, torch and CuPy backends)."""
    import torch

    cuda = str(device).startswith("cuda")
    rng = np.random.default_rng(0)
    host = _lstm_arrays(rng, dtype, LSTM_SHAPE["steps"])
    yield Case(
        "lstm fwd+bwd",
        _lstm_label(),
        dtype,
        reference.replace("PyTorch", "torch.nn.LSTM"),
        xpnn_lstm(*arrays(*host.values())),
        _torch_lstm(host, device),
        ours("sync"),
        sync_torch,
        None if cuda else (1.5 if dtype == "float32" else 1.0),
        stages=_lstm_stages(arrays, host, device),
        limit=_LIMIT,
    )
    c = CAPTIONING
    features = rng.standard_normal((c["n"], c["input_dim"])).astype(dtype)
    captions = _captions(rng)
    model = CaptioningRNN(
        _vocabulary(), c["input_dim"], c["wordvec"], c["hidden"], cell_type="lstm",
        dtype=dtype, seed=0, backend=ours("backend"), device=ours("device"),
    )  # fmt: skip
    yield Case(
        "captioning training step (fwd, bwd, SGD)",
        f"CaptioningRNN lstm, N={c['n']} T={c['steps']} D={c['input_dim']} "
        f"W={c['wordvec']} H={c['hidden']} V={c['vocabulary']}",
        dtype,
        reference.replace("PyTorch", "PyTorch nn.Module"),
        xpnn_captioning_step(model, *arrays(features, captions)),
        _torch_captioning_step(
            torch.from_numpy(features).to(device),
            torch.from_numpy(captions).to(device),
            getattr(torch, dtype),
            device,
        ),
        ours("sync"),
        sync_torch,
    )


def jax_cases(dtype: str) -> Iterator[Case]:
    """JAX's compile time of the LSTM at T=128 against T=16."""
    import jax
    import jax.numpy as jnp

    def compile_at(steps: int) -> Callable[[], Any]:
        host = _lstm_arrays(np.random.default_rng(0), dtype, steps)
        args = tuple(jnp.asarray(a) for a in host.values())

        def run():
            # a new function each call: nothing is reused from an earlier trace or compile
            def fresh(x, h0, Wx, Wh, b, dh):
                return xpnn_lstm(x, h0, Wx, Wh, b, dh)()

            return jax.jit(fresh).lower(*args).compile()

        return run

    s = LSTM_SHAPE
    yield Case(
        "jax.jit compile, lstm fwd+bwd",
        f"T=128 against T=16 (N={s['n']} D={s['dim']} H={s['hidden']})",
        dtype,
        "the same compile at T=16",
        compile_at(128),
        compile_at(16),
        lambda result: result,
        lambda result: result,
        1.5,
        limit="lax.scan compiles the step once, whatever T; the rest is the time to trace.",
    )
