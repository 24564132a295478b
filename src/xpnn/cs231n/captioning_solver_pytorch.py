"""``cs231n.captioning_solver_pytorch`` (the 2025/2026 PyTorch edition): its solver, and
the names its module imports."""

import numpy as np
import torch

from .. import optim
from ..coco import decode_captions, sample_coco_minibatch
from ..torch.captioning import CaptioningSolverPytorch

__all__ = ["CaptioningSolverPytorch", "decode_captions", "np", "optim", "sample_coco_minibatch",
           "torch"]  # fmt: skip
