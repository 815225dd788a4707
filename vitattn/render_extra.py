"""Pictures of the Heads, Variants and Features tabs: maps on one shared scale, signed shift maps, heat tables with
counts, PCA pictures. Numpy and PIL only; builds on ``vitattn.render`` (fonts, fitting, boxes, bands).

Every picture carries its own legend: a colour bar with the range it stands for (3 significant digits), the
diverging bar of a shift map is symmetric around 0 and says so, a heat table says what its cells and counts are.

    from vitattn import render_extra
    pair = render_extra.compare_maps(picture, map_a, map_b, ("dinov2", "dinov2@lora"), boxes=boxes)
    shift = render_extra.shift_view(picture, diff, limit, title="dinov2@lora - dinov2")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from vitattn.boxes import LabeledBox
from vitattn.render import INFERNO, banner, draw_boxes, fit, font, resize_bilinear, stack

# Blue (negative) .. white (0) .. red (positive), ColorBrewer RdBu reversed, 9 stops.
DIVERGING = ("#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b")
BAR_HEIGHT = 14
BEST_COLOR = (0, 229, 255)  # outline of the best cell of a column
NAN_FILL = (220, 220, 220)
WARNING_RED = (214, 39, 40)


def _hex(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))


def _lut(stops: Sequence[str]) -> np.ndarray:
    """``[256, 3]`` uint8 colours, linear between evenly spaced ``stops``."""
    anchors = np.array([_hex(c) for c in stops], dtype=np.float64)  # [S, 3]
    x = np.linspace(0.0, 1.0, len(stops))
    t = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(t, x, anchors[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)


LUTS = {"inferno": _lut(INFERNO), "diverging": _lut(DIVERGING)}


def number(value: float) -> str:
    """A value with 3 significant digits."""
    return f"{value:.3g}"


def colorize(values01: np.ndarray, cmap: str = "inferno") -> np.ndarray:
    """``[..., 3]`` uint8 colours of values in [0, 1] (NaN: the lowest colour)."""
    if cmap not in LUTS:
        raise ValueError(f"cmap must be one of {sorted(LUTS)}, got {cmap!r}")
    v = np.nan_to_num(np.clip(np.asarray(values01, dtype=np.float64), 0.0, 1.0), nan=0.0)
    return LUTS[cmap][np.rint(v * 255).astype(np.int64)]


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


def overlay(
    picture: Image.Image, heatmap: np.ndarray, lo: float, hi: float, *, opacity: float = 0.6, cmap: str = "inferno"
) -> Image.Image:
    """``heatmap`` ``[gh, gw]`` stretched bilinearly over ``picture`` (as ``vitattn.render``), coloured on the fixed
    range ``[lo, hi]`` and blended with weight ``opacity``; a new RGB image."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must lie in [0, 1], got {opacity!r}")
    rgb = picture.convert("RGB")
    up = resize_bilinear(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), (rgb.height, rgb.width))  # [h, w]
    colours = Image.fromarray(colorize(scaled(up, lo, hi), cmap))
    return Image.blend(rgb, colours, float(opacity))


def colorbar(width: int, lo: float, hi: float, label: str = "", cmap: str = "inferno") -> Image.Image:
    """A horizontal colour bar from ``lo`` (left) to ``hi`` (right) with its end values (and 0 in the middle of a
    diverging bar), and ``label`` below."""
    text_font = font(12)
    ramp = np.tile(np.linspace(0.0, 1.0, max(1, width - 16)), (BAR_HEIGHT, 1))  # [BAR_HEIGHT, w]
    bar = Image.new("RGB", (width, BAR_HEIGHT + 22 + (16 if label else 0)), (255, 255, 255))
    bar.paste(Image.fromarray(colorize(ramp, cmap)), (8, 2))
    draw = ImageDraw.Draw(bar)
    y = BAR_HEIGHT + 4
    left, right = number(lo), number(hi)
    if left == right and hi != lo:
        right = f"{left} + {number(hi - lo)}"
    draw.text((8, y), left, fill=(0, 0, 0), font=text_font)
    draw.text((width - 8 - draw.textlength(right, font=text_font), y), right, fill=(0, 0, 0), font=text_font)
    if cmap == "diverging":
        draw.text((width / 2 - draw.textlength("0", font=text_font) / 2, y), "0", fill=(0, 0, 0), font=text_font)
    if label:
        x = max(4, (width - draw.textlength(label, font=text_font)) / 2)
        draw.text((x, y + 16), label, fill=(80, 80, 80), font=text_font)
    return bar


def side_by_side(pictures: Sequence[Image.Image], gap: int = 8) -> Image.Image:
    """Pictures in one row, top-aligned, on white."""
    height = max(p.height for p in pictures)
    out = Image.new("RGB", (sum(p.width for p in pictures) + gap * (len(pictures) - 1), height), (255, 255, 255))
    x = 0
    for p in pictures:
        out.paste(p, (x, 0))
        x += p.width + gap
    return out


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
    shown = overlay(picture, heatmap, lo, hi, opacity=opacity, cmap=cmap)
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


def heat_table(
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
    text_font, small = font(12), font(10)
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
    for c, label in enumerate(col_labels):
        draw.text((left + c * cell + 4, top - 18), label, fill=(0, 0, 0), font=text_font)
    for r, label in enumerate(row_labels):
        y = top + r * row_h
        draw.text((4, y + 4), label, fill=(0, 0, 0), font=text_font)
        for c in range(v.shape[1]):
            x = left + c * cell
            ok = bool(np.isfinite(v[r, c]))
            fill = tuple(int(k) for k in shades[r, c]) if ok else NAN_FILL
            draw.rectangle((x, y, x + cell - 3, y + row_h - 2), fill=fill)
            if best is not None and best[r, c]:
                draw.rectangle((x, y, x + cell - 3, y + row_h - 2), outline=BEST_COLOR, width=3)
            ink = (0, 0, 0) if not ok or sum(fill) > 380 else (255, 255, 255)
            draw.text((x + 5, y + 3), f"{v[r, c]:.2f}" if ok else "n/a", fill=ink, font=text_font)
            if n is not None:
                draw.text((x + 5, y + 18), f"n={int(n[r, c])}", fill=ink, font=small)
    return stack([out, colorbar(width, lo, hi, legend)])


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


# -- the ViT paper's mean attention distance plot, as a picture whose dots can be clicked --------------------------

MODEL_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf")
DOT_RADIUS = 4
CLICK_RADIUS = 7  # a click this many pixels (of the picture) from a dot's centre picks it
PLOT_HEIGHT = 300
Y_AXIS_WIDTH = 78  # the y title (turned) and the tick labels, left of the first panel
PANEL_GAP = 14
PANEL_PAD = 8  # inside a panel, left and right of the first and last layer's cells
TITLE_HEIGHT = 26
LEGEND_HEIGHT = 24
PANEL_TITLE_HEIGHT = 20
X_AXIS_HEIGHT = 40  # tick labels and the x title under a panel
GRID = (225, 225, 225)
AXIS = (90, 90, 90)


@dataclass(frozen=True)
class Dot:
    """One head's dot: its centre in the picture's pixels and what it stands for."""

    x: float
    y: float
    model: str
    layer: int
    head: int
    value: float


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) from ``lo`` up to at least ``hi``."""
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(power * k for k in (1, 2, 5, 10) if power * k >= raw)
    first = np.floor(lo / step) * step
    n = int(np.ceil((hi - first) / step - 1e-9))
    return [round(float(first + k * step), 10) for k in range(n + 1)]


def _panel_width(layers: int) -> int:
    return 2 * PANEL_PAD + layers * _cell_width(layers)


def _cell_width(layers: int) -> int:
    """Pixels of one layer on a panel's x axis: wide for a few layers, narrower for many."""
    return int(np.clip(360 // max(layers, 1), 30, 64))


def head_dots_layout(
    points: Sequence[tuple[str, int, int, float]],
    *,
    warning: str = "",
    top_ticks: int = 5,
) -> tuple[list[Dot], dict]:
    """Where each head's dot goes (the pure geometry of ``head_dots``, which draws exactly this).

    Args:
        points: ``(model, layer, head, value)``, any order; models keep the order of their first point.
        warning: the red band above the picture, if any (it shifts everything down).
        top_ticks: about how many y ticks.

    Returns:
        ``(dots, frame)``: the dots, and the frame the drawing needs: ``models``, ``layers`` (per model),
        ``ticks``, ``lo``, ``hi``, ``panels`` (left x of each), ``top`` and ``bottom`` (the plot area's y range in
        the picture), ``width``, ``height``, ``band`` (the warning band's height).
    """
    models = list(dict.fromkeys(p[0] for p in points))
    layers = {m: 1 + max(int(p[1]) for p in points if p[0] == m) for m in models}
    heads = {m: 1 + max(int(p[2]) for p in points if p[0] == m) for m in models}
    values = np.array([float(p[3]) for p in points], dtype=np.float64)
    ticks = nice_ticks(
        min(0.0, float(values.min())) if values.size else 0.0, float(values.max()) if values.size else 1.0, top_ticks
    )
    lo, hi = ticks[0], ticks[-1]
    panels, x = [], Y_AXIS_WIDTH
    for m in models:
        panels.append(x)
        x += _panel_width(layers[m]) + PANEL_GAP
    width = max(x - PANEL_GAP + 12, 420)
    band = text_band(width, warning, WARNING_RED).height if warning else 0
    top = band + TITLE_HEIGHT + LEGEND_HEIGHT + PANEL_TITLE_HEIGHT
    bottom = top + PLOT_HEIGHT
    dots = []
    for model, layer, head, value in points:
        k = models.index(model)
        cell = _cell_width(layers[model])
        spread = min(2.2 * DOT_RADIUS, 0.8 * cell / max(heads[model], 1))  # heads of a layer side by side
        cx = panels[k] + PANEL_PAD + (int(layer) + 0.5) * cell + (int(head) - (heads[model] - 1) / 2) * spread
        cy = bottom - (float(value) - lo) / (hi - lo) * PLOT_HEIGHT
        dots.append(Dot(round(cx, 2), round(cy, 2), str(model), int(layer), int(head), float(value)))
    frame = {
        "models": models,
        "layers": layers,
        "ticks": ticks,
        "lo": lo,
        "hi": hi,
        "panels": panels,
        "top": top,
        "bottom": bottom,
        "width": width,
        "height": bottom + X_AXIS_HEIGHT + 6,
        "band": band,
    }
    return dots, frame


def head_dots(
    points: Sequence[tuple[str, int, int, float]],
    *,
    y_title: str,
    title: str = "",
    x_title: str = "layer (0 = first block)",
    warning: str = "",
) -> tuple[Image.Image, list[Dot]]:
    """The ViT paper's plot (Dosovitskiy et al. 2021, Fig. 7): per model a panel, layers on x, one dot per head
    (the heads of a layer side by side, head 0 leftmost), one shared y axis; dots coloured by model with a legend.

    Returns:
        ``(picture, dots)``: the picture and each dot's centre in its pixels (``dot_at`` finds a clicked one).
    """
    if not points:
        raise ValueError("no heads to plot")
    dots, f = head_dots_layout(points, warning=warning)
    out = Image.new("RGB", (f["width"], f["height"] - f["band"]), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    small, text_font = font(11), font(12)
    shift = f["band"]  # the layout counts the warning band, drawn above this picture by stack_warning
    top, bottom = f["top"] - shift, f["bottom"] - shift
    if title:
        draw.text((8, 5), title, fill=(0, 0, 0), font=font(14))
    colors = {m: _hex(MODEL_COLORS[k % len(MODEL_COLORS)]) for k, m in enumerate(f["models"])}
    x = Y_AXIS_WIDTH
    for m in f["models"]:  # the legend
        y = TITLE_HEIGHT + LEGEND_HEIGHT // 2
        draw.ellipse((x, y - 5, x + 10, y + 5), fill=colors[m])
        draw.text((x + 14, y - 8), m, fill=(0, 0, 0), font=text_font)
        x += 14 + int(draw.textlength(m, font=text_font)) + 18
    for tick in f["ticks"]:  # y grid and tick labels, shared by the panels
        y = bottom - (tick - f["lo"]) / (f["hi"] - f["lo"]) * PLOT_HEIGHT
        label = f"{tick:g}"
        draw.text((Y_AXIS_WIDTH - 6 - draw.textlength(label, font=small), y - 7), label, fill=AXIS, font=small)
        for k, m in enumerate(f["models"]):
            x0 = f["panels"][k]
            draw.line((x0, y, x0 + _panel_width(f["layers"][m]), y), fill=GRID)
    turned = Image.new("RGB", (PLOT_HEIGHT, 16), (255, 255, 255))
    ImageDraw.Draw(turned).text(
        (max(0, (PLOT_HEIGHT - ImageDraw.Draw(turned).textlength(y_title, font=small)) / 2), 1),
        y_title,
        fill=(0, 0, 0),
        font=small,
    )
    out.paste(turned.rotate(90, expand=True), (4, top))
    for k, m in enumerate(f["models"]):
        x0, n, cell = f["panels"][k], f["layers"][m], _cell_width(f["layers"][m])
        x1 = x0 + _panel_width(n)
        draw.rectangle((x0, top, x1, bottom), outline=AXIS)
        draw.text((x0 + 4, top - PANEL_TITLE_HEIGHT + 3), m, fill=colors[m], font=text_font)
        every = max(1, int(np.ceil(24 / cell)))  # tick labels at least 24 px apart
        for layer in range(n):
            cx = x0 + PANEL_PAD + (layer + 0.5) * cell
            draw.line((cx, bottom, cx, bottom + 4), fill=AXIS)
            if layer % every == 0 or layer == n - 1:
                label = str(layer)
                draw.text((cx - draw.textlength(label, font=small) / 2, bottom + 5), label, fill=AXIS, font=small)
        draw.text(
            (x0 + (x1 - x0 - draw.textlength(x_title, font=small)) / 2, bottom + 21),
            x_title,
            fill=(0, 0, 0),
            font=small,
        )
    for d in dots:
        y = d.y - shift
        draw.ellipse(
            (d.x - DOT_RADIUS, y - DOT_RADIUS, d.x + DOT_RADIUS, y + DOT_RADIUS),
            fill=colors[d.model],
            outline=(255, 255, 255),
        )
    return stack_warning(out, warning), dots


def dot_at(dots: Sequence[Dot], x: float, y: float, radius: float = CLICK_RADIUS) -> Dot | None:
    """The dot whose centre is nearest to ``(x, y)`` (picture pixels), if within ``radius``; else None."""
    if not dots:
        return None
    distance = [np.hypot(d.x - x, d.y - y) for d in dots]
    k = int(np.argmin(distance))
    return dots[k] if distance[k] <= radius else None
