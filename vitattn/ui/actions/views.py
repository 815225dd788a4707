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

from collections.abc import Sequence
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from vitattn import render
from vitattn.boxes import LabeledBox
from vitattn.labels import NUM_CLASSES, alphabetical, short_label
from vitattn.metrics import BASELINE_NAMES, LOWER_IS_BETTER, PERCENTILES
from vitattn.similarity import check_region, similarity_map
from vitattn.specs import GRADIENT_METHODS
from vitattn.ui.actions.page import box_at, picture_point
from vitattn.ui.data.catalog import FUSED, ModelInfo, parse_boxes
from vitattn.ui.data.config import MAX_UPLOAD_BYTES
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import ClassScore, Explorer

RANDOM_LABEL = "RANDOM WEIGHTS"
ALL_BOXES = -1  # the box value meaning "every expert box"
SCALES = ("per map", "shared")  # colour scale of strips and grids: each tile its own range, or one for all
# Colour scale of a similarity map: its own range (inferno), or cosine similarity's whole range -1..1 on a diverging
# blue-white-red map (white: 0), the same colour for the same value in every picture.
SIM_SCALES = ("per map", "fixed [-1, 1]")
TOP1 = -1  # the target value meaning "the top-1 class"
CHART_COLUMNS = ["layer", "value", "series"]
BASELINES = BASELINE_NAMES  # random, center, saliency (spectral residual), sobel, saliency_prior
# One row per metric: which way is better (mse, kl and emd: lower), the map, then each baseline beside it.
METRIC_COLUMNS = ["metric", "better", "map", *BASELINES]
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


def _describe(info: ModelInfo, image_id: str, method: str, layer: int, head: int | None) -> str:
    return f"{image_id} · {info.name} · {method} · {info.layer_name(layer)} · {head_name(head)}"


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
    layer: float,
    head: float | None = FUSED,
    opacity: float = 0.6,
    mask: float | None = None,
    box: float | None = ALL_BOXES,
    target: int | None = None,
) -> tuple[Image.Image, pd.DataFrame, dict]:
    """The map of one view over the image with its boxes, its metrics beside the baselines', and the raw map.

    ``mask`` (an IoU percentile) outlines the top pixels that IoU keeps; ``box`` scores one expert box only;
    ``target`` is the ImageNet class a gradient method of a classifier explains (None or -1: the top-1).
    """
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


# -- the class a gradient map explains --------------------------------------------------------------------------


def target_applies(ex: Explorer, model: str, method: str) -> bool:
    """Whether a class can be chosen for ``method`` under ``model``: a gradient method (gradcam, agcam, gae) of an
    ImageNet classifier. The page shows its class picker where this holds."""
    return ex.explains_class(model, method)


def check_target(ex: Explorer, model: str, method: str, target: float | None) -> int | None:
    """``target`` as a class index, or None for the top-1 class (``target`` None or -1)."""
    if target is None or (isinstance(target, int | float) and not isinstance(target, bool) and target == TOP1):
        return None
    if isinstance(target, bool) or not isinstance(target, int | float | np.integer) or target != int(target):
        raise fail(
            f"target must be a whole number: an ImageNet class index 0..{NUM_CLASSES - 1}, or -1 for the top-1 class;"
            f" got {brief(target)}"
        )
    if not ex.explains_class(model, method):
        classifiers = ", ".join(m for m in ex.models() if ex.info(m).classifier) or "none here"
        raise fail(
            f"target applies only to the gradient methods ({', '.join(GRADIENT_METHODS)}) of ImageNet classifiers "
            f"({classifiers}); {model}/{method} explains no chosen class: use target -1"
        )
    if not 0 <= target < NUM_CLASSES:
        last = NUM_CLASSES - 1
        raise fail(f"target {int(target)} out of range: valid ImageNet classes 0..{last}, or -1 for the top-1 class")
    return int(target)


def page_target(ex: Explorer, model: str, method: str, target: float | None) -> int | None:
    """The page's class picker value as a view's ``target``: None where no class can be chosen (the picker is
    hidden there but keeps its last value)."""
    return check_target(ex, model, method, target) if target_applies(ex, model, method) else None


def class_choices(ex: Explorer, image_id: str, model: str) -> list[tuple[str, int]]:
    """The classes a page offers to explain, as ``(label, index)``: the classifier's top-5 with their probabilities
    first ("1. church, church building · 0.41"), then every ImageNet class alphabetically ("church, church building
    (497)"); empty for a model without an ImageNet head."""
    item = ex.item(image_id)
    if not ex.info(model).classifier:
        return []
    top = [(f"{rank}. {label} · {_probability(p)}", i) for rank, (i, label, p) in enumerate(ex.top5(item, model), 1)]
    return top + [(f"{label} ({i})", i) for label, i in alphabetical()]


def _probability(p: float) -> str:
    return f"{p:.2f}" if p >= 0.005 else f"{p:.1e}"


def _class_score(ex: Explorer, item, model: str, method: str, target: int | None) -> ClassScore | None:
    return ex.class_score(item, model, target) if ex.explains_class(model, method) else None


def explained_text(score: ClassScore, width: int | None = None) -> str:
    """ "explaining 'church, church building' (top-1, p 0.412, logit 9.1)": the class's short name when the whole
    description does not fit ``width`` pixels. No logit when only the store's probability is at hand."""
    numbers_ = f"p {score.prob:.3g}" + ("" if score.logit is None else f", logit {score.logit:.3g}")
    detail = f"({'top-1, ' if score.top1 else ''}{numbers_})"
    text = f"explaining '{score.label}' {detail}"
    if width is not None:
        measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        if measure.textlength(text, font=render.font(14)) + 12 > width:
            text = f"explaining '{short_label(score.label)}' {detail}"
    return text


def _bands(width: int, title: str, warning: str, score: ClassScore | None) -> list[Image.Image]:
    """The title band and, for a gradient map of a classifier, a second band naming the explained class."""
    bands = [render.banner(width, title, warning)] if title or warning else []
    return bands + ([render.banner(width, explained_text(score, width))] if score is not None else [])


def _class_data(score: ClassScore | None) -> dict:
    """The explained class in a view's numbers (all None where no class is explained)."""
    if score is None:
        return {"target": None, "target_label": None, "target_prob": None, "target_logit": None, "target_top1": None}
    return {
        "target": score.index,
        "target_label": score.label,
        "target_prob": round(score.prob, DECIMALS),
        "target_logit": None if score.logit is None else round(score.logit, DECIMALS),
        "target_top1": score.top1,
    }


def _with_class(picture: Image.Image, score: ClassScore | None) -> Image.Image:
    """A band naming the explained class below a picture of tiles (below: a click on a tile is found from the top)."""
    if score is None:
        return picture
    return render.stack([picture, render.banner(picture.width, explained_text(score, picture.width))])


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
    layer: float,
    head: float | None = FUSED,
    percentile: float = 90,
    box: float | None = ALL_BOXES,
    target: int | None = None,
) -> pd.DataFrame:
    """IoU at ``percentile`` and coverage of this image's map at every layer of the method, and the baselines'
    IoU as flat lines: rows ``(layer, value, series)``, ``layer`` the layer's name, the current one in brackets
    ("[layer 7]"), in depth order (``chart_order``). ``target``: the class a gradient method explains (None or -1:
    the top-1)."""
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
    head: float | None = FUSED,
    opacity: float = 0.6,
    scale: str = "per map",
    target: int | None = None,
) -> tuple[Image.Image, dict]:
    """The same map at every layer that has one, side by side (each on its own grid: ResNet stages differ);
    ``target``: the class a gradient method explains (None or -1: the top-1), named below the colour bar."""
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
    warning = RANDOM_LABEL if any(ex.random_weights(o, model) for o in origins) else ""
    picture = render.tiles(
        item.picture,
        [m for m, _ in maps],
        [info.layer_name(v) for v in layers],
        opacity=opacity,
        warning=warning,
        shared=shared,
        bar_label=f"{method}, {head_name(head)}: "
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
    layer: float,
    opacity: float = 0.6,
    scale: str = "per map",
    target: int | None = None,
) -> tuple[Image.Image, dict]:
    """Every head of one layer as a grid; ``target``: the class a gradient method explains (None or -1: the top-1),
    named below the colour bar."""
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


def surface(
    ex: Explorer, image_id: str, region: Sequence[float] | None = None, corner: Sequence[float] | None = None
) -> Image.Image:
    """The click surface of the Similarity tab: the expert boxes, the selected region (a box of yours outlined, a
    point marked) and the first corner of a box being drawn."""
    item = ex.item(image_id)
    expert = [b.box for b in item.boxes]
    boxes: list = list(item.boxes)
    marks = []
    if region is not None:
        x0, y0, x1, y1 = (float(v) for v in region)
        if (x0, y0) == (x1, y1):
            marks.append((x0, y0))
        elif (x0, y0, x1, y1) not in expert:
            boxes.append(LabeledBox((x0, y0, x1, y1), "your box"))
    if corner:
        marks.append(tuple(float(v) for v in corner))
    picture = render.draw_boxes(item.picture, boxes) if boxes else item.picture.copy()
    return render.draw_marks(picture, marks) if marks else picture


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
    scale: str = SIM_SCALES[0],
) -> tuple[Image.Image, dict]:
    """Cosine similarity of every patch to the mean feature of the patches a box (or point) selects; ``scale``
    "per map" colours the map's own range, "fixed [-1, 1]" cosine similarity's whole range on a diverging map."""
    item = ex.item(image_id)
    info = ex.info(model)
    layer = info.check_feature_layer(layer)
    opacity = _check_opacity(opacity)
    if scale not in SIM_SCALES:
        raise fail(f"scale must be one of {', '.join(map(repr, SIM_SCALES))}, got {brief(scale)}")
    fixed = scale == SIM_SCALES[1]
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
        bar_label="cosine similarity, fixed scale -1..1 (white: 0)" if fixed else "cosine similarity (its own range)",
        scale=(-1.0, 1.0) if fixed else None,
        cmap="diverging" if fixed else "inferno",
    )
    data = {
        "image_id": item.id,
        "model": model,
        "layer": layer,
        "region": list(region),
        "scale": scale,
        "range": [-1.0, 1.0] if fixed else [round(float(v), DECIMALS) for v in render.value_range(sim)],
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


def _user_title(info: ModelInfo, item, method: str, layer: int, head: int | None, count: int) -> str:
    return _describe(info, item.id, method, layer, head) + f" · your {count} box{'es' if count != 1 else ''}"


def user_metrics(
    ex: Explorer,
    image_id: str,
    model: str,
    method: str,
    layer: float,
    head: float | None = FUSED,
    boxes: str = "",
    opacity: float = 0.6,
    corner: Sequence[float] | None = None,
) -> tuple[Image.Image, pd.DataFrame]:
    """Your own boxes (typed ``x0 y0 x1 y1 [label]`` per line) over the map, and the map's metrics against them.

    ``corner``: the first corner of a box being drawn (normalized x, y), marked on the picture.
    """
    item = ex.item(image_id)
    info, layer, head = _view(ex, model, method, layer, head)
    opacity = _check_opacity(opacity)
    mine = parse_boxes(boxes)
    heatmap, origin = ex.map(item, model, method, layer, head)
    picture = render.map_view(
        item.picture,
        heatmap,
        opacity=opacity,
        boxes=mine,
        title=_user_title(info, item, method, layer, head, len(mine)),
        warning=_warning(ex, origin, model),
        bar_label=f"{method} (scaled to its own range)",
        marks=[tuple(corner)] if corner else (),
    )
    table = metrics_frame(ex, item, info, method, layer, head, mine) if mine else pd.DataFrame(columns=METRIC_COLUMNS)
    return picture, table


def user_banner(ex: Explorer, image_id: str, model: str, method: str, layer: float, head, boxes: str) -> int:
    """The height of the title band of ``user_metrics``'s picture (a click on the picture lies that much lower)."""
    item = ex.item(image_id)
    info, layer, head = _view(ex, model, method, layer, head)
    try:
        count = len(parse_boxes(boxes))
    except gr.Error:
        count = 0
    _, origin = ex.map(item, model, method, layer, head)
    title = _user_title(info, item, method, layer, head, count)
    return render.banner(item.picture.width, title, _warning(ex, origin, model)).height


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
