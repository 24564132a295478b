"""xpnn's torch modules under DistributedDataParallel (gloo, 2 processes on 127.0.0.1).

Oracle: the same training in one process on the whole minibatches (no batch norm), or
the mean of the two halves' gradients, each half normalized by its own statistics (batch
norm under DDP, as torch.nn.BatchNorm2d behaves there). Runs in the tests-torch session.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if os.environ.get("XPNN_BACKEND", "numpy") != "torch":
    pytest.skip("the DDP runs are in the tests-torch session", allow_module_level=True)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ddp_torch.py"
STEPS = 3


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("ddp_torch", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ddp_run(model, out):
    command = [sys.executable, str(EXAMPLE), "--model", model, "--steps", str(STEPS),
               "--batch-size", "32", "--out", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return torch.load(out / "result.pt", weights_only=True)


def _close(mine, theirs, tol=1e-12):
    assert mine.keys() == theirs.keys()
    for name in mine:
        torch.testing.assert_close(mine[name], theirs[name], rtol=tol, atol=tol, msg=name)


def test_ddp_equals_one_process_on_the_whole_minibatches(example, tmp_path):
    ddp = _ddp_run("three_layer", tmp_path)
    net = example.build("three_layer")
    single = example.train(net, example.minibatches(STEPS, 32))
    _close(ddp["first_grads"], single["first_grads"])
    torch.testing.assert_close(torch.tensor(ddp["losses"]), torch.tensor(single["losses"]),
                               rtol=1e-12, atol=0)  # fmt: skip
    _close(ddp["state_dict"], net.state_dict(), tol=1e-10)


def test_ddp_with_batch_norm_averages_the_halves_gradients(example, tmp_path):
    ddp = _ddp_run("deep", tmp_path)
    X, y = example.minibatches(1, 32)[0]
    halves = []
    for half in (slice(0, 16), slice(16, 32)):
        net = example.build("deep")
        loss = torch.nn.functional.cross_entropy(net(X[half]), y[half])
        loss.backward()
        halves.append(({n: p.grad for n, p in net.named_parameters()}, loss.item()))
    mean = {n: (halves[0][0][n] + halves[1][0][n]) / 2 for n in halves[0][0]}
    _close(ddp["first_grads"], mean)
    assert ddp["losses"][0] == pytest.approx((halves[0][1] + halves[1][1]) / 2, rel=1e-12)
    # the whole-batch statistics would give other gradients: the oracle can tell
    whole = example.build("deep")
    torch.nn.functional.cross_entropy(whole(X), y).backward()
    difference = max(float((p.grad - mean[n]).abs().max()) for n, p in whole.named_parameters())
    assert difference > 1e-6
