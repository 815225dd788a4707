"""Heat tables: a value per (row, column) cell with a colour bar, and where each cell lies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from vitattn.render.canvas import stack
from vitattn.render.colors import colorbar, colorize, normalize, scaled, shared_range
from vitattn.render.fonts import font


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
    _cells(draw, v, shades, row_labels, col_labels, (left, top), (cell, TABLE_ROW), inset=(2, 4, 4))
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


BEST_COLOR = (0, 229, 255)  # outline of the best cell of a column


NAN_FILL = (220, 220, 220)


def feature_table(
    values: np.ndarray,
    counts: np.ndarray | None,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    title: str = "",
    bar_label: str = "",
    best: np.ndarray | None = None,
    cell: int = 56,
) -> Image.Image:
    """A ``[R, C]`` table drawn as coloured cells with each value (2 decimals) and, when given, its count
    (``n=...``) below it; NaN cells are grey ("n/a"); ``best`` ``[R, C]`` bool cells get a cyan outline. A legend
    (colour bar, what the cells and counts are) closes the picture; the title is never cut."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"values {v.shape} do not match {len(row_labels)} row and {len(col_labels)} column labels")
    n = None if counts is None else np.asarray(counts)
    text_font = font(12)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = int(8 + max((measure.textlength(s, font=text_font) for s in row_labels), default=0)) + 6
    head = int(max((measure.textlength(s, font=text_font) for s in col_labels), default=0))
    cell = max(cell, head + 8)
    row_h = 34 if n is not None else 22
    top = 24 + (24 if title else 0)
    legend = bar_label + ("; n = boxes averaged" if n is not None else "")
    if best is not None:
        legend += "; cyan outline: best in its row"
    width = max(
        left + cell * v.shape[1] + 4,
        int(measure.textlength(title, font=font(14))) + 12,
        int(measure.textlength(legend, font=text_font)) + 16,
        320,
    )
    out = Image.new("RGB", (width, top + row_h * v.shape[0] + 4), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    if title:
        draw.text((4, 4), title, fill=(0, 0, 0), font=font(14))
    lo, hi = shared_range([v])
    shades = colorize(scaled(np.where(np.isfinite(v), v, lo), lo, hi))  # [R, C, 3]
    _cells(draw, v, shades, row_labels, col_labels, (left, top), (cell, row_h), inset=(3, 5, 3), best=best, counts=n)
    return stack([out, colorbar(width, lo, hi, legend)])


def _cells(
    draw: ImageDraw.ImageDraw,
    v: np.ndarray,
    shades: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    origin: tuple[int, int],
    size: tuple[int, int],
    *,
    inset: tuple[int, int, int],
    best: np.ndarray | None = None,
    counts: np.ndarray | None = None,
) -> None:
    """Draws the labels and cells of a heat table: column labels above, row labels left of ``origin`` (the first
    cell's top-left pixel); each cell of ``size`` (width, height) in its shade (``shades`` ``[R, C, 3]``; NaN cells
    grey, "n/a") with its value, a cyan outline where ``best``, its count (``n=...``) below the value where
    ``counts``; ``inset``: the gap between cells and the value's (x, y) offset in its cell."""
    left, top = origin
    cell, row_h = size
    gap, dx, dy = inset
    text_font = font(12)
    for c, label in enumerate(col_labels):
        draw.text((left + c * cell + 4, top - 18), label, fill=(0, 0, 0), font=text_font)
    for r, label in enumerate(row_labels):
        y = top + r * row_h
        draw.text((4, y + 4), label, fill=(0, 0, 0), font=text_font)
        for c in range(v.shape[1]):
            x = left + c * cell
            ok = bool(np.isfinite(v[r, c]))
            fill = tuple(int(k) for k in shades[r, c]) if ok else NAN_FILL
            draw.rectangle((x, y, x + cell - gap, y + row_h - 2), fill=fill)
            if best is not None and best[r, c]:
                draw.rectangle((x, y, x + cell - gap, y + row_h - 2), outline=BEST_COLOR, width=3)
            ink = (0, 0, 0) if not ok or sum(fill) > 380 else (255, 255, 255)
            draw.text((x + dx, y + dy), f"{v[r, c]:.2f}" if ok else "n/a", fill=ink, font=text_font)
            if counts is not None:
                draw.text((x + dx, y + 18), f"n={int(counts[r, c])}", fill=ink, font=font(10))
