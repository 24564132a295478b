"""``xpnn.images`` (the assignment's ``image_utils``): images read from URLs and files, the
ImageNet normalisation, and the blur.

Oracles: pixels written by Pillow and read back (PNG is lossless), nearest-neighbour
upscaling by whole factors as ``np.repeat``, the normalisation's values worked out by hand,
and the blur as an explicit sum over the 3x3 window of a zero-padded image. The images are
served from 127.0.0.1 (the ``server`` fixture); nothing reaches outside.
"""

from __future__ import annotations

import builtins

import numpy as np
import pytest

import xpnn
from xpnn import images
from xpnn._backend import backend_name

# --------------------------------------------------------------------------- blur


def _blur_by_hand(x: np.ndarray) -> np.ndarray:
    kernel = np.array([[1, 2, 1], [2, 188, 2], [1, 2, 1]]) / 200.0
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros(x.shape)
    height, width = x.shape[2:]
    for di in range(3):
        for dj in range(3):
            out += kernel[di, dj] * padded[:, :, di : di + height, dj : dj + width]
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_blur_mixes_each_channel_with_its_neighbours_only(bk, rng, dtype):
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    x[0, 1] = 0.0  # a channel of exact zeros stays zero: channels do not mix
    out = images.blur_image(bk.asarray(x))
    assert backend_name(out) == bk.name and out.dtype == bk.asarray(x).dtype
    got = xpnn.to_numpy(out)
    np.testing.assert_allclose(got, _blur_by_hand(x), rtol=1e-6 if dtype == "float32" else 1e-12,
                               atol=1e-6 if dtype == "float32" else 0)  # fmt: skip
    assert not got[0, 1].any()


def test_the_blur_takes_integer_pixels_and_refuses_other_shapes(bk):
    x = np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    out = xpnn.to_numpy(images.blur_image(bk.asarray(x)))
    np.testing.assert_allclose(out, _blur_by_hand(x), rtol=1e-6)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 3, H, W\), got \(2, 4, 4, 4\)"):
        images.blur_image(bk.asarray(np.zeros((2, 4, 4, 4))))


# --------------------------------------------------------------------------- normalisation


def test_preprocess_subtracts_imagenet_s_mean_and_divides_by_its_std():
    img = np.array([[[0, 255, 51]]], dtype=np.uint8)
    got = images.preprocess_image(img)
    want = [(0 - 0.485) / 0.229, (1 - 0.456) / 0.224, (0.2 - 0.406) / 0.225]
    assert got.dtype == np.float32 and got.shape == (1, 1, 3)
    np.testing.assert_allclose(got[0, 0], want, rtol=1e-6)


def test_deprocess_undoes_it_into_uint8_pixels():
    # a zero input is the mean: 255 * (0.485, 0.456, 0.406) = 123.675, 116.28, 103.53
    np.testing.assert_array_equal(images.deprocess_image(np.zeros((1, 1, 3)))[0, 0],
                                  [123, 116, 103])  # fmt: skip
    clipped = images.deprocess_image(np.array([[[10.0, -10.0, 0.0]]]))
    np.testing.assert_array_equal(clipped[0, 0], [255, 0, 103])
    stretched = images.deprocess_image(np.array([[[0.0, 1.0, 2.0]]]), rescale=True)
    assert stretched.dtype == np.uint8 and stretched.min() == 0 and stretched.max() == 255
    flat = np.broadcast_to((np.float32(0.5) - images.SQUEEZENET_MEAN) / images.SQUEEZENET_STD,
                           (2, 2, 3))  # fmt: skip
    assert len(set((flat * images.SQUEEZENET_STD + images.SQUEEZENET_MEAN).ravel())) == 1
    np.testing.assert_array_equal(images.deprocess_image(flat, rescale=True), 0)  # not NaN
    pixels = np.random.default_rng(0).integers(0, 256, (4, 5, 3)).astype(np.uint8)
    back = images.deprocess_image(images.preprocess_image(pixels))
    assert np.abs(back.astype(int) - pixels).max() <= 1  # uint8 truncates, as the assignment


# --------------------------------------------------------------------------- reading


@pytest.fixture
def pil():
    return pytest.importorskip("PIL.Image", reason="reading images needs Pillow")


def _pixels(rng, shape):
    return rng.integers(0, 256, shape).astype(np.uint8)


def test_image_from_url_reads_rgb_grey_and_transparent_images(server, rng, pil):
    www, base, requests = server
    rgb, grey, rgba = _pixels(rng, (6, 9, 3)), _pixels(rng, (5, 4)), _pixels(rng, (3, 2, 4))
    pil.fromarray(rgb).save(www / "rgb.png")
    pil.fromarray(grey).save(www / "grey.png")
    pil.fromarray(rgba).save(www / "rgba.png")
    smooth = np.add.outer(np.arange(16), np.arange(16))[..., None] * np.array([8, 4, 2])
    pil.fromarray(smooth.astype(np.uint8)).save(www / "photo.jpg", quality=95)
    got = images.image_from_url(f"{base}/rgb.png")
    np.testing.assert_array_equal(got, rgb)
    got[0, 0] = 0  # a new, writable array, as imageio gave
    assert requests == ["/rgb.png"]
    requests.clear()
    np.testing.assert_array_equal(images.image_from_url(f"{base}/grey.png"), grey)
    np.testing.assert_array_equal(images.image_from_url(f"{base}/rgba.png"), rgba[..., :3])
    jpeg = images.image_from_url(f"{base}/photo.jpg")
    assert jpeg.dtype == np.uint8 and jpeg.shape == (16, 16, 3)
    assert np.abs(jpeg.astype(int) - smooth).max() <= 8  # lossy, but the same picture
    assert requests == ["/grey.png", "/rgba.png", "/photo.jpg"]


def test_image_from_url_gives_rgb_for_palette_and_cmyk_and_keeps_16_bit_grey(server, rng, pil):
    www, base, _ = server
    rgb = _pixels(rng, (4, 5, 3))
    pil.fromarray(rgb).quantize(colors=256).save(www / "palette.png")
    palette = pil.open(www / "palette.png")
    want = np.asarray(palette.convert("RGB"))  # the colours the palette indexes
    assert palette.mode == "P" and not np.array_equal(np.asarray(palette), want[..., 0])
    np.testing.assert_array_equal(images.image_from_url(f"{base}/palette.png"), want)
    pil.fromarray(rgb).convert("CMYK").save(www / "cmyk.jpg", quality=100)
    cmyk = images.image_from_url(f"{base}/cmyk.jpg")
    assert cmyk.shape == (4, 5, 3) and cmyk.dtype == np.uint8
    assert np.abs(cmyk.astype(int) - rgb).mean() < 12
    deep = rng.integers(0, 65536, (3, 4)).astype(np.uint16)
    pil.fromarray(deep).save(www / "deep.png")
    got = images.image_from_url(f"{base}/deep.png")
    assert got.dtype == np.uint16 and got.dtype.isnative
    np.testing.assert_array_equal(got, deep)


def test_image_from_url_gives_none_and_says_why(server, capsys, pil):
    www, base, _ = server
    (www / "notes.txt").write_text("not an image")
    assert images.image_from_url(f"{base}/gone.jpg") is None
    out = capsys.readouterr().out
    assert out.startswith("URL Error: ") and "ot found" in out and f"{base}/gone.jpg" in out
    assert images.image_from_url(f"{base}/notes.txt") is None
    out = capsys.readouterr().out.strip()
    assert out == f"Error loading image from URL:  no image Pillow can read {base}/notes.txt"
    assert images.image_from_url("no-scheme") is None
    assert "unknown url type" in capsys.readouterr().out


def test_every_pillow_mode_comes_back_as_grey_or_rgb_pixels(pil):
    """Modes a decoder may give (premultiplied alpha, palette with alpha, other colour
    spaces): grey or RGB, new and writable."""
    for mode, shape in (("La", (2, 3)), ("PA", (2, 3, 3)), ("LAB", (2, 3, 3)),
                        ("HSV", (2, 3, 3)), ("YCbCr", (2, 3, 3)), ("RGBa", (2, 3, 3)),
                        ("1", (2, 3)), ("I;16B", (2, 3))):  # fmt: skip
        pixels = images._pixels(pil.new(mode, (3, 2)))
        assert pixels.shape == shape and pixels.flags.writeable and pixels.dtype.isnative, mode


def test_load_image_scales_the_short_side_to_size(tmp_path, rng, pil):
    tall, wide = _pixels(rng, (3, 2, 3)), _pixels(rng, (2, 3))  # (H, W): 2 wide, 3 tall
    pil.fromarray(tall).save(tmp_path / "tall.png")
    pil.fromarray(wide).save(tmp_path / "wide.png")
    np.testing.assert_array_equal(images.load_image(tmp_path / "tall.png"), tall)
    twice = lambda a: np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)  # noqa: E731
    np.testing.assert_array_equal(images.load_image(tmp_path / "tall.png", size=4), twice(tall))
    np.testing.assert_array_equal(images.load_image(str(tmp_path / "wide.png"), 4), twice(wide))
    assert images.load_image(tmp_path / "wide.png", size=1).shape == (1, 2)  # 1.5: half up
    np.testing.assert_array_equal(images.load_image(tmp_path / "wide.png", np.int64(4)),
                                  twice(wide))  # fmt: skip
    for size in (0, -3, 2.5, True, "4"):
        with pytest.raises(ValueError, match="size must be a positive integer or None"):
            images.load_image(tmp_path / "wide.png", size=size)


def test_reading_without_pillow_says_how_to_install(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_pillow(name, *args, **kwargs):
        if name.split(".")[0] == "PIL":
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pillow)
    with pytest.raises(ImportError, match="reading images needs Pillow: pip install pillow"):
        images.load_image(tmp_path / "any.png")
