"""The handlers behind the Attention, Similarity and Your-image tabs: plain inputs in, a picture and numbers out.

Each function checks its inputs (``gr.Error`` naming what is valid), asks the `Explorer` for maps, features or
scores, and draws with ``vitattn.render``. No numerics live here: maps come from the store or ``vitattn.Model``,
scores from ``vitattn.metrics``, similarity from ``vitattn.similarity``.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from vitattn import render
from vitattn.similarity import check_region, similarity_map
from vitattn.ui.catalog import FUSED, ModelInfo, parse_boxes
from vitattn.ui.config import MAX_UPLOAD_BYTES
from vitattn.ui.errors import brief, fail
from vitattn.ui.explorer import Explorer

RANDOM_LABEL = "RANDOM WEIGHTS"
BASELINES = ("random", "center", "saliency")
METRIC_COLUMNS = ["metric", "map", *BASELINES]  # one row per metric: the map, then each baseline beside it
DECIMALS = 6  # of the raw maps returned as numbers


def numbers(values: np.ndarray) -> list:
    """A map as nested lists of floats (for JSON), rounded to ``DECIMALS``."""
    return np.round(np.asarray(values, dtype=np.float64), DECIMALS).tolist()


def head_name(head: int | None) -> str:
    return "all heads fused" if head is None else f"head {head}"


def _check_opacity(opacity: float) -> float:
    if isinstance(opacity, bool) or not isinstance(opacity, int | float) or not 0.0 <= opacity <= 1.0:
        raise fail(f"opacity must be a number in [0, 1], got {brief(opacity)}")
    return float(opacity)


def _view(ex: Explorer, model: str, method: str, layer: float, head: float | None) -> tuple[ModelInfo, int, int | None]:
    info = ex.info(model)
    info.check_method(method)
    return info, info.check_layer(method, layer), info.check_head(method, head)


def _warning(ex: Explorer, origin: str, model: str) -> str:
    return RANDOM_LABEL if ex.random_weights(origin, model) else ""


def _describe(image_id: str, model: str, method: str, layer: int, head: int | None) -> str:
    return f"{image_id} · {model} · {method} · layer {layer} · {head_name(head)}"


def attention(
    ex: Explorer, image_id: str, model: str, method: str, layer: float, head: float, opacity: float
) -> tuple[Image.Image, pd.DataFrame, dict]:
    """The map of one view over the image with its boxes, its metrics beside the baselines', and the raw map."""
    item = ex.item(image_id)
    info, layer, head = _view(ex, model, method, layer, head)
    opacity = _check_opacity(opacity)
    heatmap, origin = ex.map(item, model, method, layer, head)
    picture = render.map_view(
        item.picture,
        heatmap,
        opacity=opacity,
        boxes=item.boxes,
        title=_describe(item.id, model, method, layer, head),
        warning=_warning(ex, origin, model),
        bar_label=f"{method} (scaled to its own range)",
    )
    table = metrics_frame(ex, item, info, method, layer, head)
    data = {
        "image_id": item.id,
        "model": model,
        "method": method,
        "layer": layer,
        "head": FUSED if head is None else head,
        "source": origin,
        "random_weights": ex.random_weights(origin, model),
        "grid": list(heatmap.shape),
        "map": numbers(heatmap),
    }
    return picture, table, data


def metrics_frame(ex: Explorer, item, info: ModelInfo, method: str, layer: int, head: int | None, boxes=()):
    """The view's metrics against the boxes, one row per metric, with each baseline (on the model's grid) beside."""
    scores, _ = ex.scores(item, info.name, method, layer, head, boxes)
    if scores is None:
        return pd.DataFrame(columns=METRIC_COLUMNS)
    baselines = ex.baselines(item, info.name, boxes)
    rows = [
        {"metric": name, "map": value, **{b: baselines.get(b, {}).get(name) for b in BASELINES}}
        for name, value in scores.items()
    ]
    return pd.DataFrame(rows, columns=METRIC_COLUMNS).round(4)


def layer_strip(
    ex: Explorer, image_id: str, model: str, method: str, head: float, opacity: float
) -> tuple[Image.Image, dict]:
    """The same map at every layer that has one, side by side."""
    item = ex.item(image_id)
    info = ex.info(model)
    info.check_method(method)
    head = info.check_head(method, head)
    opacity = _check_opacity(opacity)
    layers = info.layers[method]
    maps = [ex.map(item, model, method, layer, head) for layer in layers]
    origins = {o for _, o in maps}
    stack = np.stack([m for m, _ in maps])  # [L, gh, gw]
    warning = RANDOM_LABEL if any(ex.random_weights(o, model) for o in origins) else ""
    picture = render.tiles(item.picture, stack, [f"layer {v}" for v in layers], opacity=opacity, warning=warning)
    data = {
        "image_id": item.id,
        "model": model,
        "method": method,
        "head": FUSED if head is None else head,
        "layers": list(layers),
        "source": sorted(origins),
        "maps": numbers(stack),
    }
    return picture, data


def head_grid(
    ex: Explorer, image_id: str, model: str, method: str, layer: float, opacity: float
) -> tuple[Image.Image, dict]:
    """Every head of one layer as a grid."""
    item = ex.item(image_id)
    info = ex.info(model)
    layer = info.check_layer(method, layer)
    opacity = _check_opacity(opacity)
    if info.heads[method] == 0:
        raise fail(f"method {brief(method)} of {model} fuses all heads by definition; it has no per-head maps")
    maps, origin = ex.heads(item, model, method, layer)
    picture = render.tiles(
        item.picture,
        maps,
        [f"head {h}" for h in range(len(maps))],
        opacity=opacity,
        warning=_warning(ex, origin, model),
    )
    data = {"image_id": item.id, "model": model, "method": method, "layer": layer, "source": origin}
    return picture, {**data, "maps": numbers(maps)}


def predictions(ex: Explorer, image_id: str, model: str) -> dict[str, float]:
    """Top-5 ImageNet classes and probabilities of a classifier; empty for other models."""
    item = ex.item(image_id)
    top = ex.predictions(item, model)
    return {} if top is None else {label: round(float(p), 4) for label, p in top}


def image(ex: Explorer, image_id: str) -> tuple[Image.Image, dict]:
    """The image with its expert boxes drawn and labelled, and the boxes as numbers."""
    item = ex.item(image_id)
    picture = render.draw_boxes(item.picture, item.boxes) if item.boxes else item.picture.copy()
    boxes = [{"box": list(b.box), "label": b.label, "group": b.group} for b in item.boxes]
    return picture, {"image_id": item.id, "origin": item.origin, "boxes": boxes, "meta": _plain(item.meta)}


def _plain(meta: dict) -> dict:
    return {
        str(k): v if isinstance(v, str | int | float | bool | list | type(None)) else str(v) for k, v in meta.items()
    }


def similarity(
    ex: Explorer,
    image_id: str,
    model: str,
    layer: float,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    opacity: float,
) -> tuple[Image.Image, dict]:
    """Cosine similarity of every patch to the mean feature of the patches a box (or point) selects."""
    item = ex.item(image_id)
    info = ex.info(model)
    layer = info.check_feature_layer(layer)
    opacity = _check_opacity(opacity)
    try:
        region = check_region((x0, y0, x1, y1))
    except ValueError as e:
        raise fail(f"bad box: {e}") from None
    width, height = region[2] - region[0], region[3] - region[1]
    if (width == 0) != (height == 0):
        raise fail(
            f"bad box: {region} has zero area; give a box with x0 < x1 and y0 < y1, or a point (x0 == x1, y0 == y1)"
        )
    features, origin = ex.features(item, model, layer)
    sim, cells = similarity_map(features, info.grid, region)
    is_box = region[2] > region[0] and region[3] > region[1]
    what = "box" if is_box else "point"
    picture = render.map_view(
        item.picture,
        sim,
        opacity=opacity,
        boxes=[region] if is_box else (),
        labels=False,
        cells=cells,
        title=f"{item.id} · {model} · layer {layer} · similarity to the {what}",
        warning=_warning(ex, origin, model),
        bar_label="cosine similarity",
    )
    data = {
        "image_id": item.id,
        "model": model,
        "layer": layer,
        "region": list(region),
        "source": origin,
        "random_weights": ex.random_weights(origin, model),
        "grid": list(sim.shape),
        "selected": [[int(r), int(c)] for r, c in zip(*np.nonzero(cells), strict=True)],
        "similarity": numbers(sim),
    }
    return picture, data


def upload_file(value: str | Path | dict | None) -> tuple[Path, bool]:
    """The path of an uploaded file and whether it is the server's own copy (Gradio's upload folder).

    ``value`` is a path (a plain call), or Gradio's file payload ``{"path": ...}`` when the event runs without
    Gradio's image preprocessing (which would decode the image before any check of ours).
    """
    if isinstance(value, dict):
        path = value.get("path")
        if not isinstance(path, str) or not path:
            raise fail("no image: upload one first")
        return Path(path), _in_upload_folder(Path(path))
    if not value:
        raise fail("no image: upload one first")
    if not isinstance(value, str | Path):
        raise fail(f"the image must be an uploaded file, got {brief(value)}")
    return Path(value), False


def _in_upload_folder(path: Path) -> bool:
    """Whether ``path`` lies in Gradio's upload folder (Gradio accepts no other path from a client)."""
    try:
        return path.resolve().is_relative_to(Path(gr.utils.get_upload_folder()).resolve())
    except (OSError, ValueError):
        return False


def read_file(path: Path, max_bytes: int = MAX_UPLOAD_BYTES) -> bytes:
    """The bytes of an uploaded file of at most ``max_bytes``."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise fail(f"the upload is {size / 2**20:.1f} MiB, over the limit of {max_bytes / 2**20:.0f} MiB")
        return path.read_bytes()
    except OSError as e:
        raise fail(f"the upload cannot be read ({type(e).__name__}); upload the image again") from None


def analyze(ex: Explorer, file: str | Path | dict | None, model: str, progress=None) -> tuple[str, Image.Image, dict]:
    """Registers an uploaded image file, analyses it live with ``model`` and returns its id and last-layer map.

    An upload that is refused (not an image, too large) is deleted at once when it is the server's own copy.
    """
    info = ex.info(model)
    path, ours = upload_file(file)
    try:
        item = ex.upload(read_file(path))
    except gr.Error:
        if ours:
            path.unlink(missing_ok=True)  # refused: nothing in it is kept
        raise
    if progress is not None and not ex.is_cached(item, model):
        progress(0.1, desc=f"Loading {model}")
        ex.live.load(model)
        progress(0.5, desc=f"Analysing with {model}")
    ex.analysis(item, model)
    method = info.methods[0]
    layer = info.layers[method][-1]
    picture, _, data = attention(ex, item.id, model, method, layer, FUSED, 0.6)
    return item.id, picture, data


def user_metrics(
    ex: Explorer, image_id: str, model: str, method: str, layer: float, head: float, opacity: float, boxes: str
) -> tuple[Image.Image, pd.DataFrame]:
    """Your own boxes (typed ``x0 y0 x1 y1 [label]`` per line) over the map, and the map's metrics against them."""
    item = ex.item(image_id)
    info, layer, head = _view(ex, model, method, layer, head)
    opacity = _check_opacity(opacity)
    mine = parse_boxes(boxes)
    heatmap, _ = ex.map(item, model, method, layer, head)
    picture = render.overlay(item.picture, heatmap, opacity)
    if mine:
        picture = render.draw_boxes(picture, mine)
        return picture, metrics_frame(ex, item, info, method, layer, head, mine)
    return picture, pd.DataFrame(columns=METRIC_COLUMNS)


def info(ex: Explorer) -> dict:
    """What the app offers: store, images, and per model its methods, layers and heads."""
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
        }
    return {
        "mode": ex.mode,
        "store": ex.config.store if ex.store is not None else None,
        "random_weights": {"store": ex.random_weights("store"), "live": ex.random_weights("live")},
        "problems": ex.problems,
        "images": ex.image_ids(),
        "models": models,
    }
