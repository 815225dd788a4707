"""vitattn: where do vision models look in an image, and does it match where experts look?

    python app.py [--store LOCATION] [--host HOST] [--port PORT] [--random-weights]

LOCATION is a store folder or hf://datasets/<namespace>/<name>[@<revision>] (also $VITATTN_STORE); without one the
app uses ./store when it holds a store, else the bundled example images with live inference. ``--random-weights``
runs live inference on untrained networks (no download: the app works offline; every picture says so). Every action
is also an API endpoint with typed inputs: ``gradio_client.Client(url).view_api()`` lists them.

Limits (``vitattn/ui/config.py``): uploads of at most 20 MiB and 50 million pixels (a larger image is refused from
its header, before decoding); one live analysis at a time, queued, while cached views have 8 workers of their own;
at most 256 waiting requests; uploads and generated pictures are deleted after an hour. Errors come back as one
clear line (``gr.Error``), never a stack trace, and never with a Hub token in them.
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import replace

import gradio as gr
import pandas as pd
from PIL import Image

from vitattn.metrics import PERCENTILES
from vitattn.ui import AppConfig, Explorer
from vitattn.ui.shell import api
from vitattn.ui.tabs import compare as compare_tab
from vitattn.ui.actions import export
from vitattn.ui.actions import iou
from vitattn.ui.tabs import more as more_tabs
from vitattn.ui.actions import page
from vitattn.ui.tabs import query as query_tab
from vitattn.ui.actions import views
from vitattn.ui.shell import wiring
from vitattn.ui.data.catalog import FUSED, format_boxes, parse_boxes
from vitattn.ui.data.config import (
    LIVE_WORKERS,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    QUEUE_SIZE,
    TEMP_FILES,
    VIEW_WORKERS,
)
from vitattn.ui.data.errors import guard, warn
from vitattn.ui.actions.page import CLICK_MODES
from vitattn.ui.actions.views import TOP1

TITLE = "vitattn · where do vision models look?"
INTRO = "## Where do vision models look, and do they look where experts do?"
OPACITY = 0.6
PICTURE = {"format": "jpeg", "interactive": False, "buttons": ["download", "fullscreen"]}  # jpeg: fast to encode
LIMITS = (
    f"Limits: at most {MAX_UPLOAD_BYTES // 2**20} MiB and {MAX_UPLOAD_PIXELS // 10**6} million pixels (PNG, JPEG, "
    "WebP, TIFF, BMP or GIF; 16-bit, CMYK, palette and transparent images are converted to RGB). The server keeps "
    "recent uploads in memory while you use them and deletes their files about an hour after upload."
)
# Live inference (uploads; predictions unless stored) and cached views queue separately: a view never waits for one.
LIVE = {"concurrency_id": "live", "concurrency_limit": LIVE_WORKERS}
VIEWS = {"concurrency_id": "views", "concurrency_limit": VIEW_WORKERS}
PLAY_SECONDS = 1.2  # layer playback: one layer per tick
STEPS = ("first", "previous", "next", "last")
# Keyboard stepping: arrow keys (or , and .) step the layer, Home/End jump to the first/last layer, p plays or pauses;
# not while typing in a field (a focused slider keeps its own arrow keys).
KEYS = """() => {
  const keys = {ArrowLeft: 'layer-previous', ',': 'layer-previous', ArrowRight: 'layer-next', '.': 'layer-next',
                Home: 'layer-first', End: 'layer-last', p: 'layer-play'};
  document.addEventListener('keydown', (e) => {
    const t = e.target, tag = (t && t.tagName || '').toLowerCase();
    if (e.altKey || e.ctrlKey || e.metaKey || tag === 'input' || tag === 'textarea' || tag === 'select'
        || (t && t.isContentEditable) || !(e.key in keys)) return;
    const button = document.getElementById(keys[e.key]);
    if (!button) return;
    e.preventDefault();
    button.click();
  });
}"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="The vitattn app.")
    p.add_argument("--store", default=None, help="store folder or hf://datasets/ns/name[@rev] (or $VITATTN_STORE)")
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=None, help="port (default 7860 or $GRADIO_SERVER_PORT)")
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="live inference with untrained networks: no download, works offline (labelled on every picture)",
    )
    return p.parse_args(argv)


ARGS = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
CONFIG = AppConfig.from_env(store=ARGS.store)
EXPLORER = Explorer.open(replace(CONFIG, weights="random") if ARGS.random_weights else CONFIG)


# -- API endpoints: plain typed inputs, a picture and the numbers out ----------------------------------------------


@guard
def ping() -> str:
    """A no-op that answers "pong": a health check, and the yardstick of Gradio's own latency."""
    return "pong"


@guard
def info() -> dict:
    """What this app offers: store, image ids, and per model its methods, layers (with names) and heads, and
    whether stored and live maps come from random weights."""
    return views.info(EXPLORER)


@guard
def image(image_id: str) -> tuple[Image.Image, dict]:
    """An image with its expert boxes drawn, and the boxes (normalized x0, y0, x1, y1) with labels and metadata."""
    return views.image(EXPLORER, image_id)


@guard
def attention(
    image_id: str,
    model: str,
    method: str,
    layer: int,
    head: int | None = FUSED,
    opacity: float = OPACITY,
    mask: int = 0,
    box: int = -1,
    target: int = TOP1,
) -> tuple[Image.Image, pd.DataFrame, dict]:
    """The map of (model, method, layer, head) over the image with the expert boxes, its metrics beside the
    baselines', and the raw map as numbers. head -1 (or None) fuses all heads; mask 90 outlines the top 10% of pixels
    that IoU@90 keeps (0: no mask); box n scores expert box n alone (-1: all boxes); target is the ImageNet class
    (0..999) a gradient method (gradcam, agcam, gae) of a classifier explains (-1: its top-1)."""
    return views.attention(EXPLORER, image_id, model, method, layer, head, opacity, mask, box, target)


@guard
def layer_metrics(
    image_id: str,
    model: str,
    method: str,
    layer: int,
    head: int | None = FUSED,
    percentile: int = 90,
    box: int = -1,
    target: int = TOP1,
) -> pd.DataFrame:
    """IoU at the percentile and coverage of this image's map at every layer, the baselines as flat lines and the
    current layer marked: rows (layer, value, series). target: as for /attention."""
    return views.layer_chart(EXPLORER, image_id, model, method, layer, head, percentile, box, target)


@guard
def layers(
    image_id: str,
    model: str,
    method: str,
    head: int | None = FUSED,
    opacity: float = OPACITY,
    scale: str = "per map",
    target: int = TOP1,
) -> tuple[Image.Image, dict]:
    """The same map at every layer, side by side (ResNet stages each on their own grid), with a colour bar (scale
    "per map": each tile its own range; "shared": one range), and the maps as numbers. target: as for /attention."""
    return views.layer_strip(EXPLORER, image_id, model, method, head, opacity, scale, target)


@guard
def heads(
    image_id: str,
    model: str,
    method: str,
    layer: int,
    opacity: float = OPACITY,
    scale: str = "per map",
    target: int = TOP1,
) -> tuple[Image.Image, dict]:
    """Every head of one layer as a grid with a colour bar, and the maps as numbers. target: as for /attention."""
    return views.head_grid(EXPLORER, image_id, model, method, layer, opacity, scale, target)


@guard
def predictions(image_id: str, model: str) -> dict[str, float]:
    """Top-5 ImageNet classes of a classifier model (empty for the others)."""
    return views.predictions(EXPLORER, image_id, model)


@guard
def similarity(
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
    return views.similarity(EXPLORER, image_id, model, layer, x0, y0, x1, y1, opacity, scale)


@guard
def analyze(image_file: str | dict, model: str, progress=gr.Progress()) -> tuple[str, Image.Image, dict]:  # noqa: B008
    """Analyses an uploaded image live (at most 20 MiB and 50 million pixels); returns its id (use it with every
    other endpoint) and its last-layer map."""
    return views.analyze(EXPLORER, image_file, model, progress)


@guard
def metrics(
    image_id: str,
    model: str,
    method: str,
    layer: int,
    head: int | None = FUSED,
    boxes: str = "",
    opacity: float = OPACITY,
) -> tuple[Image.Image, pd.DataFrame]:
    """Your own boxes (one per line: x0 y0 x1 y1 [label], normalized) over the map, and the map's metrics against
    them beside the baselines'."""
    return views.user_metrics(EXPLORER, image_id, model, method, layer, head, boxes, opacity)


@guard
def leaderboard(percentile: int = 90, method: str = iou.BEST) -> pd.DataFrame:
    """Models at their best layer ranked by mean IoU at a percentile (method "best": each model's best), with
    coverage, pointing game and the baselines."""
    return iou.leaderboard(EXPLORER, percentile, method)


@guard
def layer_curves(percentile: int = 90, method: str = iou.BEST) -> pd.DataFrame:
    """Mean IoU per layer of every model: rows (model, method, layer name, depth = (layer + 1) / layers, iou, lo, hi:
    the 95% bootstrap interval over images)."""
    return iou.curves(EXPLORER, percentile, method)


@guard
def layer_head(model: str, method: str, percentile: int = 90) -> tuple[Image.Image, dict]:
    """Mean IoU per layer and head of one model and method, as a table picture with a legend and as numbers."""
    return iou.grid(EXPLORER, model, method, percentile)


@guard
def breakdown(model: str, method: str = iou.BEST, layer: int = -1, by: str = "label", percentile: int = 90):
    """Mean IoU of one model by box label or by image style (method "best", layer -1: the best ones)."""
    return iou.by_group(EXPLORER, model, method, layer, by, percentile)


@guard
def compare(model_a: str, model_b: str, percentile: int = 90) -> pd.DataFrame:
    """Paired test of two models, each at its best method and layer, over the images both cover: one row per metric
    (t-test or Wilcoxon by a Shapiro-Wilk check, B - A with a bootstrap interval, d_z, Holm-corrected p)."""
    return iou.compare(EXPLORER, model_a, model_b, percentile)


# -- page steps (private events: the page's controls, not part of the API) -------------------------------------------


@guard
def on_model(model: str, method: str, layer: float, head: int) -> tuple[dict, dict, dict]:
    """Keeps method, layer and head valid for the chosen model or method; the head control is off where the
    method fuses heads by definition (rollout, gradcam)."""
    info = EXPLORER.info(model)
    c = page.controls(info, method, layer, head)
    return (
        gr.update(choices=list(c.methods), value=c.method),
        gr.update(  # one layer only (pool): the whole range shown, the slider off (Gradio refuses minimum == maximum)
            minimum=c.layers[0] if len(c.layers) > 1 else 0,
            maximum=c.layers[-1] if c.layers[-1] > 0 else 1,
            value=c.layer,
            interactive=len(c.layers) > 1,
            label=page.layer_label(info, c.layers),
        ),
        gr.update(choices=list(c.heads), value=c.head, interactive=len(c.heads) > 1),
        gr.update(visible=views.target_applies(EXPLORER, model, c.method)),
    )


@guard
def on_image(image_id: str) -> tuple:
    """A new image: the similarity region starts at its first expert box; box lists are its boxes; the class picker
    is at the top-1; the image is the one shown."""
    boxes = EXPLORER.item(image_id).boxes
    choices = page.box_choices(boxes)
    scope = gr.update(choices=[("all expert boxes", views.ALL_BOXES), *choices], value=views.ALL_BOXES)
    first = gr.update(choices=choices, value=0 if boxes else None)
    return (*page.first_region(boxes), first, None, scope, gr.update(value=TOP1), image_id)


@guard
def on_picked_image(image_id: str, shown: str | None) -> tuple | None:
    """``on_image`` for a picked or typed image, and the image now shown; None when it is the one shown already
    (the dropdown's blur after a pick)."""
    if image_id == shown:
        return None
    return on_image(image_id)


def _target(model: str, method: str, target) -> int:
    """The class picker's value as a view's target: the top-1 where the picker does not apply (hidden, it keeps its
    last value)."""
    chosen = views.page_target(EXPLORER, model, method, target)
    return TOP1 if chosen is None else chosen


@guard
def page_attention(image_id, model, method, layer, head, opacity, percentile, show_mask, box, target):
    mask = percentile if show_mask else 0
    return attention(image_id, model, method, layer, head, opacity, mask, box, _target(model, method, target))


@guard
def page_strip(image_id, model, method, head, opacity, scale, target):
    return layers(image_id, model, method, head, opacity, scale, _target(model, method, target))


@guard
def page_chart(image_id, model, method, layer, head, percentile, box, target) -> dict:
    """The per-layer chart, its x axis in depth order (the current layer in brackets)."""
    rows = layer_metrics(image_id, model, method, layer, head, percentile, box, _target(model, method, target))
    info = EXPLORER.info(model)
    order = views.chart_order(info, method, info.check_layer(method, layer))
    return gr.update(value=rows, sort=order, title=f"This image at every layer (now: {info.layer_name(int(layer))})")


@guard
def page_curves(percentile: int, method: str):
    """The per-layer curves with their 95% bootstrap bands and the baselines as chance lines (hover: the numbers)."""
    return iou.curves_plot(EXPLORER, percentile, method)


@guard
def page_heads(image_id: str, model: str, method: str, layer: float, opacity: float, scale: str, target):
    """The head grid, hidden where the method fuses heads by definition."""
    if EXPLORER.info(model).heads.get(method, 0) == 0:
        return gr.update(value=None, visible=False), None
    picture, numbers = heads(image_id, model, method, layer, opacity, scale, _target(model, method, target))
    return gr.update(value=picture, visible=True), numbers


TOP1_CHOICE = ("top-1 class (default)", TOP1)


@guard
def page_predictions(image_id: str, model: str, method: str) -> tuple[dict, dict]:
    """Top-5 classes, shown for classifiers only, and the classes the picker offers, shown for gradient methods of
    classifiers (the value is kept: a class index means the same class under every ImageNet classifier)."""
    if not EXPLORER.info(model).classifier:
        return gr.update(value=None, visible=False), gr.update(choices=[TOP1_CHOICE], visible=False)
    choices = [TOP1_CHOICE, *views.class_choices(EXPLORER, image_id, model)]
    shown = views.target_applies(EXPLORER, model, method)
    return gr.update(value=predictions(image_id, model), visible=True), gr.update(choices=choices, visible=shown)


@guard
def page_surface(image_id: str, x0: float, y0: float, x1: float, y1: float, pending) -> Image.Image:
    """The click surface with the selected region and a pending first corner drawn."""
    return views.surface(EXPLORER, image_id, (x0, y0, x1, y1), pending)


@guard
def page_mine(image_id, model, method, layer, head, boxes, opacity, corner):
    """Your boxes over the map; boxes that do not parse leave the picture as it is drawn without them, and say why."""
    try:
        parse_boxes(boxes)
    except gr.Error as e:
        warn(f"your boxes are not scored: {e.message}")
        boxes = ""
    return views.user_metrics(EXPLORER, image_id, model, method, layer, head, boxes, opacity, corner)


@guard
def check_boxes(boxes: str) -> None:
    """Raises a clear error (a notice on the page) when your boxes do not parse."""
    parse_boxes(boxes)


@guard
def on_map_click(image_id, model, method, layer, head, box, target, evt: gr.SelectData) -> int:
    """A click on the map scopes the metrics and the chart to the expert box under it (again: all boxes)."""
    chosen = views.page_target(EXPLORER, model, method, target)
    return views.attention_click(EXPLORER, image_id, model, method, layer, head, box, evt.index, chosen)


@guard
def on_gallery(evt: gr.SelectData) -> tuple[str, dict]:
    """A thumbnail opens its image on the Attention tab."""
    return evt.value["caption"], gr.Tabs(selected="attention")


@guard
def on_filter(search: str, field: str, value: str) -> list:
    return page.gallery(EXPLORER, search=search, field=field, value=value)


@guard
def on_field(field: str) -> dict:
    return gr.update(choices=["", *page.filters(EXPLORER).get(field, [])], value="")


@guard
def on_box_choice(image_id: str, index: int | None) -> tuple[float, float, float, float]:
    boxes = EXPLORER.item(image_id).boxes
    if index is None or not 0 <= int(index) < len(boxes):
        raise gr.Error(f"no expert box {index!r} on {image_id}")
    return boxes[int(index)].box


@guard
def on_region_click(image_id: str, mode: str, pending, x0, y0, x1, y1, evt: gr.SelectData):
    """A click on the picture: an expert box, a point, or one corner of a box (see ``page.click_region``)."""
    item = EXPLORER.item(image_id)
    x, y = page.click_point(evt.index, item.picture.size)
    region, pending = page.click_region(mode, pending, item.boxes, x, y)
    boxes = [b.box for b in item.boxes]
    chosen = boxes.index(region) if region in boxes else None
    return (*(region or (x0, y0, x1, y1)), pending, chosen)


@guard
def on_draw_click(image_id, model, method, layer, head, pending, boxes: str, evt: gr.SelectData) -> tuple[str, object]:
    """Two clicks on your picture add one box to your boxes; the first corner is drawn until the second click."""
    item = EXPLORER.item(image_id)
    top = views.user_banner(EXPLORER, image_id, model, method, layer, head, boxes)
    point = page.picture_point(evt.index, item.picture.size, top)
    if point is None:
        return boxes, pending
    region, pending = page.click_region(CLICK_MODES[2], pending, (), *point)
    if region is None or region[0] == region[2] or region[1] == region[3]:
        return boxes, pending
    try:
        mine = parse_boxes(boxes)
    except gr.Error:
        mine = ()
    return format_boxes((*mine, *parse_boxes(" ".join(f"{v:.3f}" for v in region)))), pending


@guard
def on_grid_model(model: str, method: str) -> tuple[dict, dict]:
    """The layer x head grid and the breakdown offer the chosen model's methods only."""
    methods = iou.methods_of(EXPLORER, model)
    grid_method = gr.update(choices=methods, value=method if method in methods else methods[0])
    group_method = gr.update(choices=[iou.BEST, *methods], value=iou.BEST)
    return grid_method, group_method


@guard
def after_upload(image_id: str) -> tuple[dict, str, None]:
    """The uploaded image becomes the current image, with no boxes of yours yet."""
    ids = EXPLORER.image_ids()
    return gr.update(choices=[*ids, image_id] if image_id not in ids else ids, value=image_id), "", None


# -- playback, clicks that open a view, export ---------------------------------------------------------------------

PLAY, PAUSE = "play", "pause"


@guard
def on_step(model: str, method: str, layer: float, how: str) -> dict:
    """A playback button (or its key): the method's first, previous, next or last layer."""
    layers = page.controls(EXPLORER.info(model), method, layer, None).layers
    return gr.update(value=page.step_layer(layers, layer, how))


@guard
def on_play(model: str, method: str, layer: float, playing: bool) -> tuple:
    """Play (from the first layer when at the last) or pause: the timer steps one layer per tick."""
    layers = page.controls(EXPLORER.info(model), method, layer, None).layers
    if playing or len(layers) < 2:
        return False, gr.Timer(active=False), gr.update(value=PLAY), gr.skip()
    start = gr.update(value=layers[0]) if int(layer) >= layers[-1] else gr.skip()
    return True, gr.Timer(active=True), gr.update(value=PAUSE), start


@guard
def on_tick(model: str, method: str, layer: float, playing: bool) -> tuple:
    """One playback step; playback stops at the last layer."""
    layers = page.controls(EXPLORER.info(model), method, layer, None).layers
    if not playing:
        return gr.skip(), False, gr.Timer(active=False), gr.update(value=PLAY)
    after = page.step_layer(layers, layer, "next")
    if after == layers[-1]:
        return gr.update(value=after), False, gr.Timer(active=False), gr.update(value=PLAY)
    return gr.update(value=after), True, gr.skip(), gr.skip()


def open_view(model: str, method: str, layer: int, head: int) -> tuple:
    """Updates of (tabs, model, method, layer, head, class picker) that show one view in the Attention tab."""
    return gr.Tabs(selected="attention"), gr.update(value=model), *on_model(model, method, layer, head)


@guard
def on_strip_click(image_id, model, method, head, scale, evt: gr.SelectData) -> dict:
    """A click on a tile of the layer strip shows that layer."""
    shared = scale == views.SCALES[1]
    layer = page.strip_layer(EXPLORER, image_id, model, method, head, shared, evt.index)
    return gr.skip() if layer is None else gr.update(value=layer)


@guard
def on_grid_click(image_id, model, method, layer, scale, evt: gr.SelectData) -> dict:
    """A click on a tile of the head grid shows that head."""
    head = page.grid_head(EXPLORER, image_id, model, method, layer, scale == views.SCALES[1], evt.index)
    return gr.skip() if head is None else gr.update(value=head)


@guard
def on_board_click(board: pd.DataFrame, evt: gr.SelectData) -> tuple:
    """A click on a leaderboard row opens that model at its method and layer (baseline rows open nothing)."""
    row = board.iloc[int(evt.index[0])] if board is not None and len(board) > int(evt.index[0]) else None
    if row is None or str(row["model"]) not in EXPLORER.models() or pd.isna(row["layer"]):
        return tuple(gr.skip() for _ in range(6))
    return open_view(str(row["model"]), str(row["method"]), int(row["layer"]), FUSED)


@guard
def on_table_click(model: str, method: str, evt: gr.SelectData) -> tuple:
    """A click on a cell of the layer x head table opens that layer and head ("fused": all heads)."""
    at = page.table_view(EXPLORER.info(model), method, evt.index)
    if at is None:
        return tuple(gr.skip() for _ in range(6))
    return open_view(model, method, *at)


@guard
def export_view(image_id, model, method, layer, head, opacity, percentile, show_mask, box, target) -> list[str]:
    """The Attention view as files: the map (float32 .npy, on the model's grid), its metrics and the per-layer chart
    (CSV), the picture (PNG)."""
    target = _target(model, method, target)
    chosen = None if target == TOP1 else target
    mask = percentile if show_mask else 0
    picture, table, _ = attention(image_id, model, method, layer, head, opacity, mask, box, target)
    rows = layer_metrics(image_id, model, method, layer, head, percentile, box, target)
    info = EXPLORER.info(model)
    layer = info.check_layer(method, layer)
    fused = head is None or int(head) == FUSED or info.heads.get(method, 0) == 0
    item = EXPLORER.item(image_id)
    heatmap, _ = EXPLORER.map(item, model, method, layer, None if fused else int(head), target=chosen)
    parts = ("fused" if fused else f"head{int(head)}", None if chosen is None else f"class{chosen}")
    stem = export.name(image_id, model, method, f"layer{layer}", *parts)
    return [
        export.npy(stem, heatmap),
        export.csv(f"{stem}_metrics", table),
        export.csv(f"{stem}_per-layer", rows),
        export.png(stem, picture),
    ]


@guard
def export_iou(percentile, board_method, grid_model, grid_method, group_method, group_layer, by, model_a, model_b):
    """The IoU tab's tables as CSV: leaderboard, per-layer curves, layer x head means, breakdown, comparison."""
    stem = export.name("iou", percentile)
    _, numbers = layer_head(grid_model, grid_method, percentile)
    heads = pd.DataFrame(numbers["grid"], columns=[f"h{h}" for h in range(len(numbers["grid"][0]))])
    heads.insert(0, "layer", range(len(heads)))
    heads["fused"] = numbers["fused"]
    files = [
        export.csv(f"{stem}_leaderboard", leaderboard(percentile, board_method)),
        export.csv(f"{stem}_per-layer", layer_curves(percentile, board_method)),
        export.csv(export.name(stem, grid_model, grid_method, "layer-head"), heads),
    ]
    for what, table in (
        (f"by-{by}", lambda: breakdown(grid_model, group_method, group_layer, by, percentile)),
        (f"{model_a}-vs-{model_b}", lambda: compare(model_a, model_b, percentile)),
    ):
        try:  # one table that cannot be computed (no styles, one model) does not stop the others
            files.append(export.csv(export.name(stem, what), table()))
        except gr.Error as e:
            warn(f"not exported: {what}: {e.message}")
    return files


@guard
def export_mine(image_id, model, method, layer, head, boxes, opacity) -> list[str]:
    """Your boxes' view as files: the metrics (CSV) and the picture (PNG)."""
    picture, table = views.user_metrics(EXPLORER, image_id, model, method, layer, head, boxes, opacity)
    stem = export.name(image_id, model, method, f"layer{int(layer)}", "your-boxes")
    return [export.csv(f"{stem}_metrics", table), export.png(stem, picture)]


@guard
def page_status() -> str:
    return page.status(EXPLORER)


@guard
def page_gallery() -> list:
    return page.gallery(EXPLORER)


# -- layout -------------------------------------------------------------------------------------------------------

IDS = EXPLORER.image_ids()
MODELS = EXPLORER.models()
START = page.controls(EXPLORER.info(MODELS[0]), None, None, None)
NUM_LAYERS, ALL_METHODS, NUM_HEADS = EXPLORER.extent()  # API inputs accept any model's values; the page narrows them
FIELDS = page.filters(EXPLORER) if len(IDS) <= page.GALLERY_SIZE * 20 else {}
PRIVATE = {"api_visibility": "private", **VIEWS}
LAST = {"trigger_mode": "always_last"}  # a change during a view is computed once more; one event per trigger (wiring)

later: list = []  # ``.then`` of other tabs' steps that set the header's controls: the Attention views follow them

with gr.Blocks(title=TITLE, delete_cache=TEMP_FILES) as demo:
    with gr.Row(equal_height=True):
        gr.Markdown(INTRO)
    status = gr.Markdown(elem_id="status")
    with gr.Row(equal_height=True, elem_id="top-controls"):
        image_id = gr.Dropdown(IDS, value=IDS[0], label="Image", allow_custom_value=True, scale=2, elem_id="image-id")
        shown_image = gr.State(IDS[0])  # the image the views show
        model = gr.Dropdown(MODELS, value=MODELS[0], label="Model", elem_id="model")
        method = gr.Dropdown(list(START.methods), value=START.method, label="Method", elem_id="method")
        with gr.Column(scale=2, min_width=250, elem_id="layer-box"):
            layer = gr.Slider(
                0,
                NUM_LAYERS - 1,
                value=START.layer,
                step=1,
                label="Layer",
                info="play or step; keys ← → Home End, p plays",
                elem_id="layer",
            )
            with gr.Row(elem_id="playback"):  # first, previous, play/pause, next, last
                step_buttons = {"first": gr.Button("|◀", size="sm", min_width=30, elem_id="layer-first")}
                step_buttons["previous"] = gr.Button("◀", size="sm", min_width=30, elem_id="layer-previous")
                play = gr.Button(PLAY, size="sm", min_width=50, elem_id="layer-play")
                step_buttons["next"] = gr.Button("▶", size="sm", min_width=30, elem_id="layer-next")
                step_buttons["last"] = gr.Button("▶|", size="sm", min_width=30, elem_id="layer-last")
        playing, player = gr.State(False), gr.Timer(PLAY_SECONDS, active=False)
        head = gr.Dropdown(list(START.heads), value=FUSED, label="Head", elem_id="head")
        opacity = gr.Slider(0, 1, value=OPACITY, step=0.05, label="Opacity", elem_id="opacity")

    # New tabs are built by a function in vitattn/ui/ given the header's controls; ``"refresh": later.append`` takes an
    # event's ``.then``, after which the Attention views are re-run (wired at the end of this layout).
    header = {"image_id": image_id, "model": model, "method": method, "layer": layer, "head": head}
    with gr.Tabs() as tabs:
        controls = {"tabs": tabs, **header, "opacity": opacity, "refresh": later.append}
        with gr.Tab("Attention", id="attention"):
            with gr.Row():
                with gr.Column(scale=5):
                    picture = gr.Image(label="Map over the image", elem_id="attention-map", show_label=False, **PICTURE)
                with gr.Column(scale=4, elem_id="attention-panel"):
                    with gr.Row():
                        map_percentile = gr.Dropdown(
                            list(PERCENTILES), value=90, label="IoU percentile", elem_id="map-percentile", min_width=90
                        )
                        show_mask = gr.Checkbox(False, label="Outline the pixels IoU keeps", elem_id="show-mask")
                        scope = gr.Dropdown(
                            [("all expert boxes", views.ALL_BOXES)],
                            value=views.ALL_BOXES,
                            label="Score against (or click a box)",
                            elem_id="scope",
                        )
                    explain = gr.Dropdown(
                        [TOP1_CHOICE],
                        value=TOP1,
                        label="Explain class (gradient methods of classifiers; another class is computed live)",
                        visible=False,
                        filterable=True,
                        elem_id="explain-class",
                    )
                    table = gr.Dataframe(label="Metrics against the boxes, with baselines", wrap=True, max_height=250)
                    chart = gr.LinePlot(
                        x="layer",
                        y="value",
                        color="series",
                        title="This image at every layer",
                        x_title="layer",
                        y_title="score",
                        color_title="",
                        show_label=False,
                        height=310,
                        elem_id="layer-chart",
                        tooltip="all",
                    )
                    top5 = gr.Label(label="Top-5 ImageNet classes", num_top_classes=5, visible=False)
            scale = gr.Radio(list(views.SCALES), value=views.SCALES[0], label="Colour scale of the strip and the grid")
            strip = gr.Image(label="The same map at every layer (click one)", elem_id="layer-strip", **PICTURE)
            grid = gr.Image(label="Every head of this layer (click one)", elem_id="head-grid", **PICTURE)
            with gr.Row():
                export_button = gr.Button("Export this view: map .npy, tables .csv, picture .png", size="sm")
                export_files = gr.File(label="Files", file_count="multiple", interactive=False, elem_id="export")
            with gr.Accordion("Raw maps (numbers)", open=False):
                data = gr.JSON(label="attention")
                strip_data, grid_data = gr.JSON(label="layer maps"), gr.JSON(label="head maps")

        with gr.Tab("Similarity", id="similarity"):
            gr.Markdown(
                "Click the left picture: on an expert box, a point, or two corners of your own box (or type four "
                "numbers and press Show). The right picture shows how similar every patch's feature is to the mean "
                "feature of the outlined patches, at the chosen model and layer."
            )
            with gr.Row():
                mode = gr.Radio(list(CLICK_MODES), value=CLICK_MODES[0], label="A click selects", elem_id="click-mode")
                box_choice = gr.Dropdown([], label="Expert box", type="value", elem_id="box-choice")
                x0 = gr.Number(0.25, label="x0", minimum=0, maximum=1)
                y0 = gr.Number(0.25, label="y0", minimum=0, maximum=1)
                x1 = gr.Number(0.75, label="x1", minimum=0, maximum=1)
                y1 = gr.Number(0.75, label="y1", minimum=0, maximum=1)
                sim_scale = gr.Radio(
                    list(views.SIM_SCALES), value=views.SIM_SCALES[0], label="Colour scale", elem_id="sim-scale"
                )
                show = gr.Button("Show", variant="primary")
            pending = gr.State(None)
            with gr.Row():
                surface = gr.Image(label="Click here", elem_id="click-surface", **PICTURE)
                sim_picture = gr.Image(label="Cosine similarity", elem_id="similarity-map", show_label=False, **PICTURE)
            with gr.Accordion("Similarity (numbers)", open=False):
                sim_data = gr.JSON(label="similarity")

        query_tab.build(EXPLORER, controls)  # one patch's attention, beside its feature similarity
        compare_tab.build(EXPLORER, controls)  # two maps of one image and B - A

        with gr.Tab("IoU", id="iou", elem_id="iou-panel"):
            if EXPLORER.store is None:
                gr.Markdown(
                    "**The IoU tab needs a store** of precomputed metrics. Build one with "
                    "`python -m precompute --output store` (add `--models dinov2,clip` to limit it) and restart the "
                    "app; it picks up `./store` by itself."
                )
            with gr.Row():
                percentile = gr.Dropdown(list(PERCENTILES), value=90, label="IoU percentile", elem_id="iou-percentile")
                board_method = gr.Dropdown(
                    [iou.BEST, *ALL_METHODS], value=iou.BEST, label="Method", elem_id="board-method"
                )
            board = gr.Dataframe(
                label="Leaderboard: each model at its best layer (click a row to open it)", wrap=True, elem_id="board"
            )
            gr.Markdown(iou.SELECTION_NOTE)
            curves = iou.curves_component(elem_id="layer-curves")  # bands and chance lines: Vega-Lite in gr.Plot
            gr.Markdown(iou.BANDS_NOTE)
            with gr.Row():
                grid_model = gr.Dropdown(MODELS, value=MODELS[0], label="Model", elem_id="grid-model")
                grid_method = gr.Dropdown(
                    iou.methods_of(EXPLORER, MODELS[0]), value=START.method, label="Method", elem_id="grid-method"
                )
            grid_picture = gr.Image(label="Layer x head (click a cell to open it)", elem_id="layer-head", **PICTURE)
            grid_numbers = gr.JSON(label="layer x head means", visible=False)
            styles = EXPLORER.store is not None and iou.has_styles(EXPLORER)
            with gr.Row():
                by = gr.Radio(list(iou.BREAKDOWNS), value="label", label="Break down by", visible=styles, elem_id="by")
                group_method = gr.Dropdown(
                    [iou.BEST, *iou.methods_of(EXPLORER, MODELS[0])],
                    value=iou.BEST,
                    label="Method",
                    elem_id="group-method",
                )
                group_layer = gr.Number(-1, label="Layer (-1: best)", precision=0, elem_id="group-layer")
            groups = gr.Dataframe(label="Breakdown by box label (for the grid's model)", wrap=True)
            with gr.Row():
                model_a = gr.Dropdown(MODELS, value=MODELS[0], label="Model A", elem_id="model-a")
                model_b = gr.Dropdown(MODELS, value=MODELS[-1], label="Model B", elem_id="model-b")
            paired = gr.Dataframe(
                label="Paired comparison B - A, every metric (t or Wilcoxon, Holm-corrected)",
                wrap=True,
                elem_id="paired",
            )
            with gr.Row():
                iou_export = gr.Button("Export these tables (CSV)", size="sm", elem_id="iou-export")
                iou_files = gr.File(label="Files", file_count="multiple", interactive=False, elem_id="iou-files")

        with gr.Tab("Your image", id="upload"):
            gr.Markdown(
                "Upload any image: it is analysed live with the chosen model, then every control above works on it. "
                "Draw boxes with two clicks each on the right picture, or type them (one per line), then press "
                "**Score boxes**: the table scores the map against your boxes.\n\n" + LIMITS
            )
            with gr.Row():
                with gr.Column():
                    upload = gr.Image(  # image_mode None and no preprocessing: Gradio decodes nothing, open_image does
                        label="Your image",
                        type="filepath",
                        image_mode=None,
                        sources=["upload", "clipboard"],
                        elem_id="upload",
                    )
                    run = gr.Button("Analyse", variant="primary")
                    upload_id = gr.Textbox(label="Image id", interactive=False, elem_id="upload-id")
                    upload_picture = gr.Image(label="Last layer", elem_id="upload-map", show_label=False, **PICTURE)
                    upload_data = gr.JSON(label="upload map", visible=False)
                with gr.Column():
                    mine_picture = gr.Image(label="Your boxes (two clicks each)", elem_id="your-boxes", **PICTURE)
                    boxes = gr.Textbox(
                        "",
                        label="Your boxes: x0 y0 x1 y1 [label], one per line, normalized to [0, 1]",
                        lines=3,
                        elem_id="boxes",
                    )
                    with gr.Row():
                        score = gr.Button("Score boxes", variant="primary", elem_id="score")
                        clear = gr.Button("Clear boxes")
                    mine_table = gr.Dataframe(label="Metrics against your boxes", wrap=True)
                    with gr.Row():
                        mine_export = gr.Button("Export: metrics .csv, picture .png", size="sm")
                        mine_files = gr.File(label="Files", file_count="multiple", interactive=False)
            corner = gr.State(None)

        with gr.Tab("Gallery", id="gallery"):
            with gr.Row():
                search = gr.Textbox(label="Search by id or box label", elem_id="search", scale=2)
                field = gr.Dropdown(["", *FIELDS], value="", label="Filter by", elem_id="field")
                value = gr.Dropdown([""], value="", label="Value", elem_id="field-value", allow_custom_value=True)
            gallery = gr.Gallery(
                label="Images (click one to open it)", columns=6, height=560, allow_preview=False, elem_id="gallery"
            )

        more_tabs.build(EXPLORER, controls)  # Heads, Variants, Features and their endpoints

    # The public API: hidden typed inputs, named outputs (vitattn/ui/api.py), one endpoint per action.
    with gr.Column(visible=False):
        a_image = api.text("image_id", "an image id from /info, or the id /analyze returned")
        a_model = api.choice("model", "a model from /info", MODELS)
        a_method = api.choice("method", "a method of the model (see /info)", ALL_METHODS)
        # No bounds on layer and head: the app's own check names the valid ones for the model and method.
        a_layer = api.integer("layer", "0-based layer (ResNet: stage - 1)")
        a_head = api.integer("head", "head number, or -1 for all heads fused", FUSED)
        a_opacity = api.number("opacity", "weight of the map colours over the image, 0..1", OPACITY, 0, 1)
        a_mask = api.choice("mask", "IoU percentile whose kept pixels are outlined; 0: none", [0, *PERCENTILES], 0)
        a_box = api.integer("box", "score expert box n alone; -1: every box", -1, -1)
        a_target = api.integer(
            "target", "ImageNet class 0..999 a gradient method of a classifier explains; -1: its top-1", TOP1, -1
        )
        a_sim_scale = api.choice(
            "scale", "colour scale: the map's own range, or fixed [-1, 1]", views.SIM_SCALES, "per map"
        )
        a_percentile = api.choice("percentile", "IoU percentile", PERCENTILES, 90)
        a_scale = api.choice("scale", "colour scale: each tile its own range, or shared", views.SCALES, "per map")
        a_coords = [api.number(n, "normalized to [0, 1]", None, 0, 1) for n in ("x0", "y0", "x1", "y1")]
        a_boxes = api.text("boxes", "x0 y0 x1 y1 [label] per line, normalized to [0, 1]", "")
        a_file = api.upload("image_file", "an image file (gradio_client.handle_file)")
        a_board_method = api.choice("method", "a method, or best", [iou.BEST, *ALL_METHODS], iou.BEST)
        a_model_b = api.choice("model_b", "a model from /info", MODELS)
        a_by = api.choice("by", "label or style", iou.BREAKDOWNS, "label")
        a_group_layer = api.integer("layer", "0-based layer; -1: the best", -1)
        o_picture, o_map, o_data = api.picture("picture"), api.data("map"), api.data("data")
        o_metrics, o_rows, o_top5 = api.table("metrics"), api.table("rows"), api.classes("top5")
        o_id, o_info, o_maps = api.plain("image_id"), api.data("info"), api.data("maps")
    view = [a_image, a_model, a_method, a_layer, a_head]
    api.endpoint("ping", ping, [], [api.plain("answer")], **VIEWS)
    api.endpoint("info", info, [], [o_info], **VIEWS)
    api.endpoint("image", image, [a_image], [o_picture, o_data], **VIEWS)
    maps = [o_picture, o_metrics, o_map]
    api.endpoint("attention", attention, [*view, a_opacity, a_mask, a_box, a_target], maps, **VIEWS)
    api.endpoint("layer_metrics", layer_metrics, [*view, a_percentile, a_box, a_target], [o_rows], **VIEWS)
    strip_in = [a_image, a_model, a_method, a_head, a_opacity, a_scale, a_target]
    api.endpoint("layers", layers, strip_in, [o_picture, o_maps])
    grid_in = [a_image, a_model, a_method, a_layer, a_opacity, a_scale, a_target]
    api.endpoint("heads", heads, grid_in, [o_picture, o_maps])
    live = LIVE if not EXPLORER.predictions_stored else VIEWS
    api.endpoint("predictions", predictions, [a_image, a_model], [o_top5], **live)
    sim_in = [a_image, a_model, a_layer, *a_coords, a_opacity, a_sim_scale]
    api.endpoint("similarity", similarity, sim_in, [o_picture, o_map])
    api.endpoint("metrics", metrics, [*view, a_boxes, a_opacity], [o_picture, o_metrics], **VIEWS)
    api.endpoint("analyze", analyze, [a_file, a_model], [o_id, o_picture, o_map], preprocess=False, **LIVE)
    api.endpoint("leaderboard", leaderboard, [a_percentile, a_board_method], [o_rows], **VIEWS)
    api.endpoint("layer_curves", layer_curves, [a_percentile, a_board_method], [o_rows], **VIEWS)
    api.endpoint("layer_head", layer_head, [a_model, a_method, a_percentile], [o_picture, o_data], **VIEWS)
    group_inputs = [a_model, a_board_method, a_group_layer, a_by, a_percentile]
    api.endpoint("breakdown", breakdown, group_inputs, [o_rows], **VIEWS)
    api.endpoint("compare", compare, [a_model, a_model_b, a_percentile], [o_rows], **VIEWS)

    # The page: private events from its controls to the same handlers.
    region = [x0, y0, x1, y1]
    page_views = {  # name: (handler, inputs, outputs)
        "attention": (
            page_attention,
            [image_id, model, method, layer, head, opacity, map_percentile, show_mask, scope, explain],
            [picture, table, data],
        ),
        "chart": (page_chart, [image_id, model, method, layer, head, map_percentile, scope, explain], [chart]),
        "layers": (page_strip, [image_id, model, method, head, opacity, scale, explain], [strip, strip_data]),
        "heads": (page_heads, [image_id, model, method, layer, opacity, scale, explain], [grid, grid_data]),
        "predictions": (page_predictions, [image_id, model, method], [top5, explain]),
        "image": (page_surface, [image_id, *region, pending], [surface]),
        "similarity": (similarity, [image_id, model, layer, *region, opacity, sim_scale], [sim_picture, sim_data]),
        "metrics": (
            page_mine,
            [image_id, model, method, layer, head, boxes, opacity, corner],
            [mine_picture, mine_table],
        ),
        "leaderboard": (leaderboard, [percentile, board_method], [board]),
        "layer_curves": (page_curves, [percentile, board_method], [curves]),
        "layer_head": (layer_head, [grid_model, grid_method, percentile], [grid_picture, grid_numbers]),
        "breakdown": (breakdown, [grid_model, group_method, group_layer, by, percentile], [groups]),
        "compare": (compare, [model_a, model_b, percentile], [paired]),
        "status": (page_status, None, [status]),  # problems found while serving show up without a reload
    }

    def group(name: str) -> dict:
        """The concurrency group of a view: live inference, or the cached views."""
        return LIVE if name == "predictions" and not EXPLORER.predictions_stored else VIEWS

    def views_of(names: tuple[str, ...], step: wiring.View | None = None) -> tuple[wiring.View, dict]:
        """One handler for the views ``names`` (after ``step``, when given: ``wiring.after_step``), in the live queue
        if one needs it."""
        live = any(group(n) is LIVE for n in names)
        chosen = [page_views[n] for n in names]
        handler = wiring.combine(chosen) if step is None else wiring.after_step(step, chosen)
        return handler, {**PRIVATE, **(LIVE if live else VIEWS)}

    def on(triggers: list, *names: str) -> None:
        """Views ``names`` recomputed, by one event, when a control in ``triggers`` changes."""
        (fn, inputs, outputs), kw = views_of(names)
        gr.on(triggers, fn, inputs, outputs, **kw, **LAST)

    def refresh(after, *names: str) -> None:
        """Views recomputed, by one event, after a page step that changed several controls."""
        (fn, inputs, outputs), kw = views_of(names)
        after(fn, inputs, outputs, **kw)

    EVERY_VIEW = ("attention", "chart", "layers", "heads", "similarity", "metrics", "status")
    on([layer.input], "attention", "chart", "heads", "similarity", "metrics")
    on([head.select], "attention", "chart", "layers", "metrics")
    on([opacity.release], "attention", "layers", "heads", "similarity", "metrics")
    on([map_percentile.select], "attention", "chart")
    on([show_mask.input], "attention")
    on([scale.input], "layers", "heads")
    (fn, inputs, outputs), _ = views_of(("attention", "chart", "layers", "heads"))
    gr.on([explain.select], fn, inputs, outputs, **{**PRIVATE, **LIVE}, **LAST)  # another class: live inference
    on([show.click], "similarity", "image")
    on([sim_scale.input], "similarity")
    on([percentile.select], "leaderboard", "layer_curves", "layer_head", "breakdown", "compare")
    on([board_method.select], "leaderboard", "layer_curves")
    on([grid_method.select], "layer_head")
    on([by.input, group_method.select, group_layer.submit], "breakdown")
    on([model_a.select, model_b.select], "compare")

    for step in (model.select, method.select):
        # Dropdowns fire "select" once per pick (their "input" fires twice in Gradio 6: the click, then the blur). No
        # preprocessing: a stale method of the model before reaches on_model, which fixes it, instead of Gradio refusing
        # it against the new choices.
        changed = step(
            on_model, [model, method, layer, head], [method, layer, head, explain], preprocess=False, **PRIVATE
        )
        refresh(changed.then, *EVERY_VIEW, *(("predictions",) if step == model.select else ()))
    scoped = scope.select(lambda b: b, scope, scope, **PRIVATE)
    refresh(scoped.then, "attention", "chart")
    clicked_map = picture.select(on_map_click, [image_id, model, method, layer, head, scope, explain], scope, **PRIVATE)
    refresh(clicked_map.then, "attention", "chart")
    grid_changed = grid_model.select(  # no preprocessing: as for on_model
        on_grid_model, [grid_model, grid_method], [grid_method, group_method], preprocess=False, **PRIVATE
    )
    refresh(grid_changed.then, "layer_head", "breakdown")

    # Playback and clicks that open a view: they set the header's controls, then the views follow.
    LAYER_VIEWS = ("attention", "chart", "heads", "similarity", "metrics")
    for how, button in step_buttons.items():
        refresh(button.click(on_step, [model, method, layer, gr.State(how)], layer, **PRIVATE).then, *LAYER_VIEWS)
    started = play.click(on_play, [model, method, layer, playing], [playing, player, play, layer], **PRIVATE)
    refresh(started.then, *LAYER_VIEWS)
    ticked = player.tick(on_tick, [model, method, layer, playing], [layer, playing, player, play], **PRIVATE)
    refresh(ticked.then, *LAYER_VIEWS)
    refresh(strip.select(on_strip_click, [image_id, model, method, head, scale], layer, **PRIVATE).then, *LAYER_VIEWS)
    picked = grid.select(on_grid_click, [image_id, model, method, layer, scale], head, **PRIVATE)
    refresh(picked.then, "attention", "chart", "layers", "metrics")
    opens = [tabs, model, method, layer, head, explain]
    refresh(board.select(on_board_click, board, opens, **PRIVATE).then, *EVERY_VIEW, "predictions")
    cell = grid_picture.select(on_table_click, [grid_model, grid_method], opens, **PRIVATE)
    refresh(cell.then, *EVERY_VIEW, "predictions")
    attention_view = [image_id, model, method, layer, head, opacity, map_percentile, show_mask, scope, explain]
    export_button.click(export_view, attention_view, export_files, **PRIVATE)
    iou_tables = [percentile, board_method, grid_model, grid_method, group_method, group_layer, by, model_a, model_b]
    iou_export.click(export_iou, iou_tables, iou_files, **PRIVATE)
    mine_export.click(export_mine, [image_id, model, method, layer, head, boxes, opacity], mine_files, **PRIVATE)

    new_image = [x0, y0, x1, y1, box_choice, pending, scope, explain, shown_image]
    all_for_image = (*EVERY_VIEW, "predictions", "image")
    # A new image: its boxes, then every view on them, in one request (the picture comes first), on the image's
    # "change" event: once per new value, picked from the list or typed (an upload's id, a paper's), and only then
    # ("input" fires twice per pick, "blur" with every pick, each measurably delaying the picture: see
    # bench/browser.py). A change made by another step that shows the image itself finds it shown already and does
    # nothing.
    (fn, inputs, outputs), kw = views_of(all_for_image, (on_picked_image, [image_id, shown_image], new_image))
    image_id.change(fn, inputs, outputs, **kw, **LAST)
    gallery.select(on_gallery, None, [image_id, tabs], **PRIVATE)  # the image's change event shows it
    gr.on([search.submit, value.input], on_filter, [search, field, value], gallery, **PRIVATE)
    field.select(on_field, field, value, **PRIVATE)

    analysed = run.click(
        analyze, [upload, model], [upload_id, upload_picture, upload_data], preprocess=False, **{**PRIVATE, **LIVE}
    )
    analysed.success(after_upload, upload_id, [image_id, boxes, corner], **PRIVATE)  # the change event shows it

    clicked = surface.select(
        on_region_click, [image_id, mode, pending, *region], [*region, pending, box_choice], **PRIVATE
    )
    refresh(clicked.then, "similarity", "image")
    refresh(box_choice.select(on_box_choice, [image_id, box_choice], region, **PRIVATE).then, "similarity", "image")
    drawn = mine_picture.select(
        on_draw_click, [image_id, model, method, layer, head, corner, boxes], [boxes, corner], **PRIVATE
    )
    refresh(drawn.then, "metrics")
    refresh(score.click(check_boxes, boxes, None, **PRIVATE).success, "metrics")
    refresh(boxes.submit(check_boxes, boxes, None, **PRIVATE).success, "metrics")
    refresh(clear.click(lambda: ("", None), None, [boxes, corner], **PRIVATE).then, "metrics")

    for after in later:  # the image may have changed: its boxes first, then every view
        refresh(after(on_image, image_id, new_image, **PRIVATE).then, *all_for_image)

    # On load: status line, gallery, valid controls, and every view of the first image.
    demo.load(page_status, None, status, **PRIVATE)
    demo.load(page_gallery, None, gallery, **PRIVATE)
    loaded = demo.load(on_model, [model, method, layer, head], [method, layer, head, explain], **PRIVATE)
    loaded = loaded.then(on_image, image_id, new_image, **PRIVATE)
    refresh(loaded.then, *all_for_image)
    if EXPLORER.store is not None:
        refresh(demo.load, "leaderboard", "layer_curves", "layer_head", "breakdown", "compare")


def serve(host: str | None = None, port: int | None = None, *, block: bool = True):
    """Launches the page with the app's limits: queue size, upload size, file access, concurrency groups.

    Gradio serves files only from its own upload and cache folders (nothing else is allowed); ``block=False``
    returns at once (tests: ``demo.close()`` stops it).
    """
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=VIEW_WORKERS)
    return demo.launch(
        js=KEYS,
        server_name=host,
        server_port=port,
        show_error=True,
        max_file_size=MAX_UPLOAD_BYTES,
        prevent_thread_lock=not block,
        quiet=not block,
    )


def clean_up() -> None:
    """Deletes every upload and generated file of this app (Gradio does so on shutdown only when no client is
    still connected)."""
    from gradio.route_utils import delete_files_created_by_app

    delete_files_created_by_app(demo, age=None)


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: Gradio closes the server, then clean_up runs


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    try:
        serve(ARGS.host, ARGS.port)
    finally:
        clean_up()
