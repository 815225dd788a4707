"""The handlers behind the Query tab: click a patch, see where its token attends, beside feature similarity.

Plain functions of the `Explorer`: each checks its inputs (``gr.Error`` naming what is valid) and draws with
``vitattn.render``. The attention comes from ``vitattn.query`` (the store keeps CLS-derived maps only, so this is
live inference: one forward pass per image and model, every layer, head and query kept in a small LRU); the
similarity is the Similarity tab's own view (``actions.similarity.similarity``) with a point region, so the query
patch and the similarity's selected patch are the same cell (``vitattn.query.query_cell`` follows
``similarity.region_cells``).

Live inference runs through ``LiveModels.run``: under the live workers' bound, and on the GPU of a ZeroGPU Space."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from vitattn import render
from vitattn.cache import LRU
from vitattn.query import AttentionRows, QueryAttention, attention_rows, query_cell
from vitattn.similarity import check_region, feature_grid
from vitattn.ui.actions import similarity as sim, views
from vitattn.ui.actions.common import integer
from vitattn.ui.data.catalog import FUSED, ModelInfo
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer

ROWS_KEPT = 4  # images x models whose attention is kept ([L, H, T, T] float32: about 40 MB for a ViT-B at 224 px)
GRID_COLOR = (255, 255, 255, 70)  # the patch grid over the click surface
_ROWS: weakref.WeakKeyDictionary[Explorer, LRU[tuple[str, str], AttentionRows]] = weakref.WeakKeyDictionary()
_ROWS_LOCK = threading.Lock()


# -- checks ------------------------------------------------------------------------------------------------------


def has_attention(ex: Explorer, model: str) -> bool:
    """Whether the model has attention heads (a ViT); ResNet has none."""
    return ex.info(model).family != "resnet" and num_heads(ex.info(model)) > 0


def num_heads(info: ModelInfo) -> int:
    """Heads per block (the most any method of the model offers per head; 0 for a CNN)."""
    return max(info.heads.values(), default=0)


def no_attention(model: str) -> str:
    """The line shown instead of the attention views for a model without attention."""
    return (
        f"**{model} has no attention** (a CNN: no tokens, no heads), so there is no query attention to show. The "
        "feature similarity of the clicked cell (right) still works."
    )


def check_layer(info: ModelInfo, layer: object) -> int:
    return info.check_feature_layer(layer)  # 0..num_layers - 1 (ResNet: the stages)


def check_head(info: ModelInfo, head: object) -> int | None:
    """None for all heads fused (-1 or None), else a head of the model."""
    if head is None:
        return None
    value = integer(head, "head")
    if value == FUSED:
        return None
    n = num_heads(info)
    if not 0 <= value < n:
        valid = f"0..{n - 1}, or -1 for all heads fused" if n else "-1 only (the model has no heads)"
        raise fail(f"head {value} out of range for {info.name}: valid heads {valid}")
    return value


def check_point(x: object, y: object) -> tuple[float, float]:
    """A normalized point ``(x, y)`` in [0, 1]^2."""
    try:
        x0, y0, _, _ = check_region((x, y, x, y))
    except (ValueError, TypeError):
        raise fail(f"the query point must be x and y normalized to [0, 1], got x={brief(x)}, y={brief(y)}") from None
    return x0, y0


def check_opacity(opacity: object) -> float:
    if isinstance(opacity, bool) or not isinstance(opacity, int | float) or not 0.0 <= opacity <= 1.0:
        raise fail(f"opacity must be a number in [0, 1], got {brief(opacity)}")
    return float(opacity)


# -- the attention ------------------------------------------------------------------------------------------------


def rows(ex: Explorer, item, model: str) -> AttentionRows:
    """Every attention weight of an image under a model (live inference, cached per image content and model)."""
    with _ROWS_LOCK:
        cache = _ROWS.get(ex)
        if cache is None:
            cache = _ROWS[ex] = LRU(ROWS_KEPT)

    def make() -> AttentionRows:
        return ex.live.run(model, attention_rows, item.image)

    try:
        return cache.get_or_make((item.key, model), make)
    except gr.Error:
        raise
    except ValueError as e:  # no attention (a CNN)
        raise fail(str(e)) from None
    except Exception as e:  # no weights, out of memory...: one line
        raise fail(f"live inference with {model} failed: {e}") from None


def query(ex: Explorer, item, model: str, x: float, y: float) -> QueryAttention:
    """The attention of the patch under ``(x, y)``, every layer and head."""
    if not has_attention(ex, model):
        raise fail(f"{model} has no attention (a CNN): there is no query attention; feature similarity still works")
    got = rows(ex, item, model)
    return got.query(query_cell((x, y), got.grid))


def prefix_name(q: QueryAttention) -> str:
    """What the prefix tokens are: "CLS", "CLS + 4 registers", or none."""
    if q.num_prefix == 0:
        return ""
    registers = q.num_prefix - (1 if q.has_cls else 0)
    parts = (["CLS"] if q.has_cls else []) + ([f"{registers} register{'s' * (registers != 1)}"] if registers else [])
    return " + ".join(parts)


def prefix_text(q: QueryAttention, layer: int, head: int | None) -> str:
    name = prefix_name(q)
    if not name:
        return "no prefix tokens"
    return f"on {name}: {100 * q.prefix_share(layer, head):.1f}%"


def _warning(ex: Explorer, model: str) -> str:
    return views.RANDOM_LABEL if ex.random_weights("live", model) else ""


def _cell_mask(q: QueryAttention) -> np.ndarray:
    mask = np.zeros(q.grid, dtype=bool)
    mask[q.cell] = True
    return mask


def attention(
    ex: Explorer,
    image_id: str,
    model: str,
    layer: float,
    head: float | None = FUSED,
    x: float = 0.5,
    y: float = 0.5,
    opacity: float = 0.6,
) -> tuple[Image.Image, dict]:
    """Where the patch under the point ``(x, y)`` attends at one layer and head (-1: the mean over heads): the map
    over the image with the query patch outlined and the prefix share in the title, and the numbers."""
    item = ex.item(image_id)
    info = ex.info(model)
    layer, head = check_layer(info, layer), check_head(info, head)
    x, y = check_point(x, y)
    opacity = check_opacity(opacity)
    q = query(ex, item, model, x, y)
    amap = q.map(layer, head)
    r, c = q.cell
    body = render.map_view(
        item.picture,
        amap,
        opacity=opacity,
        boxes=item.boxes,
        labels=False,
        cells=_cell_mask(q),
        bar_label=f"attention of patch ({r}, {c}) to each patch (its own range)",
    )
    title = f"{item.id} · {model} · {info.layer_name(layer)} · {views.head_name(head)}"
    share = q.prefix_share(layer, head)
    line = f"query patch ({r}, {c}) · " + (
        f"{prefix_text(q, layer, head)}, on patches: {100 * (1 - share):.1f}%"
        if q.num_prefix
        else "no prefix tokens: all on patches"
    )
    banners = [render.banner(body.width, title, _warning(ex, model)), render.banner(body.width, line)]
    picture = render.stack([*banners, body])
    heads = q.prefix[layer]
    data = {
        "image_id": item.id,
        "model": model,
        "layer": layer,
        "head": FUSED if head is None else head,
        "point": [x, y],
        "cell": [r, c],
        "index": q.index,
        "grid": list(q.grid),
        "prefix_tokens": q.num_prefix,
        "prefix_share": round(q.prefix_share(layer, head), views.DECIMALS),
        "prefix_share_per_head": views.numbers(heads),
        "source": "live",
        "random_weights": ex.random_weights("live", model),
        "attention": views.numbers(amap),
    }
    return picture, data


def strip(
    ex: Explorer,
    image_id: str,
    model: str,
    head: float | None = FUSED,
    x: float = 0.5,
    y: float = 0.5,
    opacity: float = 0.6,
    scale: str = "per map",
) -> Image.Image:
    """The query patch's attention at every layer, side by side, each tile titled with its prefix share."""
    item = ex.item(image_id)
    info = ex.info(model)
    head = check_head(info, head)
    x, y = check_point(x, y)
    opacity = check_opacity(opacity)
    if scale not in views.SCALES:
        raise fail(f"scale must be one of {', '.join(views.SCALES)}, got {brief(scale)}")
    q = query(ex, item, model, x, y)
    layers = range(q.num_layers)
    name = prefix_name(q)
    titles = [info.layer_name(v) + (f" · prefix {100 * q.prefix_share(v, head):.0f}%" if name else "") for v in layers]
    shared = scale == views.SCALES[1]
    return render.tiles(
        item.picture,
        [q.map(v, head) for v in layers],
        titles,
        opacity=opacity,
        warning=_warning(ex, model),
        shared=shared,
        bar_label=f"patch {q.cell}, {views.head_name(head)}: "
        + ("one scale for every layer" if shared else "each layer scaled to its own range"),
    )


def similarity(
    ex: Explorer, image_id: str, model: str, layer: float, x: float, y: float, opacity: float = 0.6
) -> tuple[Image.Image, dict]:
    """The Similarity tab's view of the point ``(x, y)``: cosine similarity of every patch to the query patch."""
    x, y = check_point(x, y)
    return sim.similarity(ex, image_id, model, layer, x, y, x, y, opacity)


# -- the click surface --------------------------------------------------------------------------------------------


def surface_grid(ex: Explorer, item, model: str, layer: int) -> tuple[int, int]:
    """The grid a click selects a cell of: the model's patch grid (ResNet: the chosen stage's feature grid)."""
    info = ex.info(model)
    if has_attention(ex, model):
        return info.grid
    features, _ = ex.features(item, model, layer)
    return feature_grid(features.shape[0], info.grid)


def draw_grid(picture: Image.Image, grid: tuple[int, int], color=GRID_COLOR) -> Image.Image:
    """Thin lines between the cells of a ``(gh, gw)`` grid over the picture; a new image."""
    out = picture.convert("RGBA")
    lines = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(lines)
    w, h = out.size
    gh, gw = grid
    for c in range(1, gw):
        draw.line((round(c * w / gw), 0, round(c * w / gw), h), fill=color, width=1)
    for r in range(1, gh):
        draw.line((0, round(r * h / gh), w, round(r * h / gh)), fill=color, width=1)
    return Image.alpha_composite(out, lines).convert("RGB")


def surface_title(grid: tuple[int, int], cell: tuple[int, int], patches: bool = True) -> str:
    what = "patch" if patches else "cell"  # a CNN's feature map has cells, not patch tokens
    return f"click a {what} · query: {what} {cell} of the {grid[0]}x{grid[1]} grid (outlined)"


def surface(ex: Explorer, image_id: str, model: str, layer: float, x: float, y: float) -> Image.Image:
    """The picture to click on: a title band, the expert boxes, the model's patch grid, the query patch outlined
    and the point marked."""
    item = ex.item(image_id)
    layer = check_layer(ex.info(model), layer)
    x, y = check_point(x, y)
    grid = surface_grid(ex, item, model, layer)
    picture = draw_grid(item.picture, grid)
    if item.boxes:
        picture = render.draw_boxes(picture, item.boxes)
    cell = query_cell((x, y), grid)
    mask = np.zeros(grid, dtype=bool)
    mask[cell] = True
    picture = render.draw_marks(render.outline_cells(picture, mask), [(x, y)])
    title = surface_title(grid, cell, has_attention(ex, model))
    return render.stack([render.banner(picture.width, title), picture])


def start_point(ex: Explorer, image_id: str) -> tuple[float, float]:
    """Where a query starts on a new image: the centre of its first expert box, else the image centre."""
    boxes = ex.item(image_id).boxes
    if not boxes:
        return 0.5, 0.5
    x0, y0, x1, y1 = boxes[0].box
    return round((x0 + x1) / 2, 3), round((y0 + y1) / 2, 3)


def head_choices(ex: Explorer, model: str) -> list[tuple[str, int]]:
    n = num_heads(ex.info(model)) if has_attention(ex, model) else 0
    return [("all heads fused (mean)", FUSED), *((f"head {h}", h) for h in range(n))]


def tab_controls(ex: Explorer, model: str, layer: object, head: object) -> tuple[int, int, list[tuple[str, int]]]:
    """The tab's layer and head for a model, keeping the given ones where valid (else the last layer, fused)."""
    info = ex.info(model)
    try:
        layer = check_layer(info, layer)
    except gr.Error:
        layer = info.num_layers - 1
    choices = head_choices(ex, model)
    try:
        head = check_head(info, head) if len(choices) > 1 else None
    except gr.Error:
        head = None
    return layer, FUSED if head is None else head, choices


def click(ex: Explorer, image_id: str, index: Sequence[float]) -> tuple[float, float] | None:
    """A click at pixel ``index`` of the surface as a normalized point of the image; None on its title band."""
    from vitattn.ui.actions.page import picture_point

    size = ex.item(image_id).picture.size
    top = render.banner(size[0], surface_title((1, 1), (0, 0))).height  # one line: the same height for any text
    return picture_point(index, size, top)


def layer_label(ex: Explorer, model: str) -> str:
    """The tab's layer slider label: ViT layers, or ResNet stages by their names."""
    info = ex.info(model)
    if has_attention(ex, model):
        return "Layer (query)"
    return f"Stage (query): 0 = {info.layer_name(0)} ... {info.num_layers - 1} = {info.layer_name(info.num_layers - 1)}"
