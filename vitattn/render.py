"""Pictures of maps: a colormap overlay on the image, labelled box outlines, a colour bar, strips and grids.

Numpy and PIL only. A map ``[gh, gw]`` covers the whole image (the model input is the resized image, no crop), so
it is stretched over the picture with bilinear interpolation of its values (half-pixel centres, edge-clamped, as
``vitattn.metrics.upsample``) before colouring. Each map is scaled to its own range for display (``normalize``);
the colour bar names that range. Boxes are normalized ``(x0, y0, x1, y1)`` (``vitattn.boxes``).

    from vitattn import render
    picture = render.map_view(image, heatmap, opacity=0.6, boxes=record.boxes, title="dinov2 · cls · layer 11")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vitattn.boxes import Box, LabeledBox

# "inferno" (Smith & van der Walt's perceptually uniform map, as in matplotlib) at 9 evenly spaced stops.
INFERNO = ("#000004", "#1f0c48", "#550f6d", "#88226a", "#ba3655", "#e35933", "#f98e09", "#f9cb35", "#fcffa4")
# Box outline colours, one per box in turn (Tableau 10).
BOX_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
CELL_COLOR = "#00e5ff"  # outline of selected patches
WARNING_COLOR = "#d62728"
MAX_SIDE = 768  # pictures are drawn at most this many pixels on their long side
MIN_SIDE = 448  # and small images are enlarged to this, so titles and colour bars have room
BAR_HEIGHT = 14
MIN_TILES_WIDTH = 480  # a strip of one or two tiles is still this wide, so its colour bar's label fits


def _hex(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))


def _lut(stops: Sequence[str]) -> np.ndarray:
    """``[256, 3]`` uint8 colours, linear between evenly spaced ``stops``."""
    anchors = np.array([_hex(c) for c in stops], dtype=np.float64)  # [S, 3]
    x = np.linspace(0.0, 1.0, len(stops))  # [S]
    t = np.linspace(0.0, 1.0, 256)  # [256]
    return np.stack([np.interp(t, x, anchors[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)


LUT = _lut(INFERNO)
# Diverging blue-white-red (ColorBrewer RdBu, reversed) for signed maps such as a difference B - A on a symmetric scale.
DIVERGING = ("#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b")
LUTS = {"inferno": LUT, "diverging": _lut(DIVERGING)}
MARK_COLOR = "#00e5ff"  # clicked points and a box's first corner
MASK_COLOR = "#00ff66"  # outline of the thresholded (top p%) mask


@lru_cache(maxsize=8)
def font(size: int = 14) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` pixels."""
    return ImageFont.load_default(size=size)


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
    """``[h, w]`` values in [0, 1] -> ``[h, w, 3]`` uint8 colours of ``cmap`` ("inferno" or "diverging")."""
    idx = np.clip(np.rint(np.asarray(values01, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)  # [h, w]
    return LUTS[cmap][idx]  # [h, w, 3]


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
        color = (*_hex(BOX_COLORS[i % len(BOX_COLORS)]), 255)
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
    rgb, width = _hex(color), max(2, round(max(w, h) / 250))
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
    below = bool(label) and ends + measure.textlength(label, font=text_font) + 40 > width  # label on its own line
    bar = Image.new("RGB", (width, BAR_HEIGHT + 22 + (16 if below else 0)), (255, 255, 255))
    bar.paste(_ramp(max(1, width - 16), cmap), (8, 2))
    draw = ImageDraw.Draw(bar)
    y = BAR_HEIGHT + 4
    draw.text((8, y), left, fill=(0, 0, 0), font=text_font)
    draw.text((width - 8 - draw.textlength(right, font=text_font), y), right, fill=(0, 0, 0), font=text_font)
    if label:
        x = max(4, (width - draw.textlength(label, font=text_font)) / 2)
        draw.text((x, y + (16 if below else 0)), label, fill=(80, 80, 80), font=text_font)
    return bar


@lru_cache(maxsize=512)
def banner(width: int, text: str, warning: str = "") -> Image.Image:
    """A white band with ``text`` and, when given, a ``warning`` in red on the right (e.g. "random weights").

    Cached like ``colorbar``: paste it, do not draw on it.
    """
    text_font = font(14)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    room = width - 12 - measure.textlength(text, font=text_font)
    two_lines = bool(warning and text) and measure.textlength(warning, font=text_font) + 12 > room
    band = Image.new("RGB", (width, 44 if two_lines else 24), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    draw.text((6, 4), text, fill=(0, 0, 0), font=text_font)
    if warning:
        x = max(6, width - 6 - draw.textlength(warning, font=text_font))
        draw.text((x, 24 if two_lines else 4), warning, fill=_hex(WARNING_COLOR), font=text_font)
    return band


def stack(pictures: Sequence[Image.Image]) -> Image.Image:
    """Pictures one above the other, left-aligned, on white."""
    width = max(p.width for p in pictures)
    out = Image.new("RGB", (width, sum(p.height for p in pictures)), (255, 255, 255))
    y = 0
    for p in pictures:
        out.paste(p, (0, y))
        y += p.height
    return out


def draw_marks(picture: Image.Image, points: Sequence[Sequence[float]], color: str = MARK_COLOR) -> Image.Image:
    """A crosshair in a ring at each normalized ``(x, y)`` point (a clicked point, a first corner); a new image."""
    out = picture.convert("RGB")
    draw = ImageDraw.Draw(out)
    w, h = out.size
    r, width = max(6, round(max(w, h) / 60)), max(2, round(max(w, h) / 300))
    for x, y in points:
        cx, cy = x * w, y * h
        for ink, extra in (((0, 0, 0), 2), (_hex(color), 0)):
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
    rgb[edge] = _hex(color)
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


@dataclass(frozen=True)
class _TileGeometry:
    """Where the tiles of ``tiles`` lie: ``cols`` per row, each ``cell_w`` x ``cell_h``, below a ``top`` band."""

    cols: int
    cell_w: int
    cell_h: int
    top: int
    width: int
    height: int

    @classmethod
    def of(cls, size: tuple[int, int], n: int, columns: int, side: int, shared: bool, warning: bool):
        w, h = size
        scale = min(1.0, side / max(w, h))  # as ``fit(image, side)``
        tw, th = (max(1, round(w * scale)), max(1, round(h * scale))) if scale < 1 else (w, h)
        cols = max(1, min(columns, n))
        rows = -(-n // cols)
        cell_w, cell_h = tw + 6, th + 6 + 16 * (1 if shared else 2)
        top = 24 if warning else 0
        width = max(cols * cell_w, MIN_TILES_WIDTH if n < columns else 0)  # room for the bar's label
        return cls(cols, cell_w, cell_h, top, width, top + rows * cell_h)

    def box(self, i: int) -> tuple[int, int, int, int]:
        x, y = (i % self.cols) * self.cell_w, self.top + (i // self.cols) * self.cell_h
        return x, y, x + self.cell_w, y + self.cell_h


def tile_boxes(
    size: tuple[int, int], n: int, *, columns: int = 6, side: int = 160, shared: bool = False, warning: bool = False
) -> list[tuple[int, int, int, int]]:
    """The pixel box (x0, y0, x1, y1) of each of the ``n`` tiles (title and map) of ``tiles(image of size, ...)``."""
    g = _TileGeometry.of(size, n, columns, side, shared, warning)
    return [g.box(i) for i in range(n)]


def tile_at(
    size: tuple[int, int],
    n: int,
    point: Sequence[float],
    *,
    columns: int = 6,
    side: int = 160,
    shared: bool = False,
    warning: bool = False,
) -> int | None:
    """The index of the tile of ``tiles(image of size, n maps, ...)`` under pixel ``point`` (x, y) of its picture,
    or None (a gap, a title row's margin, the colour bar)."""
    g = _TileGeometry.of(size, n, columns, side, shared, warning)
    x, y = float(point[0]), float(point[1]) - g.top
    if x < 0 or y < 0 or y >= g.height - g.top:
        return None
    col, row = int(x // g.cell_w), int(y // g.cell_h)
    i = row * g.cols + col
    return i if col < g.cols and i < n else None


def tiles(
    image: Image.Image,
    heatmaps: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    columns: int = 6,
    side: int = 160,
    opacity: float = 0.6,
    warning: str = "",
    shared: bool = False,
    bar_label: str = "",
) -> Image.Image:
    """Small overlays of N maps (each ``[gh, gw]``; grids may differ, e.g. ResNet stages) in a grid of ``columns``,
    each titled, with a colour bar below.

    Each map is scaled to its own range (the bar then reads 0..1 of each tile's range, and each title gives that
    range), or with ``shared`` to the range of all of them (the bar gives the values).
    """
    maps = [np.asarray(m) for m in heatmaps]
    if not maps or len(maps) != len(titles) or any(m.ndim != 2 or m.size == 0 for m in maps):
        shapes = [m.shape for m in maps]
        raise ValueError(f"need N >= 1 non-empty [gh, gw] maps with one title each, got {shapes} and {len(titles)}")
    ranges = [value_range(m) for m in maps]
    scale = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if shared else None
    thumb = fit(image, side)
    text_font = font(12)
    line = 16
    g = _TileGeometry.of(image.size, len(maps), columns, side, shared, bool(warning))
    out = Image.new("RGB", (g.width, g.height), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    if warning:
        out.paste(banner(out.width, "", warning), (0, 0))
    for i, (m, title, (lo, hi)) in enumerate(zip(maps, titles, ranges, strict=True)):
        x, y = g.box(i)[:2]
        x += 3
        draw.text((x, y + 2), title, fill=(0, 0, 0), font=text_font)
        if not shared:
            a, b = _numbers(lo, hi)
            draw.text((x, y + 2 + line), f"{a} .. {b}", fill=(90, 90, 90), font=text_font)
        lo_hi = scale if shared else (lo, hi)
        out.paste(overlay(thumb, m, opacity, *lo_hi), (x, y + 4 + line * (1 if shared else 2)))
    if shared:
        bar = colorbar(out.width, scale[0], scale[1], bar_label or "one scale for every tile")
    else:
        bar = colorbar(out.width, 0.0, 1.0, bar_label or "each tile scaled to its own range (given under its title)")
    return stack([out, bar])


def heat_table(
    values: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    title: str = "",
    cell: int = 44,
    bar_label: str = "",
) -> Image.Image:
    """A ``[R, C]`` table of numbers drawn as coloured cells with their values (NaN cells grey, "n/a"), with its
    title (never cut: the picture is at least as wide) and a colour bar as its legend."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"values {v.shape} do not match {len(row_labels)} row and {len(col_labels)} column labels")
    text_font = font(12)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left, top = _table_origin(row_labels, title)
    width = max(left + cell * v.shape[1] + 4, int(measure.textlength(title, font=font(14))) + 12, 240)
    out = Image.new("RGB", (width, top + TABLE_ROW * v.shape[0] + 4), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    if title:
        draw.text((4, 4), title, fill=(0, 0, 0), font=font(14))
    finite = v[np.isfinite(v)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    shades = colorize(normalize(np.where(np.isfinite(v), v, lo), lo, hi))  # [R, C, 3]
    for c, label in enumerate(col_labels):
        draw.text((left + c * cell + 4, top - 18), label, fill=(0, 0, 0), font=text_font)
    for r, label in enumerate(row_labels):
        y = top + r * TABLE_ROW
        draw.text((4, y + 4), label, fill=(0, 0, 0), font=text_font)
        for c in range(v.shape[1]):
            x = left + c * cell
            ok = bool(np.isfinite(v[r, c]))
            fill = tuple(int(k) for k in shades[r, c]) if ok else (220, 220, 220)
            draw.rectangle((x, y, x + cell - 2, y + 20), fill=fill)
            ink = (0, 0, 0) if not ok or sum(fill) > 380 else (255, 255, 255)
            draw.text((x + 4, y + 4), f"{v[r, c]:.2f}" if ok else "n/a", fill=ink, font=text_font)
    return stack([out, colorbar(width, lo, hi, bar_label)])


TABLE_ROW = 22  # height of a row of ``heat_table``


def _table_origin(row_labels: Sequence[str], title: str) -> tuple[int, int]:
    """The pixel (left, top) of the first cell of ``heat_table``: after the widest row label, below the title."""
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = 8 + max((measure.textlength(lab, font=font(12)) for lab in row_labels), default=0)
    return int(left) + 6, 24 + (24 if title else 0)


def table_cell_at(
    row_labels: Sequence[str], n_cols: int, point: Sequence[float], *, title: str = "", cell: int = 44
) -> tuple[int, int] | None:
    """The (row, column) of the ``heat_table`` cell under pixel ``point`` (x, y) of its picture, or None."""
    left, top = _table_origin(row_labels, title)
    x, y = float(point[0]) - left, float(point[1]) - top
    if x < 0 or y < 0:
        return None
    r, c = int(y // TABLE_ROW), int(x // cell)
    return (r, c) if r < len(row_labels) and c < n_cols else None
