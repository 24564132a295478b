"""``xpnn.vis`` (``xpnn.cs231n.vis_utils``): the assignment's image grids, against grids
written by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xpnn
from xpnn.vis import vis_grid, vis_nn, visualize_grid


def _images(*images) -> np.ndarray:
    """One-channel images from nested lists: ``(N, H, W, 1)`` float64."""
    return np.array(images, dtype=np.float64)[..., None]


# --------------------------------------------------------------------------- visualize_grid


def test_visualize_grid_by_hand():
    """3 images of 2x2 in a 2x2 grid, one blank pixel between them, each scaled to 0..255."""
    xs = _images(
        [[0, 1], [2, 5]],  # min 0, max 5: 255 * x / 5
        [[10, 10], [10, 20]],  # min 10, max 20: 255 * (x - 10) / 10
        [[-1, 1], [3, 1]],  # min -1, max 3: 255 * (x + 1) / 4
    )
    expected = [
        [0, 51, 0, 0, 0],
        [102, 255, 0, 0, 255],
        [0, 0, 0, 0, 0],  # the padding row
        [0, 127.5, 0, 0, 0],  # the third image, then an empty cell
        [255, 127.5, 0, 0, 0],
    ]
    grid = visualize_grid(xs)
    assert isinstance(grid, np.ndarray) and grid.dtype == np.float64
    np.testing.assert_array_equal(grid, np.array(expected)[..., None])


def test_visualize_grid_scales_the_channels_of_an_image_together():
    xs = np.array([[[[0, 2, 4]]], [[[7, 7, 9]]]], dtype=np.float64)  # (2, 1, 1, 3)
    grid = visualize_grid(xs, ubound=10, padding=0)
    expected = [[[0, 5, 10], [0, 0, 10]], [[0, 0, 0], [0, 0, 0]]]
    np.testing.assert_array_equal(grid, expected)


def test_visualize_grid_padding_and_placement():
    """5 images of 2x3 in a 3x3 grid with 3 blank pixels between them."""
    ramp = np.arange(6, dtype=np.float64).reshape(2, 3)  # scaled: 51 * value
    xs = np.stack([ramp + 100 * k for k in range(5)])[..., None]
    grid = visualize_grid(xs, padding=3)[..., 0]
    assert grid.shape == (2 * 3 + 3 * 2, 3 * 3 + 3 * 2)  # (12, 15)
    image_rows = [0, 1, 5, 6, 10, 11]
    image_cols = [0, 1, 2, 6, 7, 8, 12, 13, 14]
    gaps = np.ones_like(grid, dtype=bool)
    gaps[np.ix_(image_rows, image_cols)] = False
    assert not grid[gaps].any()
    tile = [[0, 51, 102], [153, 204, 255]]
    for top, left in [(0, 0), (0, 6), (0, 12), (5, 0), (5, 6)]:  # images 0..4, row by row
        np.testing.assert_array_equal(grid[top : top + 2, left : left + 3], tile)
    np.testing.assert_array_equal(grid[10:12, :], 0)  # the third row of cells is empty


@pytest.mark.parametrize(("n", "side"), [(1, 1), (2, 2), (4, 2), (5, 3), (9, 3), (10, 4)])
def test_visualize_grid_side_is_ceil_sqrt_n(n, side):
    grid = visualize_grid(np.ones((n, 2, 2, 1)) * np.arange(4).reshape(1, 2, 2, 1), padding=2)
    assert grid.shape == (2 * side + 2 * (side - 1), 2 * side + 2 * (side - 1), 1)


def test_visualize_grid_single_image_has_no_padding():
    grid = visualize_grid(_images([[1, 3]]), ubound=1.0, padding=5)
    np.testing.assert_array_equal(grid[..., 0], [[0, 1]])


def test_a_constant_image_comes_out_as_zeros():
    xs = _images([[4, 4], [4, 4]], [[0, 2], [1, 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grid = visualize_grid(xs, padding=0)[..., 0]
    np.testing.assert_array_equal(grid[:2, :2], 0)
    np.testing.assert_array_equal(grid[:2, 2:], [[0, 255], [127.5, 255]])


def test_visualize_grid_of_integer_images_is_float():
    xs = np.array([[[[-100]], [[100]]]], dtype=np.int8)  # (1, 2, 1, 1); int8 would wrap
    grid = visualize_grid(xs, padding=0)
    np.testing.assert_array_equal(grid[..., 0], [[0], [255]])
    uint8 = visualize_grid(np.array([[[[0], [255]]]], dtype=np.uint8), ubound=1)
    assert uint8.dtype == np.float64 and uint8.max() == 1


def test_the_notebook_cell_on_conv_weights():
    """ConvolutionalNetworks.ipynb: visualize_grid(W1.transpose(0, 2, 3, 1)).astype('uint8')."""
    np.random.seed(0)  # noqa: NPY002  (the models draw from NumPy's global RNG)
    model = xpnn.ThreeLayerConvNet(num_filters=5, filter_size=3, hidden_dim=4)
    grid = visualize_grid(model.params["W1"].transpose(0, 2, 3, 1)).astype("uint8")
    assert grid.shape == (3 * 3 + 2, 3 * 3 + 2, 3) and grid.dtype == np.uint8
    for k in range(5):  # every filter spans 0..255
        top, left = divmod(k, 3)
        cell = grid[4 * top : 4 * top + 3, 4 * left : 4 * left + 3]
        assert cell.min() == 0 and cell.max() >= 254  # 255 * s / s may round just below 255


# --------------------------------------------------------------------------- vis_grid


def test_vis_grid_by_hand():
    """3 images of 1x2, a gap after every image; the whole grid scaled from [-3, 9]."""
    xs = np.array([[[1, 3]], [[5, 9]], [[-3, 1]]], dtype=np.float32)[..., None]
    third, half = 4 / 12, 6 / 12
    expected = [
        [third, half, 0, 8 / 12, 1, 0],
        [0, 0, 0, 0, 0, 0],
        [0, third, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
    grid = vis_grid(xs)
    assert isinstance(grid, np.ndarray) and grid.dtype == np.float32  # the input's dtype
    np.testing.assert_allclose(grid[..., 0], expected, rtol=1e-7, atol=0)


def test_vis_grid_of_integers_is_float64_and_constant_is_zeros():
    grid = vis_grid(np.array([[[[2]]], [[[6]]]], dtype=np.uint8))
    assert grid.dtype == np.float64
    np.testing.assert_array_equal(grid[..., 0], [[0, 0, 1, 0], [0, 0, 0, 0]] + [[0] * 4] * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(vis_grid(np.full((2, 2, 2, 3), 7.0)), 0)


# --------------------------------------------------------------------------- vis_nn


def _pixel(value: float) -> np.ndarray:
    return np.full((1, 1, 1), value)


def test_vis_nn_by_hand():
    """Gaps hold 1 before the grid is scaled from its [min, max] = [-1, 7]: 0.25 after."""
    rows = [[_pixel(3), _pixel(5)], [_pixel(7), _pixel(-1)]]
    expected = [
        [0.5, 0.25, 0.75, 0.25],
        [0.25, 0.25, 0.25, 0.25],
        [1, 0.25, 0, 0.25],
        [0.25, 0.25, 0.25, 0.25],
    ]
    np.testing.assert_array_equal(vis_nn(rows)[..., 0], expected)


def test_vis_nn_of_images_above_one_leaves_the_gaps_at_zero():
    rows = [[_images([[10, 20]])[0], _images([[30, 50]])[0], _images([[2, 3]])[0]]]
    expected = [[9 / 49, 19 / 49, 0, 29 / 49, 1, 0, 1 / 49, 2 / 49, 0], [0] * 9]
    np.testing.assert_allclose(vis_nn(rows)[..., 0], expected, rtol=1e-15, atol=0)


def test_vis_nn_takes_a_five_dimensional_array():
    rows = np.arange(2 * 3 * 2 * 2 * 1, dtype=np.float64).reshape(2, 3, 2, 2, 1)
    as_lists = [[rows[y, x] for x in range(3)] for y in range(2)]
    np.testing.assert_array_equal(vis_nn(rows), vis_nn(as_lists))
    assert vis_nn(rows).shape == (2 * 2 + 2, 3 * 2 + 3, 1)
    np.testing.assert_array_equal(vis_nn(list(rows)), vis_nn(as_lists))  # rows as arrays


# --------------------------------------------------------------------------- backends


def _backend_or_skip(name: str) -> None:
    try:
        xpnn.get_namespace(name)
    except (ImportError, RuntimeError) as err:
        pytest.skip(f"{name} is not usable here: {err}")


@pytest.mark.parametrize("name", ["numpy", "array_api_strict", "torch", "jax", "cupy"])
def test_every_backend_gives_the_numpy_result(name):
    _backend_or_skip(name)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((5, 3, 4, 3))
    moved = xpnn.to_backend(xs, name)
    xs = xpnn.to_numpy(moved)  # JAX without x64 holds float32
    rows = [[moved[0, ...], moved[1, ...]], [moved[2, ...], moved[3, ...]]]
    expected_rows = [[xs[0], xs[1]], [xs[2], xs[3]]]
    for got, want in [
        (visualize_grid(moved, padding=2), visualize_grid(xs, padding=2)),
        (vis_grid(moved), vis_grid(xs)),
        (vis_nn(rows), vis_nn(expected_rows)),
    ]:
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, want)


def test_the_backend_under_test(bk):
    xs = np.arange(2 * 2 * 2 * 1, dtype=np.float64).reshape(2, 2, 2, 1)
    grid = visualize_grid(bk.asarray(xs), ubound=3.0, padding=0)
    expected = [[0, 1, 0, 1], [2, 3, 2, 3], [0, 0, 0, 0], [0, 0, 0, 0]]  # 2 images: 2x2 cells
    np.testing.assert_array_equal(grid[..., 0], expected)


def test_a_torch_parameter_that_requires_grad():
    torch = pytest.importorskip("torch")
    weight = torch.nn.Parameter(torch.tensor([[[[0.0], [2.0]]]]))
    np.testing.assert_array_equal(visualize_grid(weight, ubound=1)[..., 0], [[0, 1]])


def test_nested_lists():
    np.testing.assert_array_equal(visualize_grid([[[[0], [4]]]], ubound=2)[..., 0], [[0, 2]])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: visualize_grid(np.ones((2, 2, 2))), ValueError, r"Xs must be a 4-D array"),
        (lambda: visualize_grid(np.ones((0, 2, 2, 1))), ValueError, "at least one pixel"),
        (lambda: vis_grid(np.ones((2, 0, 2, 1))), ValueError, "at least one pixel"),
        (lambda: vis_grid(np.ones((2, 2, 2, 1), complex)), TypeError, "real numbers"),
        (lambda: visualize_grid(np.array([[[["a"]]]])), TypeError, "real numbers"),
        (lambda: visualize_grid(np.ones((1, 1, 1, 1)), padding=-1), ValueError, "padding"),
        (lambda: visualize_grid(np.ones((1, 1, 1, 1)), padding=1.5), TypeError, "padding"),
        (lambda: visualize_grid(np.ones((1, 1, 1, 1)), padding=True), TypeError, "padding"),
        (lambda: visualize_grid(np.ones((1, 1, 1, 1)), ubound=np.inf), ValueError, "ubound"),
        (lambda: visualize_grid(np.ones((1, 1, 1, 1)), ubound="255"), TypeError, "ubound"),
        (lambda: vis_nn([]), ValueError, "non-empty sequence"),
        (lambda: vis_nn([[]]), ValueError, r"rows\[0\] holds no images"),
        (lambda: vis_nn([_pixel(1)]), ValueError, r"rows\[0\]\[0\] must be a 3-D array"),
        (lambda: vis_nn([[_pixel(1)], 5]), ValueError, r"rows\[1\] must be a sequence"),
        (
            lambda: vis_nn([[_pixel(1), _pixel(2)], [_pixel(3)]]),
            ValueError,
            r"rows\[0\] holds 2, rows\[1\] holds 1",
        ),
        (
            lambda: vis_nn([[_pixel(1)], [np.ones((2, 1, 1))]]),
            ValueError,
            r"rows\[1\]\[0\] has \(2, 1, 1\)",
        ),
        (lambda: vis_nn(np.ones((2, 2, 2, 1))), ValueError, "rows must be a 5-D array"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
