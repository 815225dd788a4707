"""The IoU tab's leaderboard: each model at its best (method and) layer by any metric of the store's metrics table,
by MaxBoxAccV2 over the set (``vitattn.metrics.boxacc``), or, for one box label, image methods scored against that
label's boxes beside text methods prompted with it. ``iou.leaderboard`` serves it, cached.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vitattn.metrics import (
    FUSED_HEAD,
    LOWER_IS_BETTER,
    METRIC_NAMES,
    PERCENTILES,
    best_layers,
    select,
    summarize,
)
from vitattn.metrics.boxacc import max_box_acc_summary
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer

BEST = "best"
N_BOOT = 1000
BREAKDOWNS = ("label", "style")
STRIDE = 10_000  # (method, layer) -> one candidate number: method index * STRIDE + layer
SELECTION_NOTE = (
    "Each model is shown at its best layer (and, with method **best**, its best method), chosen on the same images "
    "its mean is computed on, so the mean is optimistic. The interval (ci_low..ci_high) accounts for the choice: "
    "every bootstrap resample of images chooses its own best method and layer; **p_best** is how often it chooses "
    "the one shown."
)


IOU_AT = "IoU@p"  # the leaderboard's metric: IoU at the chosen percentile
MAX_BOX_ACC = "max_box_acc"  # MaxBoxAccV2: a per-set metric (``vitattn.metrics.boxacc``), not a column
ALL_BOXES = "all boxes"  # no label filter: every expert box of each image
BOARD_NOTE = (
    "**Metric**: IoU@p uses the percentile beside it; mse, kl and emd are lower-is-better (ranked lowest first); "
    "max_box_acc is MaxBoxAccV2 over the whole set (Choe et al. 2020: the best threshold per IoU level 0.3, 0.5, "
    "0.7), one number per model, method and layer. **Label**: image methods scored against that label's boxes "
    "only (on the images that have one, at each one's best layer over all boxes), text methods with that label "
    "as their prompt."
)


def metric_of(percentile: float) -> str:
    if isinstance(percentile, bool) or percentile not in PERCENTILES:
        raise fail(f"percentile must be one of {', '.join(map(str, PERCENTILES))}, got {brief(percentile)}")
    return f"iou_{int(percentile)}"


BOARD_METRICS = (IOU_AT, *(m for m in METRIC_NAMES if m == "iou_auc" or not m.startswith("iou_")), MAX_BOX_ACC)


def board_metrics(ex: Explorer) -> list[str]:
    """The leaderboard's metric choices: IoU@p, the other per-map columns, MaxBoxAccV2 (without reading the store:
    a column an older store lacks is refused when picked, ``column_of``)."""
    return list(BOARD_METRICS)


def column_of(ex: Explorer, percentile: float, metric: str) -> str:
    """The metrics-table column of a leaderboard metric (``IoU@p``: ``iou_<percentile>``)."""
    if metric == IOU_AT:
        return metric_of(percentile)
    if metric not in BOARD_METRICS:
        raise fail(f"unknown leaderboard metric {brief(metric)}; valid: {', '.join(BOARD_METRICS)}")
    if metric != MAX_BOX_ACC and metric not in ex.metrics_table():
        raise fail(f"this store's metrics table has no {metric} (it was made before that metric existed)")
    return metric


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


def check_method(ex: Explorer, method: str) -> str | None:
    if method == BEST:
        return None
    methods = sorted({m for name in ex.models() for m in ex.info(name).methods})
    if method not in methods:
        raise fail(f"unknown method {brief(method)}; valid: {BEST}, {', '.join(methods)}")
    return method


def best_per_model(ex: Explorer, metric: str, method: str | None) -> list[dict]:
    """Per model, the best layer of ``method`` (None: the best (method, layer) pair) with its mean and interval."""
    return ex.memo(("iou", "best", metric, method), lambda: best_rows(ex, metric, method))


def best_rows(ex: Explorer, metric: str, method: str | None) -> list[dict]:
    """``best_layers`` picks the highest mean: a lower-is-better metric is ranked on its negation, and its rows
    turned back (mean, and the interval's ends swapped)."""
    table = ex.metrics_table()
    lower = lower_is_better(metric)
    if lower:
        table = {**table, metric: -np.asarray(table[metric], dtype=np.float64)}
    try:
        if method is not None:
            rows = best_layers(table, metric, method=method, n_boot=N_BOOT)
        else:
            rows = _decode(best_layers(_pairs(table), metric, method=BEST, n_boot=N_BOOT), _methods(table))
    except ValueError as e:
        raise fail(f"no metrics for method {brief(method or BEST)} in this store ({e})") from None
    if lower:
        rows = [{**r, "mean": -r["mean"], "lo": -r["hi"], "hi": -r["lo"]} for r in rows]
    return sorted(rows, key=lambda r: r["mean"] if lower else -r["mean"])


def _methods(table) -> list[str]:
    return sorted({str(m) for m in np.asarray(table["method"]).tolist()})


def _pairs(table) -> dict[str, np.ndarray]:
    """The fused-head rows with every (method, layer) pair as one "layer" of one method, ``best``."""
    fused = select(table, head=FUSED_HEAD)
    index = {m: i for i, m in enumerate(_methods(table))}
    methods = np.asarray(fused["method"])
    pair = np.array([index[str(m)] for m in methods.tolist()], dtype=np.int64) * STRIDE + fused["layer"]
    return {**fused, "method": np.full(len(methods), BEST), "layer": pair}


def _decode(rows: list[dict], methods: list[str]) -> list[dict]:
    return [{**r, "method": methods[int(r["layer"]) // STRIDE], "layer": int(r["layer"]) % STRIDE} for r in rows]


def leaderboard(ex: Explorer, percentile: int, method: str, metric: str, label: str) -> pd.DataFrame:
    column = column_of(ex, percentile, metric)
    if label not in (None, "", ALL_BOXES):
        return _label_board(ex, column, method, _check_label(ex, label))
    if column == MAX_BOX_ACC:
        return _box_acc_board(ex, check_method(ex, method))
    table = ex.metrics_table()
    out = []
    for rank, row in enumerate(best_per_model(ex, column, check_method(ex, method)), start=1):
        rows = select(table, model=row["model"], method=row["method"], layer=row["layer"], head=FUSED_HEAD)
        out.append(
            {
                "rank": rank,
                "model": row["model"],
                "method": row["method"],
                "layer": row["layer"],
                column: row["mean"],
                "ci_low": row["lo"],
                "ci_high": row["hi"],
                "p_best": row["p_best"],
                "coverage": float(np.mean(rows["coverage"])),
                "pointing": float(np.mean(rows["pointing"])),
                "images": row["n"],
            }
        )
    baselines = ex.baseline_table()
    try:
        found = summarize(baselines, column, by=("baseline",), n_boot=N_BOOT)
    except (KeyError, ValueError):  # a store without baselines of this metric: no baseline rows
        found = []
    for row in found:
        rows = select(baselines, baseline=row["baseline"])
        out.append(
            {
                "rank": None,
                "model": f"baseline: {row['baseline']}",
                "method": "",
                "layer": None,
                column: row["mean"],
                "ci_low": row["lo"],
                "ci_high": row["hi"],
                "p_best": None,
                "coverage": float(np.mean(rows["coverage"])),
                "pointing": float(np.mean(rows["pointing"])),
                "images": row["n"],
            }
        )
    return pd.DataFrame(out).round(4)


BOX_ACC_COLUMNS = ["rank", "model", "method", "layer", MAX_BOX_ACC, *(f"{MAX_BOX_ACC}@{d:g}" for d in (0.3, 0.5, 0.7))]


def box_acc_rows(ex: Explorer, method: str | None = None) -> list[dict]:
    """MaxBoxAccV2 of every stored (model, layer) of ``method`` (None: of every method), from
    ``boxacc.max_box_acc_summary``; computed once per method (about 80 ms per map: 100 thresholds, each labelled)."""
    ex.require_store("MaxBoxAccV2")
    if method is None:
        return [r for m in _methods(ex.metrics_table()) for r in box_acc_rows(ex, m)]
    models = [m for m in ex.models() if method in ex.info(m).methods]
    return ex.memo(("iou", "box_acc", method), lambda: max_box_acc_summary(ex.store, models=models, methods=[method]))


def _box_acc_board(ex: Explorer, method: str | None) -> pd.DataFrame:
    """Per (model, method), the layer with the highest MaxBoxAccV2 (ties: the shallower), best first."""
    best: dict[tuple, dict] = {}
    for r in box_acc_rows(ex, method):
        key = (r["model"], r["method"])
        if key not in best or r[MAX_BOX_ACC] > best[key][MAX_BOX_ACC]:
            best[key] = r
    if method is None:  # "best": each model's best method
        per_model: dict[str, dict] = {}
        for r in best.values():
            if r["model"] not in per_model or r[MAX_BOX_ACC] > per_model[r["model"]][MAX_BOX_ACC]:
                per_model[r["model"]] = r
        best = {(m, r["method"]): r for m, r in per_model.items()}
    rows = sorted(best.values(), key=lambda r: -r[MAX_BOX_ACC])
    out = [
        {**{c: r[c] for c in BOX_ACC_COLUMNS[1:]}, "rank": i, "images": r["n_images"]} for i, r in enumerate(rows, 1)
    ]
    return pd.DataFrame(out, columns=[*BOX_ACC_COLUMNS, "images"]).round(4)


def labels(ex: Explorer) -> list[str]:
    """The box labels of the store, most boxes first (the leaderboard's label filter)."""
    if ex.store is None:
        return []

    def count() -> list[str]:
        table = ex.box_table()
        if not len(table.get("label", ())):
            return []
        names, n = np.unique(np.asarray(table["label"]).astype(str), return_counts=True)
        return [str(names[i]) for i in np.lexsort((names, -n)) if names[i]]

    return ex.memo(("iou", "labels"), count)


def _check_label(ex: Explorer, label: str) -> str:
    if not isinstance(label, str) or label not in labels(ex):
        raise fail(f"unknown box label {brief(label)}; valid: {ALL_BOXES}, {', '.join(labels(ex)[:20])}")
    return label


def text_table(ex: Explorer) -> dict[str, np.ndarray]:
    """The metrics rows of the stored text maps (``prompt``: the box label, scored against that label's boxes)."""
    ex.require_store("the IoU tab")

    def read() -> dict[str, np.ndarray]:
        table = {k: np.asarray(v) for k, v in ex.store.metrics(text=True).items()}
        if "prompt" not in table:
            return {k: v[:0] for k, v in table.items()}
        keep = np.array([p not in (None, "") for p in table["prompt"].tolist()], dtype=bool)
        return {k: v[keep] for k, v in table.items()}

    return ex.memo(("iou", "text"), read)


LABEL_COLUMNS = ["rank", "model", "method", "kind", "layer", "ci_low", "ci_high", "images"]


def _label_board(ex: Explorer, metric: str, method: str, label: str) -> pd.DataFrame:
    """Image methods against ``label``'s boxes (at their best layer over all boxes) beside text methods prompted
    with ``label``, ranked by ``metric``; one row per (model, method)."""
    if metric == MAX_BOX_ACC:
        raise fail(f"{MAX_BOX_ACC} is a number over the whole set; it has no per-label value (choose {ALL_BOXES})")
    chosen = check_method(ex, method)
    image = _label_image_rows(ex, metric, chosen, label)
    text = text_table(ex)
    if metric in text:
        keep = (text["prompt"] == label) & (text["head"] == FUSED_HEAD)
        if chosen is not None:
            keep &= text["method"] == chosen
        text = {k: v[keep] for k, v in text.items()}
    rows = []
    for kind, table in (("image", image), (f"text: {label}", text)):
        if metric not in table or not len(table[metric]):
            continue
        for r in _best_per_method(table, metric):
            rows.append({**r, "kind": kind})
    if not rows:
        raise fail(f"no maps of method {brief(method)} are scored on boxes labelled {brief(label)} in this store")
    lower = lower_is_better(metric)
    rows.sort(key=lambda r: r["mean"] if lower else -r["mean"])
    out = [
        {"rank": i, "model": r["model"], "method": r["method"], "kind": r["kind"], "layer": r["layer"],
         metric: r["mean"], "ci_low": r["lo"], "ci_high": r["hi"], "images": r["n"]}
        for i, r in enumerate(rows, 1)
    ]  # fmt: skip
    columns = [*LABEL_COLUMNS[:5], metric, *LABEL_COLUMNS[5:]]
    return pd.DataFrame(out, columns=columns).round(4)


def _best_per_method(table: dict, metric: str) -> list[dict]:
    """Per (model, method) the best layer of ``table`` by ``metric`` with its bootstrap interval (lower-is-better
    metrics: the lowest mean)."""
    sign = -1.0 if lower_is_better(metric) else 1.0
    flipped = {**table, metric: sign * np.asarray(table[metric], dtype=np.float64)}
    rows = best_layers(flipped, metric, n_boot=N_BOOT)
    if sign < 0:
        rows = [{**r, "mean": -r["mean"], "lo": -r["hi"], "hi": -r["lo"]} for r in rows]
    return rows


def _label_image_rows(ex: Explorer, metric: str, method: str | None, label: str) -> dict[str, np.ndarray]:
    """Each image method at its best layer over all boxes, scored against ``label``'s boxes only on the images
    that have one (computed from the stored maps, ``Explorer.scores``: the store keeps per-label rows for text
    maps only)."""

    def compute() -> dict[str, np.ndarray]:
        boxes = ex.box_table()
        ids = sorted({str(i) for i, b in zip(boxes["image_id"], boxes["label"], strict=True) if b == label})
        out: dict[str, list] = {k: [] for k in ("image_id", "model", "method", "layer", "head", metric)}
        for row in best_per_model(ex, metric, method) if method is not None else _every_best(ex, metric):
            for image_id in ids:
                item = ex.item(image_id)
                mine = tuple(b for b in item.boxes if b.label == label)
                scores, _ = ex.scores(item, row["model"], row["method"], int(row["layer"]), None, boxes=mine)
                for k, v in (
                    ("image_id", image_id),
                    ("model", row["model"]),
                    ("method", row["method"]),
                    ("layer", int(row["layer"])),
                    ("head", FUSED_HEAD),
                    (metric, scores[metric]),
                ):
                    out[k].append(v)  # fmt: skip
        return {k: np.asarray(v) for k, v in out.items()}

    return ex.memo(("iou", "label rows", metric, method, label), compute)


def _every_best(ex: Explorer, metric: str) -> list[dict]:
    """The best layer of every (model, method) over all boxes."""
    return [r for m in _methods(ex.metrics_table()) for r in best_per_model(ex, metric, m)]
