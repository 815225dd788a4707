"""The Variants tab: does fine-tuning move attention toward what experts marked? (the study's Q2)

- ``compare``: two models (a fine-tuned variant and its frozen base, or any two) on one image, side by side on one
  colour scale; the shift map ``B - A`` in diverging colours on a symmetric scale whose range is stated; and every
  metric of both maps with its delta, for the whole image or one expert box.
- ``table``: per (model, strategy) the frozen and fine-tuned means, the paired difference with its bootstrap
  interval, d_z, the Holm-corrected p-value and the Enhance / Preserve / Destroy label (``vitattn.variants``),
  with each variant's validation accuracy beside its delta.

Variants are read from the store (``clip@lora`` is a model of its own there); no numerics here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from vitattn import render, variants
from vitattn.boxes import LabeledBox
from vitattn.metrics import LOWER_IS_BETTER, METRIC_NAMES, all_metrics, upsample
from vitattn.ui.actions.common import (
    all_models,
    check_layer,
    info,
    integer,
    layer_name,
    metric_deltas,
    warning,
)
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer

WHOLE_IMAGE = -1  # the "box" value that scores against every expert box of the image
SHIFT_SIDE = 384  # long side of the shift map's picture (a click on it is mapped back through this)
BAND = 24  # height of a title or warning band above it (vitattn.render.banner, one line)
COMMON_SIDE = 224  # maps on different grids are compared after upsampling both to this square (as the metrics do)
LAYERS = ("last", "best")
NO_VARIANTS = (
    "This store holds no fine-tuned variants. Fine-tune with `python -m vitattn.finetune --model clip --strategy "
    "lora ...` and add it with `python -m precompute --models clip,clip@lora=runs/clip-lora`; the comparison of "
    "any two models below works meanwhile."
)


def pairs(ex: Explorer) -> list[tuple[str, str]]:
    """``(frozen, variant)`` pairs the store holds (both models stored)."""
    if ex.store is None:
        return []
    return variants.variant_pairs(all_models(ex))


def default_pair(ex: Explorer) -> tuple[str, str]:
    """The first (frozen, variant) pair, else the first two models (or one model twice)."""
    found = pairs(ex)
    if found:
        return found[0]
    models = all_models(ex)
    return models[0], models[1] if len(models) > 1 else models[0]


def shared_methods(ex: Explorer, model_a: str, model_b: str) -> list[str]:
    """Methods both models have, in A's order."""
    b = set(info(ex, model_b).methods)
    return [m for m in info(ex, model_a).methods if m in b]


def _map(ex: Explorer, item, model: str, method: str, layer: int, head: int | None) -> np.ndarray:
    heatmap, _ = ex.map(item, model, method, layer, head)
    return np.asarray(heatmap, dtype=np.float32)


def _scope(item, box: object) -> tuple[tuple[LabeledBox, ...], str]:
    """The boxes scored (all, or one) and how the table names them."""
    index = integer(box, "box")
    if index == WHOLE_IMAGE:
        return tuple(item.boxes), "whole image (every expert box)"
    if not 0 <= index < len(item.boxes):
        raise fail(f"no expert box {index} on {item.id}: valid boxes 0..{len(item.boxes) - 1}, or -1 for all")
    b = item.boxes[index]
    return (b,), f"box {index}" + (f": {b.label}" if b.label else "")


def compare(
    ex: Explorer,
    image_id: str,
    model_a: str,
    model_b: str,
    method: str,
    layer: int = -1,
    head: int = -1,
    box: int = WHOLE_IMAGE,
    opacity: float = 0.6,
) -> tuple[Image.Image, Image.Image, pd.DataFrame]:
    """Model A and model B on one image: both maps on one colour scale, the shift map B - A, the metric deltas.

    Args:
        ex: the app's data.
        image_id: a stored image (variants have stored maps only).
        model_a: e.g. the frozen model (``clip``).
        model_b: e.g. its variant (``clip@lora``), or any other model.
        method: a method both models have.
        layer: layer of both maps (-1: the last); both models need the same layers.
        head: -1 for all heads fused, else one head.
        box: -1 scores against every expert box, else the index of one box.
        opacity: weight of the map colours.

    Returns:
        ``(pair picture, shift picture, metrics table)``; the table has ``metric, A, B, B - A, better`` per metric.
    """
    item = ex.item(image_id)
    if not 0.0 <= float(opacity) <= 1.0:
        raise fail(f"opacity must lie in [0, 1], got {brief(opacity)}")
    common = shared_methods(ex, model_a, model_b)
    if method not in common:
        raise fail(f"{model_a} and {model_b} share no method {brief(method)}; shared: {', '.join(common) or 'none'}")
    infos = [info(ex, m) for m in (model_a, model_b)]
    layer = check_layer(infos[0], method, layer)
    check_layer(infos[1], method, layer)
    head = infos[0].check_head(method, head)
    infos[1].check_head(method, -1 if head is None else head)
    a, b = (_map(ex, item, m, method, layer, head) for m in (model_a, model_b))
    boxes, scope = _scope(item, box)
    where = f"{method} · {layer_name(infos[0], layer)}" + ("" if head is None else f" · head {head}")
    mark = warning(ex, model_a) or warning(ex, model_b)
    pair = render.compare_maps(
        item.picture,
        [a, b],
        [f"A: {model_a} · {where}", f"B: {model_b} · {where}"],
        boxes=boxes,
        opacity=float(opacity),
        warning=mark,
        bar_label="raw map values, one colour scale for A and B",
    )
    if a.shape != b.shape:  # other grids: both upsampled to one square, as the metrics see them
        a, b = upsample(a, COMMON_SIDE), upsample(b, COMMON_SIDE)
    diff, limit = variants.shift_map(b, a)
    shift = render.shift_view(
        item.picture,
        diff,
        limit,
        title=f"shift B - A: {model_b} - {model_a} · {where}",
        boxes=boxes,
        warning=mark,
        side=SHIFT_SIDE,
    )
    return pair, shift, _deltas(ex, item, (model_a, model_b), (a, b), method, layer, head, boxes, scope, box)


def _deltas(ex, item, models, maps, method, layer, head, boxes, scope, box) -> pd.DataFrame:
    if not boxes:
        return pd.DataFrame([{"metric": "(this image has no expert boxes)", "A": None, "B": None, "B - A": None}])
    if integer(box, "box") == WHOLE_IMAGE:  # stored scores where the store has them
        scores = [ex.scores(item, m, method, layer, head)[0] for m in models]
    else:
        scores = [None, None]
    scores = [s if s else all_metrics(np.asarray(m), boxes) for s, m in zip(scores, maps, strict=True)]
    rows = [{**row, "scope": scope} for row in metric_deltas(scores[0], scores[1])]
    columns = ["metric", "A", "B", "B - A", "better", "B is", "scope"]
    return pd.DataFrame(rows, columns=columns).round(4)


def box_choices(ex: Explorer, image_id: str) -> list[tuple[str, int]]:
    """``(label, value)`` choices of the scope: the whole image, then each expert box."""
    boxes = ex.item(image_id).boxes
    return [
        ("whole image", WHOLE_IMAGE),
        *((f"box {i}: {b.label}" if b.label else f"box {i}", i) for i, b in enumerate(boxes)),
    ]


def box_at_click(ex: Explorer, image_id: str, x: float, y: float) -> int:
    """The expert box under a normalized point (the smallest that contains it), or -1 (whole image)."""
    boxes = ex.item(image_id).boxes
    inside = [
        ((b.box[2] - b.box[0]) * (b.box[3] - b.box[1]), i)
        for i, b in enumerate(boxes)
        if b.box[0] <= x <= b.box[2] and b.box[1] <= y <= b.box[3]
    ]
    return min(inside)[1] if inside else WHOLE_IMAGE


def table(
    ex: Explorer, method: str, layer: str = "last", metric: str = "iou_90", head: int = -1
) -> tuple[pd.DataFrame, str]:
    """The delta table per (model, strategy): frozen vs fine-tuned, Holm-corrected over its rows.

    Args:
        ex: the app's data.
        method: the method compared (pairs without it are left out).
        layer: ``"last"``, ``"best"`` (the frozen model's best layer by mean ``metric``) or a layer number.
        metric: a metric column (``iou_90``: the headline IoU).
        head: -1 (all heads fused) or one head.

    Returns:
        ``(rows, summary)``: columns ``model, variant, strategy, layer, images, frozen, fine_tuned, delta, ci_low,
        ci_high, d_z, test, p, p_holm, label, val_accuracy``; the summary counts Enhance / Preserve / Destroy.
    """
    return ex.memo(
        ("variants", "table", method, str(layer), metric, head), lambda: _table(ex, method, layer, metric, head)
    )


def _table(ex: Explorer, method: str, layer: object, metric: str, head: object) -> tuple[pd.DataFrame, str]:
    ex.require_store("the variants table")
    if metric not in METRIC_NAMES:
        raise fail(f"unknown metric {brief(metric)}; valid: {', '.join(METRIC_NAMES)}")
    at: int | str = layer if layer in LAYERS else integer(layer, "layer (a number, 'last' or 'best')")
    head = integer(head, "head")
    found = [p for p in pairs(ex) if method in shared_methods(ex, *p)]
    if not found:
        reason = NO_VARIANTS if not pairs(ex) else f"No variant pair has method {method!r}."
        return pd.DataFrame(columns=["model", "variant", "strategy", "label"]), reason
    manifest = ex.store.manifest
    try:
        rows = variants.delta_table(
            ex.metrics_table(),
            found,
            method=method,
            layer=at,
            metric=metric,
            head=head,
            val_accuracy=variants.validation_accuracies(manifest),
            manifest=manifest,
        )
    except ValueError as e:
        raise fail(f"cannot compare the variants: {e}") from None
    frame = pd.DataFrame(
        [
            {
                "model": r["model"],
                "variant": r["variant"],
                "strategy": r["strategy"],
                "layer": r["layer"],
                "images": r["n"],
                "frozen": r["frozen"],
                "fine_tuned": r["variant_mean"],
                "delta": r["delta"],
                "ci_low": r["ci_low"],
                "ci_high": r["ci_high"],
                "d_z": r["d_z"],
                "test": r["test"],
                "p": r["p"],
                "p_holm": r["p_holm"],
                "label": r["label"],
                "val_accuracy": r["val_accuracy"],
            }
            for r in rows
        ]
    )
    counts = variants.label_counts(rows)
    lower = " (lower is better: a negative delta is a gain)" if metric in LOWER_IS_BETTER else ""
    summary = (
        f"**{metric}**{lower}, {method}, layer {layer}: "
        + " · ".join(f"**{k}** {v}" for k, v in counts.items())
        + f" of {len(rows)} (Holm-corrected over these rows, alpha 0.05; delta = fine-tuned - frozen, with a "
        "bootstrap 95% interval; val_accuracy: the fine-tune run's validation accuracy)."
    )
    return frame.round(4), summary
