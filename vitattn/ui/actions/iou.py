"""The IoU tab: summaries of the store's metrics tables through ``vitattn.metrics`` (no numerics here).

A model's "best layer" is the layer whose all-heads-fused map has the highest mean IoU at the chosen percentile
(``vitattn.metrics.best_layers``). "best" as a method picks, per model, the (method, layer) pair with the highest
mean, chosen jointly: every pair is one candidate of ``best_layers``, so its bootstrap interval re-selects the method
and the layer in every resample (``SELECTION_NOTE`` says so on the page). Results are cached per argument set: the
tables do not change while the app runs. The leaderboard's metric choice, MaxBoxAccV2 and box-label filter live in
``iou_board`` (its names are re-exported here).

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
    METRIC_NAMES,
    breakdown,
    compare_selections,
    kruskal_by_group,
    layer_head_grid,
    select,
    summarize,
)
from vitattn.ui.actions import iou_board

# the leaderboard's names, re-exported ("as"): the tab, the API and the tests read them here
from vitattn.ui.actions.iou_board import (
    ALL_BOXES as ALL_BOXES,
    BEST as BEST,
    BOARD_NOTE as BOARD_NOTE,
    BREAKDOWNS as BREAKDOWNS,
    IOU_AT as IOU_AT,
    MAX_BOX_ACC as MAX_BOX_ACC,
    N_BOOT as N_BOOT,
    SELECTION_NOTE as SELECTION_NOTE,
    board_metrics as board_metrics,
    check_method as check_method,
    labels as labels,
    lower_is_better as lower_is_better,
    metric_of as metric_of,
)
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer

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
    chosen = {r["model"]: r["method"] for r in iou_board.best_per_model(ex, metric, check_method(ex, method))}
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
        best = [r for r in iou_board.best_per_model(ex, metric, None) if r["model"] == model]
        if not best:
            raise fail(f"no metrics for {model} in this store")
        method = best[0]["method"]
    info.check_method(method)
    if layer is None or layer < 0:
        best = [r for r in iou_board.best_per_model(ex, metric, method) if r["model"] == model]
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


def _cached(ex: Explorer, name: str, *args):
    return ex.memo(("iou", name, *args), partial(_COMPUTE[name], ex, *args))


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
    "leaderboard": iou_board.leaderboard,
    "curves": _curves,
    "chance": _chance,
    "grid": _grid,
    "breakdown": _breakdown,
    "compare": _compare,
}
