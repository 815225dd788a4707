"""Image input: every mode to RGB, safe opening of files and bytes with clear errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vitattn.images import MAX_PIXELS, open_image, to_rgb


def encoded(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_sixteen_bit_is_scaled_not_clipped():
    values = np.array([[0, 1000], [30000, 65535]], dtype=np.uint16)
    rgb = np.asarray(to_rgb(Image.fromarray(values, mode="I;16")))
    assert rgb.shape == (2, 2, 3) and rgb[0, 0, 0] == 0 and rgb[1, 1, 0] == 255
    assert 0 < rgb[0, 1, 0] < rgb[1, 0, 0] < 255  # PIL's convert("RGB") would clip all but the first to 255


def test_alpha_is_composited_on_white():
    rgba = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (255, 0, 0, 255))
    rgb = np.asarray(to_rgb(rgba))
    assert tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[0, 1]) == (255, 0, 0)


def test_palette_with_transparency_and_cmyk():
    p = Image.new("P", (3, 3), 0)
    p.putpalette([10, 20, 30] * 256)
    p.info["transparency"] = 0
    assert tuple(np.asarray(to_rgb(p))[0, 0]) == (255, 255, 255)
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    assert tuple(np.asarray(to_rgb(cmyk))[0, 0]) == (255, 0, 0)


def test_open_image_from_bytes_and_path(tmp_path):
    data = encoded(Image.new("RGB", (5, 3), (1, 2, 3)), "JPEG")
    assert open_image(data).size == (5, 3)
    (tmp_path / "a.jpg").write_bytes(data)
    assert open_image(tmp_path / "a.jpg").mode == "RGB"
    assert open_image(encoded(Image.new("L", (1, 1), 7))).size == (1, 1)  # 1 x 1 pixel works


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (6, 2), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    assert open_image(encoded(image, "JPEG", exif=exif)).size == (2, 6)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "is empty"),
        (b"this is not an image", "is not an image PIL can read"),
        (encoded(Image.new("RGB", (64, 64), "blue"), "JPEG")[:300], "truncated or corrupt"),
    ],
)
def test_bad_bytes_give_clear_errors(data, message):
    with pytest.raises(ValueError, match=message):
        open_image(data, name="upload")


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encoded(Image.new("1", (10_000, 6_000)), "PNG")  # 60 MP of zeros compresses to a few KB
    assert len(bomb) < 100_000 and MAX_PIXELS < 10_000 * 6_000
    with pytest.raises(ValueError, match="over the limit"):
        open_image(bomb, name="upload")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="file not found"):
        open_image(tmp_path / "nope.png")


def test_not_a_pil_image():
    with pytest.raises(TypeError, match="PIL"):
        to_rgb(np.zeros((2, 2, 3)))
