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


def _free_address():
    """HOST:PORT on 127.0.0.1 where nothing listens now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def _env(devices=None):
    """The environment of a JAX process on the CPU, with ``devices`` forced devices."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    if devices is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _train(*args, devices):
    env = _env(devices)
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
           str(tmp_path / "one.json"), "--checkpoint-dir", str(tmp_path / "one"),
           devices=4)  # fmt: skip
    both, one = (json.loads(p.read_text()) for p in (two / "metrics.json", tmp_path / "one.json"))
    # float32 models: the cross-process all-reduce sums in another order than the in-process one
    np.testing.assert_allclose(both["loss_history"], one["loss_history"], rtol=1e-5)
    assert len(both["loss_history"]) == len(one["loss_history"]) == 1397 // 48  # digits train
    for key in ("train_acc_history", "val_acc_history", "val_acc", "test_acc"):
        assert both[key] == one[key], key

    # both checkpoints (the 2-process one written by process 0 alone) continue in one
    # process on another number of devices, and the continued runs agree
    continued = []
    for run in (two / "checkpoints", tmp_path / "one"):
        out = _train("--devices", "2", "--epochs", "2", "--resume",
                     str(run / "cnn_digits_epoch_001.npz"), "--metrics-out",
                     str(run / "continued.json"), devices=2)  # fmt: skip
        assert "2 devices" in out
        continued.append(json.loads((run / "continued.json").read_text()))
    for metrics, first in zip(continued, (both, one), strict=True):
        assert metrics["epochs"] == 2 and metrics["loss_history"][:29] == first["loss_history"]
    np.testing.assert_allclose(continued[0]["loss_history"][29:],
                               continued[1]["loss_history"][29:], rtol=1e-5)  # fmt: skip
    assert len(continued[0]["loss_history"]) == 58


def test_a_malformed_coordinator_address_fails_in_one_line():
    env = _env()
    command = [sys.executable, "-m", "xpnn", "train", "--backend", "jax", "--coordinator",
               "127.0.0.1:not-a-port", "--num-processes", "2", "--process-id", "0"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "xpnn train: --coordinator must be HOST:PORT (a port in 1..65535), e.g. "
        "127.0.0.1:12355; got '127.0.0.1:not-a-port'"
    ]


def test_a_process_that_cannot_reach_the_coordinator_fails_in_one_line():
    address = _free_address()  # nothing listens there
    command = [sys.executable, "-m", "xpnn", "train", "--backend", "jax", "--coordinator",
               address, "--num-processes", "2", "--process-id", "1",
               "--join-timeout", "1"]  # fmt: skip
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"xpnn train: --coordinator: nothing answers at {address} after 1 s"
    )


def test_devices_of_one_process_only_are_refused_by_every_process(tmp_path):
    """--devices 2 of 2 processes x 2 devices would be process 0's two: both processes
    must refuse (one refusing alone would leave the other waiting in a collective)."""
    example = [sys.executable, str(ROOT / "examples" / "multiprocess_jax.py"), "--epochs", "1",
               "--out", str(tmp_path), "--timeout", "120", "--devices", "2"]  # fmt: skip
    done = subprocess.run(example, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2, done.stdout + done.stderr
    for index in range(2):
        log = (tmp_path / f"process-{index}.log").read_text()
        assert (
            "devices: the batch axis must hold the same number of devices of each of the 2" in log
        )


REPLICATE = """
import sys
import jax
import numpy as np
jax.distributed.initialize(sys.argv[1], 2, int(sys.argv[2]), initialization_timeout=60)
from xpnn._data_parallel import DataParallel
parallel = DataParallel(4)
mine = {"w": np.full(3, 10.0 + jax.process_index())}  # each process a different value
placed = parallel.replicate(mine)
print("value", parallel.to_host(placed["w"]).tolist(), "part", parallel.first_part,
      "rows", parallel.sample(np.random.RandomState(0), 8, 4).tolist(), flush=True)
"""


def test_replicated_values_come_from_process_0_and_the_draw_is_shared(tmp_path):
    address, env = _free_address(), _env(devices=2)
    processes = [
        subprocess.Popen([sys.executable, "-c", REPLICATE, address, str(i)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]  # fmt: skip
    outputs = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=TIMEOUT)
            assert process.returncode == 0, err[-2000:]
            outputs.append(next(line for line in out.splitlines() if line.startswith("value")))
    finally:
        for process in processes:
            process.kill()
    # one draw of 4 rows, one per device part of 4 rows each: process 0 holds parts 0-1
    draws = np.random.RandomState(0).choice(4, (4, 1)).reshape(-1).tolist()
    assert outputs == [
        f"value [10.0, 10.0, 10.0] part 0 rows {[draws[0], 4 + draws[1]]}",
        f"value [10.0, 10.0, 10.0] part 2 rows {[draws[2], 4 + draws[3]]}",
    ]


def _launch(tmp_path, per_process_args, devices=2, xpnn=("-m", "xpnn")):
    """``xpnn train --backend jax`` in 2 processes on 127.0.0.1; (Popen, stderr path) each."""
    address, env = _free_address(), _env(devices)
    launched = []
    for index, extra in enumerate(per_process_args):
        err = tmp_path / f"err-{index}.log"
        command = [sys.executable, *xpnn, "train", "--backend", "jax", "--quiet",
                   "--coordinator", address, "--num-processes", "2", "--process-id",
                   str(index), "--join-timeout", "60", *extra]  # fmt: skip
        with err.open("w") as log:
            launched.append((subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                              stderr=log), err))  # fmt: skip
    return launched


def _end(launched):
    for process, _ in launched:
        if process.poll() is None:
            process.kill()
        process.wait()


def _logs(launched):
    return "\n".join(f"--- process {i}:\n{err.read_text()[-1500:]}"
                     for i, (_, err) in enumerate(launched))  # fmt: skip


def test_processes_started_with_different_settings_all_refuse(tmp_path):
    launched = _launch(tmp_path, [["--epochs", "1"], ["--epochs", "2"]])
    try:
        for process, err in launched:
            assert process.wait(timeout=TIMEOUT) == 2, _logs(launched)
            assert err.read_text().strip().splitlines()[-1] == (
                "xpnn train: the processes were started with different settings (model, "
                "dataset, seed, update rule, batch size, learning rate, epochs, devices or "
                "resume checkpoint); give every process the same arguments except --process-id"
            )
    finally:
        _end(launched)


# xpnn train, with one process slow to reach the device check (under load, a process can
# be seconds behind the other)
SLOW_PEER = """
import sys, time
import xpnn.cli.train as train
check = train._check_devices_of_every_process
def slow(args):
    if args.process_id == int(sys.argv[1]):
        time.sleep(3)
    return check(args)
train._check_devices_of_every_process = slow
from xpnn.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("slow", [0, 1])
def test_a_refusal_of_every_process_waits_for_a_slow_peer(tmp_path, slow):
    """The coordinator's process must not exit before the other one has refused too:
    exiting at once would cut it off in the middle of its own (and gloo's) work."""
    args = ["--devices", "2", "--batch-size", "48"]
    launched = _launch(tmp_path, [args, args], xpnn=("-c", SLOW_PEER, str(slow)))
    try:
        for process, err in launched:
            assert process.wait(timeout=TIMEOUT) == 2, _logs(launched)
            last = err.read_text().strip().splitlines()[-1]
            assert last.startswith(
                "xpnn train: devices: the batch axis must hold the same number of devices of "
                "each of the 2 process(es)"
            ), _logs(launched)
    finally:
        _end(launched)


def _training(tmp_path, launched, ckpt):
    """Wait until the run has written its first checkpoint (it trains)."""
    import time

    deadline = time.monotonic() + TIMEOUT
    while not list(ckpt.glob("*_epoch_001.npz")):
        running = all(process.poll() is None for process, _ in launched)
        assert running and time.monotonic() < deadline, _logs(launched)
        time.sleep(0.2)


@pytest.mark.parametrize("stuck_peer", [False, True], ids=["peer-running", "peer-stuck"])
def test_sigterm_stops_a_process_of_a_run_at_once_with_one_line(tmp_path, stuck_peer):
    """Also while it waits in a collective for a peer that does not come (a Python signal
    handler alone would run only when the collective returns)."""
    import signal
    import time

    ckpt = tmp_path / "ckpt"
    args = ["--epochs", "200", "--batch-size", "48", "--checkpoint-dir", str(ckpt)]
    launched = _launch(tmp_path, [args, args])
    try:
        _training(tmp_path, launched, ckpt)
        (first, _), (second, second_err) = launched
        target, target_err, index = (first, launched[0][1], 0) if stuck_peer else (
            second, second_err, 1)  # fmt: skip
        if stuck_peer:
            second.send_signal(signal.SIGSTOP)  # process 0 soon waits for it
            time.sleep(1.0)
        target.send_signal(signal.SIGTERM)
        assert target.wait(timeout=10) == 128 + signal.SIGTERM, _logs(launched)
        last = target_err.read_text().strip().splitlines()[-1]
        assert last.startswith(f"xpnn train: terminated (process {index})"), last
        if index == 0:  # process 0 writes the checkpoints, and says how to resume
            assert " the last checkpoint is " in last and last.endswith(
                " added to its arguments"
            ), last
        else:
            assert last == f"xpnn train: terminated (process {index})"
    finally:
        _end(launched)
