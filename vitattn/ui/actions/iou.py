"""The IoU tab: summaries of the store's metrics tables through ``vitattn.metrics`` (no numerics here).

A model's "best layer" is the layer whose all-heads-fused map has the highest mean IoU at the chosen percentile
(``vitattn.metrics.best_layers``). "best" as a method picks, per model, the (method, layer) pair with the highest
mean, chosen jointly: every pair is one candidate of ``best_layers``, so its bootstrap interval re-selects the method
and the layer in every resample (``SELECTION_NOTE`` says so on the page). Results are cached per argument set: the
tables do not change while the app runs.

The per-layer curves (``curves``) carry a 95% bootstrap band per layer (images resampled, seed 0) and the stored
baselines' means as chance lines (``chance``); ``curves_component`` and ``curves_plot`` draw them as an interactive
Vega-Lite chart (hover values) in a ``gr.Plot``.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
from PIL import Image

from vitattn import render
from vitattn.metrics import (
    BASELINE_NAMES,
    FUSED_HEAD,
    LOWER_IS_BETTER,
    METRIC_NAMES,
    PERCENTILES,
    best_layers,
    breakdown,
    compare_selections,
    kruskal_by_group,
    layer_head_grid,
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


def _cached(ex: Explorer, name: str, *args):
    return ex.memo(("iou", name, *args), partial(_COMPUTE[name], ex, *args))


def _check_method(ex: Explorer, method: str) -> str | None:
    if method == BEST:
        return None
    methods = sorted({m for name in ex.models() for m in ex.info(name).methods})
    if method not in methods:
        raise fail(f"unknown method {brief(method)}; valid: {BEST}, {', '.join(methods)}")
    return method


def _best(ex: Explorer, metric: str, method: str | None) -> list[dict]:
    """Per model, the best layer of ``method`` (None: the best (method, layer) pair) with its mean and interval."""
    return ex.memo(("iou", "best", metric, method), lambda: _best_rows(ex, metric, method))


def _best_rows(ex: Explorer, metric: str, method: str | None) -> list[dict]:
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


def _leaderboard(ex: Explorer, percentile: int, method: str, metric: str, label: str) -> pd.DataFrame:
    column = column_of(ex, percentile, metric)
    if label not in (None, "", ALL_BOXES):
        return _label_board(ex, column, method, _check_label(ex, label))
    if column == MAX_BOX_ACC:
        return _box_acc_board(ex, _check_method(ex, method))
    table = ex.metrics_table()
    out = []
    for rank, row in enumerate(_best(ex, column, _check_method(ex, method)), start=1):
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
    chosen = _check_method(ex, method)
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
        for row in _best(ex, metric, method) if method is not None else _every_best(ex, metric):
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
    return [r for m in _methods(ex.metrics_table()) for r in _best(ex, metric, m)]


CURVE_COLUMNS = ["model", "method", "layer", "depth", "iou", "lo", "hi"]
CHANCE_COLUMNS = ["baseline", "iou", "lo", "hi"]
BOOT_SEED = 0  # the seed of ``vitattn.metrics.summarize``: the same bands on every run
BANDS_NOTE = (
    f"Bands: the 95% bootstrap interval of each layer's mean ({N_BOOT} resamples of the images with replacement, "
    f"percentile interval, seed {BOOT_SEED}). Dashed grey lines: chance, each stored baseline's mean IoU at this "
    "percentile. Hover a dot, a band or a line for its numbers."
)


def _curves(ex: Explorer, percentile: int, method: str) -> pd.DataFrame:
    """Rows per (model, layer): ``depth`` = (layer + 1) / layers puts ViT blocks and ResNet stages on one axis;
    ``lo``, ``hi``: the 95% percentile-bootstrap interval of the mean over images (``summarize``, seed 0)."""
    metric = metric_of(percentile)
    fused = select(ex.metrics_table(), head=FUSED_HEAD)
    chosen = {r["model"]: r["method"] for r in _best(ex, metric, _check_method(ex, method))}
    keep = np.array([chosen.get(str(m)) == str(meth) for m, meth in zip(fused["model"], fused["method"], strict=True)])
    shown = {k: np.asarray(v)[keep] for k, v in fused.items()}
    if not keep.any():
        return pd.DataFrame(columns=CURVE_COLUMNS)
    rows = [
        {
            "model": r["model"],
            "method": r["method"],
            "layer": ex.info(r["model"]).layer_name(int(r["layer"])),
            "depth": round(ex.info(r["model"]).depth(int(r["layer"])), 4),
            "iou": r["mean"],
            "lo": r["lo"],
            "hi": r["hi"],
        }
        for r in summarize(shown, metric, by=("model", "method", "layer"), n_boot=N_BOOT, seed=BOOT_SEED)
    ]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def _chance(ex: Explorer, percentile: int) -> pd.DataFrame:
    """Each stored baseline's mean at ``percentile`` (of ``vitattn.metrics.BASELINE_NAMES``, in that order) with
    its bootstrap interval: the chance lines of the curves."""
    metric = metric_of(percentile)
    try:
        found = summarize(ex.baseline_table(), metric, by=("baseline",), n_boot=N_BOOT, seed=BOOT_SEED)
    except (KeyError, ValueError):  # a store without baselines (or without this column): no chance lines
        found = []
    rows = {r["baseline"]: r for r in found}
    order = [b for b in BASELINE_NAMES if b in rows] + sorted(set(rows) - set(BASELINE_NAMES))
    return pd.DataFrame(
        [{"baseline": b, "iou": rows[b]["mean"], "lo": rows[b]["lo"], "hi": rows[b]["hi"]} for b in order],
        columns=CHANCE_COLUMNS,
    )


def methods_of(ex: Explorer, model: str, with_heads: bool = False) -> list[str]:
    """The methods of ``model`` in the store's metrics (``with_heads``: those with per-head maps)."""
    info = ex.info(model)
    return [m for m in info.methods if not with_heads or info.heads.get(m, 0) > 0]


def has_styles(ex: Explorer) -> bool:
    """Whether any stored image has style metadata (the breakdown by style needs it)."""
    try:
        return any(_style(m) != "(none)" for m in ex.image_meta().values())
    except Exception:
        return False


def _grid(ex: Explorer, model: str, method: str, percentile: int) -> tuple[Image.Image, dict]:
    metric = metric_of(percentile)
    info = ex.info(model)
    info.check_method(method)
    try:
        grid, fused = layer_head_grid(ex.metrics_table(), model, method, metric)
    except ValueError as e:
        raise fail(f"no metrics for {model}/{method} in this store ({e})") from None
    values = np.concatenate([grid, fused[:, None]], axis=1)  # [L, H + 1]
    cols = [f"h{h}" for h in range(grid.shape[1])] + ["fused"]
    picture = render.heat_table(
        values,
        [info.layer_name(v) for v in range(len(fused))],
        cols,
        title=f"{model} · {method} · mean {metric} per layer and head (fused: all heads)",
        bar_label=f"mean {metric} over the images",
    )
    data = {"model": model, "method": method, "metric": metric, "grid": _nan_none(grid), "fused": _nan_none(fused)}
    return picture, data


def _nan_none(values: np.ndarray) -> list:
    return np.where(np.isfinite(values), np.round(values, 6), None).tolist()


def _view_of(ex: Explorer, model: str, method: str, layer: float, metric: str) -> tuple[str, int]:
    """``(method, layer)``: a method of the model (``best``: its best), and its best layer when ``layer`` < 0."""
    info = ex.info(model)
    if method == BEST:
        best = [r for r in _best(ex, metric, None) if r["model"] == model]
        if not best:
            raise fail(f"no metrics for {model} in this store")
        method = best[0]["method"]
    info.check_method(method)
    if layer is None or layer < 0:
        best = [r for r in _best(ex, metric, method) if r["model"] == model]
        if not best:
            raise fail(f"no metrics for {model}/{method} in this store")
        return method, int(best[0]["layer"])
    return method, info.check_layer(method, layer)


def _breakdown(ex: Explorer, model: str, method: str, layer: float, by: str, percentile: int) -> pd.DataFrame:
    metric = metric_of(percentile)
    if by not in BREAKDOWNS:
        raise fail(f"breakdown by {brief(by)}: choose one of {', '.join(BREAKDOWNS)}")
    method, layer = _view_of(ex, model, method, layer, metric)
    keys = {"model": model, "method": method, "layer": layer, "head": FUSED_HEAD}
    try:
        if by == "label":  # the per-box table: IoU of each box alone at the 90th percentile
            table = select(ex.box_table(), **keys)
            rows = breakdown(table, "iou", "label", n_boot=N_BOOT)
            values, groups = table["iou"], table["label"]
            metric = "iou (per box, at 90)"
        else:
            meta = {i: {"style": _style(m)} for i, m in ex.image_meta().items()}
            if all(v["style"] == "(none)" for v in meta.values()):
                raise fail("the images of this store have no style metadata (WikiChurches images do)")
            table = select(ex.metrics_table(), **keys)
            rows = breakdown(table, metric, "style", image_meta=meta, n_boot=N_BOOT)
            values, groups = table[metric], [meta.get(i, {"style": "(none)"})["style"] for i in table["image_id"]]
    except ValueError as e:
        raise fail(f"no rows for {model}/{method}/layer {layer} in this store ({e})") from None
    frame = pd.DataFrame(
        [{by: r[by], metric: r["mean"], "ci_low": r["lo"], "ci_high": r["hi"], "images": r["n"]} for r in rows]
    )
    h, p = _kruskal(values, groups)  # one test across the groups, repeated on every row of the table
    frame = frame.assign(kruskal_H=h, kruskal_p=p)
    return frame.assign(model=model, method=method, layer=layer).round(4)


def _style(meta: dict) -> str:
    styles = meta.get("styles") or meta.get("style") or []
    styles = [styles] if isinstance(styles, str) else list(styles)
    return " + ".join(map(str, styles)) or "(none)"


def _compare(ex: Explorer, model_a: str, model_b: str, percentile: int) -> pd.DataFrame:
    metric = metric_of(percentile)
    views = [(m, *_view_of(ex, m, BEST, -1, metric)) for m in (model_a, model_b)]
    a, b = ({"model": m, "method": meth, "layer": layer, "head": FUSED_HEAD} for m, meth, layer in views)
    try:
        rows = compare_selections(ex.metrics_table(), a, b, _metric_columns(ex), n_boot=N_BOOT)
    except ValueError as e:
        raise fail(f"cannot compare {model_a} and {model_b}: {e}") from None
    names = {"a": f"{model_a} {a['method']} L{a['layer']}", "b": f"{model_b} {b['method']} L{b['layer']}"}
    frame = pd.DataFrame(
        [{"metric": r["metric"], **names, **{k: v for k, v in r.items() if k != "metric"}} for r in rows],
        columns=["metric", "a", "b", "n", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "d_z"]
        + ["rank_biserial", "test", "shapiro_p", "p", "p_holm", "lower_is_better"],
    )
    return frame.round(4)


def _metric_columns(ex: Explorer) -> list[str]:
    """The metrics of ``METRIC_NAMES`` the store's table has (older stores lack the continuous ones)."""
    table = ex.metrics_table()
    return [m for m in METRIC_NAMES if m in table]


def _kruskal(values, groups) -> tuple[float, float]:
    """Kruskal-Wallis H and p across the groups; NaN when there are fewer than two groups."""
    if len(set(groups)) < 2:
        return float("nan"), float("nan")
    result = kruskal_by_group(np.asarray(values, dtype=np.float64), list(groups))
    return round(float(result.H), 4), round(float(result.p), 4)


def leaderboard(
    ex: Explorer, percentile: int = 90, method: str = BEST, metric: str = IOU_AT, label: str = ALL_BOXES
) -> pd.DataFrame:
    """Models at their best layer ranked by a metric (IoU@p: IoU at the percentile; mse, kl, emd: lowest first;
    max_box_acc: MaxBoxAccV2 over the set), method "best": each model's best; with a box label, image methods
    against that label's boxes beside text methods prompted with it."""
    return _cached(ex, "leaderboard", percentile, method, metric, label)


def curves(ex: Explorer, percentile: int = 90, method: str = BEST) -> pd.DataFrame:
    """Mean IoU per layer of every model: rows (model, method, layer name, depth = (layer + 1) / layers, iou, lo, hi:
    the 95% bootstrap interval over images)."""
    return _cached(ex, "curves", percentile, method)


def grid(ex: Explorer, model: str, method: str, percentile: int = 90) -> tuple[Image.Image, dict]:
    """Mean IoU per layer and head of one model and method, as a table picture with a legend and as numbers."""
    return _cached(ex, "grid", model, method, percentile)


def by_group(ex: Explorer, model: str, method: str = BEST, layer: int = -1, by: str = "label", percentile: int = 90):
    """Mean IoU of one model by box label or by image style (method "best", layer -1: the best ones)."""
    return _cached(ex, "breakdown", model, method, layer, by, percentile)


def compare(ex: Explorer, model_a: str, model_b: str, percentile: int = 90) -> pd.DataFrame:
    """Paired test of two models, each at its best method and layer, over the images both cover: one row per metric
    (t-test or Wilcoxon by a Shapiro-Wilk check, B - A with a bootstrap interval, d_z, Holm-corrected p)."""
    return _cached(ex, "compare", model_a, model_b, percentile)


def chance(ex: Explorer, percentile: int) -> pd.DataFrame:
    """Each stored baseline's mean IoU at ``percentile`` with its bootstrap interval (the curves' chance lines)."""
    return _cached(ex, "chance", percentile)


# -- the curves as an interactive chart ---------------------------------------------------------------------------
#
# Gradio's native LinePlot draws lines only (no bands, no extra reference lines). ``gr.Plot`` renders a Vega-Lite
# spec with the vega-embed bundled in Gradio's front end (hover tooltips included) when given an ``AltairPlotData``;
# ``gr.Plot.postprocess`` passes it through as it is. So the spec is written here as JSON, the same spec altair would
# emit, without adding altair as a dependency. Vega-Lite 5 (the version Gradio 6 bundles). With ``chart="line"`` the
# front end does what it does for its own line charts: the chart takes the width of its box (and follows it), the
# page's fonts, and the page's colours for each layer's colour scale (so every layer with a colour encoding gives
# its scale an explicit range, which the front end replaces by index, and every layer keeps one model order).


_COMPUTE = {
    "leaderboard": _leaderboard,
    "curves": _curves,
    "chance": _chance,
    "grid": _grid,
    "breakdown": _breakdown,
    "compare": _compare,
}
