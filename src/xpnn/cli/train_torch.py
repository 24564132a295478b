"""``xpnn train --framework torch``: the notebook's convnet from ``xpnn.torch.nn``.

The model is trained with ``torch.optim`` by :class:`xpnn.torch.training.Trainer`.

:mod:`xpnn.cli.train` imports this module only when ``--framework torch`` is given or a
``.pt`` checkpoint is resumed; torch itself is imported only inside its functions, so a
missing torch is reported with the install command. Mistakes raise ``ValueError`` (one
line, exit status 2, like every ``xpnn train`` usage error).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["check_args", "make_trainer", "read_run_info", "require_torch"]

#: Channels of the two convolutions (the notebook's sizes).
CHANNELS = (32, 16)
#: L2 strength on the weights, as the NumPy default run's ``reg``.
REG = 1e-3
#: Per-epoch learning-rate decay, as the NumPy default run's ``lr_decay``.
LR_DECAY = 0.95


def require_torch() -> None:
    """Fail with the install command, not a traceback, when torch is missing."""
    try:
        import torch  # noqa: F401
    except ImportError:
        from .._install import install_command

        raise ImportError(
            "--framework torch needs the 'torch' package, which is not installed; install "
            f"it with: {install_command('torch')}"
        ) from None


def check_args(args: argparse.Namespace, settings: dict[str, Any]) -> Any:
    """Check the options that ``--framework torch`` constrains; returns the ``torch.device``."""
    if args.backend not in ("numpy", "torch"):
        raise ValueError(
            f"--framework torch trains on torch tensors: leave --backend out (or give torch); "
            f"got --backend {args.backend}"
        )
    if settings["model"] != "cnn":
        raise ValueError(
            f"--framework torch trains the notebook's three-layer convnet (--model cnn); "
            f"--model {settings['model']} is available with --framework xpnn"
        )
    require_torch()
    from .devices import resolve

    device = resolve("torch", args.device or "cpu")  # a DeviceError is a ValueError
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda[:N] with --framework torch; got {device}")
    return device


def read_run_info(path: Any) -> dict[str, Any]:
    """The settings recorded in a ``.pt`` checkpoint of ``xpnn train --framework torch``."""
    require_torch()
    from ..torch.training import Trainer

    return Trainer.checkpoint_info(path).get("run_info", {})


def make_trainer(
    settings: dict[str, Any],
    data: dict[str, Any],
    device: Any,
    *,
    checkpoint_name: str | None,
    quiet: bool,
    run_info: dict[str, Any],
) -> tuple[Any, str]:
    """The :class:`~xpnn.torch.training.Trainer` of the run, and the model's name.

    The weights are drawn after ``torch.manual_seed(seed)`` (``torch.nn``'s initialisation,
    so the plain ``torch.nn`` model of the same seed starts from the same weights); Adam
    (or the chosen update rule) with the learning rate, ``reg`` on the weights and the
    decay per epoch of the NumPy default run.
    """
    import torch

    from ..torch.models import three_layer_convnet
    from ..torch.training import Trainer, make_optimizer

    _, channels, height, width = data["X_train"].shape
    if height != width:
        raise ValueError(f"the convnet wants square images; the dataset has {height}x{width}")
    torch.manual_seed(settings["seed"])
    model = three_layer_convnet(
        channels, *CHANNELS, num_classes=10, image_size=height, device=device
    )
    optimizer = make_optimizer(model, settings["update_rule"], settings["lr"], reg=REG)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=LR_DECAY)
    trainer = Trainer(
        model,
        data,
        optimizer,
        scheduler=scheduler,
        batch_size=settings["batch_size"],
        num_epochs=settings["epochs"],
        num_train_samples=1000,
        checkpoint_name=checkpoint_name,
        print_every=50,
        verbose=not quiet,
        seed=settings["seed"],
        run_info=run_info,
    )
    return trainer, "ThreeLayerConvNet"
