"""Page plumbing that is not an API action: valid control values, what a click means, the gallery, the status.

Plain functions of plain values, so they are tested without a browser; ``app.py`` turns their results into
component updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vitattn.boxes import LabeledBox
from vitattn.render import fit, table_cell_at
from vitattn.ui.data.catalog import FUSED, ModelInfo
from vitattn.ui.data.errors import redact
from vitattn.ui.data.explorer import Explorer

CLICK_MODES = ("expert box", "point", "box (two clicks)")
DECIMALS = 3  # of clicked coordinates
GALLERY_SIZE = 60  # thumbnails shown; every image stays reachable through the image list
THUMB_SIDE = 192


@dataclass(frozen=True)
class Controls:
    """Valid method, layer and head choices for a model, keeping the current values where they stay valid."""

    methods: tuple[str, ...]
    method: str
    layers: tuple[int, ...]
    layer: int
    heads: tuple[tuple[str, int], ...]  # (label, value) choices; value -1 is all heads fused
    head: int


def controls(info: ModelInfo, method: str | None, layer: float | None, head: float | None) -> Controls:
    """The controls after choosing a model or method: an invalid method becomes the model's first, a missing
    layer its last, and a head the method lacks becomes "all heads fused"."""
    method = method if method in info.methods else info.methods[0]
    layers = info.layers[method]
    layer = int(layer) if layer is not None and int(layer) in layers else layers[-1]
    n = info.heads[method]
    fused = "whole stage (CNN)" if info.family == "resnet" else "all heads fused"  # a CNN has no heads
    heads = ((fused, FUSED), *((f"head {h}", h) for h in range(n)))
    head = int(head) if head is not None and 0 <= int(head) < n else FUSED
    return Controls(info.methods, method, layers, layer, heads, head)


def box_at(boxes: Sequence[LabeledBox], x: float, y: float) -> int | None:
    """The index of the smallest box containing the point (edges included), or None."""
    inside = [
        (b.box[2] - b.box[0]) * (b.box[3] - b.box[1])
        if b.box[0] <= x <= b.box[2] and b.box[1] <= y <= b.box[3]
        else None
        for b in boxes
    ]
    areas = [(a, i) for i, a in enumerate(inside) if a is not None]
    return min(areas)[1] if areas else None


def click_point(index: Sequence[float], size: tuple[int, int]) -> tuple[float, float]:
    """A click at pixel ``index = (x, y)`` of a picture of ``size = (w, h)``, normalized to [0, 1] and rounded to
    ``DECIMALS`` (a pixel of a 768 px picture is 0.0013 wide: more digits say nothing)."""
    w, h = size
    x, y = float(index[0]), float(index[1])
    return round(min(1.0, max(0.0, (x + 0.5) / w)), DECIMALS), round(min(1.0, max(0.0, (y + 0.5) / h)), DECIMALS)


def picture_point(index: Sequence[float], image_size: tuple[int, int], top: int) -> tuple[float, float] | None:
    """A click on a rendered view (a title band ``top`` pixels high above the image, a colour bar below) as a
    normalized point of the image, or None when it falls on the band or the bar."""
    x, y = float(index[0]), float(index[1]) - top
    if not 0 <= y < image_size[1] or not 0 <= x < image_size[0]:
        return None
    return click_point((x, y), image_size)


def click_region(
    mode: str, pending: Sequence[float] | None, boxes: Sequence[LabeledBox], x: float, y: float
) -> tuple[tuple[float, float, float, float] | None, tuple[float, float] | None]:
    """What a click at normalized ``(x, y)`` selects: ``(region or None, first corner still pending)``.

    ``expert box``: the smallest expert box under the click, else the point; ``point``: the point; ``box (two
    clicks)``: the first click is one corner (nothing selected yet), the second the opposite corner (two corners on
    one line make no box: the second click is taken as a point).
    """
    if mode == CLICK_MODES[0]:
        i = box_at(boxes, x, y)
        return (boxes[i].box if i is not None else (x, y, x, y)), None
    if mode == CLICK_MODES[2]:
        if not pending:
            return None, (x, y)
        px, py = pending
        if px == x or py == y:
            return (x, y, x, y), None
        return (min(px, x), min(py, y), max(px, x), max(py, y)), None
    return (x, y, x, y), None


def box_choices(boxes: Sequence[LabeledBox]) -> list[tuple[str, int]]:
    """(label, index) choices of an image's expert boxes, e.g. ("3: name tag", 3)."""
    return [(f"{i}: {b.label}" if b.label else str(i), i) for i, b in enumerate(boxes)]


def first_region(boxes: Sequence[LabeledBox]) -> tuple[float, float, float, float]:
    """The region a new image starts with: its first expert box, else the centre point."""
    return boxes[0].box if boxes else (0.5, 0.5, 0.5, 0.5)


def gallery(ex: Explorer, limit: int = GALLERY_SIZE, search: str = "", field: str = "", value: str = "") -> list[tuple]:
    """Thumbnails of up to ``limit`` images with their ids (and labels) as captions: those whose id or box labels
    contain ``search`` (case-insensitive) and whose metadata ``field`` reads ``value`` (when given). Images that fail
    to load are left out (``ex.problems`` has them)."""
    out = []
    for image_id in matching(ex, search, field, value)[:limit]:
        try:
            out.append((fit(ex.item(image_id).picture, THUMB_SIDE), image_id))
        except Exception:  # recorded in ex.problems by ex.item; the gallery shows the rest
            continue
    return out


def matching(ex: Explorer, search: str = "", field: str = "", value: str = "") -> list[str]:
    """Image ids whose id or box labels contain ``search`` and whose metadata ``field`` has ``value``."""
    needle = (search or "").strip().lower()
    meta = image_meta(ex) if field and value else {}
    out = []
    for image_id in ex.image_ids():
        if field and value and value not in meta_values(meta.get(image_id, {}).get(field)):
            continue
        if needle and needle not in image_id.lower() and not any(needle in lab for lab in labels(ex, image_id)):
            continue
        out.append(image_id)
    return out


def labels(ex: Explorer, image_id: str) -> list[str]:
    try:
        return [b.label.lower() for b in ex.item(image_id).boxes]
    except Exception:
        return []


def image_meta(ex: Explorer) -> dict[str, dict]:
    """Image id -> metadata, from the store (without image bytes) or the loaded images."""
    if ex.store is not None:
        try:
            return ex.image_meta()
        except Exception:
            return {}
    return {i: dict(ex.item(i).meta) for i in ex.image_ids()}


def meta_values(value: object) -> list[str]:
    """A metadata value as the strings a filter matches (a list matches each of its items)."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [str(v) for v in items]


def filters(ex: Explorer) -> dict[str, list[str]]:
    """Metadata field -> its values over all images, for the gallery's filter (fields with 2..50 values)."""
    values: dict[str, set[str]] = {}
    for meta in image_meta(ex).values():
        for key, value in meta.items():
            values.setdefault(str(key), set()).update(meta_values(value))
    return {k: sorted(v) for k, v in sorted(values.items()) if 2 <= len(v) <= 50}


def status(ex: Explorer) -> str:
    """The page's status line: where maps come from, whether weights are random, and what is damaged."""
    if ex.store is not None:
        made = ex.store.manifest.get("created", "?")
        lines = [
            f"**Store** `{ex.config.store}`: {len(ex.image_ids())} images, {len(ex.models())} models (made {made}); "
            "stored images show precomputed maps, uploads are analysed live."
        ]
    elif ex.random_weights("live"):  # nothing is downloaded: untrained networks are built on first use
        lines = [
            "**No store**: the bundled example images, analysed live by untrained networks built on first use (no "
            "download). The IoU tab needs a store."
        ]
    else:
        lines = [
            "**No store**: the bundled example images, analysed live (each model is downloaded and run on first "
            "use, then cached). The IoU tab needs a store."
        ]
    if ex.random_weights("store"):
        lines.append(
            "⚠️ **Random weights**: this store was made with untrained networks (a test build): its maps and "
            "scores show the plumbing, not where trained models look."
        )
    if ex.random_weights("live"):
        lines.append(
            f"⚠️ **Random weights**: live inference uses untrained networks (`VITATTN_WEIGHTS={ex.live.weights}`, "
            "for tests only)."
        )
    problems = ex.problems
    if problems:
        shown = [f"- {p}" for p in problems[:20]] + (
            [f"- ... and {len(problems) - 20} more"] if len(problems) > 20 else []
        )
        lines.append(
            "⚠️ **Problems** (where a stored part is unavailable, the app computes it live):\n" + "\n".join(shown)
        )
    return redact("  \n".join(lines))  # one line each, no gaps between: the page's controls stay near the top


# -- clicks on strips, grids and tables: which view a click opens ------------------------------------------------


def table_view(info: ModelInfo, method: str, point: Sequence[float]) -> tuple[int, int] | None:
    """The (layer, head) of the layer x head table (``iou.grid``: titled, one column per head, then "fused") under
    pixel ``point``, head ``FUSED`` for the last column; None off the cells."""
    names = [info.layer_name(v) for v in info.layers[method]]
    n = info.heads.get(method, 0)
    cell = table_cell_at(names, n + 1, point, title="titled")
    if cell is None:
        return None
    row, col = cell
    return info.layers[method][row], FUSED if col == n else col


def layer_label(info: ModelInfo, layers: Sequence[int]) -> str:
    """The layer slider's label: "Layer" for ViT blocks; for ResNet which stage each value is."""
    if info.family != "resnet":
        return "Layer"
    return f"Stage: {layers[0]} = {info.layer_name(layers[0])} ... {layers[-1]} = {info.layer_name(layers[-1])}"


def step_layer(layers: Sequence[int], layer: float, how: str) -> int:
    """The layer after a playback step ``how`` ("first", "previous", "next", "last") from ``layer``; steps stop at
    the ends (no wrap: the last layer stays the last)."""
    layers = sorted(int(v) for v in layers)
    i = layers.index(int(layer)) if int(layer) in layers else len(layers) - 1
    j = {"first": 0, "previous": i - 1, "next": i + 1, "last": len(layers) - 1}[how]
    return layers[min(max(j, 0), len(layers) - 1)]


def same_depth(before: ModelInfo, layer: float, after: ModelInfo, method: str) -> int:
    """The layer of ``after`` (under ``method``) at the same relative depth as ``layer`` of ``before``: depth
    ``(layer + 1) / num_layers`` (``ModelInfo.depth``: ViT blocks and ResNet stages on one axis), the nearest
    layer ``method`` has. ResNet-50's last stage (index 3 of 4) becomes a 12-block ViT's layer 11, not its layer 3."""
    depth = (int(layer) + 1) / before.num_layers
    wanted = round(depth * after.num_layers) - 1
    valid = after.layers[method if method in after.methods else after.methods[0]]
    return min(valid, key=lambda v: (abs(v - wanted), -v))


def tile_layout(picture, values: Sequence) -> dict:
    """What a click on a strip or grid needs, from the layout the renderer returned with the picture
    (``render.tiles``: ``picture.info["tiles"]``): each tile's box and the value it stands for (a layer, a head)."""
    return {"boxes": picture.info["tiles"], "values": [int(v) for v in values]}


def tile_value(layout: dict | None, point: Sequence[float]) -> int | None:
    """The value of the tile under pixel ``point`` (x, y) of the picture, from its kept layout; None off the tiles."""
    if not layout:
        return None
    x, y = float(point[0]), float(point[1])
    for (x0, y0, x1, y1), value in zip(layout["boxes"], layout["values"], strict=True):
        if x0 <= x < x1 and y0 <= y < y1:
            return value
    return None
