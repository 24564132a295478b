"""Image grids, to look at data and weights: the CS231n assignment's ``vis_utils``.

:func:`visualize_grid`, :func:`vis_grid` and :func:`vis_nn` are the assignment's three
helpers (``xpnn.cs231n.vis_utils`` gives them under the assignment's module name), for
arrays of any backend. They are display code, not layers: the images are copied to the
host (:func:`xpnn.to_numpy`) and every result is a NumPy array, ready for ``plt.imshow``
(after ``.astype('uint8')`` for :func:`visualize_grid`, as the notebooks do).

Differences from the assignment, all where it would fail or return NaN: an image (or, for
:func:`vis_grid` and :func:`vis_nn`, a whole grid) whose values are all equal comes out
as zeros instead of NaN; an empty input, an input of the wrong rank and rows of
:func:`vis_nn` of different lengths or image shapes are refused with a message that
names the argument; integer images are scaled in float64 (the assignment subtracted in
their own dtype, which wraps around for signed integers).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._backend import backend_name, to_numpy
from ._params import count

__all__ = ["vis_grid", "vis_nn", "visualize_grid"]


def visualize_grid(Xs: Any, ubound: float = 255.0, padding: int = 1) -> np.ndarray:
    """Lay out N images in a square grid, each scaled to ``[0, ubound]`` on its own.

    Parameters
    ----------
    Xs : array, shape (N, H, W, C)
        The images, of any backend (NumPy, CuPy, JAX, PyTorch, array-api-strict) or a
        nested list. Convolution weights ``(F, C, HH, WW)`` go in as
        ``w.transpose(0, 2, 3, 1)``.
    ubound : float, default 255.0
        Each image is mapped linearly from its own ``[min, max]`` to ``[0, ubound]``
        (computed as ``ubound * (img - min) / (max - min)``, in float64).
    padding : int, default 1
        Blank (zero) pixels between neighbouring images; none around the border.

    Returns
    -------
    numpy.ndarray
        float64, ``(G*H + (G-1)*padding, G*W + (G-1)*padding, C)`` with
        ``G = ceil(sqrt(N))``. Image ``i`` is in grid row ``i // G``, column ``i % G``
        (filled row by row); cells after the last image stay zero. An image whose pixels
        are all equal comes out as zeros (the assignment divided by zero: NaN).

    Raises
    ------
    ValueError
        ``Xs`` is not 4-D or holds no pixels, ``padding`` is negative, ``ubound`` is not
        finite.
    TypeError
        ``Xs`` is not numeric, ``padding`` not an integer or ``ubound`` not a real number.
    """
    images = _image_stack(Xs, "Xs", ndim=4, layout="(N, H, W, C)").astype(np.float64)
    ubound = _finite_real("ubound", ubound)
    padding = count("padding", padding)
    low = images.min(axis=(1, 2, 3), keepdims=True)
    span = images.max(axis=(1, 2, 3), keepdims=True) - low
    # A constant image has span 0 and image - low == 0: it comes out as zeros.
    scaled = ubound * (images - low) / np.where(span == 0, 1.0, span)
    side = _grid_side(images.shape[0])
    return _tile(scaled, rows=side, cols=side, gap=padding, fill=0.0, gap_after_last=False)


def vis_grid(Xs: Any) -> np.ndarray:
    """Lay out N images in a square grid, scaled together to ``[0, 1]``.

    Parameters
    ----------
    Xs : array, shape (N, H, W, C)
        The images, of any backend or a nested list.

    Returns
    -------
    numpy.ndarray
        ``(G*H + G, G*W + G, C)`` with ``G = ceil(sqrt(N))``: a one-pixel gap after every
        image, the last row and column included. Image ``i`` is in grid row ``i // G``,
        column ``i % G``; gaps and empty cells hold the smallest value of ``Xs``. The
        whole grid is then mapped linearly from ``[min(Xs), max(Xs)]`` to ``[0, 1]``, so
        gaps and empty cells are 0. The dtype is that of ``Xs`` when it is floating,
        float64 otherwise. A constant ``Xs`` gives zeros (the assignment: NaN).

    Raises
    ------
    ValueError, TypeError
        As :func:`visualize_grid`, for ``Xs``.
    """
    images = _floating(_image_stack(Xs, "Xs", ndim=4, layout="(N, H, W, C)"))
    side = _grid_side(images.shape[0])
    grid = _tile(images, rows=side, cols=side, gap=1, fill=images.min(), gap_after_last=True)
    return _unit_range(grid)


def vis_nn(rows: Any) -> np.ndarray:
    """Lay out rows of images (for instance each query image followed by its nearest
    neighbours), scaled together to ``[0, 1]``.

    Parameters
    ----------
    rows : sequence of sequences of arrays, or an array of shape (N, D, H, W, C)
        ``N`` rows of ``D`` images each, every image ``(H, W, C)``, of any backend.

    Returns
    -------
    numpy.ndarray
        ``(N*H + N, D*W + D, C)``: image ``rows[y][x]`` in grid row ``y``, column ``x``,
        with a one-pixel gap after every image. As in the assignment, the gaps hold the
        value 1 before the whole grid is mapped linearly from its ``[min, max]`` to
        ``[0, 1]``, so they take part in that range (images all above 1 leave the gaps at
        0; images all below 1 leave them at 1). The dtype is the images' when floating,
        float64 otherwise. A constant grid gives zeros (the assignment: NaN).

    Raises
    ------
    ValueError
        No rows, an empty row, rows of different lengths, or images that are not 3-D or
        differ in shape (the message names the first offending ``rows[y][x]``).
    TypeError
        An image is not numeric.
    """
    images, num_rows, num_cols = _image_rows(rows)
    images = _floating(images)
    grid = _tile(images, rows=num_rows, cols=num_cols, gap=1, fill=1.0, gap_after_last=True)
    return _unit_range(grid)


# --------------------------------------------------------------------------- layout


def _grid_side(count: int) -> int:
    """``ceil(sqrt(count))``, exactly, for ``count >= 1``."""
    return math.isqrt(count - 1) + 1


def _tile(
    images: np.ndarray, *, rows: int, cols: int, gap: int, fill: Any, gap_after_last: bool
) -> np.ndarray:
    """Images ``(n, H, W, C)``, ``n <= rows*cols``, placed row by row in a ``rows x cols``
    grid with ``gap`` pixels of ``fill`` after each one (also after the last row and
    column if ``gap_after_last``); unused cells hold ``fill``."""
    n, height, width, channels = images.shape
    cells = np.full((rows * cols, height + gap, width + gap, channels), fill, images.dtype)
    cells[:n, :height, :width] = images
    grid = cells.reshape(rows, cols, height + gap, width + gap, channels)
    grid = grid.transpose(0, 2, 1, 3, 4).reshape(rows * (height + gap), cols * (width + gap), -1)
    if gap_after_last:
        return grid
    return grid[: grid.shape[0] - gap, : grid.shape[1] - gap]


def _unit_range(grid: np.ndarray) -> np.ndarray:
    """``grid`` mapped linearly from its ``[min, max]`` to ``[0, 1]``; zeros if constant."""
    low, high = grid.min(), grid.max()
    return (grid - low) / (high - low if high != low else 1)


def _floating(images: np.ndarray) -> np.ndarray:
    """Floating images as they are; integer and boolean ones as float64."""
    return images if np.issubdtype(images.dtype, np.floating) else images.astype(np.float64)


# --------------------------------------------------------------------------- arguments


def _image_stack(value: Any, name: str, *, ndim: int, layout: str) -> np.ndarray:
    """``value`` as a NumPy array of real numbers with ``ndim`` non-empty axes."""
    array = np.asarray(to_numpy(value))
    if array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array {layout}; got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must hold at least one pixel; got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers; got dtype {array.dtype}")
    return array


def _image_rows(rows: Any) -> tuple[np.ndarray, int, int]:
    """:func:`vis_nn`'s rows as one ``(N*D, H, W, C)`` stack, with N and D, checked."""
    if backend_name(rows) != "python":  # one (N, D, H, W, C) array of some backend
        stack = _image_stack(rows, "rows", ndim=5, layout="(N, D, H, W, C)")
        num_rows, num_cols = stack.shape[:2]
        return stack.reshape(num_rows * num_cols, *stack.shape[2:]), num_rows, num_cols
    if not isinstance(rows, Sequence) or len(rows) == 0:
        raise ValueError("rows must be a non-empty sequence of rows of images")
    grid = [_row_images(row, y) for y, row in enumerate(rows)]
    num_cols, shape = len(grid[0]), grid[0][0].shape
    for y, row in enumerate(grid):
        if len(row) != num_cols:
            raise ValueError(
                f"every row must hold the same number of images: rows[0] holds {num_cols}, "
                f"rows[{y}] holds {len(row)}"
            )
        for x, image in enumerate(row):
            if image.shape != shape:
                raise ValueError(
                    f"every image must have the shape of rows[0][0], {shape}; rows[{y}][{x}] "
                    f"has {image.shape}"
                )
    return np.stack([image for row in grid for image in row]), len(grid), num_cols


def _row_images(row: Any, y: int) -> list[np.ndarray]:
    """The images of ``rows[y]`` (a sequence of images, or one ``(D, H, W, C)`` array)."""
    if backend_name(row) != "python":
        row = np.asarray(to_numpy(row))
        if row.ndim == 0:
            raise ValueError(f"rows[{y}] must be a sequence of images; got a 0-d array")
    elif not isinstance(row, Sequence):
        raise ValueError(f"rows[{y}] must be a sequence of images; got {type(row).__name__}")
    images = [
        _image_stack(image, f"rows[{y}][{x}]", ndim=3, layout="(H, W, C)")
        for x, image in enumerate(row)
    ]
    if not images:
        raise ValueError(f"rows[{y}] holds no images")
    return images


def _finite_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value!r}")
    return float(value)
