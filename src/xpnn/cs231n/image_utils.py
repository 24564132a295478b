"""``cs231n.image_utils``: reading, normalising and blurring images (and ``np``).

The captioning notebooks show COCO images with ``image_from_url``; see :mod:`xpnn.images`
for what differs from the assignment.
"""

import numpy as np

from ..images import (
    SQUEEZENET_MEAN,
    SQUEEZENET_STD,
    blur_image,
    deprocess_image,
    image_from_url,
    load_image,
    preprocess_image,
)

__all__ = [
    "SQUEEZENET_MEAN",
    "SQUEEZENET_STD",
    "blur_image",
    "deprocess_image",
    "image_from_url",
    "load_image",
    "np",
    "preprocess_image",
]
