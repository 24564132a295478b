"""``xpnn train --model rnn|lstm``: the captioning model on the offline digit captions, or
on the COCO captioning data (``--dataset coco``).

:mod:`xpnn.cli.train` hands a run over here once its settings are known. The model is
:class:`xpnn.classifiers.CaptioningRNN`, trained by :class:`xpnn.CaptioningSolver` with its
progress, checkpoints and resume; the run ends by printing captions sampled for validation
images next to the true ones.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from .._io import write_atomically

#: Sizes of the model per dataset: the digits' small task, the assignment's COCO model.
SIZES = {"digits": {"wordvec_dim": 32, "hidden_dim": 64},
         "coco": {"wordvec_dim": 256, "hidden_dim": 512}}  # fmt: skip
#: Validation images whose captions the run prints.
SHOWN = 5
#: Validation images captioned at the end of a run to score it (one caption each).
SCORED = 500


def check_args(args: argparse.Namespace, settings: dict[str, Any], error: type) -> None:
    """Refuse, before anything is loaded, the options that a captioning run does not have."""
    model = settings["model"]
    if settings["framework"] != "xpnn":
        raise error(
            f"--model {model} trains with xpnn's CaptioningSolver; --framework torch trains "
            "the convnet (the PyTorch edition's captioning model is "
            "xpnn.cs231n.classifiers.rnn_pytorch, from Python)"
        )
    if settings["dataset"] not in SIZES:
        raise error(
            f"--model {model} captions images: --dataset digits (offline) or coco (xpnn "
            f"download coco first); got --dataset {settings['dataset']}"
        )
    for flag, value in (("--devices", args.devices), ("--coordinator", args.coordinator),
                        ("--plot", args.plot)):  # fmt: skip
        if value is not None:
            what = "accuracy curves" if flag == "--plot" else "data parallelism"
            raise error(f"{flag} is for --model cnn and fcn ({what}); --model {model} has none")


def load(settings: dict[str, Any], data_dir: str | None, error: type) -> dict[str, Any]:
    """The run's data: the digit captions, or COCO's (its first ``num_train`` captions)."""
    from ..coco import load_coco_data, load_digit_captions

    if settings["dataset"] == "digits":
        data = load_digit_captions(seed=settings["seed"])
    else:
        try:
            data = load_coco_data(data_dir)
        except FileNotFoundError as err:  # the message, in the command line's terms
            raise error(str(err).replace("pass base_dir= the folder", "give --data-dir the "
                                         "folder")) from None  # fmt: skip
    count = settings["num_train"]
    if count is not None:
        available = data["train_captions"].shape[0]
        if not 1 <= count <= available:
            raise error(f"--num-train must be in 1 .. {available} (the training captions); "
                        f"got {count}")  # fmt: skip
        data = dict(data, train_captions=data["train_captions"][:count],
                    train_image_idxs=data["train_image_idxs"][:count])  # fmt: skip
    return data


def make_solver(
    args: argparse.Namespace,
    settings: dict[str, Any],
    data: dict[str, Any],
    device: Any,
    loop: dict[str, Any],
) -> Any:
    """CaptioningRNN, sized for the dataset, and its CaptioningSolver with the training
    loop's options ``loop`` (those of every ``xpnn train`` run)."""
    from ..captioning_solver import CaptioningSolver
    from ..classifiers import CaptioningRNN

    model = CaptioningRNN(
        data["word_to_idx"],
        input_dim=int(data["train_features"].shape[1]),
        cell_type=settings["model"],
        dtype=np.float32,
        seed=settings["seed"],
        backend=args.backend,
        device=device,
        **SIZES[settings["dataset"]],
    )
    return CaptioningSolver(model, data, **loop)


def finish(
    args: argparse.Namespace,
    settings: dict[str, Any],
    solver: Any,
    data: dict[str, Any],
    first_epoch: int,
    seconds: float,
) -> dict[str, Any]:
    """Sample the validation captions, print some next to the true ones and the summary;
    write the metrics. Returns them."""
    from ..coco import decode_captions

    model = solver.model
    words = data["idx_to_word"]
    # One caption sampled per validation image (COCO has about five true ones per image),
    # for at most SCORED images, in the order they first appear.
    image_of = np.asarray(data["val_image_idxs"])
    _, first = np.unique(image_of, return_index=True)
    images = image_of[np.sort(first)][:SCORED]
    (features,) = solver._beside_params(data["val_features"][images])
    length = data["val_captions"].shape[1] - 1
    sampled = decode_captions(model.sample(features, max_length=length), words)
    rows = np.flatnonzero(np.isin(image_of, images))  # the true captions of those images
    true = decode_captions(np.asarray(data["val_captions"])[rows], words)
    truths: dict[int, list[str]] = {}
    for image, caption in zip(image_of[rows].tolist(), true, strict=True):
        truths.setdefault(image, []).append(caption.removeprefix("<START> "))
    exact = float(np.mean([s in truths[int(i)] for s, i in zip(sampled, images, strict=True)]))
    metrics = {
        "model": f"CaptioningRNN ({settings['model']})",
        "dataset": settings["dataset"],
        "framework": "xpnn",
        "backend": args.backend,
        "batch_size": settings["batch_size"],
        "epochs": solver.epoch,
        "first_epoch": first_epoch,
        "seconds": round(seconds, 3),
        "loss_history": solver.loss_history,
        "final_loss": solver.loss_history[-1],
        "num_train": settings["num_train"],
        "val_captions_exact": exact,
        "val_images_scored": len(images),
        "val_samples": [
            {
                "url": str(data["val_urls"][images[k]]),
                "sampled": sampled[k],
                "true": truths[int(images[k])][0],
            }
            for k in range(min(SHOWN, len(sampled)))
        ],
    }
    if not args.quiet:
        for sample in metrics["val_samples"]:
            print(f"val {sample['url']}: sampled '{sample['sampled']}'; true '{sample['true']}'")
    last = solver.epoch
    span = f"{last} epoch{'s' if last != 1 else ''}"
    if first_epoch:
        done = f"s {first_epoch + 1}-{last}" if last > first_epoch + 1 else f" {last}"
        span = f"epoch{done} of {last} (resumed)"
    print(
        f"{metrics['model']} on {settings['dataset']} ({args.backend}): {span} in "
        f"{seconds:.1f} s; final loss {metrics['final_loss']:.3f}; sampled captions equal to "
        f"a true one {exact:.3f} (of {len(images)} validation images)"
    )
    if args.metrics_out is not None:
        text = json.dumps(metrics, indent=1) + "\n"
        write_atomically(args.metrics_out, lambda file: file.write(text), binary=False)
    return metrics


def timed_train(solver: Any) -> float:
    start = time.perf_counter()
    solver.train()
    return time.perf_counter() - start
