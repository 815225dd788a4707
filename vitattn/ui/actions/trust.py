"""The Trust tab: model-parameter randomisation curves (Adebayo et al. 2018) from the store, and one run live.

``curve_rows`` reads ``Store.sanity`` (the precompute job's top-down cascade of each method's fused map at its last
layer on the set's first images) and averages each (method, step) over those images; ``curves_plot`` draws them as a
Vega-Lite chart (one line per method, the gr.Plot the IoU tab's curves use); ``strip`` shows one method's
randomised maps on one stored image, stage by stage, each map on its own colour scale (as Adebayo et al. Fig. 2).
``live`` runs ``vitattn.sanity.model_randomization`` on the header's image (one analysis per stage: costly on CPU).
"""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pandas as pd
from gradio.components.plot import AltairPlotData
from PIL import Image

from vitattn import render
from vitattn.sanity import SIMILARITY_NAMES, model_randomization
from vitattn.specs import ON_REQUEST_METHODS
from vitattn.ui.actions.common import warning
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer

MEANING = (
    "**How to read it**: each point compares the map of a model whose stages are re-initialised from the output "
    "down (left: intact; right: every stage random) with the intact model's map. A curve that drops towards 0 "
    "depends on what the model learned; a map that stays at Spearman ~1 as the weights are randomised does not "
    "depend on what the model learned (Adebayo et al., *Sanity Checks for Saliency Maps*, NeurIPS 2018)."
)
LIVE_COST = (
    "Runs `vitattn.sanity.model_randomization` live on the header's image: one analysis per stage (about 16 for a "
    "ViT-B, about 12 s for rollout of a ViT-B/16 on a CPU; gradient methods and flow cost more). One click, one run."
)
PAIRS = {  # the two charts: each a measure and its companion (dashed)
    "rank": ("spearman", "spearman_abs"),
    "structure": ("ssim", "hog_similarity"),
}
TITLES = {
    "spearman": "Spearman",
    "spearman_abs": "|Spearman|",
    "ssim": "SSIM",
    "hog_similarity": "HOG similarity",
}
CURVE_COLUMNS = ["method", "step", "stage", "images", *SIMILARITY_NAMES]
PALETTE = ("#f97316", "#3b82f6", "#22c55e", "#ef4444", "#a855f7", "#06b6d4", "#eab308", "#ec4899", "#64748b")
VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"


def command(model: str) -> str:
    """The command that computes the curves of ``model``."""
    return f"python -m precompute --models {model} --sanity-images 8 --output <this store>"


def no_curves(ex: Explorer, model: str) -> str:
    """The one line shown where the store holds no curves of ``model``."""
    if ex.store is None:
        return f"No store, so no stored curves: run the test live below, or build a store with `{command(model)}`."
    return (
        f"This store holds no randomisation curves of {model} (it was built with `--sanity-images 0`); "
        f"compute them with `{command(model)}`."
    )


def has_curves(ex: Explorer, model: str) -> bool:
    return ex.store is not None and bool(ex.store.manifest["models"].get(model, {}).get("sanity"))


def table(ex: Explorer, model: str) -> dict[str, np.ndarray]:
    """``Store.sanity(model)`` (read once)."""
    ex.info(model)
    if not has_curves(ex, model):
        raise fail(no_curves(ex, model))
    return ex.memo(("trust", "sanity", model), lambda: {k: np.asarray(v) for k, v in ex.store.sanity(model).items()})


def stage_name(ex: Explorer, model: str, stage: str) -> str:
    """A randomisation stage as the page names it: a ResNet stage ``layer3`` is "stage 3 (layer3)", never a head."""
    if ex.info(model).family == "resnet" and stage.startswith("layer") and stage[5:].isdigit():
        return f"stage {stage[5:]} ({stage})"
    return stage


def curve_rows(ex: Explorer, model: str) -> pd.DataFrame:
    """The stored curves of ``model``: per (method, step) the mean of each similarity over the sanity images
    (NaN where a map was constant), with the stage randomised at that step (step 0: ``none``, the intact model)."""
    t = table(ex, model)
    rows = []
    for method in sorted(set(t["method"].tolist())):
        pick = t["method"] == method
        for step in sorted(set(t["step"][pick].tolist())):
            at = pick & (t["step"] == step)
            values = {k: np.asarray(t[k][at], dtype=np.float64) for k in SIMILARITY_NAMES}
            rows.append(
                {
                    "method": method,
                    "step": int(step),
                    "stage": stage_name(ex, model, str(t["stage"][at][0])),
                    "images": int(at.sum()),
                    **{k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in values.items()},
                }
            )
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def methods(ex: Explorer, model: str) -> list[str]:
    """The methods with stored curves."""
    return sorted(set(table(ex, model)["method"].tolist())) if has_curves(ex, model) else []


def images(ex: Explorer, model: str) -> list[str]:
    """The images with stored curves (the set's first ``--sanity-images``)."""
    return list(dict.fromkeys(table(ex, model)["image_id"].tolist())) if has_curves(ex, model) else []


def curves_plot(ex: Explorer, model: str, which: str) -> AltairPlotData:
    """One chart of the stored curves: ``which`` "rank" (Spearman, dashed |Spearman|) or "structure" (SSIM, dashed
    HOG similarity) against the randomisation stage, one colour per method."""
    if which not in PAIRS:
        raise fail(f"chart must be one of {', '.join(PAIRS)}, got {brief(which)}")
    rows = curve_rows(ex, model)
    layer = int(table(ex, model)["layer"][0])
    what = f"{model} · {ex.info(model).layer_name(layer)}, fused"
    return plot(rows, which, what, warning(ex, model))


def plot(rows: pd.DataFrame, which: str, what: str, warn: str = "") -> AltairPlotData:
    """``rows`` (``curve_rows``' columns) as a Vega-Lite line chart of one pair of measures."""
    first, second = PAIRS[which]
    stages = list(dict.fromkeys(rows.sort_values("step")["stage"].tolist()))
    long = [
        {"method": r["method"], "step": r["step"], "stage": r["stage"], "measure": TITLES[m], "value": _plain(r[m])}
        for r in rows.to_dict("records")
        for m in (first, second)
    ]
    methods_shown = sorted(set(rows["method"]))
    palette = [PALETTE[i % len(PALETTE)] for i in range(len(methods_shown))]
    hover = [
        {"field": "method", "type": "nominal"},
        {"field": "stage", "type": "nominal", "title": "randomised down to"},
        {"field": "measure", "type": "nominal"},
        {"field": "value", "type": "quantitative", "format": ".4f"},
    ]
    subtitle = what
    line = {
        "mark": {"type": "line", "point": {"size": 40, "filled": True}, "strokeWidth": 2},
        "encoding": {
            "x": {"field": "stage", "type": "ordinal", "sort": stages,
                  "title": "stages re-initialised, from the output down", "axis": {"labelAngle": -40}},
            "y": {"field": "value", "type": "quantitative", "title": "similarity to the intact map",
                  "scale": {"domain": [-1.0, 1.0]}},
            "color": {"field": "method", "type": "nominal", "scale": {"domain": methods_shown, "range": palette}},
            "strokeDash": {"field": "measure", "type": "nominal", "title": "measure",
                           "scale": {"domain": [TITLES[first], TITLES[second]]},
                           "legend": None},  # the title says which is dashed
            "tooltip": hover,
        },
    }  # fmt: skip
    # Gradio's front end, for chart="line", reads ``layer`` and gives each layer's colour scale the page's colours
    spec = {
        "$schema": VEGA_LITE,
        "title": {"text": f"{TITLES[first]} (solid), {TITLES[second]} (dashed)", "subtitle": subtitle},
        "height": 300,
        "usermeta": {"embedOptions": {"renderer": "svg"}},
        "data": {"values": long},
        "layer": [line],
    }
    if warn:  # the app's one random-weights label, in red under the title
        spec["title"]["subtitle"] = f"{subtitle} · {warn}"
        spec["title"]["subtitleColor"] = "#b91c1c"
    return AltairPlotData(chart="line", plot=json.dumps(spec))


def _plain(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def strip(ex: Explorer, model: str, method: str, image_id: str) -> Image.Image:
    """The randomised maps of one method on one stored image, stage by stage (each on its own colour scale)."""
    t = table(ex, model)
    if method not in set(t["method"].tolist()):
        raise fail(f"no stored curves of {model}/{brief(method)}; methods with curves: {', '.join(methods(ex, model))}")
    if image_id not in set(t["image_id"].tolist()):
        raise fail(f"no stored curves on image {brief(image_id)}; images with curves: {', '.join(images(ex, model))}")
    pick = np.flatnonzero((t["method"] == method) & (t["image_id"] == image_id))
    pick = pick[np.argsort(t["step"][pick])]
    maps = [
        np.asarray(t["values"][i], dtype=np.float32).reshape(int(t["grid_h"][i]), int(t["grid_w"][i])) for i in pick
    ]
    titles = [_title(ex, model, t, i) for i in pick]
    return _tiles(ex, model, image_id, maps, titles)


def _title(ex: Explorer, model: str, t: dict, i: int) -> str:
    spearman = float(t["spearman"][i])
    rho = f"r {spearman:.2f}" if np.isfinite(spearman) else "r n/a"
    return f"{stage_name(ex, model, str(t['stage'][i]))} · {rho}"


def _tiles(ex: Explorer, model: str, image_id: str, maps: list, titles: list[str]) -> Image.Image:
    return render.tiles(
        ex.item(image_id).picture,
        maps,
        titles,
        columns=min(8, len(maps)),
        side=130,
        warning=warning(ex, model),
        bar_label="each map scaled to its own range (given under its title); r: Spearman with the intact map",
    )


# -- live ---------------------------------------------------------------------------------------------------------


def live_methods(ex: Explorer, model: str) -> list[str]:
    """The methods a live run offers for ``model`` (the app's; not flow: a max-flow per patch at every stage)."""
    return [m for m in ex.info(model).methods if m not in ON_REQUEST_METHODS]


def _randomize(network, image: Image.Image, method: str) -> list[dict]:
    return model_randomization(network, image, method)


def live(ex: Explorer, image_id: str, model: str, method: str) -> tuple[pd.DataFrame, Image.Image]:
    """``model_randomization`` (top-down, seed 0, the fused map at the last layer) of ``method`` on any image the
    app has, live: a row per stage with the four similarities, and the strip of randomised maps."""
    item = ex.item(image_id)
    valid = live_methods(ex, model)
    if method not in valid:
        raise fail(f"model {model!r} has no live method {brief(method)}; valid: {', '.join(valid)}")
    key = ("trust", "live", item.key, model, method)
    try:
        rows = ex.memo(key, lambda: ex.live.run(model, partial(_randomize, method=method), item.image))
    except ValueError as e:
        raise fail(f"randomisation of {model}/{method}: {e}") from None
    frame = pd.DataFrame(
        [
            {"step": r["step"], "stage": stage_name(ex, model, r["stage"]), **{k: r[k] for k in SIMILARITY_NAMES}}
            for r in rows
        ]
    ).round(4)
    titles = [f"{stage_name(ex, model, r['stage'])} · r {r['spearman']:.2f}" for r in rows]
    return frame, _tiles(ex, model, image_id, [r["map"] for r in rows], titles)
