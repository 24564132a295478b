"""Data parallelism across processes: ``xpnn train --coordinator ...`` with jax.distributed.

The oracle is the same run in one process holding all 4 devices. Bounded in time, on
127.0.0.1 only: ``examples/multiprocess_jax.py`` starts 2 processes of 2 forced CPU
devices each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240


def _train(*args, devices):
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")  # fmt: skip
    command = [sys.executable, "-m", "xpnn", "train", "--backend", "jax", "--quiet", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_two_processes_train_as_one_process_with_four_devices(tmp_path):
    two = tmp_path / "two"
    example = [sys.executable, str(ROOT / "examples" / "multiprocess_jax.py"), "--epochs", "1",
               "--out", str(two), "--timeout", str(TIMEOUT)]  # fmt: skip
    done = subprocess.run(example, capture_output=True, text=True, timeout=TIMEOUT + 30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 devices in 2 processes" in done.stdout

    _train("--devices", "4", "--batch-size", "48", "--epochs", "1", "--metrics-out",
           str(tmp_path / "one.json"), devices=4)  # fmt: skip
    both, one = (json.loads(p.read_text()) for p in (two / "metrics.json", tmp_path / "one.json"))
    # float32 models: the cross-process all-reduce sums in another order than the in-process one
    np.testing.assert_allclose(both["loss_history"], one["loss_history"], rtol=1e-5)
    assert len(both["loss_history"]) == len(one["loss_history"]) == 1397 // 48  # digits train
    for key in ("train_acc_history", "val_acc_history", "val_acc", "test_acc"):
        assert both[key] == one[key], key

    # the multi-process checkpoint resumes in one process on another number of devices
    checkpoint = two / "checkpoints" / "cnn_digits_epoch_1.npz"
    out = _train("--devices", "2", "--epochs", "2", "--resume", str(checkpoint), "--metrics-out",
                 str(tmp_path / "resumed.json"), devices=2)  # fmt: skip
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert resumed["loss_history"][:29] == both["loss_history"] and resumed["epochs"] == 2
    assert "2 devices" in out


def test_a_process_that_cannot_reach_the_coordinator_fails_in_one_line():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    command = [sys.executable, "-m", "xpnn", "train", "--backend", "jax", "--coordinator",
               "127.0.0.1:not-a-port", "--num-processes", "2", "--process-id", "0"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "xpnn train: --coordinator must be HOST:PORT, e.g. 127.0.0.1:12355; got "
        "'127.0.0.1:not-a-port'"
    ]
