"""The "Your image" tab: upload an image (analysed live), draw or type your own boxes, score the map against them;
the endpoints ``/analyze`` and ``/metrics``."""

from __future__ import annotations

import gradio as gr
from PIL import Image

from vitattn.ui.actions import export, page as nav, upload as uploads
from vitattn.ui.data.catalog import format_boxes, parse_boxes
from vitattn.ui.data.config import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS
from vitattn.ui.data.errors import warn
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell import api
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import BANDED, LIVE, VIEWS, queue

LIMITS = (
    f"Limits: at most {MAX_UPLOAD_BYTES // 2**20} MiB and {MAX_UPLOAD_PIXELS // 10**6} million pixels (PNG, JPEG, "
    "WebP, TIFF, BMP or GIF; 16-bit, CMYK, palette and transparent images are converted to RGB). The server keeps "
    "recent uploads in memory while you use them and deletes their files about an hour after upload."
)
INTRO = (
    "Upload any image: it is analysed live with the chosen model, then every control above works on it. Draw boxes "
    "with two clicks each on the right picture, or type them (one per line), then press **Score boxes**: the table "
    "scores the map against your boxes.\n\n" + LIMITS
)


class Layout:
    def __init__(self) -> None:
        with gr.Tab("Your image", id="upload"):
            gr.Markdown(INTRO)
            with gr.Row():
                with gr.Column():
                    self.upload = (
                        gr.Image(  # image_mode None, no preprocessing: Gradio decodes nothing, open_image does
                            label="Your image",
                            type="filepath",
                            image_mode=None,
                            sources=["upload", "clipboard"],
                            elem_id="upload",
                        )
                    )
                    self.run = gr.Button("Analyse", variant="primary")
                    self.upload_id = gr.Textbox(label="Image id", interactive=False, elem_id="upload-id")
                    self.picture = gr.Image(label="Last layer", elem_id="upload-map", **BANDED)
                    self.data = gr.JSON(label="upload map", visible=False)
                with gr.Column():
                    self.mine = gr.Image(label="Your boxes (two clicks each)", elem_id="your-boxes", **BANDED)
                    self.boxes = gr.Textbox(
                        "",
                        label="Your boxes: x0 y0 x1 y1 [label], one per line, normalized to [0, 1]",
                        lines=3,
                        elem_id="boxes",
                    )
                    with gr.Row():
                        self.score = gr.Button("Score boxes", variant="primary", elem_id="score")
                        self.clear = gr.Button("Clear boxes")
                    self.table = gr.Dataframe(label="Metrics against your boxes", wrap=True, elem_id="mine-table")
                    with gr.Row():
                        self.export = gr.Button("Export: metrics .csv, picture .png", size="sm")
                        self.files = gr.File(label="Files", file_count="multiple", interactive=False)
            self.corner = gr.State(None)


def analyze(ex: Explorer, image_file: str | dict, model: str, progress=gr.Progress()) -> tuple[str, Image.Image, dict]:  # noqa: B008
    """Analyses an uploaded image live (at most 20 MiB and 50 million pixels); returns its id (use it with every
    other endpoint) and its last-layer map."""
    return uploads.analyze(ex, image_file, model, progress)


def endpoints(page: Page, a: api.Inputs) -> None:
    ex = page.explorer
    metrics_out = [api.picture("picture"), api.table("metrics")]
    view = [a.image, a.model, a.method, a.layer, a.head]
    api.endpoint(
        "metrics", api.bind(uploads.user_metrics, ex, "metrics"), [*view, a.boxes, a.opacity], metrics_out, **VIEWS
    )
    analyzed = [api.plain("image_id"), api.picture("picture"), api.data("map")]
    api.endpoint("analyze", api.bind(analyze, ex), [a.file, a.model], analyzed, preprocess=False, **LIVE)


def page_mine(ex: Explorer, image_id, model, method, layer, head, boxes, opacity, corner):
    """Your boxes over the map; boxes that do not parse leave the picture as it is drawn without them, and say why."""
    try:
        parse_boxes(boxes)
    except gr.Error as e:
        warn(f"your boxes are not scored: {e.message}")
        boxes = ""
    return uploads.user_metrics(ex, image_id, model, method, layer, head, boxes, opacity, corner=corner)


def use_boxes(ex: Explorer, image_id: str, boxes: str) -> None:
    """Your boxes, checked (a clear error, a notice on the page, when they do not parse); on an upload they become
    the image's boxes, which every tab then scores and draws."""
    ex.use_boxes(image_id, parse_boxes(boxes))


def on_draw_click(ex: Explorer, image_id, model, method, layer, head, pending, boxes: str, evt: gr.SelectData):
    """Two clicks on your picture add one box to your boxes; the first corner is drawn until the second click."""
    item = ex.item(image_id)
    top = uploads.user_banner(ex, image_id, model, method, layer, head, boxes)
    point = nav.picture_point(evt.index, item.picture.size, top)
    if point is None:
        return boxes, pending
    region, pending = nav.click_region(nav.CLICK_MODES[2], pending, (), *point)
    if region is None or region[0] == region[2] or region[1] == region[3]:
        return boxes, pending
    try:
        mine = parse_boxes(boxes)
    except gr.Error:
        mine = ()
    return format_boxes((*mine, *parse_boxes(" ".join(f"{v:.3f}" for v in region)))), pending


def after_upload(ex: Explorer, image_id: str) -> tuple[dict, str, None]:
    """The uploaded image becomes the current image, with no boxes of yours yet."""
    ids = ex.image_ids()
    return gr.update(choices=[*ids, image_id] if image_id not in ids else ids, value=image_id), "", None


def export_mine(ex: Explorer, image_id, model, method, layer, head, boxes, opacity) -> list[str]:
    """Your boxes' view as files: the metrics (CSV) and the picture (PNG)."""
    picture, table = uploads.user_metrics(ex, image_id, model, method, layer, head, boxes, opacity)
    stem = export.name(image_id, model, method, f"layer{int(layer)}", "your-boxes")
    return [export.csv(f"{stem}_metrics", table), export.png(stem, picture)]


def build(page: Page) -> Layout:
    ex, h = page.explorer, page.header
    t = Layout()
    inputs = [*h.view, t.boxes, h.opacity, t.corner]
    page.views.add("metrics", api.bind(page_mine, ex), inputs, [t.mine, t.table])
    page.files.append(t.files)
    page.user_boxes = t.boxes
    return t


def wire(page: Page, t: Layout) -> None:
    ex, h, v, bind = page.explorer, page.header, page.views, api.bind
    analysed = t.run.click(
        bind(analyze, ex),
        [t.upload, h.model],
        [t.upload_id, t.picture, t.data],
        preprocess=False,
        **queue(True, t.picture),
    )
    # the image's change event shows it
    analysed.success(bind(after_upload, ex), t.upload_id, [h.image_id, t.boxes, t.corner], **queue(False))
    drawn = t.mine.select(bind(on_draw_click, ex), [*h.view, t.corner, t.boxes], [t.boxes, t.corner], **queue(False))
    v.after(drawn.then, "metrics")
    for trigger in (t.score.click, t.boxes.submit):  # then every view of the image: an upload's boxes changed
        page.follow(trigger(bind(use_boxes, ex), [h.image_id, t.boxes], None, **queue(False)))
    v.after(t.clear.click(lambda: ("", None), None, [t.boxes, t.corner], **queue(False)).then, "metrics")
    mine_in = [*h.view, t.boxes, h.opacity]
    t.export.click(bind(export_mine, ex), mine_in, t.files, **queue(False))
