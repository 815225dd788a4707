"""Fonts, fitting, resampling, and stacking pictures with title bands."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from vitattn.render.colors import WARNING_COLOR, hex_rgb
from vitattn.render.fonts import font

MAX_SIDE = 768  # pictures are drawn at most this many pixels on their long side

MIN_SIDE = 448  # and small images are enlarged to this, so titles and colour bars have room
BUTTON_ROOM = 112  # right of a title band's warning: the page's download and fullscreen buttons cover the corner (about
# 64 CSS px, over a picture shown at down to 2/3 of its size: "RANDOM WEIG" was left at 72)


def fit(image: Image.Image, max_side: int = MAX_SIDE, min_side: int = 0) -> Image.Image:
    """The image scaled so its long side lies in ``[min_side, max_side]``; the same object if it does already.

    Shrinking averages (bilinear with a reducing gap); enlarging a small image for display is bilinear.
    """
    w, h = image.size
    long = max(w, h)
    if long > max_side:
        scale = max_side / long
    elif long < min_side:
        scale = min_side / long
    else:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.BILINEAR, reducing_gap=2.0 if scale < 1 else None)


def resize_bilinear(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling of ``[gh, gw]`` values to ``size = (h, w)``: ``[h, w]`` float32.

    Same convention as ``vitattn.metrics.upsample`` (which is square only): output pixel ``i`` samples
    ``(i + 0.5) * n_in / n_out - 0.5``, clamped to the grid, so the map covers the whole picture. PIL's float
    ("F") resampling computes exactly this when enlarging (tests check it against ``upsample``), in C.
    """
    m = np.asarray(values, dtype=np.float32)  # [gh, gw]
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"values must be a non-empty 2-D [gh, gw] array, got shape {m.shape}")
    if size[0] < m.shape[0] or size[1] < m.shape[1]:
        raise ValueError(f"resize_bilinear enlarges only: {m.shape} -> {size}")
    return np.asarray(Image.fromarray(np.ascontiguousarray(m), mode="F").resize(size[::-1], Image.BILINEAR))


@lru_cache(maxsize=512)
def banner(width: int, text: str, warning: str = "") -> Image.Image:
    """A white band with ``text`` and, when given, a ``warning`` in red on the right (e.g. "random weights").

    Cached like ``colorbar``: paste it, do not draw on it.
    """
    text_font = font(14)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    room = width - 12 - measure.textlength(text, font=text_font)
    right = BUTTON_ROOM if width >= 3 * BUTTON_ROOM else 6  # the page's download/fullscreen buttons sit there
    two_lines = bool(warning and text) and measure.textlength(warning, font=text_font) + right + 6 > room
    band = Image.new("RGB", (width, 44 if two_lines else 24), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    draw.text((6, 4), text, fill=(0, 0, 0), font=text_font)
    if warning:
        x = max(6, width - right - draw.textlength(warning, font=text_font))
        draw.text((x, 24 if two_lines else 4), warning, fill=hex_rgb(WARNING_COLOR), font=text_font)
    return band


def stack(pictures: Sequence[Image.Image]) -> Image.Image:
    """Pictures one above the other, left-aligned, on white; a picture's tile layout (``info["tiles"]``, see
    ``render.tiles``) is kept, moved down by what lies above it."""
    width = max(p.width for p in pictures)
    out = Image.new("RGB", (width, sum(p.height for p in pictures)), (255, 255, 255))
    y = 0
    for p in pictures:
        out.paste(p, (0, y))
        if "tiles" in p.info:
            out.info["tiles"] = [[x0, y0 + y, x1, y1 + y] for x0, y0, x1, y1 in p.info["tiles"]]
        y += p.height
    return out


WARNING_RED = (214, 39, 40)


def side_by_side(pictures: Sequence[Image.Image], gap: int = 8) -> Image.Image:
    """Pictures in one row, top-aligned, on white."""
    height = max(p.height for p in pictures)
    out = Image.new("RGB", (sum(p.width for p in pictures) + gap * (len(pictures) - 1), height), (255, 255, 255))
    x = 0
    for p in pictures:
        out.paste(p, (x, 0))
        x += p.width + gap
    return out


def text_band(width: int, text: str, color: tuple[int, int, int] = (0, 0, 0), size: int = 13) -> Image.Image:
    """``text`` on white, left-aligned, wrapped at word boundaries to fit ``width`` pixels."""
    text_font = font(size)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and measure.textlength(trial, font=text_font) > width - 12:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    band = Image.new("RGB", (width, 6 + (size + 5) * len(lines)), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    for i, words in enumerate(lines):
        draw.text((6, 3 + (size + 5) * i), words, fill=color, font=text_font)
    return band


def stack_warning(picture: Image.Image, warning: str) -> Image.Image:
    """``picture`` under a band with ``warning`` in red on the left (e.g. "random weights: not a result"), where the
    app's picture buttons (top right) do not cover it."""
    return stack([text_band(picture.width, warning, WARNING_RED), picture]) if warning else picture
