"""The Features tab: PCA feature maps, per-head attention statistics and faithfulness curves.

- ``pca``: the first three principal components of a layer's patch features as RGB (``vitattn.pca``), for one
  image or several side by side; several images share one joint PCA, so matching parts get matching colours.
  From stored features (a few ms), live for uploads.
- ``head_stats``: the ViT paper's plot (Dosovitskiy et al. 2021, Fig. 7): per head its mean attention distance in
  pixels against depth, models side by side; and head diversity per layer (``vitattn.headstats.head_diversity``
  of the heads' CLS maps, or the pooling head's for SigLIP). From the store's head-statistics table when it has
  one (mean over its images), else computed live on the current image (the source column says which).
  ``dots_picture`` draws the first as a picture whose dots can be clicked (Gradio's native plots select x ranges
  by brush, not single points).
- ``faithfulness``: deletion and insertion curves of a map (Petsiuk et al. 2018) beside a random cell order, with
  their areas (``vitattn.faithfulness``); forward passes, so computed live (cached) on request.

No numerics here; pictures are drawn by ``vitattn.render``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
import pandas as pd
from PIL import Image

from vitattn import render
from vitattn.headstats import head_diversity
from vitattn.pca import joint_pca
from vitattn.ui.actions.common import check_layer, family, integer, warning
from vitattn.ui.data.catalog import ModelInfo
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer

MAX_IMAGES = 6
PCA_SIDE = 224
STATS = ("distance_px", "entropy", "prefix_share")
STAT_TITLES = {
    "distance_px": "mean attention distance (px of the 224 px input)",
    "entropy": "entropy of the CLS / pooling attention (nats)",
    "prefix_share": "share of the CLS / pooling attention on prefix tokens",
}
DIVERSITY_METHODS = ("cls", "pool")  # the image-level attention whose heads' maps are compared
STEPS = 20
CURVES = ("fractions", "deletion", "insertion", "random_deletion", "random_insertion")  # as the store's columns
AUCS = ("auc_deletion", "auc_insertion", "abpc", "auc_random_deletion", "auc_random_insertion")
MODES = ("blur", "mean")


def _ids(image_ids: str | Sequence[str] | None) -> list[str]:
    """Image ids from a list or a comma-separated string, in order, without repeats."""
    if image_ids is None or image_ids == "":
        raise fail("give at least one image id")
    if isinstance(image_ids, str):
        image_ids = image_ids.split(",")
    if not isinstance(image_ids, list | tuple) or not all(isinstance(i, str) for i in image_ids):
        raise fail(f"image ids must be a list of strings or a comma-separated string, got {brief(image_ids)}")
    ids = list(dict.fromkeys(i.strip() for i in image_ids if i.strip()))
    if not ids:
        raise fail("give at least one image id")
    if len(ids) > MAX_IMAGES:
        raise fail(f"at most {MAX_IMAGES} images at once, got {len(ids)}")
    return ids


def _background(value: object) -> str | float | None:
    """``"none"`` / None, ``"auto"`` (Otsu) or a threshold in (0, 1) (a number or its text)."""
    if value is None or value == "none" or value == "":
        return None
    if value == "auto":
        return "auto"
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = math.nan
    if not 0.0 < threshold < 1.0:
        raise fail(f"background must be 'none', 'auto' or a threshold in (0, 1), got {brief(value)}")
    return threshold


def _feature_grid(ex: Explorer, model_info: ModelInfo, layer: int, n: int) -> tuple[int, int]:
    """The patch grid of a layer's ``n`` features (a ResNet stage has its own)."""
    entry = ex.store.manifest["models"].get(model_info.name, {}) if ex.store is not None else {}
    layers, grids = entry.get("feature_layers") or [], entry.get("feature_grids") or []
    if layer in layers and len(grids) == len(layers):
        grid = tuple(int(v) for v in grids[layers.index(layer)])
        if grid[0] * grid[1] == n:
            return grid
    if family(model_info) != "resnet" and model_info.grid[0] * model_info.grid[1] == n:
        return model_info.grid
    side = math.isqrt(n)
    if side * side != n:
        raise fail(f"cannot tell the patch grid of {n} features of {model_info.name} layer {layer}")
    return side, side


def pca(
    ex: Explorer,
    image_ids: str | list[str],
    model: str,
    layer: int = -1,
    background: str = "none",
    joint: bool = True,
) -> tuple[Image.Image, dict]:
    """PCA feature maps of one layer: the first 3 principal components of the patch features as R, G, B.

    Args:
        ex: the app's data.
        image_ids: one image id, several (a list or comma-separated, at most 6).
        model: a model the app serves.
        layer: the layer (-1: the last).
        background: "none", "auto" (Otsu on the first component) or a threshold in (0, 1): patches below it are
            black (DINOv2 paper, sec. 7.3).
        joint: one PCA fitted on all the images' patches (matching parts, matching colours); else one per image.

    Returns:
        ``(picture, data)``: each image above its PCA picture; data holds per image its grid and the RGB values.
    """
    ids = _ids(image_ids)
    model_info = ex.info(model)
    layer = integer(layer, "layer")
    layer = model_info.num_layers - 1 if layer == -1 else model_info.check_feature_layer(layer)
    back = _background(background)
    items = [ex.item(i) for i in ids]
    feats = [np.asarray(ex.features(item, model, layer)[0], dtype=np.float32) for item in items]
    grids = [_feature_grid(ex, model_info, layer, len(f)) for f in feats]
    try:
        if joint or len(items) == 1:
            rgbs = joint_pca(feats, grids, background=back)
        else:
            rgbs = [joint_pca([f], [g], background=back)[0] for f, g in zip(feats, grids, strict=True)]
    except ValueError as e:
        raise fail(f"PCA of {model} layer {layer}: {e}") from None
    how = "one joint PCA over all images" if joint and len(items) > 1 else "one PCA per image"
    where = f"{model} · layer {layer}" if family(model_info) != "resnet" else f"{model} · stage {layer + 1}"
    note = f"{where}: PC1, PC2, PC3 as R, G, B ({how})" + ("; black: background" if back is not None else "")
    picture = render.rgb_tiles(
        [item.picture for item in items], rgbs, ids, side=PCA_SIDE, warning=warning(ex, model), note=note
    )
    data = {
        "model": model,
        "layer": layer,
        "joint": bool(joint and len(items) > 1),
        "images": [
            {"image_id": i, "grid": list(g), "rgb": np.round(r, 4).tolist()}
            for i, g, r in zip(ids, grids, rgbs, strict=True)
        ],
    }
    return picture, data


# -- head statistics ---------------------------------------------------------------------------------------------


def _models(ex: Explorer, models: str | Sequence[str] | None) -> list[str]:
    if models is None or models == "":
        names = ex.models()
    elif isinstance(models, str):
        names = [m.strip() for m in models.split(",") if m.strip()]
    else:
        names = [str(m) for m in models]
    for name in names:
        ex.info(name)  # unknown names: one line naming the valid ones
    return list(dict.fromkeys(names))


def _stored_stats(ex: Explorer, model: str) -> dict | None:
    """The store's head-statistics table of ``model`` (``store.head_stats``), or None where there is none."""
    reader = getattr(ex.store, "head_stats", None) if ex.store is not None else None
    if reader is None:
        return None
    try:
        table = ex.memo(("features", "head_stats", model), lambda: reader(model))
    except Exception:  # an older store without the table, or the model has none: computed live instead
        return None
    if not table or not all(k in table for k in ("layer", "head", *STATS)):
        return None
    return {k: np.asarray(v) for k, v in table.items()}


def _live_stats(ex: Explorer, item, model: str) -> dict[str, np.ndarray]:
    """``(L, H)`` statistics of one image, from a live analysis with ``stats=True`` (cached)."""

    def make() -> dict[str, np.ndarray]:
        network = ex.live.load(model)
        analysis = network.analyze(item.image(), stats=True)
        return {k: np.asarray(v, dtype=np.float64) for k, v in analysis.head_stats.items()}

    return ex.memo(("features", "live_stats", item.key, model), make)


def head_stats(
    ex: Explorer, models: str | list[str], image_id: str, stat: str = "distance_px"
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The ViT paper's plot data (one row per model, layer and head) and head diversity per layer.

    Args:
        ex: the app's data.
        models: model names (a list or comma-separated; empty: every model); ResNet is left out (no heads).
        image_id: the image used where the store has no head statistics, and for head diversity.
        stat: ``distance_px``, ``entropy`` or ``prefix_share``.

    Returns:
        ``(heads, diversity, note)``: heads has ``model, layer, depth, head, <stat>, source`` (``depth`` =
        (layer + 1) / layers, so models of other depths share an axis); diversity has ``model, layer, depth,
        method, diversity``; note says where the numbers come from and which models were left out.
    """
    if stat not in STATS:
        raise fail(f"stat must be one of {', '.join(STATS)}, got {brief(stat)}")
    item = ex.item(image_id)
    rows, diversity, skipped, sources = [], [], [], set()
    for model in _models(ex, models):
        model_info = ex.info(model)
        if family(model_info) == "resnet":
            skipped.append(model)
            continue
        values, source = _stat_grid(ex, item, model, stat)
        sources.add(source)
        layers, heads = values.shape
        for layer in range(layers):
            depth = round((layer + 1) / layers, 4)
            rows += [
                {
                    "model": model,
                    "layer": layer,
                    "depth": depth,
                    "head": h,
                    stat: float(values[layer, h]),
                    "source": source,
                }
                for h in range(heads)
                if np.isfinite(values[layer, h])
            ]
        diversity += _diversity(ex, item, model_info)
    heads_frame = pd.DataFrame(rows, columns=["model", "layer", "depth", "head", stat, "source"]).round(4)
    div_frame = pd.DataFrame(diversity, columns=["model", "layer", "depth", "method", "diversity"]).round(4)
    note = "; ".join(sorted(sources)) or "no model with attention heads chosen"
    if skipped:
        note += f". Left out (no attention heads): {', '.join(skipped)}"
    if stat != "distance_px" and "siglip" in " ".join(_models(ex, models)):
        note += ". SigLIP has no CLS token: its entropy and prefix share exist at the last layer only (pooling head)"
    return heads_frame, div_frame, note + "."


DOTS_TITLE = "Per head and layer: one dot per head (click a dot: open that head in the Attention tab)"


def dots_picture(ex: Explorer, heads: pd.DataFrame, stat: str) -> tuple[Image.Image | None, list]:
    """``head_stats``' rows as the ViT paper's plot, a picture (``render.head_dots``) and where its dots are
    (``render.Dot``, for ``render.dot_at``); ``(None, [])`` without rows. Random weights: the red label."""
    if stat not in STATS:
        raise fail(f"stat must be one of {', '.join(STATS)}, got {brief(stat)}")
    if heads.empty:
        return None, []
    points = [
        (str(m), int(layer), int(h), float(v))
        for m, layer, h, v in zip(heads["model"], heads["layer"], heads["head"], heads[stat], strict=True)
    ]
    label = next((w for m in dict.fromkeys(heads["model"]) if (w := warning(ex, str(m)))), "")
    return render.head_dots(points, y_title=STAT_TITLES[stat], title=DOTS_TITLE, warning=label)


def _stat_grid(ex: Explorer, item, model: str, stat: str) -> tuple[np.ndarray, str]:
    """``(L, H)`` values of one statistic and where they come from."""
    table = _stored_stats(ex, model)
    if table is not None:
        layers, heads = int(table["layer"].max()) + 1, int(table["head"].max()) + 1
        sums, counts = np.zeros((layers, heads)), np.zeros((layers, heads))
        values = table[stat].astype(np.float64)
        ok = np.isfinite(values)
        np.add.at(sums, (table["layer"][ok], table["head"][ok]), values[ok])
        np.add.at(counts, (table["layer"][ok], table["head"][ok]), 1)
        n = len(np.unique(table["image_id"])) if "image_id" in table else 0
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / counts, np.nan), f"the store's head statistics (mean over {n} images)"
    return _live_stats(ex, item, model)[stat], f"computed live on image {item.id}"


def _diversity(ex: Explorer, item, model_info: ModelInfo) -> list[dict]:
    method = next((m for m in DIVERSITY_METHODS if model_info.heads.get(m, 0) > 1), None)
    if method is None:
        return []
    out = []
    for layer in model_info.layers[method]:
        maps, _ = ex.heads(item, model_info.name, method, layer)
        try:
            value = head_diversity(np.clip(np.asarray(maps, dtype=np.float64), 0.0, None))
        except ValueError:
            continue  # a head whose map is all zero: no distribution to compare
        depth = round((layer + 1) / model_info.num_layers, 4)
        out.append({"model": model_info.name, "layer": layer, "depth": depth, "method": method, "diversity": value})
    return out


# -- faithfulness ------------------------------------------------------------------------------------------------


def faithfulness(
    ex: Explorer, image_id: str, model: str, method: str, layer: int = -1, mode: str = "blur"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deletion and insertion curves of one map (all heads fused) beside a random cell order, and their areas.

    Args:
        ex: the app's data.
        image_id: any image the app has.
        model: a model the app serves.
        method: the map's method.
        layer: the map's layer (-1: the last).
        mode: what a removed cell becomes: "blur" (RISE's blur) or "mean" (the image's mean colour).

    Returns:
        ``(curves, areas)``: curves has ``fraction, score, curve`` (four curves: deletion / insertion of the map's
        order and of a random order); areas has ``curve, auc, better`` and the ABPC (insertion - deletion).
    """
    item = ex.item(image_id)
    model_info = ex.info(model)
    layer = check_layer(model_info, method, layer)
    if mode not in MODES:
        raise fail(f"mode must be one of {', '.join(MODES)}, got {brief(mode)}")
    heatmap, _ = ex.map(item, model, method, layer, None)
    result = _stored_faithfulness(ex, item, model, method, layer, mode)
    source = "stored by the precompute job"
    if result is None:
        key = ("features", "faithfulness", item.key, model, method, layer, mode)
        result = ex.memo(key, lambda: _evaluate(ex, item, model, np.asarray(heatmap, dtype=np.float64), mode))
        source = "computed live"
    score = "probability of the top-1 class" if result.score == "probability" else "cosine similarity to the intact"
    curves = pd.DataFrame(
        [
            {"fraction": float(f), "score": float(v), "curve": name}
            for name, values in (
                ("deletion (map order)", result.deletion),
                ("deletion (random order)", result.random_deletion),
                ("insertion (map order)", result.insertion),
                ("insertion (random order)", result.random_insertion),
            )
            for f, v in zip(result.fractions, values, strict=True)
        ]
    ).round(4)
    areas = pd.DataFrame(
        [
            {"curve": "deletion (map order)", "auc": result.auc_deletion, "better": "lower"},
            {"curve": "deletion (random order)", "auc": result.auc_random_deletion, "better": "lower"},
            {"curve": "insertion (map order)", "auc": result.auc_insertion, "better": "higher"},
            {"curve": "insertion (random order)", "auc": result.auc_random_insertion, "better": "higher"},
            {"curve": "ABPC = insertion - deletion (map)", "auc": result.abpc, "better": "higher"},
        ]
    ).round(4)
    areas["score"] = score + (f" (class {result.target})" if result.target is not None else "")
    areas["source"] = source
    return curves, areas


def _stored_faithfulness(ex: Explorer, item, model: str, method: str, layer: int, mode: str):
    """The precompute job's curves of this map (``store.faithfulness``), or None where the store has none."""
    reader = getattr(ex.store, "faithfulness", None) if ex.store is not None and item.origin == "store" else None
    if reader is None:
        return None
    try:
        table = ex.memo(("features", "faithfulness_table", model), lambda: reader(model))
    except Exception:  # no such table for this model: computed live instead
        return None
    keys = {"image_id": item.id, "method": method, "layer": layer, "mode": mode}
    if not all(k in table for k in keys):
        return None
    hit = np.ones(len(table["image_id"]), dtype=bool)
    for column, value in keys.items():
        hit &= np.asarray(table[column]) == value
    if not hit.any():
        return None
    row = {k: np.asarray(v)[int(np.flatnonzero(hit)[0])] for k, v in table.items()}
    target = row.get("target")
    return SimpleNamespace(
        **{k: np.asarray(row[k], dtype=np.float64) for k in CURVES},
        **{k: float(row[k]) for k in AUCS},
        score=str(row["score"]),
        target=None if target is None or (isinstance(target, float) and math.isnan(target)) else int(target),
    )


def _evaluate(ex: Explorer, item, model: str, heatmap: np.ndarray, mode: str):
    from vitattn.faithfulness import evaluate

    network = ex.live.load(model)
    try:
        return evaluate(network, item.image(), heatmap, steps=STEPS, mode=mode)
    except ValueError as e:
        raise fail(f"faithfulness of {model}: {e}") from None
