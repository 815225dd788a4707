"""vitattn: where do vision models look in an image, and does it match where experts look?

    python app.py [--store LOCATION] [--host HOST] [--port PORT]

LOCATION is a store folder or hf://datasets/<namespace>/<name>[@<revision>] (also $VITATTN_STORE); without one the
app uses ./store when it holds a store, else the bundled example images with live inference. Every action on the
page is also an API endpoint: ``gradio_client.Client(url).view_api()`` lists them.

Limits (``vitattn/ui/config.py``): uploads of at most 20 MiB and 50 million pixels (a larger image is refused from
its header, before decoding); one live analysis at a time, queued, while cached views have 8 workers of their own;
at most 256 waiting requests; uploads and generated pictures are deleted after an hour. Errors come back as one
clear line (``gr.Error``), never a stack trace, and never with a Hub token in them.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gradio as gr
import pandas as pd
from PIL import Image

from vitattn.metrics import PERCENTILES
from vitattn.ui import AppConfig, Explorer, iou, page, views
from vitattn.ui.catalog import FUSED, format_boxes, parse_boxes
from vitattn.ui.config import (
    LIVE_WORKERS,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    QUEUE_SIZE,
    TEMP_FILES,
    VIEW_WORKERS,
)
from vitattn.ui.errors import guard
from vitattn.ui.page import CLICK_MODES

TITLE = "vitattn · where do vision models look?"
INTRO = """# Where do vision models look?
Attention maps, feature similarity and their agreement with expert boxes for DINOv2, DINOv3, CLIP, MAE, SigLIP,
a supervised ViT and ResNet-50. Pick an image and a model above; every tab follows the same choices."""
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


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="The vitattn app.")
    p.add_argument("--store", default=None, help="store folder or hf://datasets/ns/name[@rev] (or $VITATTN_STORE)")
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=None, help="port (default 7860 or $GRADIO_SERVER_PORT)")
    return p.parse_args(argv)


ARGS = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
EXPLORER = Explorer.open(AppConfig.from_env(store=ARGS.store))


# -- API endpoints: plain inputs, a picture and the numbers out ----------------------------------------------------


@guard
def ping() -> str:
    """A no-op that answers "pong": a health check, and the yardstick of Gradio's own latency."""
    return "pong"


@guard
def info() -> dict:
    """What this app offers: store, image ids, and per model its methods, layers and heads."""
    return views.info(EXPLORER)


@guard
def image(image_id: str) -> tuple[Image.Image, dict]:
    """An image with its expert boxes drawn, and the boxes (normalized x0, y0, x1, y1) as numbers."""
    return views.image(EXPLORER, image_id)


@guard
def attention(
    image_id: str, model: str, method: str, layer: float, head: int, opacity: float
) -> tuple[Image.Image, pd.DataFrame, dict]:
    """The map of (model, method, layer, head; head -1 = all heads fused) over the image with the expert boxes,
    its metrics beside the baselines', and the raw map as numbers."""
    return views.attention(EXPLORER, image_id, model, method, layer, head, opacity)


@guard
def layers(image_id: str, model: str, method: str, head: int, opacity: float) -> tuple[Image.Image, dict]:
    """The same map at every layer, side by side, and the maps as numbers."""
    return views.layer_strip(EXPLORER, image_id, model, method, head, opacity)


@guard
def heads(image_id: str, model: str, method: str, layer: float, opacity: float) -> tuple[Image.Image, dict]:
    """Every head of one layer as a grid, and the maps as numbers."""
    return views.head_grid(EXPLORER, image_id, model, method, layer, opacity)


@guard
def predictions(image_id: str, model: str) -> dict[str, float]:
    """Top-5 ImageNet classes of a classifier model (empty for the others)."""
    return views.predictions(EXPLORER, image_id, model)


@guard
def similarity(
    image_id: str, model: str, layer: float, x0: float, y0: float, x1: float, y1: float, opacity: float
) -> tuple[Image.Image, dict]:
    """Cosine similarity of every patch to the mean feature inside a box (x0, y0, x1, y1 normalized to [0, 1];
    x0 == x1 and y0 == y1 is a point) at a layer, with the selected patches outlined."""
    return views.similarity(EXPLORER, image_id, model, layer, x0, y0, x1, y1, opacity)


@guard
def analyze(image_file: str | dict, model: str, progress=gr.Progress()) -> tuple[str, Image.Image, dict]:  # noqa: B008
    """Analyses an uploaded image live (at most 20 MiB and 50 million pixels); returns its id (use it with every
    other endpoint) and its last-layer map."""
    return views.analyze(EXPLORER, image_file, model, progress)


@guard
def metrics(
    image_id: str, model: str, method: str, layer: float, head: int, opacity: float, boxes: str
) -> tuple[Image.Image, pd.DataFrame]:
    """Your own boxes (one per line: x0 y0 x1 y1 [label], normalized) over the map, and the map's metrics against
    them beside the baselines'."""
    return views.user_metrics(EXPLORER, image_id, model, method, layer, head, opacity, boxes)


@guard
def leaderboard(percentile: int, method: str) -> pd.DataFrame:
    """Models at their best layer ranked by mean IoU at a percentile (method "best": each model's best), with
    coverage, pointing game and the baselines."""
    return iou.leaderboard(EXPLORER, percentile, method)


@guard
def layer_curves(percentile: int, method: str) -> pd.DataFrame:
    """Mean IoU per layer of every model, as rows (model, layer, iou)."""
    return iou.curves(EXPLORER, percentile, method)


@guard
def layer_head(model: str, method: str, percentile: int) -> tuple[Image.Image, dict]:
    """Mean IoU per layer and head of one model and method."""
    return iou.grid(EXPLORER, model, method, percentile)


@guard
def breakdown(model: str, method: str, layer: float, by: str, percentile: int) -> pd.DataFrame:
    """Mean IoU of one model by box label or by image style (method "best", layer -1: the best ones)."""
    return iou.by_group(EXPLORER, model, method, layer, by, percentile)


@guard
def compare(model_a: str, model_b: str, percentile: int) -> pd.DataFrame:
    """Paired Wilcoxon test of two models, each at its best method and layer, over the images both cover."""
    return iou.compare(EXPLORER, model_a, model_b, percentile)


# -- page plumbing (not in the API) -------------------------------------------------------------------------------


@guard
def on_model(model: str, method: str, layer: float, head: int) -> tuple[dict, dict, dict]:
    """Keeps method, layer and head valid for the chosen model or method."""
    c = page.controls(EXPLORER.info(model), method, layer, head)
    return (
        gr.update(choices=list(c.methods), value=c.method),
        gr.update(minimum=c.layers[0], maximum=c.layers[-1], value=c.layer, interactive=len(c.layers) > 1),
        gr.update(choices=list(c.heads), value=c.head, interactive=len(c.heads) > 1),
    )


@guard
def on_gallery(evt: gr.SelectData) -> str:
    return evt.value["caption"]


@guard
def on_image(image_id: str) -> tuple[float, float, float, float, dict, None]:
    """A new image: the similarity region starts at its first expert box; the box list is its boxes."""
    boxes = EXPLORER.item(image_id).boxes
    choices = [(f"{i}: {b.label}" if b.label else str(i), i) for i, b in enumerate(boxes)]
    return (*page.first_region(boxes), gr.update(choices=choices, value=0 if boxes else None), None)


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
def on_draw_click(image_id: str, pending, boxes: str, evt: gr.SelectData) -> tuple[str, object]:
    """Two clicks on your picture add one box to your boxes."""
    item = EXPLORER.item(image_id)
    x, y = page.click_point(evt.index, item.picture.size)
    region, pending = page.click_region(CLICK_MODES[2], pending, (), x, y)
    if region is None or region[0] == region[2] or region[1] == region[3]:
        return boxes, pending
    mine = parse_boxes(boxes)
    return format_boxes((*mine, *parse_boxes(" ".join(f"{v:.4f}" for v in region)))), pending


@guard
def after_upload(image_id: str) -> tuple[dict, str, None]:
    """The uploaded image becomes the current image, with no boxes of yours yet."""
    ids = EXPLORER.image_ids()
    return gr.update(choices=[*ids, image_id] if image_id not in ids else ids, value=image_id), "", None


@guard
def page_heads(image_id: str, model: str, method: str, layer: float, opacity: float) -> tuple[dict, dict | None]:
    """The head grid, hidden where the method fuses heads by definition."""
    if EXPLORER.info(model).heads.get(method, 0) == 0:
        return gr.update(value=None, visible=False), None
    picture, numbers = heads(image_id, model, method, layer, opacity)
    return gr.update(value=picture, visible=True), numbers


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
ALL_HEADS = [("all heads fused", FUSED), *((f"head {h}", h) for h in range(NUM_HEADS))]
PRIVATE = {"api_visibility": "private", **VIEWS}  # page steps; views override the group where live

with gr.Blocks(title=TITLE, delete_cache=TEMP_FILES) as demo:
    gr.Markdown(INTRO)
    status = gr.Markdown()
    with gr.Row(equal_height=True):
        image_id = gr.Dropdown(IDS, value=IDS[0], label="Image", allow_custom_value=True, scale=2, elem_id="image-id")
        model = gr.Dropdown(MODELS, value=MODELS[0], label="Model", allow_custom_value=True)
        method = gr.Dropdown(list(ALL_METHODS), value=START.method, label="Method", allow_custom_value=True)
        layer = gr.Slider(0, NUM_LAYERS - 1, value=START.layer, step=1, label="Layer", elem_id="layer")
        head = gr.Dropdown(ALL_HEADS, value=FUSED, label="Head", allow_custom_value=True)
        opacity = gr.Slider(0, 1, value=OPACITY, step=0.05, label="Opacity")

    with gr.Tabs():
        with gr.Tab("Attention", id="attention"):
            with gr.Row():
                with gr.Column(scale=1):
                    gallery = gr.Gallery(label="Images", columns=3, height=420, allow_preview=False)
                    top5 = gr.Label(label="Top-5 ImageNet classes (classifier models only)", num_top_classes=5)
                with gr.Column(scale=2):
                    picture = gr.Image(label="Map over the image", elem_id="attention-map", show_label=False, **PICTURE)
                    table = gr.Dataframe(label="Metrics against the expert boxes, with baselines", wrap=True)
            strip = gr.Image(label="The same map at every layer", elem_id="layer-strip", **PICTURE)
            grid = gr.Image(label="Every head of this layer", elem_id="head-grid", **PICTURE)
            show_heads = gr.Button("Show every head of this layer", size="sm")
            with gr.Accordion("Raw map (numbers)", open=False):
                data = gr.JSON(label="attention")
            strip_data, grid_data = (
                gr.JSON(label="layer maps", visible=False),
                gr.JSON(label="head maps", visible=False),
            )

        with gr.Tab("Similarity", id="similarity"):
            gr.Markdown(
                "Click the left picture: on an expert box, a point, or two corners of your own box (or type four "
                "numbers). The right picture shows how similar every patch's feature is to the mean feature of the "
                "outlined patches, at the chosen model and layer."
            )
            with gr.Row():
                mode = gr.Radio(list(CLICK_MODES), value=CLICK_MODES[0], label="A click selects")
                box_choice = gr.Dropdown([], label="Expert box", type="value")
                x0 = gr.Number(0.25, label="x0", minimum=0, maximum=1)
                y0 = gr.Number(0.25, label="y0", minimum=0, maximum=1)
                x1 = gr.Number(0.75, label="x1", minimum=0, maximum=1)
                y1 = gr.Number(0.75, label="y1", minimum=0, maximum=1)
                show = gr.Button("Show", variant="primary")
            pending = gr.State(None)
            with gr.Row():
                surface = gr.Image(label="Click here", elem_id="click-surface", **PICTURE)
                sim_picture = gr.Image(label="Cosine similarity", elem_id="similarity-map", show_label=False, **PICTURE)
            with gr.Accordion("Similarity (numbers)", open=False):
                sim_data = gr.JSON(label="similarity")
            surface_data = gr.JSON(label="boxes", visible=False)

        with gr.Tab("IoU", id="iou"):
            if EXPLORER.store is None:
                gr.Markdown(
                    "**The IoU tab needs a store** of precomputed metrics. Build one with "
                    "`python -m precompute --output store` (add `--models dinov2,clip` to limit it) and restart the "
                    "app; it picks up `./store` by itself."
                )
            with gr.Row():
                percentile = gr.Dropdown(list(PERCENTILES), value=90, label="IoU percentile")
                board_method = gr.Dropdown([iou.BEST, *ALL_METHODS], value=iou.BEST, label="Method")
            board = gr.Dataframe(label="Leaderboard: each model at its best layer", wrap=True)
            gr.Markdown(iou.SELECTION_NOTE)
            curves = gr.LinePlot(
                x="layer",
                y="iou",
                color="model",
                color_title="model (method)",
                x_title="layer",
                y_title="mean IoU",
                title="Mean IoU per layer",
                label="Mean IoU per layer",
                show_label=False,  # Gradio's label would push the legend below the plot's box, out of sight
                height=460,
                elem_id="layer-curves",
            )
            with gr.Row():
                grid_model = gr.Dropdown(MODELS, value=MODELS[0], label="Model")
                grid_method = gr.Dropdown(
                    list(ALL_METHODS), value=START.method, label="Method", allow_custom_value=True
                )
            grid_picture = gr.Image(label="Layer x head", elem_id="layer-head", **PICTURE)
            grid_numbers = gr.JSON(label="layer x head means", visible=False)
            with gr.Row():
                by = gr.Radio(list(iou.BREAKDOWNS), value="label", label="Break down by")
                group_method = gr.Dropdown([iou.BEST, *ALL_METHODS], value=iou.BEST, label="Method")
                group_layer = gr.Number(-1, label="Layer (-1: best)", precision=0)
            groups = gr.Dataframe(label="Breakdown (for the grid's model)", wrap=True)
            with gr.Row():
                model_a = gr.Dropdown(MODELS, value=MODELS[0], label="Model A")
                model_b = gr.Dropdown(MODELS, value=MODELS[-1], label="Model B")
                versus = gr.Button("Compare")
            paired = gr.Dataframe(label="Paired comparison (Wilcoxon signed-rank)", wrap=True)

        with gr.Tab("Your image", id="upload"):
            gr.Markdown(
                "Upload any image: it is analysed live with the chosen model, then every control above works on it. "
                "Two clicks on the right picture draw a box; the table scores the map against your boxes.\n\n" + LIMITS
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
                    boxes = gr.Textbox("", label="Your boxes: x0 y0 x1 y1 [label], one per line", lines=3)
                    clear = gr.Button("Clear boxes")
                    mine_table = gr.Dataframe(label="Metrics against your boxes", wrap=True)
            corner = gr.State(None)

    view = [image_id, model, method, layer, head, opacity]
    region = [x0, y0, x1, y1]
    endpoints = {  # name: (handler, inputs, outputs); each is one public endpoint
        "attention": (attention, view, [picture, table, data]),
        "layers": (layers, [image_id, model, method, head, opacity], [strip, strip_data]),
        "heads": (heads, [image_id, model, method, layer, opacity], [grid, grid_data]),
        "predictions": (predictions, [image_id, model], [top5]),
        "image": (image, [image_id], [surface, surface_data]),
        "similarity": (similarity, [image_id, model, layer, *region, opacity], [sim_picture, sim_data]),
        "metrics": (metrics, [*view, boxes], [mine_picture, mine_table]),
        "leaderboard": (leaderboard, [percentile, board_method], [board]),
        "layer_curves": (layer_curves, [percentile, board_method], [curves]),
        "layer_head": (layer_head, [grid_model, grid_method, percentile], [grid_picture, grid_numbers]),
        "breakdown": (breakdown, [grid_model, group_method, group_layer, by, percentile], [groups]),
        "compare": (compare, [model_a, model_b, percentile], [paired]),
    }
    # The page shows the head grid only where the method has heads (the API endpoint raises instead).
    page_views = {
        **endpoints,
        "heads": (page_heads, endpoints["heads"][1], [grid, grid_data]),
        "status": (page_status, None, [status]),  # problems found while serving show up without a reload
    }

    def group(name: str) -> dict:
        """The concurrency group of a view: live inference, or the cached views."""
        return LIVE if name == "predictions" and not EXPLORER.predictions_stored else VIEWS

    def endpoint(name: str, triggers: list, **kw) -> None:
        """The public endpoint ``name``, fired by the controls a person uses for that action."""
        fn, inputs, outputs = endpoints[name]
        gr.on(triggers, fn, inputs, outputs, api_name=name, **group(name), **kw)

    def refresh(after, *names: str) -> None:
        """Re-runs views after a page step, as private events (the API keeps one endpoint per action)."""
        for name in names:
            fn, inputs, outputs = page_views[name]
            after(fn, inputs, outputs, **{**PRIVATE, **group(name)})

    last = {"trigger_mode": "always_last"}
    endpoint("attention", [layer.input, head.input, opacity.release], **last)
    endpoint("layers", [head.input, opacity.release], **last)
    endpoint("heads", [show_heads.click], **last)
    endpoint("predictions", [model.input])
    endpoint("image", [image_id.input])
    endpoint("similarity", [show.click, layer.input, opacity.release], **last)
    endpoint("metrics", [boxes.submit, head.input, layer.input], **last)
    endpoint("leaderboard", [percentile.input, board_method.input])
    endpoint("layer_curves", [percentile.input, board_method.input])
    endpoint("layer_head", [grid_model.input, grid_method.input, percentile.input])
    endpoint("breakdown", [by.input, group_method.input, group_layer.submit, grid_model.input, percentile.input])
    endpoint("compare", [versus.click])
    analysed = run.click(
        analyze, [upload, model], [upload_id, upload_picture, upload_data], api_name="analyze", preprocess=False, **LIVE
    )
    gr.api(ping, api_name="ping", **VIEWS)
    gr.api(info, api_name="info", **VIEWS)

    # Page steps that change several controls, then refresh the views they affect.
    refresh(layer.input, "heads")
    new_image = [x0, y0, x1, y1, box_choice, pending]
    for step in (model.input, method.input):
        changed = step(on_model, [model, method, layer, head], [method, layer, head], **PRIVATE)
        refresh(changed.then, "attention", "layers", "heads", "similarity", "metrics", "status")
    picked = gr.on([image_id.input], on_image, image_id, new_image, **PRIVATE)
    refresh(picked.then, "attention", "layers", "heads", "predictions", "similarity", "metrics", "status")
    picked = gallery.select(on_gallery, None, image_id, **PRIVATE).then(on_image, image_id, new_image, **PRIVATE)
    refresh(picked.then, "attention", "layers", "heads", "predictions", "image", "similarity", "metrics", "status")
    uploaded = analysed.success(after_upload, upload_id, [image_id, boxes, corner], **PRIVATE)
    uploaded = uploaded.then(on_image, image_id, new_image, **PRIVATE)
    refresh(uploaded.then, "attention", "layers", "heads", "predictions", "image", "similarity", "metrics", "status")
    clicked = surface.select(
        on_region_click, [image_id, mode, pending, *region], [*region, pending, box_choice], **PRIVATE
    )
    refresh(clicked.then, "similarity")
    refresh(box_choice.input(on_box_choice, [image_id, box_choice], region, **PRIVATE).then, "similarity")
    refresh(mine_picture.select(on_draw_click, [image_id, corner, boxes], [boxes, corner], **PRIVATE).then, "metrics")
    refresh(clear.click(lambda: ("", None), None, [boxes, corner], **PRIVATE).then, "metrics")

    # On load: status line, gallery, valid controls, and every view of the first image.
    demo.load(page_status, None, status, **PRIVATE)
    demo.load(page_gallery, None, gallery, **PRIVATE)
    loaded = demo.load(on_model, [model, method, layer, head], [method, layer, head], **PRIVATE)
    loaded = loaded.then(on_image, image_id, new_image, **PRIVATE)
    refresh(loaded.then, "attention", "layers", "heads", "predictions", "image", "similarity", "metrics")
    if EXPLORER.store is not None:
        refresh(demo.load, "leaderboard", "layer_curves", "layer_head", "breakdown", "compare")


def serve(host: str | None = None, port: int | None = None, *, block: bool = True):
    """Launches the page with the app's limits: queue size, upload size, file access, concurrency groups.

    Gradio serves files only from its own upload and cache folders (nothing else is allowed); ``block=False``
    returns at once (tests: ``demo.close()`` stops it).
    """
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=VIEW_WORKERS)
    return demo.launch(
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
