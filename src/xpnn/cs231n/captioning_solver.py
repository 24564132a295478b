"""``cs231n.captioning_solver`` (the NumPy edition): CaptioningSolver, and the names the
assignment's module imports."""

import numpy as np

from .. import optim
from ..captioning_solver import CaptioningSolver
from ..coco import decode_captions, sample_coco_minibatch

__all__ = ["CaptioningSolver", "decode_captions", "np", "optim", "sample_coco_minibatch"]
