"""The Compare tab's handlers: two maps of one image (two models, two methods, or two layers or heads of one model)
side by side on one colour scale, their difference ``B - A`` on a symmetric diverging scale, and every metric of
both with its delta.

Plain functions of the `Explorer` (no Gradio layout; ``tabs/compare.py`` builds the page). The drawing reuses the
Variants tab's pieces: ``render.compare_maps`` (panels on one shared range, one colour bar),
``variants.shift_map`` (``B - A`` and its symmetric limit ``max |B - A|``) and ``render.shift_view`` (diverging
colours on ``[-limit, limit]``).

Two representations of the maps (``SCALES``):

- ``"shared raw scale"``: the values as the method gives them, both on one colour scale (the range of both maps).
  Meaningful when the two are comparable (one method: e.g. two layers or heads of a model, or two models' ``cls``);
- ``"each normalised to [0, 1]"``: each map min-max normalised, as every metric sees it
  (``vitattn.metrics.continuous``: upsampled, then min-max normalised), so maps of different methods or value ranges
  can be set against each other.

Maps on different grids (a dinov2 16x16 grid, a vit 14x14 one, a ResNet stage's 56x56) are resampled bilinearly
(``vitattn.render.resize_bilinear``) to the finer grid of the two, before normalising and before the difference;
the picture and the returned data say so. Metrics are each map's own (on its own grid, against the image's expert
boxes, stored where the store has them): every metric min-max normalises a map first, so they do not depend on the
scale chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from vitattn import render, variants
from vitattn.ui.actions.common import all_models, check_layer, info, metric_deltas
from vitattn.ui.actions.page import Controls, controls
from vitattn.ui.actions.views import RANDOM_LABEL, numbers, view_name
from vitattn.ui.data.catalog import FUSED, ModelInfo
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer

SCALES = ("shared raw scale", "each normalised to [0, 1]")
RAW, NORMALISED = SCALES
SIDE = 384  # long side of each panel of the picture, in pixels
GAP = 16  # between the pair and the difference map
METRIC_COLUMNS = ["metric", "better", "A", "B", "B - A", "B is"]


@dataclass(frozen=True)
class Side:
    """One side's choice, as valid values of the model: model, method, layer, head (-1: all heads fused)."""

    model: str
    method: str
    layer: int
    head: int


# -- valid control values ----------------------------------------------------------------------------------------


def side_controls(ex: Explorer, model: str, method: str | None, layer, head) -> Controls:
    """The valid method, layer and head choices of ``model``, keeping the given values where they stay valid (a new
    model: its first method, its last layer, all heads fused where the head is gone); ``page.controls``."""
    return controls(info(ex, model), method, layer, head)


def layer_choices(ex: Explorer, model: str, layers) -> list[tuple[str, int]]:
    """``(name, index)`` choices of a layer dropdown: "layer 7" for a ViT block, "stage 3 (layer3)" for a ResNet
    stage."""
    model_info = info(ex, model)
    return [(model_info.layer_name(v), int(v)) for v in layers]


def contrast(ex: Explorer, a: Side) -> Side:
    """A useful side B for side A: the same model, method and head one layer earlier; at the first layer, the last
    layer; a method with one layer only (``pool``): another method of the model at that layer; else A itself."""
    model_info = info(ex, a.model)
    layers = model_info.layers[a.method]
    earlier = [v for v in layers if v < a.layer]
    if earlier:
        return Side(a.model, a.method, earlier[-1], a.head)
    if layers[-1] != a.layer:
        return Side(a.model, a.method, layers[-1], a.head)
    for method in model_info.methods:
        if method != a.method and a.layer in model_info.layers[method]:
            c = controls(model_info, method, a.layer, a.head)
            return Side(a.model, c.method, c.layer, c.head)
    return a


# -- the comparison ----------------------------------------------------------------------------------------------


def _side(ex: Explorer, name: str, model: object, method: object, layer: object, head: object) -> tuple:
    """A checked side: ``(ModelInfo, method, layer, head or None)``; errors say which side and name valid values."""
    try:
        if not isinstance(model, str) or model not in all_models(ex):
            raise fail(f"unknown model {brief(model)}; valid models: {', '.join(all_models(ex))}")
        model_info = info(ex, model)
        if not isinstance(method, str):
            raise fail(f"method must be a string, got {brief(method)}; valid methods: {', '.join(model_info.methods)}")
        model_info.check_method(method)
        try:
            layer = check_layer(model_info, method, layer)
        except gr.Error as e:
            if model_info.family != "resnet":
                raise
            names = ", ".join(f"{v} = {model_info.layer_name(v)}" for v in model_info.layers[method])
            raise fail(f"{e.message} ({names})") from None
        return model_info, method, layer, model_info.check_head(method, head)
    except gr.Error as e:
        raise fail(f"side {name}: {e.message}") from None


def common_grid(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """The grid both maps are compared on: the finer of the two along each axis."""
    return max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])


def resampled(heatmap: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """``heatmap`` on ``grid``: itself when it is already there, else bilinearly enlarged (half-pixel centres,
    edges clamped: ``render.resize_bilinear``, as ``vitattn.metrics.upsample``)."""
    m = np.asarray(heatmap, dtype=np.float32)
    return m.copy() if m.shape == tuple(grid) else render.resize_bilinear(m, grid)


def minmax(heatmap: np.ndarray) -> np.ndarray:
    """``(m - min) / (max - min)``; a constant map becomes all 0 (``render.normalize``)."""
    return render.normalize(heatmap)


def compare_maps(
    ex: Explorer,
    image_id: str,
    model_a: str,
    method_a: str,
    layer_a: int,
    head_a: int,
    model_b: str,
    method_b: str,
    layer_b: int,
    head_b: int,
    scale: str = RAW,
    opacity: float = 0.6,
) -> tuple[Image.Image, pd.DataFrame, dict]:
    """Two maps of one image (two models, methods, layers or heads) side by side on one colour scale, the
    difference B - A on a symmetric diverging scale, every metric of A and B with B - A, and the maps as numbers
    (both resampled to the finer grid when the grids differ).

    Args:
        ex: the app's data.
        image_id: an image of the app.
        model_a: model of side A (any model of the app, a stored fine-tuned variant included).
        method_a: a method of ``model_a``.
        layer_a: a layer of that method (-1: its last; ResNet: stage - 1).
        head_a: a head, or -1 for all heads fused (-1 only where the method fuses heads).
        model_b: model of side B.
        method_b: a method of ``model_b``.
        layer_b: a layer of that method.
        head_b: a head, or -1.
        scale: ``"shared raw scale"`` (both maps' raw values on one colour scale) or ``"each normalised to [0, 1]"``
            (min-max); the difference is computed on the chosen representation.
        opacity: weight of the map colours over the image, 0..1.

    Returns:
        ``(picture, metrics, data)``: the picture (A and B, one colour bar; B - A with its symmetric bar); a table
        with ``metric, better, A, B, B - A, B is`` per metric; and ``data`` with both maps and the difference on the
        common grid (in the chosen representation), that grid, each map's own grid, the symmetric limit and where
        each map came from.
    """
    item = ex.item(image_id)
    if scale not in SCALES:
        raise fail(f"scale must be one of {', '.join(repr(s) for s in SCALES)}, got {brief(scale)}")
    if isinstance(opacity, bool) or not isinstance(opacity, int | float) or not 0.0 <= opacity <= 1.0:
        raise fail(f"opacity must be a number in [0, 1], got {brief(opacity)}")
    sides = [
        _side(ex, "A", model_a, method_a, layer_a, head_a),
        _side(ex, "B", model_b, method_b, layer_b, head_b),
    ]
    raws, origins = [], []
    for model_info, method, layer, head in sides:
        heatmap, origin = ex.map(item, model_info.name, method, layer, head)
        raws.append(np.asarray(heatmap, dtype=np.float32))
        origins.append(origin)
    grid = common_grid(*raws)
    maps = [resampled(m, grid) for m in raws]
    if scale == NORMALISED:
        maps = [minmax(m) for m in maps]
    diff, limit = variants.shift_map(maps[1], maps[0])  # B - A, limit = max |B - A|
    random = [ex.random_weights(o, s[0].name) for o, s in zip(origins, sides, strict=True)]
    titles = [f"{n}: {_describe(*s)}" for n, s in zip("AB", sides, strict=True)]
    note = f"{item.id}. {grid_note(grid, [m.shape for m in raws])} {scale_note(scale, (sides[0][1], sides[1][1]))}"
    picture = _picture(item, maps, diff, limit, titles, scale, note, random, float(opacity))
    table = metrics_table(ex, item, sides)
    data = {
        "image_id": item.id,
        "scale": scale,
        "grid": list(grid),
        "resampled": any(m.shape != grid for m in raws),
        "a": _side_data(sides[0], origins[0], random[0], raws[0], maps[0]),
        "b": _side_data(sides[1], origins[1], random[1], raws[1], maps[1]),
        "difference": numbers(diff),
        "limit": float(limit),
        "random_weights": any(random),
    }
    return picture, table, data


def _describe(model_info: ModelInfo, method: str, layer: int, head: int | None) -> str:
    return view_name(model_info, method, layer, head)


def _side_data(side: tuple, origin: str, random: bool, raw: np.ndarray, shown: np.ndarray) -> dict:
    model_info, method, layer, head = side
    return {
        "model": model_info.name,
        "method": method,
        "layer": layer,
        "layer_name": model_info.layer_name(layer),
        "head": FUSED if head is None else head,
        "source": origin,
        "random_weights": random,
        "own_grid": list(raw.shape),
        "map": numbers(shown),
    }


def grid_note(grid: tuple[int, int], shapes) -> str:
    """What the picture says about the grids: one grid, or both resampled to the finer one."""
    (ha, wa), (hb, wb) = shapes
    if (ha, wa) == (hb, wb):
        return f"A and B share the {ha}x{wa} grid."
    return f"A's {ha}x{wa} grid and B's {hb}x{wb} grid are resampled bilinearly to {grid[0]}x{grid[1]} (the finer)."


def scale_note(scale: str, methods: tuple[str, str] = ("", "")) -> str:
    """What the colour scale is; for raw values of two methods, that they need not be comparable."""
    if scale == RAW and methods[0] != methods[1]:
        return (
            f"Raw values on one colour scale: A ({methods[0]}) and B ({methods[1]}) are different methods, whose "
            f"values need not be comparable; '{NORMALISED}' compares where each looks."
        )
    if scale == RAW:
        return "Raw values on one colour scale (comparable when A and B are maps of one kind)."
    return "Each map min-max normalised to [0, 1] (as the metrics see it); B - A of the normalised maps."


def _picture(item, maps, diff, limit, titles, scale, note, random, opacity) -> Image.Image:
    boxes = tuple(item.boxes)
    what = "raw map values" if scale == RAW else "each map min-max normalised to [0, 1]"
    pair = render.compare_maps(
        item.picture,
        maps,
        titles,
        boxes=boxes,
        opacity=opacity,
        side=SIDE,
        bar_label=f"{what}, one colour scale for A and B",
    )
    shift = render.shift_view(
        item.picture,
        diff,
        limit,
        title="B - A" + (" (raw values)" if scale == RAW else " (normalised maps)"),
        boxes=boxes,
        opacity=opacity,
        side=SIDE,
    )
    row = render.side_by_side([pair, shift], gap=GAP)
    out = render.stack([row, render.text_band(row.width, note, (60, 60, 60))])
    if any(random):
        which = "A and B" if all(random) else ("A" if random[0] else "B")
        warning = f"{RANDOM_LABEL}: {which} from untrained networks; not a result"
        out = render.stack_warning(out, warning)
    return out


def metrics_table(ex: Explorer, item, sides) -> pd.DataFrame:
    """Every metric (``METRIC_NAMES``) of A and B at the image's expert boxes, B - A, which way is better (mse, kl
    and emd: lower) and whether B is better; the scores the Attention tab shows (``Explorer.scores``)."""
    scores = [ex.scores(item, s[0].name, s[1], s[2], s[3])[0] for s in sides]
    if scores[0] is None or scores[1] is None:
        return pd.DataFrame([{"metric": "(this image has no expert boxes)"}], columns=METRIC_COLUMNS)
    rows = metric_deltas(scores[0], scores[1])
    return pd.DataFrame(rows, columns=METRIC_COLUMNS).round(4)


def side_of(value: Controls, model: str) -> Side:
    return Side(model, value.method, value.layer, value.head)
