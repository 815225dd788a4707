"""Strips and grids of maps (layers, heads, PCA tiles) and pairs of maps on one scale, with where each tile lies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from vitattn.boxes import LabeledBox
from vitattn.render.canvas import banner, fit, side_by_side, stack, stack_warning, text_band
from vitattn.render.colors import _numbers, colorbar, number, shared_range, value_range
from vitattn.render.fonts import font
from vitattn.render.overlays import draw_boxes, overlay

MIN_TILES_WIDTH = 480  # a strip of one or two tiles is still this wide, so its colour bar's label fits


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
    range), or with ``shared`` to the range of all of them (the bar gives the values). The picture carries its
    layout: ``picture.info["tiles"]`` holds each tile's pixel box ``[x0, y0, x1, y1]`` (title and map), in order.
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
    picture = stack([out, bar])
    picture.info["tiles"] = [list(g.box(i)) for i in range(len(maps))]  # where each tile lies: clicks read this
    return picture


def _panel(
    picture: Image.Image,
    heatmap: np.ndarray,
    lo: float,
    hi: float,
    title: str,
    boxes: Sequence[LabeledBox],
    opacity: float,
    cmap: str,
) -> Image.Image:
    shown = overlay(picture, heatmap, opacity, lo, hi, cmap)
    if boxes:
        shown = draw_boxes(shown, boxes)
    return stack([banner(shown.width, title), shown])


def compare_maps(
    picture: Image.Image,
    maps: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    boxes: Sequence[LabeledBox] = (),
    opacity: float = 0.6,
    side: int = 384,
    warning: str = "",
    bar_label: str = "",
) -> Image.Image:
    """Several maps of one image side by side on **one** colour scale (the range of all of them), one colour bar.

    Args:
        picture: the image (any size; drawn at most ``side`` pixels on its long side).
        maps: ``[gh, gw]`` maps (grids may differ).
        titles: one per map.
        boxes: boxes outlined on every panel.
        opacity: weight of the colours.
        side: long side of each panel in pixels.
        warning: red text above the row (e.g. "random weights").
        bar_label: what the values are.
    """
    if not maps or len(maps) != len(titles):
        raise ValueError(f"need one title per map, got {len(maps)} maps and {len(titles)} titles")
    lo, hi = shared_range(maps)
    small = fit(picture.convert("RGB"), side)
    row = side_by_side(
        [_panel(small, m, lo, hi, t, boxes, opacity, "inferno") for m, t in zip(maps, titles, strict=True)]
    )
    label = bar_label or "one colour scale for every panel"
    return stack_warning(stack([row, colorbar(row.width, lo, hi, label)]), warning)


def shift_view(
    picture: Image.Image,
    diff: np.ndarray,
    limit: float,
    *,
    title: str,
    boxes: Sequence[LabeledBox] = (),
    opacity: float = 0.7,
    side: int = 384,
    warning: str = "",
) -> Image.Image:
    """A signed map ``B - A`` in diverging colours on the symmetric range ``[-limit, limit]`` (blue: B lower, red:
    B higher, white: no change), with that range stated under the bar."""
    limit = float(limit) if limit > 0 else 1e-12
    small = fit(picture.convert("RGB"), side)
    panel = _panel(small, diff, -limit, limit, title, boxes, opacity, "diverging")
    label = f"B - A on a symmetric scale [-{number(limit)}, {number(limit)}]; red: B higher, blue: B lower"
    if limit <= 1e-12:
        label = "B - A is 0 everywhere: the two maps are equal"
    width = max(panel.width, int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(label, font=font(12))) + 16)
    ends = (-limit, limit) if limit > 1e-12 else (0.0, 0.0)
    return stack_warning(stack([panel, colorbar(width, *ends, label, "diverging")]), warning)


def rgb_tiles(
    pictures: Sequence[Image.Image],
    rgbs: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    side: int = 224,
    warning: str = "",
    note: str = "",
) -> Image.Image:
    """Per image its thumbnail above its ``[gh, gw, 3]`` RGB picture in [0, 1] (each patch one flat cell, nearest
    enlargement), in one row, titled; ``note`` under the row says what the colours mean."""
    if not rgbs or len(rgbs) != len(titles) or len(pictures) != len(rgbs):
        raise ValueError(f"need one picture and one title per RGB map, got {len(pictures)}, {len(rgbs)}, {len(titles)}")
    columns = []
    for picture, rgb, title in zip(pictures, rgbs, titles, strict=True):
        thumb = fit(picture.convert("RGB"), side)
        a = np.asarray(rgb, dtype=np.float64)
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"an RGB map must be [gh, gw, 3], got {a.shape}")
        cells = Image.fromarray(np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8)).resize(thumb.size, Image.NEAREST)
        columns.append(stack([banner(thumb.width, title), thumb, cells]))
    row = side_by_side(columns)
    width = max(row.width, 448)
    return stack_warning(stack([row, *([text_band(width, note)] if note else [])]), warning)


def map_rows(
    picture: Image.Image,
    rows: Sequence[Sequence[np.ndarray]],
    titles: Sequence[Sequence[str]],
    headings: Sequence[str],
    *,
    boxes: Sequence[Sequence[LabeledBox]] = (),
    opacity: float = 0.6,
    side: int = 240,
    columns: int = 3,
    warning: str = "",
    bar_label: str = "",
) -> Image.Image:
    """Rows of maps of one image (e.g. one row per prompt, one panel per method), every panel on **one** colour scale
    (the range of all maps), each row under its heading with its own boxes outlined (wrapped after ``columns``
    panels), one colour bar below."""
    if not rows or len(rows) != len(titles) or len(rows) != len(headings) or boxes and len(boxes) != len(rows):
        raise ValueError(f"need one title list, heading (and box list) per row, got {len(rows)} rows")
    if any(not r or len(r) != len(t) for r, t in zip(rows, titles, strict=True)):
        raise ValueError("need one title per map in every row")
    lo, hi = shared_range([m for row in rows for m in row])
    small = fit(picture.convert("RGB"), side)
    drawn = []
    for i, (maps, names, heading) in enumerate(zip(rows, titles, headings, strict=True)):
        outlined = boxes[i] if boxes else ()
        panels = [_panel(small, m, lo, hi, t, outlined, opacity, "inferno") for m, t in zip(maps, names, strict=True)]
        lines = [side_by_side(panels[k : k + columns]) for k in range(0, len(panels), columns)]
        gap = Image.new("RGB", (1, 6), (255, 255, 255))
        body = stack([p for line in lines for p in (line, gap)][:-1])
        drawn.append(stack([text_band(body.width, heading, size=14), body]))
    width = max(max(d.width for d in drawn), MIN_TILES_WIDTH)
    bar = colorbar(width, lo, hi, bar_label or "one colour scale for every panel")
    return stack_warning(stack([*drawn, bar]), warning)
