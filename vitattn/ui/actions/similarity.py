"""The Similarity tab's actions: the click surface and every patch's cosine similarity to a region's mean feature."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from vitattn import render
from vitattn.boxes import LabeledBox
from vitattn.similarity import check_region, similarity_map
from vitattn.ui.actions.views import DECIMALS, OPACITY, SIM_SCALES, _check_opacity, _warning, numbers
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer


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


def similarity(
    ex: Explorer,
    image_id: str,
    model: str,
    layer: int,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    opacity: float = OPACITY,
    scale: str = "per map",
) -> tuple[Image.Image, dict]:
    """Cosine similarity of every patch to the mean feature inside a box (x0, y0, x1, y1 normalized to [0, 1];
    x0 == x1 and y0 == y1 is a point) at a layer, with the selected patches outlined; scale "per map" (its own range)
    or "fixed [-1, 1]" (a diverging scale, white at 0)."""
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
        title=f"{item.id} · {model} · {info.layer_name(layer)} · similarity to the {what}",
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
