"""Charts drawn as pictures: per-head dots over depth, with where each dot lies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from vitattn.render.canvas import WARNING_RED, stack_warning, text_band
from vitattn.render.colors import hex_rgb
from vitattn.render.fonts import font

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
    title: str = "",
) -> tuple[list[Dot], dict]:
    """Where each head's dot goes (the pure geometry of ``head_dots``, which draws exactly this).

    Args:
        points: ``(model, layer, head, value)``, any order; models keep the order of their first point.
        warning: the red band above the picture, if any (it shifts everything down).
        top_ticks: about how many y ticks.
        title: the title above the panels: the picture is at least as wide (a long title was cut at its edge).

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
    title_width = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(title, font=font(14)) + 16 if title else 0
    width = max(x - PANEL_GAP + 12, 420, int(title_width))
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
    dots, f = head_dots_layout(points, warning=warning, title=title)
    out = Image.new("RGB", (f["width"], f["height"] - f["band"]), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    small, text_font = font(11), font(12)
    shift = f["band"]  # the layout counts the warning band, drawn above this picture by stack_warning
    top, bottom = f["top"] - shift, f["bottom"] - shift
    if title:
        draw.text((8, 5), title, fill=(0, 0, 0), font=font(14))
    colors = {m: hex_rgb(MODEL_COLORS[k % len(MODEL_COLORS)]) for k, m in enumerate(f["models"])}
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
