"""Colour maps, value scaling and colour bars: the one place a value becomes a colour."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from vitattn.render.fonts import font

# "inferno" (Smith & van der Walt's perceptually uniform map, as in matplotlib) at 9 evenly spaced stops.
INFERNO = ("#000004", "#1f0c48", "#550f6d", "#88226a", "#ba3655", "#e35933", "#f98e09", "#f9cb35", "#fcffa4")


# Diverging blue-white-red (ColorBrewer RdBu, reversed) for signed maps such as a difference B - A on a symmetric scale.
DIVERGING = ("#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b")


# Box outline colours, one per box in turn (Tableau 10).
BOX_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")


CELL_COLOR = "#00e5ff"  # outline of selected patches


WARNING_COLOR = "#d62728"


MARK_COLOR = "#00e5ff"  # clicked points and a box's first corner


MASK_COLOR = "#00ff66"  # outline of the thresholded (top p%) mask


BAR_HEIGHT = 14


def hex_rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))


def _lut(stops: Sequence[str]) -> np.ndarray:
    """``[256, 3]`` uint8 colours, linear between evenly spaced ``stops``."""
    anchors = np.array([hex_rgb(c) for c in stops], dtype=np.float64)  # [S, 3]
    x = np.linspace(0.0, 1.0, len(stops))  # [S]
    t = np.linspace(0.0, 1.0, 256)  # [256]
    return np.stack([np.interp(t, x, anchors[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)


LUT = _lut(INFERNO)


LUTS = {"inferno": LUT, "diverging": _lut(DIVERGING)}


def value_range(values: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of the finite values; ValueError when there are none."""
    m = np.asarray(values, dtype=np.float64)
    finite = m[np.isfinite(m)]
    if finite.size == 0:
        raise ValueError("the map has no finite values to draw")
    return float(finite.min()), float(finite.max())


def normalize(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Values scaled to [0, 1] by ``lo``..``hi`` (default: their own range), clipped; a flat map is all 0.

    Non-finite values become 0. Returns a new float32 array.
    """
    m = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if lo is None or hi is None:
        lo, hi = value_range(values)
    if hi <= lo:
        return np.zeros_like(m)
    return np.clip((m - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0)


def colorize(values01: np.ndarray, cmap: str = "inferno") -> np.ndarray:
    """``[...]`` values in [0, 1] -> ``[..., 3]`` uint8 colours of ``cmap`` ("inferno" or "diverging"); values are
    clipped to [0, 1] and NaN gets the lowest colour."""
    if cmap not in LUTS:
        raise ValueError(f"cmap must be one of {sorted(LUTS)}, got {cmap!r}")
    v = np.nan_to_num(np.clip(np.asarray(values01, dtype=np.float32), 0.0, 1.0), nan=0.0)
    return LUTS[cmap][np.rint(v * 255.0).astype(np.uint8)]  # [..., 3]


def number(value: float) -> str:
    """A value with 3 significant digits (``0.00383``, ``12.3``, ``1.23e+04``)."""
    return f"{value:.3g}"


def _numbers(lo: float, hi: float) -> tuple[str, str]:
    """The ends of a colour bar with 3 significant digits; when they read the same, the right end says how much
    larger it is (``"0.0476"``, ``"0.0476 + 2.2e-05"``) rather than showing 7 digits."""
    a, b = number(lo), number(hi)
    if hi == lo:
        b = f"{a} (flat map)"
    elif a == b:
        b = f"{a} + {number(hi - lo)}"
    return a, b


@lru_cache(maxsize=16)
def _ramp(width: int, cmap: str = "inferno") -> Image.Image:
    """The colour ramp of ``cmap``, ``width`` pixels wide and ``BAR_HEIGHT`` high (shared: paste it, do not draw)."""
    ramp = np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (BAR_HEIGHT, 1))  # [BAR_HEIGHT, width]
    return Image.fromarray(colorize(ramp, cmap))


@lru_cache(maxsize=512)
def colorbar(width: int, lo: float, hi: float, label: str = "", cmap: str = "inferno") -> Image.Image:
    """A horizontal colour bar ``width`` pixels wide from ``lo`` (left) to ``hi`` (right), with end values.

    Cached (drawing text is a third of a view's time), so the picture is shared: paste it, do not draw on it.
    """
    text_font = font(12)
    left, right = _numbers(lo, hi)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    ends = measure.textlength(left, font=text_font) + measure.textlength(right, font=text_font)
    # the label goes on its own line when it would meet the end values, or the 0 in the middle of a diverging bar
    below = bool(label) and (cmap == "diverging" or ends + measure.textlength(label, font=text_font) + 40 > width)
    bar = Image.new("RGB", (width, BAR_HEIGHT + 22 + (16 if below else 0)), (255, 255, 255))
    bar.paste(_ramp(max(1, width - 16), cmap), (8, 2))
    draw = ImageDraw.Draw(bar)
    y = BAR_HEIGHT + 4
    draw.text((8, y), left, fill=(0, 0, 0), font=text_font)
    draw.text((width - 8 - draw.textlength(right, font=text_font), y), right, fill=(0, 0, 0), font=text_font)
    if cmap == "diverging":  # the middle of a symmetric diverging bar is 0
        draw.text((width / 2 - draw.textlength("0", font=text_font) / 2, y), "0", fill=(0, 0, 0), font=text_font)
    if label:
        x = max(4, (width - draw.textlength(label, font=text_font)) / 2)
        draw.text((x, y + (16 if below else 0)), label, fill=(80, 80, 80), font=text_font)
    return bar


def scaled(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``values`` mapped to [0, 1] by ``(v - lo) / (hi - lo)``, clipped; 0.5 everywhere when ``hi == lo``."""
    v = np.asarray(values, dtype=np.float64)
    if not hi > lo:
        return np.full(v.shape, 0.5)
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0)


def shared_range(maps: Sequence[np.ndarray]) -> tuple[float, float]:
    """The smallest and largest finite value over all ``maps`` (one colour scale for all of them)."""
    finite = [np.asarray(m, dtype=np.float64)[np.isfinite(m)] for m in maps]
    finite = [f for f in finite if f.size]
    if not finite:
        return 0.0, 1.0
    return float(min(f.min() for f in finite)), float(max(f.max() for f in finite))
