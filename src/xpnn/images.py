"""Images for the notebooks: the CS231n assignment's ``image_utils``.

:func:`image_from_url` reads the COCO images the captioning notebooks show beside their
captions (the data holds only their Flickr URLs), :func:`load_image` reads a file,
:func:`preprocess_image` and :func:`deprocess_image` convert between pixels and the
normalised input of an ImageNet network (``SQUEEZENET_MEAN`` and ``SQUEEZENET_STD``), and
:func:`blur_image` is the gentle blur that image generation uses as a regulariser.
``xpnn.cs231n.image_utils`` gives them under the assignment's module name.

Reading images needs Pillow (``pip install pillow``; matplotlib, which the notebooks use,
depends on it). Images come back as new, writable NumPy arrays, as the assignment's
``imageio`` gave them: ``uint8`` pixels ``(H, W, 3)``, or ``(H, W)`` for a grey image; a
16-bit, 32-bit or float grey image keeps its values (``uint16``, ``int32``, ``float32``),
and Pillow reads 16-bit colour as 8-bit. :func:`blur_image` works on batches of any
backend.

Differences from the assignment: :func:`image_from_url` reads in memory (no temporary
file), drops an alpha channel (``imageio`` returned ``(H, W, 4)``) and gives RGB pixels
for palette and CMYK images; :func:`load_image` resizes to ``size`` on the short side with
the other side in proportion (the assignment's swapped height and width for images that
are not square, as its own comment notes).
"""

from __future__ import annotations

import http.client
import io
import operator
import os
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from ._backend import array_namespace, device_of, to_numpy
from .layers.conv import conv_forward_fast

__all__ = [
    "SQUEEZENET_MEAN",
    "SQUEEZENET_STD",
    "blur_image",
    "deprocess_image",
    "image_from_url",
    "load_image",
    "preprocess_image",
]

#: ImageNet's per-channel pixel mean and standard deviation (RGB, pixels scaled to [0, 1]),
#: as the assignment's SqueezeNet expects.
SQUEEZENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
SQUEEZENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

#: Seconds to wait for an image server.
TIMEOUT = 5.0


def _blur_filters() -> np.ndarray:
    """``(3, 3, 3, 3)`` filters: each channel blurred on its own by a 3x3 kernel that keeps
    188/200 of a pixel and spreads the rest over its neighbours."""
    kernel = np.array([[1, 2, 1], [2, 188, 2], [1, 2, 1]], dtype=np.float64) / 200.0
    filters = np.zeros((3, 3, 3, 3))
    for channel in range(3):
        filters[channel, channel] = kernel
    return filters


def blur_image(X: Any) -> Any:
    """A very gentle blur, a regulariser for image generation.

    Parameters
    ----------
    X : array, shape (N, 3, H, W)
        Images of any backend.

    Returns
    -------
    array, shape (N, 3, H, W)
        Each channel convolved with ``[[1, 2, 1], [2, 188, 2], [1, 2, 1]] / 200`` (zero
        padding of 1) by :func:`xpnn.conv_forward_fast`, in X's backend and on its
        device, in X's dtype (integer pixels in the backend's default float; the
        assignment's float64 filters made float32 images float64).
    """
    xp = array_namespace(X)
    if X.ndim != 4 or X.shape[1] != 3:
        raise ValueError(f"X must have shape (N, 3, H, W), got {tuple(X.shape)}")
    dtype = X.dtype if xp.isdtype(X.dtype, "real floating") else None
    filters = xp.asarray(_blur_filters().tolist(), dtype=dtype, device=device_of(X))
    bias = xp.zeros(3, dtype=filters.dtype, device=device_of(X))
    return conv_forward_fast(X, filters, bias, {"stride": 1, "pad": 1})[0]


def preprocess_image(img: Any) -> np.ndarray:
    """Pixels ``(H, W, 3)`` (0-255) as a network input: ``(img / 255 - mean) / std``,
    float32, with ImageNet's mean and standard deviation per channel."""
    pixels = to_numpy(img).astype(np.float32)
    return (pixels / 255.0 - SQUEEZENET_MEAN) / SQUEEZENET_STD


def deprocess_image(img: Any, rescale: bool = False) -> np.ndarray:
    """Undo :func:`preprocess_image`: ``uint8`` pixels ``(H, W, 3)``.

    ``rescale=True`` first stretches the image's values to [0, 1] (an image whose values
    are all equal comes out black rather than NaN); otherwise values outside [0, 255]
    after undoing the normalisation are clipped.
    """
    img = to_numpy(img) * SQUEEZENET_STD + SQUEEZENET_MEAN
    if rescale:
        low, high = img.min(), img.max()
        img = (img - low) / (high - low) if high > low else np.zeros_like(img)
    return np.clip(255 * img, 0.0, 255.0).astype(np.uint8)


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError(
            "reading images needs Pillow: pip install pillow (matplotlib depends on it)"
        ) from err
    return Image


def _pixels(image: Any) -> np.ndarray:
    """A Pillow image as a new array: RGB ``(H, W, 3)``, or ``(H, W)`` when grey, ``uint8``
    (a 16-bit, 32-bit or float grey image keeps its values); transparency is dropped."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image)
        return values.astype(values.dtype.newbyteorder("="))  # a copy, in native order
    if image.mode == "La":  # grey with premultiplied alpha: Pillow converts it via LA
        image = image.convert("LA")
    return np.array(image.convert("L" if image.mode in ("1", "L", "LA") else "RGB"))


def image_from_url(url: str) -> np.ndarray | None:
    """Read an image from a URL (``http``, ``https``, ``file``).

    Returns
    -------
    numpy.ndarray or None
        A new array: ``uint8`` pixels ``(H, W, 3)``, or ``(H, W)`` for a grey image (see
        the module's notes on 16-bit and float images). ``None`` when the
        URL cannot be read or holds no image, with a line saying why printed, as the
        assignment does: many of COCO's Flickr URLs are gone, and the notebooks skip an
        image that is ``None``.
    """
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            data = response.read()
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        print("URL Error: ", getattr(err, "reason", None) or err, url)
        return None
    Image = _pil()
    try:
        with Image.open(io.BytesIO(data)) as image:
            return _pixels(image)
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        reason = (
            "no image Pillow can read" if isinstance(err, Image.UnidentifiedImageError) else err
        )
        print("Error loading image from URL: ", reason, url)
        return None


def load_image(filename: str | os.PathLike, size: int | None = None) -> np.ndarray:
    """Read an image file as ``uint8`` pixels, optionally resized.

    Parameters
    ----------
    filename : str or path
    size : int, optional
        The length of the image's shorter side after resizing (nearest neighbour, the
        longer side in proportion, rounded half up). None keeps the image as it is.

    Returns
    -------
    numpy.ndarray
        A new array, as :func:`image_from_url` gives: ``(H, W, 3)``, or ``(H, W)`` for a
        grey image.
    """
    if size is not None:
        try:
            length = operator.index(size) if not isinstance(size, bool) else 0
        except TypeError:
            length = 0
        if length < 1:
            raise ValueError(f"size must be a positive integer or None, got {size!r}")
        size = length
    Image = _pil()
    with Image.open(filename) as image:
        if size is not None:
            short, long = sorted(image.size)
            other = max(1, int(long * size / short + 0.5))
            width, height = (size, other) if image.width <= image.height else (other, size)
            image = image.resize((width, height), resample=Image.NEAREST)
        return _pixels(image)
