"""``xpnn train`` and ``xpnn download`` end to end, on tiny runs."""

from __future__ import annotations

import json

import pytest

from xpnn.cli import main


def _metrics(path):
    return json.loads(path.read_text())


def test_train_writes_metrics_and_a_summary(bk, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.json"
    monkeypatch.setenv("XPNN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    status = main(
        ["train", "--model", "fcn", "--backend", bk.name, "--epochs", "1", "--quiet",
         "--metrics-out", str(out)]
    )  # fmt: skip
    printed = capsys.readouterr()
    assert status == 0, printed.err
    metrics = _metrics(out)
    assert metrics["epochs"] == 1 and metrics["backend"] == bk.name
    assert metrics["model"] == "FullyConnectedNet" and metrics["dataset"] == "digits"
    assert len(metrics["val_acc_history"]) == 2 and metrics["val_acc"] > 0.5
    assert set(metrics) >= {"loss_history", "train_acc_history", "best_val_acc", "test_acc",
                            "seconds"}  # fmt: skip
    assert printed.out.strip().splitlines()[-1].startswith("FullyConnectedNet on digits")
    if bk.name == "jax":  # the compiled step is kept for the next run (unless JAX's cache was
        import jax  # configured before, by another test of this process)

        cache = tmp_path / "data" / "jax-compilation-cache"
        assert jax.config.jax_compilation_cache_dir is not None
        assert cache.is_dir() or jax.config.jax_compilation_cache_dir != str(cache)


def test_resume_continues_to_the_total_epochs(tmp_path, capsys):
    common = ["train", "--model", "fcn", "--quiet", "--seed", "3"]
    straight, resumed = tmp_path / "straight.json", tmp_path / "resumed.json"
    assert main([*common, "--epochs", "2", "--metrics-out", str(straight)]) == 0
    assert main([*common, "--epochs", "1", "--checkpoint-dir", str(tmp_path / "ck")]) == 0
    checkpoint = tmp_path / "ck" / "fcn_digits_epoch_001.npz"
    assert checkpoint.is_file()
    assert main([*common, "--epochs", "2", "--resume", str(checkpoint),
                 "--metrics-out", str(resumed)]) == 0  # fmt: skip
    a, b = _metrics(straight), _metrics(resumed)
    assert b["epochs"] == 2
    for key in ("loss_history", "train_acc_history", "val_acc_history", "best_val_acc",
                "test_acc"):  # fmt: skip
        assert a[key] == b[key], key


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "curves.png"
    assert main(["train", "--model", "fcn", "--epochs", "1", "--quiet", "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _joining(coordinator, process_id):
    """The arguments of a process of a 2-process JAX run."""
    return ["--backend", "jax", "--coordinator", coordinator, "--num-processes", "2",
            "--process-id", process_id]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--lr", "-1"], "--lr must be positive"),
        (["--dataset", "cifar10", "--data-dir", "{tmp}/nothing"], "data_batch_1"),
        (["--resume", "{tmp}/missing.npz"], "no checkpoint at"),
        (["--devices", "2"], "--devices needs --backend jax"),
        (
            ["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "0"],
            "--coordinator needs --backend jax",
        ),
        (["--backend", "jax", "--devices", "0"], "--devices must be a positive integer"),
        (
            ["--backend", "jax", "--coordinator", "127.0.0.1:1"],
            "--coordinator needs --num-processes, --process-id too",
        ),
        (_joining("127.0.0.1:1", "2"), "--process-id must be in 0 .. 1; got 2"),
        (_joining("localhost", "0"), "--coordinator must be HOST:PORT"),
        (_joining("127.0.0.1:99999", "0"), "(a port in 1..65535)"),
        (
            ["--backend", "jax", "--device", "cpu", "--devices", "2"],
            "--device picks the device of a one-device run; --devices makes a sharded run",
        ),
        (["--backend", "jax", "--join-timeout", "5"], "--join-timeout needs --coordinator"),
        (
            [*_joining("127.0.0.1:1", "1"), "--join-timeout", "-5"],
            "--join-timeout must be a positive number",
        ),
    ],
)
def test_user_mistakes_get_one_line_and_status_2(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["train", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xpnn train: ") and message in err
    assert "Traceback" not in err


def test_plot_without_matplotlib_says_how_to_install(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert main(["train", "--quiet", "--plot", str(tmp_path / "p.png")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_download_reports_a_failure_in_one_line(tmp_path, capsys):
    url = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # the discard port: refused at once
    assert main(["download", "cifar10", "--dir", str(tmp_path), "--url", url, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xpnn download: ") and "Traceback" not in err


def test_the_default_run_reaches_97_percent(tmp_path):
    """The README's main command: ThreeLayerConvNet on the offline digits (no timing asserted)."""
    out = tmp_path / "m.json"
    assert main(["train", "--quiet", "--metrics-out", str(out)]) == 0
    metrics = _metrics(out)
    assert metrics["model"] == "ThreeLayerConvNet" and metrics["epochs"] == 15
    assert metrics["best_val_acc"] >= 0.97 and metrics["val_acc"] >= 0.97


def test_resume_takes_its_settings_from_the_checkpoint(tmp_path, capsys):
    ck = tmp_path / "ck"
    assert main(["train", "--model", "fcn", "--quiet", "--epochs", "1", "--seed", "5",
                 "--checkpoint-dir", str(ck)]) == 0  # fmt: skip
    checkpoint = ck / "fcn_digits_epoch_001.npz"
    capsys.readouterr()
    assert main(["train", "--quiet", "--epochs", "2", "--resume", str(checkpoint),
                 "--batch-size", "20"]) == 2  # fmt: skip
    assert "--batch-size 20 differs from the checkpoint's 50" in capsys.readouterr().err
    assert main(["train", "--quiet", "--epochs", "1", "--resume", str(checkpoint)]) == 2
    assert "already at epoch 1" in capsys.readouterr().err
    # No flags but --resume and --epochs: model fcn, seed 5 and the rest come from it.
    assert main(["train", "--quiet", "--epochs", "2", "--resume", str(checkpoint)]) == 0
    assert capsys.readouterr().out.strip().startswith("FullyConnectedNet on digits")


def test_a_new_run_does_not_overwrite_another_runs_checkpoints(tmp_path, capsys):
    ck = tmp_path / "ck"
    argv = ["train", "--model", "fcn", "--quiet", "--epochs", "1", "--checkpoint-dir", str(ck)]
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in ck.iterdir()}
    assert main([*argv, "--seed", "1"]) == 2
    assert "already holds checkpoints of another run" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in ck.iterdir()} == before


def test_outputs_are_checked_before_training(tmp_path, capsys, monkeypatch):
    import xpnn.solver

    def never(self):
        raise AssertionError("trained although an output cannot be written")

    monkeypatch.setattr(xpnn.solver.Solver, "train", never)
    (tmp_path / "afile").write_text("x")
    for argv, message in (
        (["--metrics-out", str(tmp_path)], "is a directory"),
        (["--checkpoint-dir", str(tmp_path / "afile")], "is a file, not a directory"),
        (["--metrics-out", str(tmp_path / "afile" / "m.json")], "--metrics-out: cannot create"),
    ):
        assert main(["train", "--quiet", *argv]) == 2
        assert message in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_status_130(capsys, monkeypatch):
    import xpnn.solver

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(xpnn.solver.Solver, "train", interrupted)
    assert main(["train", "--quiet"]) == 130
    assert capsys.readouterr().err.strip() == (
        "xpnn train: interrupted at epoch 0 of 15; no checkpoint was written "
        "(--checkpoint-dir DIR keeps one per epoch)"
    )


def test_ctrl_c_names_the_last_checkpoint_and_the_command_that_resumes(tmp_path, capsys,
                                                                       monkeypatch):  # fmt: skip
    import shlex

    import xpnn.solver

    save = xpnn.solver.Solver._save_checkpoint

    def save_then_interrupt_at_epoch_2(self):
        save(self)
        if self.epoch == 2:
            raise KeyboardInterrupt

    ck = tmp_path / "ck"
    common = ["--model", "fcn", "--epochs", "3", "--quiet", "--checkpoint-dir", str(ck)]
    with monkeypatch.context() as patch:
        patch.setattr(xpnn.solver.Solver, "_save_checkpoint", save_then_interrupt_at_epoch_2)
        assert main(["train", *common]) == 130
    err = capsys.readouterr().err.strip()
    last = ck / "fcn_digits_epoch_002.npz"
    prefix = f"xpnn train: interrupted at epoch 2 of 3; the last checkpoint is {last}; "
    assert err.startswith(prefix + "continue with: xpnn train --resume "), err
    command = shlex.split(err.removeprefix(prefix + "continue with: "))
    assert command == ["xpnn", "train", "--resume", str(last), "--epochs", "3",
                       "--checkpoint-dir", str(ck)]  # fmt: skip
    assert main([*command[1:], "--metrics-out", str(tmp_path / "m.json")]) == 0
    assert _metrics(tmp_path / "m.json")["epochs"] == 3
    assert sorted(p.name for p in ck.iterdir()) == [
        f"fcn_digits_epoch_00{k}.npz" for k in range(4)
    ]


def test_the_summary_tells_the_final_from_the_best_validation_accuracy(tmp_path, capsys,
                                                                        monkeypatch):  # fmt: skip
    import xpnn.solver

    scripted = iter([0.5, 0.9, 0.8])  # checks at iteration 0, epoch 1, epoch 2: best at 1
    check, train = xpnn.solver.Solver.check_accuracy, xpnn.solver.Solver.train
    training = []

    def scripted_check(self, X, y, num_samples=None):
        if training and X is self.X_val:
            return next(scripted)
        return check(self, X, y, num_samples)

    def scripted_train(self):
        training.append(True)
        train(self)
        training.clear()

    monkeypatch.setattr(xpnn.solver.Solver, "check_accuracy", scripted_check)
    monkeypatch.setattr(xpnn.solver.Solver, "train", scripted_train)
    out = tmp_path / "m.json"
    argv = ["train", "--model", "fcn", "--epochs", "2", "--quiet", "--metrics-out", str(out)]
    assert main(argv) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    metrics = _metrics(out)
    assert metrics["val_acc_history"] == [0.5, 0.9, 0.8]
    assert metrics["final_val_acc"] == 0.8 and metrics["best_val_acc"] == 0.9
    assert metrics["best_epoch"] == 1
    assert "final val acc 0.800, best val acc 0.900 (epoch 1, restored), test acc " in summary


def test_a_resumed_run_counts_its_own_epochs_and_says_where_it_resumes(tmp_path, capsys):
    ck = tmp_path / "ck"
    common = ["train", "--model", "fcn", "--checkpoint-dir", str(ck)]
    assert main([*common, "--epochs", "2", "--quiet"]) == 0
    capsys.readouterr()
    checkpoint = ck / "fcn_digits_epoch_002.npz"
    assert main([*common, "--epochs", "5", "--resume", str(checkpoint)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"resuming from epoch 2 of 5 ({checkpoint})"
    assert " (numpy): epochs 3-5 of 5 (resumed) in " in lines[-1]


# --------------------------------------------------------------------------- --framework torch


def test_framework_torch_trains_the_notebook_convnet(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "m.json"
    argv = ["train", "--framework", "torch", "--epochs", "1", "--batch-size", "100", "--quiet",
            "--metrics-out", str(out)]  # fmt: skip
    assert main(argv) == 0
    metrics = _metrics(out)
    assert metrics["framework"] == "torch" and metrics["backend"] == "torch"
    assert metrics["model"] == "ThreeLayerConvNet" and metrics["epochs"] == 1
    assert len(metrics["val_acc_history"]) == 2 and metrics["val_acc"] > 0.5
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("ThreeLayerConvNet on digits (torch framework, cpu): 1 epoch in")


def test_framework_torch_resumes_exactly(tmp_path):
    pytest.importorskip("torch")
    common = ["train", "--framework", "torch", "--quiet", "--seed", "2", "--batch-size", "400"]
    straight, resumed = tmp_path / "straight.json", tmp_path / "resumed.json"
    assert main([*common, "--epochs", "2", "--metrics-out", str(straight)]) == 0
    assert main([*common, "--epochs", "1", "--checkpoint-dir", str(tmp_path / "ck")]) == 0
    checkpoint = tmp_path / "ck" / "cnn_digits_epoch_001.pt"
    # no --framework, --seed or --batch-size: the .pt checkpoint gives them
    assert main(["train", "--quiet", "--epochs", "2", "--resume", str(checkpoint),
                 "--metrics-out", str(resumed)]) == 0  # fmt: skip
    a, b = _metrics(straight), _metrics(resumed)
    assert b["epochs"] == 2 and b["framework"] == "torch"
    for key in ("loss_history", "train_acc_history", "val_acc_history", "best_val_acc",
                "test_acc"):  # fmt: skip
        assert a[key] == b[key], key


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "jax"], "--framework torch trains on torch tensors"),
        (["--model", "fcn"], "--model fcn is available with --framework xpnn"),
        (
            ["--device", "tpu:x"],
            "--device tpu:x: torch has no such device here (not a torch device name); it has cpu",
        ),
        (["--resume", "{tmp}/run.npz"], "--framework torch differs from the checkpoint's xpnn"),
        (["--resume", "{tmp}/run.pt"], "no checkpoint at"),
    ],
)
def test_framework_torch_mistakes_get_one_line_and_status_2(tmp_path, capsys, argv, message):
    pytest.importorskip("torch")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["train", "--framework", "torch", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xpnn train: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_framework_torch_without_torch_says_how_to_install(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name.split(".")[0] == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    assert main(["train", "--quiet", "--framework", "torch"]) == 2
    err = capsys.readouterr().err
    assert "--framework torch needs the 'torch' package" in err and "pip install" in err


def test_the_numpy_path_never_imports_torch():
    import subprocess
    import sys

    code = (
        "import sys; from xpnn.cli import main; main(['train', '--model', 'fcn', '--epochs', "
        "'1', '--quiet']); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_devices_must_split_the_batch(capsys):
    jax = pytest.importorskip("jax")
    devices = min(len(jax.devices()), 4)
    if devices < 2:
        pytest.skip("needs several JAX devices (tests-jax forces 4 CPU devices)")
    assert main(["train", "--backend", "jax", "--devices", str(devices), "--batch-size",
                 str(2 * devices + 1), "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    odd = 2 * devices + 1
    assert err == (f"xpnn train: --batch-size {odd} does not split over {devices} devices; "
                   f"use a multiple of {devices}, e.g. --batch-size {2 * devices}")  # fmt: skip


def test_a_jax_device_is_named_like_the_others(capsys):
    jax = pytest.importorskip("jax")
    from xpnn.cli.devices import DeviceError, resolve

    cpus = jax.devices("cpu")
    assert resolve("jax", "cpu") == resolve("jax", "cpu:0") == cpus[0]
    if len(cpus) > 1:
        assert resolve("jax", "cpu:1") == resolve("jax", "cpu:01") == cpus[1]
    assert resolve("jax", "0") == jax.devices()[0]
    for bad in ("cpu:", "cpu:-1", f"cpu:{len(cpus)}", "x:y", "cpu:1:2", "²"):
        with pytest.raises(DeviceError, match=f"--device {bad}: jax has no such device here"):
            resolve("jax", bad)
    missing = f"cpu:{len(cpus)}"
    assert main(["train", "--backend", "jax", "--device", missing, "--epochs", "1",
                 "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"xpnn train: --device {missing}: jax has no such device here; it has ")
    assert "cpu:0" in err and err.endswith("or an index into jax.devices()")


def test_a_checkpoint_resumes_only_on_device_counts_that_split_its_batch(tmp_path, capsys):
    jax = pytest.importorskip("jax")
    if len(jax.devices()) < 4:
        pytest.skip("needs 4 JAX devices (tests-jax forces 4 CPU devices)")
    ckpt = tmp_path / "ckpt"
    assert main(["train", "--backend", "jax", "--model", "fcn", "--epochs", "1", "--quiet",
                 "--checkpoint-dir", str(ckpt)]) == 0  # fmt: skip
    resume = ["train", "--backend", "jax", "--epochs", "2", "--quiet", "--resume",
              str(ckpt / "fcn_digits_epoch_001.npz")]  # fmt: skip
    capsys.readouterr()
    assert main([*resume, "--devices", "4"]) == 2
    assert capsys.readouterr().err.strip() == (
        "xpnn train: the checkpoint's batch size 50 does not split over 4 devices; give "
        "--devices one of 1, 2"
    )
    assert main([*resume, "--devices", "2"]) == 0
    assert "(jax, 2 devices): epoch 2 of 2 (resumed) in " in capsys.readouterr().out


# --------------------------------------------------------------------------- --device


def _device_cases():
    """(backend, --device, what the one line must say) for mistakes every machine shows."""
    cases = [
        ("numpy", "cuda:0", "--device cuda:0: numpy has no such device here (NumPy runs on "
         "the CPU only; for a GPU use --backend torch, jax or cupy); it has cpu"),
        ("torch", "banana", "--device banana: torch has no such device here (not a torch "
         "device name); it has cpu"),
        ("array_api_strict", "device9", "--device device9: array_api_strict has no such "
         "device here; it has CPU_DEVICE, device1, device2"),
    ]  # fmt: skip
    try:
        import torch

        count = torch.cuda.device_count()
    except ImportError:
        count = 0
    no_gpu = "torch.cuda.is_available() is False" if count == 0 else None
    cases.append(("torch", f"cuda:{count}", no_gpu or "it has cpu, cuda:0"))
    return cases


@pytest.mark.parametrize(("backend", "device", "message"), _device_cases())
def test_every_device_mistake_is_one_line_naming_the_devices(capsys, backend, device, message):
    if backend != "numpy":
        pytest.importorskip(backend)
    assert main(["train", "--backend", backend, "--device", device, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("xpnn train: ") and message in err


def test_a_device_that_exists_trains(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "m.json"
    argv = ["train", "--model", "fcn", "--backend", "torch", "--device", "cpu", "--epochs", "1",
            "--quiet", "--metrics-out", str(out)]  # fmt: skip
    assert main(argv) == 0 and _metrics(out)["backend"] == "torch"


# --------------------------------------------------------------------------- outputs, help


def test_a_plot_suffix_must_name_a_format_before_training(tmp_path, capsys, monkeypatch):
    import xpnn.solver

    monkeypatch.setattr(xpnn.solver.Solver, "train", lambda self: pytest.fail("it trained"))
    assert main(["train", "--quiet", "--plot", str(tmp_path / "p.txt")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"xpnn train: --plot {tmp_path / 'p.txt'}: the suffix picks the format; give a file "
        "name ending in .png, .svg, .pdf"
    )


@pytest.mark.parametrize(("suffix", "magic"), [(".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_plot_writes_the_format_of_its_suffix(tmp_path, suffix, magic):
    pytest.importorskip("matplotlib")
    plot = tmp_path / f"curves{suffix}"
    assert main(["train", "--model", "fcn", "--epochs", "1", "--quiet", "--plot", str(plot)]) == 0
    assert plot.read_bytes().startswith(magic)


def test_an_unwritable_metrics_file_is_refused_before_training(capsys, monkeypatch):
    import xpnn.solver

    monkeypatch.setattr(xpnn.solver.Solver, "train", lambda self: pytest.fail("it trained"))
    # /proc refuses new files even to root, for whom os.access says every place is writable
    assert main(["train", "--quiet", "--metrics-out", "/proc/xpnn-metrics.json"]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .startswith("xpnn train: --metrics-out: cannot write in /proc: ")
    )


def test_train_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--backend {numpy,jax,torch,cupy,array_api_strict}" in text
    assert "(default: numpy)" in text
    for default in ("default: cnn", "default: digits", "default: adam", "default: all;"):
        assert default in text


# --------------------------------------------------------------------------- data, threads


def test_num_train_takes_the_first_training_images(tmp_path, capsys):
    out = tmp_path / "m.json"
    argv = ["train", "--model", "fcn", "--epochs", "2", "--num-train", "100", "--quiet",
            "--metrics-out", str(out), "--checkpoint-dir", str(tmp_path / "ck")]  # fmt: skip
    assert main(argv) == 0
    metrics = _metrics(out)
    assert metrics["num_train"] == 100
    assert len(metrics["loss_history"]) == 2 * (100 // 50)  # 2 epochs of 2 batches of 50
    # a resumed run keeps the checkpoint's training set, and refuses another one
    checkpoint = str(tmp_path / "ck" / "fcn_digits_epoch_001.npz")
    assert main(["train", "--resume", checkpoint, "--epochs", "2", "--num-train", "50",
                 "--quiet"]) == 2  # fmt: skip
    assert "--num-train 50 differs from the checkpoint's 100" in capsys.readouterr().err
    assert main(["train", "--num-train", "5000", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == (
        "xpnn train: --num-train must be in 1 .. 1397 (the digits training images); got 5000"
    )


@pytest.mark.parametrize("threads", ["0", "two", "-1"])
def test_threads_must_be_a_count_or_all(capsys, threads):
    assert main(["train", "--quiet", "--threads", threads]) == 2
    assert capsys.readouterr().err.strip() == (
        f"xpnn train: --threads must be a positive integer or 'all'; got {threads!r}"
    )


def test_threads_limit_the_blas_during_training_only(tmp_path, monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import xpnn.solver

    seen = []
    train = xpnn.solver.Solver.train

    def spy(self):
        seen.append(max(p["num_threads"] for p in threadpoolctl.threadpool_info()))
        return train(self)

    before = threadpoolctl.threadpool_info()
    monkeypatch.setattr(xpnn.solver.Solver, "train", spy)
    out = tmp_path / "m.json"
    for flag in ([], ["--threads", "all"]):
        argv = ["train", "--model", "fcn", "--epochs", "1", "--quiet", "--metrics-out", str(out)]
        assert main([*argv, *flag]) == 0
    assert seen[0] == 1 and _metrics(out)["threads"] is None
    assert seen[1] == max(p["num_threads"] for p in before)
    assert threadpoolctl.threadpool_info() == before


# --------------------------------------------------------------------------- captioning


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_train_captions_the_digits(model, bk, tmp_path, capsys):
    """The offline captioning task: the digits captioned in words, learned in seconds; the
    run prints sampled captions next to the true ones."""
    out = tmp_path / "m.json"
    status = main(["train", "--model", model, "--backend", bk.name, "--epochs", "4",
                   "--metrics-out", str(out)])  # fmt: skip
    printed = capsys.readouterr()
    assert status == 0, printed.err
    metrics = _metrics(out)
    assert metrics["model"] == f"CaptioningRNN ({model})" and metrics["epochs"] == 4
    assert metrics["loss_history"][-1] < 0.1 * metrics["loss_history"][0]
    assert metrics["val_captions_exact"] > 0.8
    lines = printed.out.strip().splitlines()
    assert lines[0].startswith("(Iteration 1 / 124) loss: ")
    samples = [line for line in lines if line.startswith("val digits:")]
    assert len(samples) == 5 and all("sampled '" in s and "; true '" in s for s in samples)
    assert sum(s.split("sampled ")[1].split(";")[0] == s.split("true ")[1] for s in samples) >= 3
    assert lines[-1].startswith(f"CaptioningRNN ({model}) on digits ({bk.name}): 4 epochs")


def test_a_captioning_run_resumes_exactly(tmp_path):
    common = ["train", "--model", "lstm", "--quiet", "--seed", "5"]
    straight, resumed = tmp_path / "straight.json", tmp_path / "resumed.json"
    assert main([*common, "--epochs", "2", "--metrics-out", str(straight)]) == 0
    assert main([*common, "--epochs", "1", "--checkpoint-dir", str(tmp_path / "ck")]) == 0
    checkpoint = tmp_path / "ck" / "lstm_digits_epoch_001.npz"
    assert main([*common, "--epochs", "2", "--resume", str(checkpoint),
                 "--metrics-out", str(resumed)]) == 0  # fmt: skip
    a, b = _metrics(straight), _metrics(resumed)
    assert a["loss_history"] == b["loss_history"] and b["first_epoch"] == 1
    assert a["val_captions_exact"] == b["val_captions_exact"]


def test_train_on_coco_files(tmp_path, capsys):
    pytest.importorskip("h5py")
    from test_coco import write_coco

    write_coco(tmp_path / "coco_captioning")
    status = main(["train", "--model", "rnn", "--dataset", "coco", "--data-dir",
                   str(tmp_path / "coco_captioning"), "--batch-size", "4", "--quiet"])  # fmt: skip
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "CaptioningRNN (rnn) on coco (numpy): 1 epoch in" in printed.out
    # one caption sampled per validation image, scored against any of its true captions
    assert "(of 3 validation images)" in printed.out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model", "lstm", "--dataset", "cifar10"], "--dataset cifar10 is for --model cnn"),
        (["--model", "cnn", "--dataset", "coco"], "--dataset coco is for --model rnn and lstm"),
        (["--model", "rnn", "--framework", "torch"], "trains with xpnn's CaptioningSolver"),
        (["--model", "rnn", "--plot", "x.png"], "--plot is for --model cnn and fcn"),
        (["--model", "lstm", "--backend", "jax", "--devices", "2"], "--devices is for --model"),
        (["--model", "rnn", "--num-train", "0"], "--num-train must be in 1 .. 1597"),
    ],
)
def test_captioning_refuses_what_it_cannot_do(arguments, message, capsys):
    assert main(["train", *arguments, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_coco_names_the_download(tmp_path, capsys, monkeypatch):
    pytest.importorskip("h5py")
    monkeypatch.setenv("XPNN_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "lstm", "--dataset", "coco", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "xpnn download coco" in err and "--data-dir" in err and "Traceback" not in err
