"""``cs231n.coco_utils`` (the sequence assignment): the COCO captioning data, and ``np``.

``load_coco_data(base_dir=None, ...)`` finds the assignment's ``cs231n/datasets/
coco_captioning`` by itself (see :mod:`xpnn.coco`); ``xpnn download coco`` fetches it.
"""

import numpy as np

from ..coco import decode_captions, load_coco_data, sample_coco_minibatch

__all__ = ["decode_captions", "load_coco_data", "np", "sample_coco_minibatch"]
