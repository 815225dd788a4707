"""The Heads tab: which single heads align with the experts, and with which feature types (the study's Q3).

Handlers over the store's metrics and per-box tables through ``vitattn.metrics`` (``head_ranking``,
``head_feature_matrix``, ``head_exemplars``); no numerics here. Only methods with per-head maps have per-head rows
(``cls``, ``mean``, ``pool``, ``agcam``); a ResNet has no heads, rollout and gae fuse them by definition: those
choices are not offered (``choices`` says so in one line). Results are cached per argument set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from vitattn import render
from vitattn.metrics import LOWER_IS_BETTER, METRIC_NAMES, head_exemplars, head_feature_matrix, head_ranking
from vitattn.ui.actions.common import check_layer, info, integer, warning
from vitattn.ui.data.catalog import ModelInfo
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer

MAX_FEATURES = 30  # feature types (rows) drawn in the heat table: those with the most boxes
MAX_HEADS = 48  # heads (columns) drawn: with more, the 48 of the highest mean over feature types
MAX_EXEMPLARS = 12
EXEMPLAR_SIDE = 320


@dataclass(frozen=True)
class HeadChoices:
    """What the Heads tab offers for a model: methods with per-head maps, their layers, feature types."""

    models: tuple[str, ...]  # models with at least one per-head method
    methods: tuple[str, ...]  # of the chosen model
    method: str | None
    layers: tuple[int, ...]
    features: tuple[str, ...]  # box labels of the model and method, most boxes first
    note: str  # one line when the model has nothing to show here, else ""


def _head_methods(model_info: ModelInfo) -> list[str]:
    return [m for m in model_info.methods if model_info.heads.get(m, 0) > 0]


def head_models(ex: Explorer) -> list[str]:
    """The app's models with at least one method that has per-head maps (ResNet has none); none without a store."""
    if ex.store is None:
        return []
    return [m for m in ex.models() if _head_methods(ex.info(m))]


def choices(ex: Explorer, model: str, method: str | None = None, *, features: bool = True) -> HeadChoices:
    """Valid choices after picking a model (and method): an invalid method becomes the model's first per-head one.
    ``features=False`` leaves the feature types empty, reading no table (the page's build: start-up reads the
    manifest only; the tab fills them when it opens)."""
    models = tuple(head_models(ex))
    if ex.store is None:
        return HeadChoices(models, (), None, (), (), "The Heads tab needs a store of precomputed metrics.")
    model_info = ex.info(model) if model in ex.models() else None
    methods = tuple(_head_methods(model_info)) if model_info else ()
    if not methods:
        note = f"{model} has no attention heads (or no per-head method); pick one of {', '.join(models) or 'none'}."
        return HeadChoices(models, (), None, (), (), note)
    method = method if method in methods else methods[0]
    labels = tuple(_features(ex, model, method)) if features else ()
    return HeadChoices(models, methods, method, model_info.layers[method], labels, "")


def _checked(ex: Explorer, model: str, method: str) -> ModelInfo:
    ex.require_store("the Heads tab")
    model_info = info(ex, model)
    model_info.check_method(method)
    if model_info.heads.get(method, 0) == 0:
        valid = ", ".join(_head_methods(model_info)) or "none: this model has no heads"
        raise fail(f"{model}/{method} has no per-head maps; methods with heads: {valid}")
    return model_info


def _layers(model_info: ModelInfo, method: str, first: object, last: object) -> list[int]:
    """The layers ``first..last`` (-1: the last layer) of ``method``."""
    lo, hi = check_layer(model_info, method, first), check_layer(model_info, method, last)
    if lo > hi:
        raise fail(f"first layer {lo} is after last layer {hi}")
    return [v for v in model_info.layers[method] if lo <= v <= hi]


def _features(ex: Explorer, model: str, method: str) -> list[str]:
    """Box labels of the per-head rows of a model and method, most boxes first (then by name)."""

    def make() -> list[str]:
        table = ex.box_table()
        keep = (table["model"] == model) & (table["method"] == method) & (table["head"] >= 0)
        labels, counts = np.unique(table["label"][keep].astype(str), return_counts=True)
        return [str(v) for _, v in sorted(zip(-counts, labels, strict=True))]

    return ex.memo(("heads", "features", model, method), make)


def ranking(
    ex: Explorer, model: str, method: str, metric: str = "iou_90", first_layer: int = 0, last_layer: int = -1
) -> pd.DataFrame:
    """Every single head of a model and method ranked over the images (mean rank; 1 = best).

    Columns: ``rank, layer, head, <metric>`` (mean over images), ``mean_rank``, ``top1``, ``top3`` (share of images
    where the head is the best / among the 3 best), ``images`` and ``heads`` (how many competed).
    """
    return ex.memo(
        ("heads", "ranking", model, method, metric, first_layer, last_layer),
        lambda: _ranking(ex, model, method, metric, first_layer, last_layer),
    )


def _ranking(ex: Explorer, model: str, method: str, metric: str, first: object, last: object) -> pd.DataFrame:
    model_info = _checked(ex, model, method)
    if metric not in METRIC_NAMES:
        raise fail(f"unknown metric {brief(metric)}; valid: {', '.join(METRIC_NAMES)}")
    layers = _layers(model_info, method, first, last)
    try:
        rows = head_ranking(ex.metrics_table(), model, method, layers, metric)
    except ValueError as e:
        raise fail(f"no per-head metrics for {model}/{method} in this store ({e})") from None
    label = f"{metric} (lower is better)" if metric in LOWER_IS_BETTER else metric
    frame = pd.DataFrame(
        [
            {
                "rank": i,
                "layer": r["layer"],
                "head": r["head"],
                label: r["mean"],
                "mean_rank": r["mean_rank"],
                "top1": r["top1"],
                "top3": r["top3"],
                "images": r["n"],
                "heads": r["n_heads"],
            }
            for i, r in enumerate(rows, start=1)
        ]
    )
    return frame.round(4)


def matrix(
    ex: Explorer, model: str, method: str, first_layer: int = -1, last_layer: int = -1
) -> tuple[Image.Image, pd.DataFrame]:
    """Mean per-box IoU (at the 90th percentile) of each head for each feature type (box label), as a heat table
    with the box counts, and the best head per feature type as a table (``feature, layer, head, iou, boxes``)."""
    return ex.memo(
        ("heads", "matrix", model, method, first_layer, last_layer),
        lambda: _matrix(ex, model, method, first_layer, last_layer),
    )


def _matrix(ex: Explorer, model: str, method: str, first: object, last: object) -> tuple[Image.Image, pd.DataFrame]:
    model_info = _checked(ex, model, method)
    layers = _layers(model_info, method, first, last)
    try:
        result = head_feature_matrix(ex.box_table(), model, method, layers=layers)
    except ValueError as e:
        raise fail(f"no per-head box metrics for {model}/{method} in this store ({e})") from None
    best = pd.DataFrame(
        [
            {"feature": b["feature"], "layer": b["layer"], "head": b["head"], "iou": b["mean"], "boxes": b["count"]}
            for b in result.best
        ]
    )
    boxes = result.count.max(axis=0)  # [F] boxes of each feature (the same for every head)
    rows = np.argsort(-boxes, kind="stable")[:MAX_FEATURES]  # [F'] most boxes first
    cols = np.arange(len(result.heads))
    if len(cols) > MAX_HEADS:
        cols = np.sort(np.argsort(-np.nanmean(result.mean, axis=1), kind="stable")[:MAX_HEADS])
    values = result.mean[np.ix_(cols, rows)].T  # [F', H'] features x heads
    counts = result.count[np.ix_(cols, rows)].T
    shown_heads = [result.heads[c] for c in cols]
    marked = np.zeros(values.shape, dtype=bool)  # the library's best head of each feature, where it scores > 0
    for i, f in enumerate(rows):
        b = result.best[f]
        if b["mean"] > 0 and (b["layer"], b["head"]) in shown_heads:
            marked[i, shown_heads.index((b["layer"], b["head"]))] = True
    parts = [f"{model} · {method} · mean per-box IoU per feature type and head"]
    if len(cols) < len(result.heads):
        parts.append(f"the {len(cols)} best of {len(result.heads)} heads")
    if len(rows) < len(result.features):
        parts.append(f"{len(rows)} of {len(result.features)} feature types (most boxes)")
    picture = render.feature_table(
        values,
        counts,
        [f"{result.features[f]} ({int(boxes[f])})" for f in rows],
        [f"L{layer}h{head}" for layer, head in shown_heads],
        title=" · ".join(parts),
        bar_label="mean IoU of each box alone (90th percentile), over the images",
        best=marked,
    )
    if warning(ex, model):
        picture = render.stack_warning(picture, warning(ex, model))
    return picture, best.round(4)


def exemplars(
    ex: Explorer, model: str, method: str, layer: int, head: int, feature: str, k: int = 6
) -> tuple[list[tuple[Image.Image, str]], pd.DataFrame]:
    """The images where one head scores best on one feature type: its map over each image with that type's boxes,
    and the numbers (``image_id, iou, boxes, box``: mean IoU over the image's boxes of the type, their count, the
    best one's index)."""
    model_info = _checked(ex, model, method)
    layer = check_layer(model_info, method, layer)
    head = integer(head, "head")
    if not 0 <= head < model_info.heads[method]:
        raise fail(f"head {head} out of range for {model}/{method}: valid heads 0..{model_info.heads[method] - 1}")
    k = integer(k, "k")
    if not 1 <= k <= MAX_EXEMPLARS:
        raise fail(f"k must be 1..{MAX_EXEMPLARS}, got {k}")
    if not isinstance(feature, str) or not feature:
        raise fail(f"feature must be a box label, got {brief(feature)}")
    try:
        rows = head_exemplars(ex.box_table(), layer, head, feature, k, model=model, method=method)
    except ValueError as e:
        raise fail(f"no exemplars for {model}/{method} layer {layer} head {head} and {brief(feature)} ({e})") from None
    gallery = []
    for r in rows:
        item = ex.item(str(r["image_id"]))
        heatmap, _ = ex.map(item, model, method, layer, head)
        boxes = [b for b in item.boxes if b.label == feature]
        lo, hi = render.shared_range([heatmap])
        picture = render.compare_maps(
            item.picture,
            [heatmap],
            [f"{item.id} · IoU {r['iou']:.3g} · {r['n_boxes']} {feature}"],
            boxes=boxes,
            side=EXEMPLAR_SIDE,
            warning=warning(ex, model),
            bar_label=f"L{layer} h{head} map, {render.number(lo)}..{render.number(hi)}",
        )
        gallery.append((picture, f"{item.id}: IoU {r['iou']:.3g} ({r['n_boxes']} {feature})"))
    frame = pd.DataFrame(
        [{"image_id": r["image_id"], "iou": r["iou"], "boxes": r["n_boxes"], "box": r["box"]} for r in rows]
    )
    return gallery, frame.round(4)


def best_head(ex: Explorer, model: str, method: str, feature: str, first_layer: int = -1, last_layer: int = -1):
    """``(layer, head)`` of the best head for a feature type in the layer range (the heat table's cyan cell)."""
    _, best = matrix(ex, model, method, first_layer, last_layer)
    row = best[best["feature"] == feature]
    if row.empty:
        raise fail(f"no boxes labelled {brief(feature)} for {model}/{method}")
    return int(row["layer"].iloc[0]), int(row["head"].iloc[0])
