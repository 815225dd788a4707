"""The handlers behind the Attention, Similarity and Your-image tabs: plain inputs in, a picture and numbers out.

Each function checks its inputs (``gr.Error`` naming what is valid), asks the `Explorer` for maps, features or
scores, and draws with ``vitattn.render``. No numerics live here: maps come from the store or ``vitattn.Model``,
scores from ``vitattn.metrics``, similarity from ``vitattn.similarity``.

Gradient methods (gradcam, agcam, gae) of an ImageNet classifier explain one class: the top-1 by default, or the
class ``target`` (an index 0..999; None or -1: the top-1). Their pictures say which class, with the classifier's
softmax probability and logit for it (``class_choices`` lists the classes a page offers, ``target_applies`` says
where a class can be chosen).
"""

from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from vitattn import render
from vitattn.metrics import BASELINE_NAMES, LOWER_IS_BETTER, PERCENTILES
from vitattn.ui.actions.page import box_at, picture_point
from vitattn.ui.actions.targets import (  # noqa: F401  (views.TOP1, views.target_applies, ...)
    DECIMALS,
    TOP1,
    _bands,
    _class_data,
    _class_score,
    _with_class,
    check_target,
    class_choices,
    page_target,
    target_applies,
)
from vitattn.ui.data.catalog import FUSED, ModelInfo
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer

RANDOM_LABEL = "RANDOM WEIGHTS"
OPACITY = 0.6  # the default weight of the map colours over the image
ALL_BOXES = -1  # the box value meaning "every expert box"
SCALES = ("per map", "shared")  # colour scale of strips and grids: each tile its own range, or one for all
# Colour scale of a similarity map: its own range (inferno), or cosine similarity's whole range -1..1 on a diverging
# blue-white-red map (white: 0), the same colour for the same value in every picture.
SIM_SCALES = ("per map", "fixed [-1, 1]")
CHART_COLUMNS = ["layer", "value", "series"]
BASELINES = BASELINE_NAMES  # random, center, saliency (spectral residual), sobel, saliency_prior
# One row per metric: which way is better (mse, kl and emd: lower), the map, then each baseline beside it.
METRIC_COLUMNS = ["metric", "better", "map", *BASELINES]


def numbers(values: np.ndarray) -> list:
    """A map as nested lists of floats (for JSON), rounded to ``DECIMALS``."""
    return np.round(np.asarray(values, dtype=np.float64), DECIMALS).tolist()


def head_name(head: int | None) -> str:
    return "all heads fused" if head is None else f"head {head}"


def view_name(info: ModelInfo, method: str, layer: int, head: int | None) -> str:
    """ "dinov2 · cls · layer 7 · head 3"; a method without heads (a ResNet stage, rollout, gradcam) names no head:
    "resnet50 · gradcam · stage 4 (layer4)"."""
    parts = [info.name, method, info.layer_name(layer)]
    if info.heads.get(method, 0) > 0:
        parts.append(head_name(head))
    return " · ".join(parts)


def _check_opacity(opacity: float) -> float:
    if isinstance(opacity, bool) or not isinstance(opacity, int | float) or not 0.0 <= opacity <= 1.0:
        raise fail(f"opacity must be a number in [0, 1], got {brief(opacity)}")
    return float(opacity)


def _view(ex: Explorer, model: str, method: str, layer: float, head: float | None) -> tuple[ModelInfo, int, int | None]:
    info = ex.info(model)
    info.check_method(method)
    return info, info.check_layer(method, layer), info.check_head(method, head)


def _warning(ex: Explorer, origin, model: str) -> str:
    """The pictures' random-weights band when ``origin`` ("store", "live", or several of them) is untrained."""
    origins = (origin,) if isinstance(origin, str) else origin
    return RANDOM_LABEL if any(ex.random_weights(o, model) for o in origins) else ""


def _describe(info: ModelInfo, image_id: str, method: str, layer: int, head: int | None) -> str:
    return f"{image_id} · {view_name(info, method, layer, head)}"


def check_percentile(percentile: float | None) -> int | None:
    """An IoU percentile of ``PERCENTILES`` as an int; None or 0 means none (no mask drawn)."""
    if percentile is None or (not isinstance(percentile, bool) and percentile == 0):
        return None
    if isinstance(percentile, bool) or percentile not in PERCENTILES:
        raise fail(f"percentile must be one of {', '.join(map(str, PERCENTILES))} (0: none), got {brief(percentile)}")
    return int(percentile)


def scoped_boxes(item, box: float | None) -> tuple:
    """The expert boxes a view is scored against: all of them (``box`` None or -1), or the one numbered ``box``."""
    if box is None or (not isinstance(box, bool) and box == ALL_BOXES):
        return ()
    if isinstance(box, bool) or not isinstance(box, int | float) or box != int(box) or not 0 <= box < len(item.boxes):
        n = len(item.boxes)
        valid = f"0..{n - 1}, or -1 for all" if n else "-1 (the image has no expert boxes)"
        raise fail(f"box {brief(box)} out of range for {item.id}: valid boxes {valid}")
    return (item.boxes[int(box)],)


def attention(
    ex: Explorer,
    image_id: str,
    model: str,
    method: str,
    layer: int,
    head: int | None = FUSED,
    opacity: float = OPACITY,
    mask: int = 0,
    box: int = -1,
    target: int = TOP1,
) -> tuple[Image.Image, pd.DataFrame, dict]:
    """The map of (model, method, layer, head) over the image with the expert boxes, its metrics beside the
    baselines', and the raw map as numbers. head -1 (or None) fuses all heads; mask 90 outlines the top 10% of pixels
    that IoU@90 keeps (0: no mask); box n scores expert box n alone (-1: all boxes); target is the ImageNet class
    (0..999) a gradient method (gradcam, agcam, gae) of a classifier explains (-1: its top-1)."""
    item = ex.item(image_id)
    info, layer, head = _view(ex, model, method, layer, head)
    opacity, percentile = _check_opacity(opacity), check_percentile(mask)
    scope = scoped_boxes(item, box)
    target = check_target(ex, model, method, target)
    heatmap, origin = ex.map(item, model, method, layer, head, target)
    score = _class_score(ex, item, model, method, target)
    shown = scope or item.boxes
    body = render.map_view(
        item.picture,
        heatmap,
        opacity=opacity,
        boxes=shown,
        bar_label=f"{method} (scaled to its own range)"
        + (f"; outlined: the top {100 - percentile}% (IoU@{percentile})" if percentile else ""),
        mask=render.top_mask(heatmap, percentile) if percentile else None,
        start=int(box) if scope else 0,
    )
    title = _describe(info, item.id, method, layer, head) + (f" · box {int(box)}" if scope else "")
    picture = render.stack([*_bands(item.picture.width, title, _warning(ex, origin, model), score), body])
    table = metrics_frame(ex, item, info, method, layer, head, scope, target)
    data = {
        "image_id": item.id,
        "model": model,
        "method": method,
        "layer": layer,
        "head": FUSED if head is None else head,
        "box": int(box) if scope else ALL_BOXES,
        "source": origin,
        "random_weights": ex.random_weights(origin, model),
        **_class_data(score),
        "grid": list(heatmap.shape),
        "map": numbers(heatmap),
    }
    return picture, table, data


def metrics_frame(
    ex: Explorer, item, info: ModelInfo, method: str, layer: int, head: int | None, boxes=(), target: int | None = None
):
    """The view's metrics against the boxes, one row per metric, with each baseline (on the model's grid) beside."""
    scores, _ = ex.scores(item, info.name, method, layer, head, boxes, target)
    if scores is None:
        return pd.DataFrame(columns=METRIC_COLUMNS)
    baselines = ex.baselines(item, info.name, boxes)
    rows = [
        {
            "metric": name,
            "better": "lower" if name in LOWER_IS_BETTER else "higher",
            "map": value,
            **{b: baselines.get(b, {}).get(name) for b in BASELINES},
        }
        for name, value in scores.items()
    ]
    return pd.DataFrame(rows, columns=METRIC_COLUMNS).round(4)


def layer_chart(
    ex: Explorer,
    image_id: str,
    model: str,
    method: str,
    layer: int,
    head: int | None = FUSED,
    percentile: int = 90,
    box: int = -1,
    target: int = TOP1,
) -> pd.DataFrame:
    """IoU at the percentile and coverage of this image's map at every layer, the baselines as flat lines and the
    current layer marked: rows (layer, value, series). target: as for /attention."""
    item = ex.item(image_id)
    info, layer, head = _view(ex, model, method, layer, head)
    metric = f"iou_{check_percentile(percentile) or 90}"
    scope = scoped_boxes(item, box)
    target = check_target(ex, model, method, target)
    names = chart_order(info, method, layer)
    rows = []
    for v, name in zip(info.layers[method], names, strict=True):
        scores, _ = ex.scores(item, model, method, v, head, scope, target)
        if scores is None:
            return pd.DataFrame(columns=CHART_COLUMNS)
        rows += [(name, scores[metric], f"map {metric}"), (name, scores["coverage"], "map coverage")]
    baselines = ex.baselines(item, model, scope)
    for b in BASELINES:
        if metric in baselines.get(b, {}):
            rows += [(name, baselines[b][metric], f"{b} {metric}") for name in names]
    return pd.DataFrame(rows, columns=CHART_COLUMNS).round(4)


def chart_order(info: ModelInfo, method: str, layer: int) -> list[str]:
    """The x categories of ``layer_chart`` in depth order, the current layer in brackets."""
    return [f"[{info.layer_name(v)}]" if v == layer else info.layer_name(v) for v in info.layers[method]]


def _heads_or_fused(info: ModelInfo, method: str, head: float | None) -> int | None:
    return info.check_head(method, head)


def _scale(shared: bool | str) -> bool:
    if isinstance(shared, str):
        if shared not in SCALES:
            raise fail(f"scale must be one of {', '.join(SCALES)}, got {brief(shared)}")
        return shared == SCALES[1]
    return bool(shared)


def layer_strip(
    ex: Explorer,
    image_id: str,
    model: str,
    method: str,
    head: int | None = FUSED,
    opacity: float = OPACITY,
    scale: str = "per map",
    target: int = TOP1,
) -> tuple[Image.Image, dict]:
    """The same map at every layer, side by side (ResNet stages each on their own grid), with a colour bar (scale
    "per map": each tile its own range; "shared": one range), and the maps as numbers. target: as for /attention."""
    item = ex.item(image_id)
    info = ex.info(model)
    info.check_method(method)
    head = _heads_or_fused(info, method, head)
    opacity, shared = _check_opacity(opacity), _scale(scale)
    target = check_target(ex, model, method, target)
    layers = info.layers[method]
    maps = [ex.map(item, model, method, layer, head, target) for layer in layers]
    score = _class_score(ex, item, model, method, target)
    origins = {o for _, o in maps}
    warning = _warning(ex, origins, model)
    picture = render.tiles(
        item.picture,
        [m for m, _ in maps],
        [info.layer_name(v) for v in layers],
        opacity=opacity,
        warning=warning,
        shared=shared,
        bar_label=f"{method}{'' if info.heads.get(method, 0) == 0 else ', ' + head_name(head)}: "
        + ("one scale for every layer" if shared else "each layer scaled to its own range"),
    )
    data = {
        "image_id": item.id,
        "model": model,
        "method": method,
        "head": FUSED if head is None else head,
        "layers": list(layers),
        "names": [info.layer_name(v) for v in layers],
        "source": sorted(origins),
        **_class_data(score),
        "maps": [numbers(m) for m, _ in maps],
    }
    return _with_class(picture, score), data


def head_grid(
    ex: Explorer,
    image_id: str,
    model: str,
    method: str,
    layer: int,
    opacity: float = OPACITY,
    scale: str = "per map",
    target: int = TOP1,
) -> tuple[Image.Image, dict]:
    """Every head of one layer as a grid with a colour bar, and the maps as numbers. target: as for /attention."""
    item = ex.item(image_id)
    info = ex.info(model)
    layer = info.check_layer(method, layer)
    opacity, shared = _check_opacity(opacity), _scale(scale)
    if info.heads[method] == 0:
        raise fail(f"method {brief(method)} of {model} fuses all heads by definition; it has no per-head maps")
    target = check_target(ex, model, method, target)
    maps, origin = ex.heads(item, model, method, layer, target)
    score = _class_score(ex, item, model, method, target)
    picture = render.tiles(
        item.picture,
        list(maps),
        [f"head {h}" for h in range(len(maps))],
        opacity=opacity,
        warning=_warning(ex, origin, model),
        shared=shared,
        bar_label=f"{method}, {info.layer_name(layer)}: "
        + ("one scale for every head" if shared else "each head scaled to its own range"),
    )
    data = {"image_id": item.id, "model": model, "method": method, "layer": layer, "source": origin}
    return _with_class(picture, score), {**data, **_class_data(score), "maps": numbers(maps)}


def predictions(ex: Explorer, image_id: str, model: str) -> dict[str, float]:
    """Top-5 ImageNet classes of a classifier model (empty for the others)."""
    item = ex.item(image_id)
    top = ex.predictions(item, model)
    return {} if top is None else {label: round(float(p), 4) for label, p in top}


def image(ex: Explorer, image_id: str) -> tuple[Image.Image, dict]:
    """An image with its expert boxes drawn, and the boxes (normalized x0, y0, x1, y1) with labels and metadata."""
    item = ex.item(image_id)
    picture = render.draw_boxes(item.picture, item.boxes) if item.boxes else item.picture.copy()
    boxes = [{"box": list(b.box), "label": b.label, "group": b.group} for b in item.boxes]
    return picture, {"image_id": item.id, "origin": item.origin, "boxes": boxes, "meta": _plain(item.meta)}


def attention_click(
    ex: Explorer,
    image_id: str,
    model: str,
    method: str,
    layer: float,
    head: float | None,
    box,
    index,
    target: int | None = None,
) -> int:
    """The expert box under a click at pixel ``index`` of the attention picture (its title bands above the image
    taken off), the smallest one where boxes nest; ``ALL_BOXES`` for a click outside every box or on a box already
    chosen (a second click on it goes back to all boxes). ``target``: as given to ``attention``."""
    item = ex.item(image_id)
    info, layer, head = _view(ex, model, method, layer, head)
    scope = scoped_boxes(item, box)
    target = check_target(ex, model, method, target)
    _, origin = ex.map(item, model, method, layer, head, target)
    title = _describe(info, item.id, method, layer, head) + (f" · box {int(box)}" if scope else "")
    score = _class_score(ex, item, model, method, target)
    top = sum(b.height for b in _bands(item.picture.width, title, _warning(ex, origin, model), score))
    point = picture_point(index, item.picture.size, top)
    if point is None:
        return ALL_BOXES if box is None else int(box)
    shown = scope or item.boxes
    hit = box_at(shown, *point)
    if hit is None:
        return ALL_BOXES
    chosen = item.boxes.index(shown[hit])
    return ALL_BOXES if scope and chosen == int(box) else chosen


def _plain(meta: dict) -> dict:
    return {
        str(k): v if isinstance(v, str | int | float | bool | list | type(None)) else str(v) for k, v in meta.items()
    }


def info(ex: Explorer) -> dict:
    """What this app offers: store, image ids, and per model its methods, layers (with names) and heads, and
    whether stored and live maps come from random weights."""
    models = {}
    for name in ex.models():
        try:
            i = ex.info(name)
        except gr.Error as e:
            models[name] = {"error": str(e)}
            continue
        models[name] = {
            "title": i.title,
            "methods": list(i.methods),
            "layers": {m: list(v) for m, v in i.layers.items()},
            "heads": dict(i.heads),
            "grid": list(i.grid),
            "classifier": i.classifier,
            "feature_layers": list(i.feature_layers),
            "layer_names": [i.layer_name(v) for v in range(i.num_layers)],
            "random_weights": {"store": ex.random_weights("store", name), "live": ex.random_weights("live", name)},
        }
    return {
        "mode": ex.mode,
        "store": ex.config.store if ex.store is not None else None,
        "random_weights": {  # any model; per model under "models" (a store's models run live as the store made them)
            "store": ex.random_weights("store"),
            "live": any(ex.random_weights("live", m) for m in ex.models()),
        },
        "problems": ex.problems,
        "images": ex.image_ids(),
        "models": models,
    }
