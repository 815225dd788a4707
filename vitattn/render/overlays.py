"""A map over its image: colours, expert boxes, selected cells, marks and the IoU mask."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from vitattn.boxes import Box, LabeledBox
from vitattn.render.canvas import banner, resize_bilinear, stack
from vitattn.render.colors import (
    BOX_COLORS,
    CELL_COLOR,
    LUTS,
    MARK_COLOR,
    MASK_COLOR,
    colorbar,
    hex_rgb,
    normalize,
    value_range,
)
from vitattn.render.fonts import font


def heat_image(
    heatmap: np.ndarray, size: tuple[int, int], lo: float | None = None, hi: float | None = None, cmap: str = "inferno"
) -> Image.Image:
    """The map stretched over ``size = (w, h)`` pixels in colour: an RGB image (``lo`` darkest, ``hi`` brightest).

    Scaling to 0..255 happens on the grid (it commutes with linear interpolation); the enlarged values are
    rounded to the 256 colours of ``LUT``.
    """
    lo, hi = _range(heatmap, lo, hi)
    scaled = normalize(heatmap, lo, hi) * np.float32(255.0) + np.float32(0.5)  # [gh, gw]; +0.5: round on truncation
    w, h = size
    if w < scaled.shape[1] or h < scaled.shape[0]:  # a picture smaller than the grid: average, then colour
        levels = Image.fromarray(scaled, mode="F").resize((w, h), Image.BOX)
    else:
        levels = Image.fromarray(resize_bilinear(scaled, (h, w)), mode="F")
    indexed = levels.convert("L")  # truncates to 0..255
    indexed.putpalette(LUTS[cmap].tobytes())
    return indexed.convert("RGB")


def overlay(
    image: Image.Image,
    heatmap: np.ndarray,
    opacity: float = 0.6,
    lo: float | None = None,
    hi: float | None = None,
    cmap: str = "inferno",
) -> Image.Image:
    """The map in colour over the image, ``opacity`` 0 (image only) .. 1 (map only); a new RGB image.

    Args:
        image: the picture (RGB); the map is stretched over all of it.
        heatmap: ``[gh, gw]`` map.
        opacity: weight of the colours in the blend.
        lo: value drawn darkest (default: the map's minimum).
        hi: value drawn brightest (default: the map's maximum).
        cmap: "inferno" or "diverging".
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must lie in [0, 1], got {opacity!r}")
    return Image.blend(image.convert("RGB"), heat_image(heatmap, image.size, lo, hi, cmap), float(opacity))


def _range(heatmap: np.ndarray, lo: float | None, hi: float | None) -> tuple[float, float]:
    if lo is None or hi is None:
        return value_range(heatmap)
    return float(lo), float(hi)


def _box_of(item: LabeledBox | Sequence[float]) -> tuple[Box, str]:
    if isinstance(item, LabeledBox):
        return tuple(float(v) for v in item.box), item.label
    x0, y0, x1, y1 = (float(v) for v in item)
    return (x0, y0, x1, y1), ""


def draw_boxes(
    picture: Image.Image, boxes: Sequence[LabeledBox | Sequence[float]], *, labels: bool = True, start: int = 0
) -> Image.Image:
    """Outlines each box (a colour per box, in turn) with its label at the top-left corner; a new image.

    Boxes are labelled ``"<index>: <label>"`` so a label that occurs twice can still be told apart; indices count
    from ``start`` (one box of a list drawn alone keeps its number and colour).
    """
    out = picture.convert("RGB")  # convert copies, even from RGB
    layer = box_layer(out.size, tuple(_box_of(b) for b in boxes), labels, start)
    out.paste(layer, (0, 0), layer)
    return out


@lru_cache(maxsize=64)
def box_layer(
    size: tuple[int, int], boxes: tuple[tuple[Box, str], ...], labels: bool = True, start: int = 0
) -> Image.Image:
    """Box outlines and labels on a transparent ``size`` RGBA layer.

    Cached (a picture's boxes do not change between views), so the returned layer is shared: paste it, do not
    draw on it.
    """
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = size
    width = max(2, round(max(w, h) / 300))
    text_font = font(max(11, round(max(w, h) / 55)))
    rects = []
    for i, ((x0, y0, x1, y1), _) in enumerate(boxes, start=start):
        color = (*hex_rgb(BOX_COLORS[i % len(BOX_COLORS)]), 255)
        rect = (x0 * w, y0 * h, max(x0 * w, x1 * w - 1), max(y0 * h, y1 * h - 1))
        draw.rectangle(rect, outline=(0, 0, 0, 255), width=width + 2)
        draw.rectangle(rect, outline=color, width=width)
        rects.append((rect, color))
    if labels:  # after every outline, so no outline crosses a tag; each tag avoids the tags placed before it
        taken: list[tuple[float, float, float, float]] = []
        for i, ((rect, color), (_, label)) in enumerate(zip(rects, boxes, strict=True), start=start):
            _label(draw, f"{i}: {label}" if label else str(i), rect, color, text_font, (w, h), taken)
    return layer


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _label(draw: ImageDraw.ImageDraw, text: str, rect, color, text_font, size: tuple[int, int], taken: list) -> None:
    """Text on a filled tag near the box's top-left corner, inside the picture, clear of the tags in ``taken``.

    Tries above the corner, inside it, below the box, then inside the bottom-left corner; where all of those are
    taken, moves the first down (then up) a tag height at a time until it is clear. Appends the tag to ``taken``.
    """
    left, top, right, bottom = draw.textbbox((0, 0), text, font=text_font)
    tw, th = right - left + 6, bottom - top + 4
    x = min(max(0, rect[0]), max(0, size[0] - tw))
    ys = [rect[1] - th - 1, rect[1], rect[3] + 1, rect[3] - th]
    ys += [rect[1] + k * (th + 1) for k in range(1, 40)] + [rect[1] - k * (th + 1) for k in range(2, 40)]
    fits = [y for y in ys if 0 <= y <= size[1] - th]
    candidates = [(x, y, x + tw, y + th) for y in fits] or [(x, 0, x + tw, th)]
    tag = next((c for c in candidates if not any(_overlaps(c, t) for t in taken)), candidates[0])
    taken.append(tag)
    draw.rectangle(tag, fill=color)
    draw.text((tag[0] + 3 - left, tag[1] + 2 - top), text, fill=(255, 255, 255, 255), font=text_font)


def outline_cells(picture: Image.Image, cells: np.ndarray, color: str = CELL_COLOR) -> Image.Image:
    """Outlines the border of the selected grid cells (``[gh, gw]`` bool, covering the picture); a new image."""
    mask = np.asarray(cells, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"cells must be a 2-D [gh, gw] bool array, got shape {mask.shape}")
    out = picture.convert("RGB")
    draw = ImageDraw.Draw(out)
    w, h = out.size
    gh, gw = mask.shape
    xs = np.round(np.arange(gw + 1) * w / gw).astype(int)  # [gw + 1] cell edges in pixels
    ys = np.round(np.arange(gh + 1) * h / gh).astype(int)  # [gh + 1]
    padded = np.pad(mask, 1)  # [gh + 2, gw + 2], False around
    rgb, width = hex_rgb(color), max(2, round(max(w, h) / 250))
    for r, c in zip(*np.nonzero(mask), strict=True):
        x0, x1, y0, y1 = xs[c], min(xs[c + 1], w - 1), ys[r], min(ys[r + 1], h - 1)
        if not padded[r, c + 1]:  # no selected cell above
            draw.line((x0, y0, x1, y0), fill=rgb, width=width)
        if not padded[r + 2, c + 1]:
            draw.line((x0, y1, x1, y1), fill=rgb, width=width)
        if not padded[r + 1, c]:
            draw.line((x0, y0, x0, y1), fill=rgb, width=width)
        if not padded[r + 1, c + 2]:
            draw.line((x1, y0, x1, y1), fill=rgb, width=width)
    return out


def draw_marks(picture: Image.Image, points: Sequence[Sequence[float]], color: str = MARK_COLOR) -> Image.Image:
    """A crosshair in a ring at each normalized ``(x, y)`` point (a clicked point, a first corner); a new image."""
    out = picture.convert("RGB")
    draw = ImageDraw.Draw(out)
    w, h = out.size
    r, width = max(6, round(max(w, h) / 60)), max(2, round(max(w, h) / 300))
    for x, y in points:
        cx, cy = x * w, y * h
        for ink, extra in (((0, 0, 0), 2), (hex_rgb(color), 0)):
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=ink, width=width + extra)
            draw.line((cx - 2 * r, cy, cx - r / 2, cy), fill=ink, width=width + extra)
            draw.line((cx + r / 2, cy, cx + 2 * r, cy), fill=ink, width=width + extra)
            draw.line((cx, cy - 2 * r, cx, cy - r / 2), fill=ink, width=width + extra)
            draw.line((cx, cy + r / 2, cx, cy + 2 * r), fill=ink, width=width + extra)
    return out


def top_mask(heatmap: np.ndarray, percentile: float, resolution: int = 224) -> np.ndarray:
    """The ``[R, R]`` bool mask an IoU at ``percentile`` keeps: the map upsampled as ``vitattn.metrics`` does, and
    its ``top_k_count`` highest pixels. Pixels tied with the last kept one are all drawn (the IoU counts them with
    their expected share), so on a map with flat regions the mask can be larger than k."""
    from vitattn.metrics import top_k_count, upsample

    up = upsample(np.asarray(heatmap, dtype=np.float32), resolution)  # [R, R]
    k = top_k_count(up.size, percentile)
    threshold = np.partition(up.ravel(), up.size - k)[up.size - k]
    return up >= threshold


def outline_mask(picture: Image.Image, mask: np.ndarray, color: str = MASK_COLOR) -> Image.Image:
    """The boundary of a ``[R, R']`` bool mask (stretched over the picture) drawn in ``color``, and the pixels
    outside it dimmed, so the kept region reads at a glance; a new image."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be a 2-D bool array, got shape {m.shape}")
    out = picture.convert("RGB")
    inside = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize(out.size, Image.NEAREST)) > 127  # [h, w]
    rgb = np.asarray(out, dtype=np.uint8).copy()  # [h, w, 3]
    rgb[~inside] = (rgb[~inside] * 0.45).astype(np.uint8)
    edge = inside & ~_eroded(inside, max(1, round(max(out.size) / 300)))
    rgb[edge] = hex_rgb(color)
    return Image.fromarray(rgb)


def _eroded(mask: np.ndarray, steps: int) -> np.ndarray:
    """``mask`` shrunk by ``steps`` pixels (4-neighbourhood), the picture's border counting as outside."""
    out = mask.copy()
    for _ in range(steps):
        p = np.pad(out, 1)
        out = out & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return out


def map_view(
    image: Image.Image,
    heatmap: np.ndarray,
    *,
    opacity: float = 0.6,
    boxes: Sequence[LabeledBox | Sequence[float]] = (),
    labels: bool = True,
    cells: np.ndarray | None = None,
    title: str = "",
    warning: str = "",
    bar_label: str = "",
    scale: tuple[float, float] | None = None,
    cmap: str = "inferno",
    marks: Sequence[Sequence[float]] = (),
    mask: np.ndarray | None = None,
    start: int = 0,
) -> Image.Image:
    """The full view of one map: a title band, the overlay with boxes (and selected cells), a colour bar.

    Args:
        image: the picture, already at display size (see ``fit``).
        heatmap: ``[gh, gw]`` map.
        opacity: weight of the map colours, 0..1.
        boxes: boxes to outline.
        labels: label the boxes ("<index>: <label>").
        cells: ``[gh', gw']`` bool cells to outline (the patches a similarity query selected).
        title: text of the title band.
        warning: red text in the title band (e.g. "random weights").
        bar_label: what the colour bar measures.
        scale: ``(lo, hi)`` of the colours (shared with other pictures); default: the map's own range.
        cmap: "inferno", or "diverging" for signed maps.
        marks: normalized ``(x, y)`` points to mark (a clicked point, a box's first corner).
        mask: ``[R, R']`` bool mask to outline (the thresholded map an IoU is computed on).
        start: the number of the first box (see ``draw_boxes``).
    """
    lo, hi = scale if scale is not None else value_range(heatmap)
    picture = overlay(image, heatmap, opacity, lo, hi, cmap)
    if mask is not None:
        picture = outline_mask(picture, mask)
    if boxes:
        picture = draw_boxes(picture, boxes, labels=labels, start=start)
    if cells is not None:
        picture = outline_cells(picture, cells)
    if marks:
        picture = draw_marks(picture, marks)
    parts = [banner(picture.width, title, warning)] if title or warning else []
    return stack([*parts, picture, colorbar(picture.width, lo, hi, bar_label, cmap)])
