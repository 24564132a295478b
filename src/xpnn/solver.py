"""The CS231n ``Solver``: minibatch training with progress, checkpoints and exact resume.

The assignment's training loop, with its keyword arguments and behaviour (minibatches
sampled with replacement, accuracy at the first and last iteration and at each epoch's
end, learning-rate decay per epoch, the best parameters restored at the end), plus:

* a progress bar (tqdm) when ``verbose`` and standard error is a terminal; the
  assignment's printed lines otherwise;
* checkpoints as ``.npz`` files without pickle, written atomically (temporary file,
  fsync, rename), holding everything a resumed run needs: parameters, best parameters,
  batch-norm running averages, optimizer state, histories, epoch, iteration and the
  NumPy random state;
* :meth:`Solver.load_checkpoint`, after which :meth:`Solver.train` continues so that
  2 epochs, a resume, and 1 more epoch give exactly the history of 3 epochs straight;
* a NaN or infinite loss stops training with :class:`TrainingDiverged`, naming the
  iteration; the last checkpoint written before it is left as it was.

Data and model may live on different backends: each minibatch is moved to the model's
backend and device with :func:`xpnn.to_backend`, an explicit per-batch transfer (the
usual data pipeline: data sets stay in host memory, the model on the accelerator).

On JAX, a model with a functional form (``functional_loss``, as the models of
:mod:`xpnn.classifiers` have) trains with a compiled step: forward, backward and update
in one ``jax.jit`` function, compiled once per minibatch shape, with batch-norm running
averages, optimizer state and dropout keys passed in and out as arrays (see
``xpnn._compiled_step``). The other backends, and models without a functional form,
take the eager step, and so does a subclass that overrides ``loss`` without its own
``functional_loss``. Without dropout both give the same parameters (to rounding, tested to
1e-10 in float64); with dropout the compiled step draws its masks from a key folded in
with the iteration, the eager one as ``loss`` does. Checkpoints of either resume in the
other.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import optim
from ._backend import array_namespace, backend_name, device_of, to_backend, to_numpy
from ._config import label_range_check
from ._io import write_atomically
from ._loop import TrainingLoop, checkpoint_path
from ._params import count

__all__ = ["UPDATE_RULES", "Solver", "TrainingDiverged"]

#: The update rules of :mod:`xpnn.optim`, by name.
UPDATE_RULES: tuple[str, ...] = tuple(optim.DEFAULTS)
_FORMAT = "xpnn-solver-checkpoint-1"


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite."""


class Solver(TrainingLoop):
    """Train a classification model with minibatch gradient descent.

    Parameters
    ----------
    model : object
        Has ``params`` (a dict of arrays) and ``loss(X, y=None)``, which returns scores
        (N, C) for ``y=None`` and ``(loss, grads)`` otherwise, with ``grads`` keyed like
        ``params``. Batch-norm running averages in ``model.bn_params`` (a list of dicts),
        if present, are checkpointed too.
    data : dict
        ``X_train``, ``y_train``, ``X_val``, ``y_val`` (any backend; NCHW or (N, D)).
    update_rule : {'sgd', 'sgd_momentum', 'rmsprop', 'adam'}
        A function of :mod:`xpnn.optim`.
    optim_config : dict
        Hyperparameters for the update rule (``learning_rate``, ...); each parameter gets
        its own copy, which also holds that parameter's optimizer state.
    lr_decay : float
        ``learning_rate`` is multiplied by it after each epoch.
    batch_size : int
    num_epochs : int
        Total epochs; a resumed run continues up to it.
    num_train_samples : int or None
        Training rows sampled for the training accuracy (None: all).
    num_val_samples : int or None
        Validation rows sampled for the validation accuracy (None: all).
    checkpoint_name : str or None
        Path prefix of the checkpoints: ``{checkpoint_name}_epoch_{epoch:03d}.npz``
        (``run_epoch_007.npz``).
    print_every : int
        Iterations between printed losses (without a progress bar).
    verbose : bool
    seed : int, optional
        Seed of the Solver's own NumPy generator for minibatches and accuracy samples.
        None (the assignment's behaviour) uses NumPy's global random state.
    progress : bool, optional
        Show a progress bar; default: when ``verbose`` and standard error is a terminal.
    jit : bool, optional
        Train with one compiled ``jax.jit`` step (forward, backward, update). Default:
        when the parameters are JAX arrays and the model has ``functional_loss`` (and its
        ``loss`` is not overridden by a subclass without one). False
        takes the eager step on JAX too. Dropout masks then come from a JAX key made
        from ``seed`` (without a seed, from a number drawn once from NumPy's global RNG),
        folded in with the iteration number: a new mask every step, reproducible and
        restored exactly on resume.
    devices : int, sequence of jax.Device, or jax.sharding.Mesh, optional
        Data parallelism for the compiled JAX step: each minibatch is split over these
        devices (a mesh's ``'batch'`` axis; an int N takes the first N of
        ``jax.devices()``, every process's after ``jax.distributed.initialize``), and
        parameters, model state and optimizer state are replicated on them. XLA sums the
        gradients, and batch norm's statistics are those of the whole global batch, so
        a step equals the one-device step on the same batch. ``batch_size`` must divide
        by the number of devices. The training rows are split into one equal part per
        device and each step draws ``batch_size / devices`` rows from every part (see
        ``xpnn._data_parallel``). In a multi-process run, ``data`` is this process's
        shard, ``seed`` is required, and the first step replicates process 0's
        parameters and state to every process. Default: one device, no sharding.

    Raises
    ------
    ValueError
        An unknown keyword argument or update rule, or data missing a key.
    """

    def __init__(self, model: Any, data: Mapping[str, Any], **kwargs: Any):
        self.model = model
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise ValueError(f"data must hold X_train, y_train, X_val, y_val; missing {missing}")
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]

        self.num_train_samples = kwargs.pop("num_train_samples", 1000)
        self.num_val_samples = kwargs.pop("num_val_samples", None)
        jit = kwargs.pop("jit", None)
        devices = kwargs.pop("devices", None)
        self._loop_options(kwargs)
        self.jit = self._jit_setting(jit)
        self.parallel = None if devices is None else self._data_parallel(devices)
        self._compiled: Any = None
        self._reset()

    def _loop_options(self, kwargs: dict[str, Any]) -> None:
        """Take the training loop's keyword arguments (update rule and its settings, batch
        size, epochs, checkpoints, output, seed) out of ``kwargs``; any left is an error."""
        self.update_rule = kwargs.pop("update_rule", "sgd")
        self.optim_config = dict(kwargs.pop("optim_config", {}))
        self.lr_decay = kwargs.pop("lr_decay", 1.0)
        self.batch_size = kwargs.pop("batch_size", 100)
        self.num_epochs = kwargs.pop("num_epochs", 10)
        self.checkpoint_name = kwargs.pop("checkpoint_name", None)
        self.print_every = kwargs.pop("print_every", 10)
        self.verbose = kwargs.pop("verbose", True)
        self.seed = kwargs.pop("seed", None)
        self.progress = kwargs.pop("progress", None)
        self.run_info = dict(kwargs.pop("run_info", {}))
        if kwargs:
            raise ValueError(f"Unrecognized arguments {', '.join(sorted(kwargs))}")
        if self.update_rule not in UPDATE_RULES:
            raise ValueError(
                f'Invalid update_rule "{self.update_rule}"; expected one of {UPDATE_RULES}'
            )
        self.update = getattr(optim, self.update_rule)
        for name in ("batch_size", "num_epochs", "print_every"):
            setattr(self, name, count(name, getattr(self, name), minimum=1))
        self.rng = np.random if self.seed is None else np.random.RandomState(self.seed)

    # ------------------------------------------------------------------ state

    def _reset(self) -> None:
        self.epoch = 0
        self.iteration = 0
        self.best_val_acc = 0.0
        self.best_epoch: int | None = None
        self.best_params: dict[str, Any] = {}
        self._labels_verified: bool | None = None
        self._labels_of: tuple[Any, Any] = (None, None)
        self.best_bn_stats: dict[tuple[int, str], Any] = {}
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.last_checkpoint: Path | None = None
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}
        self.key_seed: int | None = None

    def _jit_setting(self, jit: Any) -> bool:
        if jit not in (None, True, False):
            raise ValueError(f"jit must be True, False or None (automatic); got {jit!r}")
        reference = next(iter(self.model.params.values()))
        possible = backend_name(reference) == "jax" and hasattr(self.model, "functional_loss")
        if jit is None and possible and not _loss_matches_functional_form(self.model):
            possible = False  # a subclass that overrides loss: train what it computes
        if jit and not possible:
            raise ValueError(
                "jit=True needs a model with functional_loss whose parameters are JAX arrays; "
                f"this model's are {backend_name(reference)} arrays"
                + (
                    ""
                    if hasattr(self.model, "functional_loss")
                    else ", and it has no functional_loss"
                )
            )
        return possible if jit is None else jit

    def _data_parallel(self, devices: Any) -> Any:
        if not self.jit:
            raise ValueError(
                "devices= shards the compiled JAX step: it needs a JAX model with "
                "functional_loss, and jit left on"
            )
        from ._data_parallel import DataParallel

        parallel = DataParallel(devices)
        parallel.check_divides(self.batch_size)
        import jax

        if jax.process_count() > 1 and self.seed is None:
            raise ValueError(
                "seed is required in a run over several processes: every process must draw "
                "the same minibatches and dropout masks"
            )
        return parallel

    @property
    def iterations_per_epoch(self) -> int:
        if self.parallel is None:
            return super().iterations_per_epoch
        rows = int(self.parallel.gather(_rows(self.X_train)).sum())  # every process's rows
        return max(rows // self.batch_size, 1)

    # ------------------------------------------------------------------ training

    def _step(self, t: int, total: int) -> float:
        """One minibatch update, committed only if loss and new parameters are finite.

        Every parameter's update (and its optimizer state) is computed first and stored
        together, so an exception or a non-finite value leaves the model (batch-norm
        running averages included) and the optimizer as they were before the step.

        The step reads the device once: one array holding the loss and whether it and
        each new parameter are finite. The labels' range is checked once per dataset
        (:meth:`_labels_checked`), not by the loss at every step.
        """
        checked = self._labels_checked()
        if self.parallel is not None:
            batch = self.parallel.sample(self.rng, _rows(self.X_train), self.batch_size)
            X, y = self.parallel.shard_batch(
                _take(self.X_train, batch), _take(self.y_train, batch)
            )
            return self._compiled_step(X, y, t, total)
        batch = self.rng.choice(_rows(self.X_train), self.batch_size)
        X, y = self._to_model(_take(self.X_train, batch), _take(self.y_train, batch))
        if self.jit:
            return self._compiled_step(X, y, t, total)
        unchecked = label_range_check(False) if checked else contextlib.nullcontext()
        return self._eager_step(lambda: self.model.loss(X, y), t, total, unchecked)

    def _eager_step(
        self,
        loss_and_grads: Any,
        t: int,
        total: int,
        context: contextlib.AbstractContextManager | None = None,
    ) -> float:
        """Run ``loss_and_grads()`` (the model's ``(loss, grads)``) and the update rule,
        and commit the new parameters only if the loss and all of them are finite."""
        # The forward pass writes new batch-norm running averages into the model's dicts:
        # keep the old ones (the layers never modify them in place) to put back on failure.
        bn_params = getattr(self.model, "bn_params", None) or []
        running = [dict(bn_param) for bn_param in bn_params]
        try:
            # a non-finite value is reported below
            with np.errstate(all="ignore"), context or contextlib.nullcontext():
                loss, grads = loss_and_grads()
                updates = {
                    name: self.update(w, grads[name], dict(self.optim_configs[name]))
                    for name, w in self.model.params.items()
                }
            status = _loss_and_finiteness(loss, [w for w, _ in updates.values()])
            value = float(status[0])
            if not np.isfinite(value):
                self._diverged(f"loss is {value}", t, total)
            bad = [name for name, ok in zip(updates, status[1:], strict=True) if not ok]
            if bad:
                self._diverged(f"the update made {', '.join(bad)} non-finite", t, total)
        except BaseException:
            for bn_param, before in zip(bn_params, running, strict=True):
                bn_param.clear()
                bn_param.update(before)
            raise
        for name, (next_w, config) in updates.items():
            self.model.params[name] = next_w
            self.optim_configs[name] = config
        return value

    def _labels_checked(self) -> bool:
        """Check every label of the training and validation sets once per dataset (again
        when ``y_train`` or ``y_val`` is replaced), and say whether that was possible: then
        the steps skip the loss's per-call check.

        The number of classes is the width of the model's scores for one training row.
        A model whose ``loss(X)`` does not return ``(N, C)`` scores keeps the per-step check.

        Raises
        ------
        ValueError
            A label outside ``[0, C)``, naming the dataset.
        """
        datasets = (self.y_train, self.y_val)
        if self._labels_verified is None or any(
            a is not b for a, b in zip(datasets, self._labels_of, strict=True)
        ):
            self._labels_of = datasets
            (row,) = self._beside_params(_take(self.X_train, np.arange(1)))
            # Only the shape is used: no warning of the probe reaches the user (batch norm's
            # test mode before any training step warns about its missing running averages).
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = self.model.loss(row)
            shape = tuple(getattr(scores, "shape", ()))
            self._labels_verified = len(shape) == 2
            if self._labels_verified:
                classes = int(shape[1])
                for name in ("y_train", "y_val"):
                    labels = to_numpy(getattr(self, name))
                    if labels.size and (labels.min() < 0 or labels.max() >= classes):
                        raise ValueError(
                            f"{name} holds labels outside [0, {classes}): the model scores "
                            f"{classes} classes"
                        )
        return self._labels_verified

    def _compiled_step(self, X: Any, y: Any, t: int, total: int) -> float:
        """The step of :meth:`_step` as one ``jax.jit`` function; committed if finite."""
        if self.key_seed is None:
            # Drawn only where masks are drawn, so that the minibatches of an unseeded run
            # without dropout are those of the eager step.
            drawn = self.seed is None and getattr(self.model, "use_dropout", True)
            self.key_seed = int(self.rng.randint(2**31)) if drawn else (self.seed or 0)
        configs = self.optim_configs
        complete = set(optim.DEFAULTS[self.update_rule]) | set(optim.STATE[self.update_rule])
        if any(not complete <= set(configs[name]) for name in self.model.params):
            configs = {  # before the first step: the structure every later step has
                name: optim.init_config(self.update_rule, w, configs[name])
                for name, w in self.model.params.items()
            }
        value, finite, params, state, configs = self._compiled_functions().step(
            self.model.params, self.model.state, configs, X, y, np.uint32(self.key_seed), t
        )
        if not finite.pop("loss"):
            self._diverged(f"loss is {value}", t, total)
        bad = [name for name, ok in finite.items() if not ok]
        if bad:
            self._diverged(f"the update made {', '.join(bad)} non-finite", t, total)
        self.model.params.update(params)  # the same dict, as the eager step keeps it
        self.model.load_state(state)
        self.optim_configs = configs
        return value

    def _compiled_functions(self) -> Any:
        """The model's compiled step and prediction (made on first use)."""
        if self._compiled is None:
            from ._compiled_step import CompiledStep

            self._compiled = CompiledStep(self.model, self.update, self.parallel)
        return self._compiled

    def _diverged(self, what: str, t: int, total: int) -> None:
        kept = ""
        if self.last_checkpoint is not None:
            kept = f"; the last checkpoint, {self.last_checkpoint}, is intact"
        raise TrainingDiverged(
            f"{what} at iteration {t + 1} of {total} (epoch {self.epoch + 1}); training "
            f"stopped before the update{kept}. Lower the learning rate or check the data."
        )

    def check_accuracy(
        self, X: Any, y: Any, num_samples: int | None = None, batch_size: int = 100
    ) -> float:
        """Fraction of correct predictions on ``num_samples`` sampled rows (None: all).

        With ``devices``, the rows are split over the devices too (``num_samples`` rounded
        up to a multiple of their number, drawn from every device's part as the minibatches
        are); in a multi-process run ``X`` and ``y`` are this process's shard and the
        fraction is over every process's rows.
        """
        if self.parallel is not None:
            return self._check_accuracy_sharded(X, y, num_samples, batch_size)
        n = _rows(X)
        if num_samples is not None and n > num_samples:
            rows = self.rng.choice(n, num_samples)
            X, y = _take(X, rows), _take(y, rows)
            n = num_samples
        predictions = []
        for start in range(0, n, batch_size):
            rows = np.arange(start, min(start + batch_size, n))
            (X_batch,) = self._to_model(_take(X, rows))
            if self.jit:
                predict = self._compiled_functions().predict
                predicted = predict(self.model.params, self.model.state, X_batch)
            else:
                scores = self.model.loss(X_batch)
                predicted = array_namespace(scores=scores).argmax(scores, axis=1)
            predictions.append(to_numpy(predicted))
        predicted = np.concatenate(predictions) if predictions else np.zeros(0, np.int64)
        return float(np.mean(predicted == to_numpy(y))) if n else 0.0

    def _check_accuracy_sharded(
        self, X: Any, y: Any, num_samples: int | None, batch_size: int
    ) -> float:
        from ._data_parallel import padded

        parallel = self.parallel
        counts = parallel.gather(_rows(X))  # every process decides from the same numbers
        if num_samples is not None and int(counts.sum()) > num_samples:
            rows = parallel.sample(self.rng, _rows(X), padded(num_samples, parallel.size), "X")
            X, y = _take(X, rows), _take(y, rows)
            counts = parallel.gather(_rows(X))
        local_batch = padded(batch_size, parallel.size) // parallel.size * parallel.local_size
        batches = -(-int(counts.max()) // local_batch)  # the same on every process
        n = _rows(X)
        if n == 0:  # this process has no rows: zeros, weighted 0, keep the shapes fixed
            X, y = to_numpy(X), to_numpy(y)
            X, y = np.zeros((1, *X.shape[1:]), X.dtype), np.zeros(1, y.dtype)
        correct = 0.0
        for i in range(batches):
            # The rows where the data are (a device array stays on its device); the batch is
            # filled up with row 0, weighted 0, so that every batch has one shape.
            start = i * local_batch
            here = max(0, min(local_batch, n - start))
            index = np.zeros(local_batch, np.int64)
            index[:here] = np.arange(start, start + here)
            weight = np.zeros(local_batch, np.float32)
            weight[:here] = 1
            X_rows, y_rows = _take(X, index), _take(y, index)
            correct += self._compiled_functions().count_correct(
                self.model.params, self.model.state, *parallel.shard_batch(X_rows, y_rows, weight)
            )
        total = int(counts.sum())
        return correct / total if total else 0.0

    # ------------------------------------------------------------------ loop hooks

    def _end_epoch(self) -> None:
        for config in self.optim_configs.values():
            if "learning_rate" in config:
                config["learning_rate"] *= self.lr_decay

    def _has_best(self) -> bool:
        return bool(self.best_params)

    def _keep_best(self) -> None:
        self.best_params = {k: _copy(v) for k, v in self.model.params.items()}
        self.best_bn_stats = {
            (i, key): _copy(bn_param[key])
            for i, bn_param in enumerate(getattr(self.model, "bn_params", None) or [])
            for key in ("running_mean", "running_var")
            if bn_param.get(key) is not None
        }

    def _restore_best(self) -> None:
        # Copies: a model that changes its weights in place must not change the best ones.
        self.model.params = {k: _copy(v) for k, v in self.best_params.items()}
        for (i, key), value in self.best_bn_stats.items():
            self.model.bn_params[i][key] = value

    # ------------------------------------------------------------------ backends

    def _to_model(self, *arrays: Any) -> tuple[Any, ...]:
        """Move arrays to the backend and device of the model's parameters (replicated on
        the devices of ``devices``)."""
        if self.parallel is not None:
            return tuple(self.parallel.replicate(self._host(a)) for a in arrays)
        return self._beside_params(*arrays)

    def _beside_params(self, *arrays: Any) -> tuple[Any, ...]:
        """Move arrays to the backend and device of the model's first parameter."""
        reference = next(iter(self.model.params.values()))
        name = backend_name(reference)
        moved = []
        for a in arrays:
            if backend_name(a) != name or device_of(a) != device_of(reference):
                a = to_backend(a, name, device=device_of(reference))
            moved.append(a)
        return tuple(moved)

    # ------------------------------------------------------------------ checkpoints

    def _save_checkpoint(self) -> None:
        if self.checkpoint_name is None:
            return
        path = checkpoint_path(self.checkpoint_name, self.epoch, ".npz")
        arrays = self._checkpoint_arrays()
        if self.parallel is None or self._is_first_process():  # written once per run
            save_npz_atomically(path, arrays)
        self.last_checkpoint = path

    @staticmethod
    def _is_first_process() -> bool:
        import jax

        return jax.process_index() == 0

    def _host(self, array: Any) -> np.ndarray:
        """A NumPy copy of a model or optimizer array (of a replicated one: its value)."""
        if self.parallel is not None:
            return self.parallel.to_host(array)
        return to_numpy(array)

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for name, value in self.model.params.items():
            arrays[f"param/{name}"] = self._host(value)
        for name, value in self.best_params.items():
            arrays[f"best/{name}"] = self._host(value)
        for i, bn_param in enumerate(getattr(self.model, "bn_params", None) or []):
            for key in ("running_mean", "running_var"):
                if bn_param.get(key) is not None:
                    arrays[f"bn/{i}/{key}"] = self._host(bn_param[key])
        for (i, key), value in self.best_bn_stats.items():
            arrays[f"best_bn/{i}/{key}"] = self._host(value)
        scalars: dict[str, dict[str, Any]] = {}
        for name, config in self.optim_configs.items():
            scalars[name] = {}
            for key, value in config.items():
                if isinstance(value, (bool, int, float, str)):
                    scalars[name][key] = value
                else:
                    arrays[f"optim/{name}/{key}"] = self._host(value)
        random_states = {}
        for which, generator in self._generators().items():
            kind, keys, pos, has_gauss, cached = generator.get_state()
            arrays[f"rng/{which}/keys"] = np.asarray(keys, dtype=np.uint32)
            random_states[which] = {
                "kind": kind,
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached),
            }
        meta = {
            "format": _FORMAT,
            "epoch": self.epoch,
            "iteration": self.iteration,
            "update_rule": self.update_rule,
            "batch_size": self.batch_size,
            "iterations_per_epoch": self.iterations_per_epoch,
            "run_info": self.run_info,
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "loss_history": self.loss_history,
            "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history,
            "optim_scalars": scalars,
            "random_states": random_states,
            "key_seed": self.key_seed,
        }
        arrays["meta"] = np.asarray(json.dumps(meta))
        return arrays

    def _generators(self) -> dict[str, Any]:
        """The NumPy random states a run draws from: the Solver's, and the global one
        (dropout masks on NumPy, and the Solver itself when it has no seed)."""
        generators = {"global": np.random}
        if self.rng is not np.random:
            generators["solver"] = self.rng
        return generators

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint written by this class; :meth:`train` then continues.

        The model's parameters, best parameters, batch-norm running averages, optimizer
        state, histories, epoch, iteration and the random state are restored, each
        parameter on the backend and device of the model's current one.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            The file is not a checkpoint of this format, or does not fit the model.
        """
        path = Path(path)
        arrays, meta = _read_checkpoint(path)
        for key, mine in (
            ("batch_size", self.batch_size),
            ("iterations_per_epoch", self.iterations_per_epoch),
        ):
            if meta[key] != mine:
                raise ValueError(
                    f"checkpoint {path} was trained with {key} {meta[key]}, this Solver has "
                    f"{mine}: an exact resume needs the same batch size and training set size"
                )
        params = {k[len("param/") :]: v for k, v in arrays.items() if k.startswith("param/")}
        if set(params) != set(self.model.params):
            raise ValueError(
                f"checkpoint {path} holds parameters {sorted(params)}, the model has "
                f"{sorted(self.model.params)}"
            )
        for name, value in params.items():
            if tuple(value.shape) != tuple(self.model.params[name].shape):
                raise ValueError(
                    f"checkpoint {path}: parameter {name} has shape {value.shape}, the "
                    f"model's has {tuple(self.model.params[name].shape)}"
                )
        if meta["update_rule"] != self.update_rule:
            raise ValueError(
                f"checkpoint {path} was trained with update_rule {meta['update_rule']!r}, "
                f"this Solver uses {self.update_rule!r}"
            )

        def like_model(value: np.ndarray, name: str) -> Any:
            (moved,) = self._to_model(value.astype(self._host(self.model.params[name]).dtype))
            return moved

        self.model.params = {k: like_model(v, k) for k, v in params.items()}
        self.best_params = {
            k[len("best/") :]: like_model(v, k[len("best/") :])
            for k, v in arrays.items()
            if k.startswith("best/")
        }
        self.best_bn_stats = {}
        for i, bn_param in enumerate(getattr(self.model, "bn_params", None) or []):
            for key in ("running_mean", "running_var"):
                value = arrays.get(f"bn/{i}/{key}")
                if value is not None:
                    (bn_param[key],) = self._to_model(value)
                best = arrays.get(f"best_bn/{i}/{key}")
                if best is not None:
                    (self.best_bn_stats[(i, key)],) = self._to_model(best)
        self.optim_configs = {}
        for name in self.model.params:
            config = dict(meta["optim_scalars"].get(name, {}))
            prefix = f"optim/{name}/"
            for key, value in arrays.items():
                if key.startswith(prefix):
                    (config[key[len(prefix) :]],) = self._to_model(value)
            self.optim_configs[name] = config
        self.epoch = meta["epoch"]
        self.iteration = meta["iteration"]
        self.best_val_acc = meta["best_val_acc"]
        self.best_epoch = meta.get("best_epoch")  # not in checkpoints of xpnn 0.2.0
        self.loss_history = list(meta["loss_history"])
        self.train_acc_history = list(meta["train_acc_history"])
        self.val_acc_history = list(meta["val_acc_history"])
        for which, generator in self._generators().items():
            state = meta["random_states"].get(which)
            if state is not None:
                generator.set_state(
                    (
                        state["kind"],
                        arrays[f"rng/{which}/keys"],
                        state["pos"],
                        state["has_gauss"],
                        state["cached_gaussian"],
                    )
                )
        self.run_info = dict(meta.get("run_info", {}))
        self.key_seed = meta.get("key_seed")
        self.last_checkpoint = path

    @staticmethod
    def checkpoint_info(path: str | os.PathLike) -> dict[str, Any]:
        """The metadata of a checkpoint: epoch, iteration, update rule, batch size, histories,
        and the ``run_info`` the Solver that wrote it was given."""
        return _read_checkpoint(Path(path))[1]


def _read_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and the metadata of a checkpoint, or a ValueError naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") != _FORMAT:
            raise ValueError(meta.get("format"))
        required = ("epoch", "iteration", "update_rule", "batch_size", "iterations_per_epoch",
                    "loss_history", "optim_scalars", "random_states")  # fmt: skip
        if not all(key in meta for key in required):
            raise KeyError("incomplete metadata")
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile):
        raise ValueError(
            f"{path} is not a complete xpnn solver checkpoint ({_FORMAT}: an .npz written by "
            "Solver with checkpoint_name)"
        ) from None
    return arrays, meta


def save_npz_atomically(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` as ``.npz`` (no pickle) so that it is never half-written.

    See :func:`xpnn._io.write_atomically`: temporary file, fsync, rename.
    """
    return write_atomically(path, lambda file: np.savez(file, **arrays))


def _loss_matches_functional_form(model: Any) -> bool:
    """Whether ``model.loss`` computes what ``model.functional_loss`` does: the class that
    defines ``loss`` is one of xpnn's models, or defines ``functional_loss`` itself."""
    owner = next(klass for klass in type(model).__mro__ if "loss" in vars(klass))
    return owner.__module__.startswith("xpnn.classifiers") or "functional_loss" in vars(owner)


def _loss_and_finiteness(loss: Any, arrays: list[Any]) -> np.ndarray:
    """``[loss, isfinite(arrays[0]).all(), ...]`` on the host, in one read of one array.

    ``loss`` and the arrays are on one backend and device; the flags are 1.0 or 0.0.
    """
    xp = array_namespace(*arrays)
    if not hasattr(loss, "dtype"):  # a model that returns float(loss), as some assignments do
        loss = xp.asarray(loss, dtype=xp.float32, device=device_of(arrays[0]))
    flags = [xp.astype(xp.all(xp.isfinite(a)), loss.dtype) for a in arrays]
    return to_numpy(xp.stack([xp.reshape(loss, ()), *flags])).astype(np.float64)


def _copy(array: Any) -> Any:
    return array_namespace(array=array).asarray(array, copy=True)


def _rows(array: Any) -> int:
    return int(array.shape[0])


def _take(array: Any, rows: np.ndarray) -> Any:
    """``array[rows]`` for a NumPy index vector, on any backend (no host copy of the data)."""
    if backend_name(array) == "numpy":
        return array[rows]
    xp = array_namespace(array=array)
    index = xp.asarray(rows.astype(np.int64), device=device_of(array))
    return xp.take(array, index, axis=0)
