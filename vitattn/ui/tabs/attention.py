"""The Attention tab: the map of (model, method, layer, head) over the image, its metrics beside the baselines, the
same map at every layer (a strip) and every head of the layer (a grid); its public endpoints.

Views (registered with the inputs they read, so every header control recomputes exactly the views that read it):
``attention``, ``chart``, ``layers``, ``heads``, ``predictions``. A click on the map scopes the metrics to the box
under it; a click on a strip tile or a grid tile shows that layer or head (the tile's place comes from the layout
the renderer returned, kept in a ``gr.State``).
"""

from __future__ import annotations

import gradio as gr

from vitattn.metrics import PERCENTILES
from vitattn.ui.actions import export, page as nav, views
from vitattn.ui.data.catalog import FUSED
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell import api
from vitattn.ui.shell.components import chart
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import BANDED, LIVE, PICTURE, VIEWS, queue

TOP1 = views.TOP1
TOP1_CHOICE = ("top-1 class (default)", TOP1)

ID = "attention"


class Layout:
    """The tab's components."""

    def __init__(self, page: Page) -> None:
        with gr.Tab("Attention", id=ID):
            with gr.Row():
                with gr.Column(scale=5):
                    self.picture = gr.Image(label="Map over the image", elem_id="attention-map", **BANDED)
                with gr.Column(scale=4, elem_id="attention-panel"):
                    with gr.Row():
                        self.percentile = gr.Dropdown(
                            list(PERCENTILES), value=90, label="IoU percentile", elem_id="map-percentile", min_width=90
                        )
                        self.show_mask = gr.Checkbox(False, label="Outline the pixels IoU keeps", elem_id="show-mask")
                        self.scope = gr.Dropdown(
                            [("all expert boxes", views.ALL_BOXES)],
                            value=views.ALL_BOXES,
                            label="Score against (or click a box)",
                            elem_id="scope",
                            min_width=170,  # "all expert boxes" clear of the arrow at 1024 px
                        )
                    self.explain = gr.Dropdown(
                        [TOP1_CHOICE],
                        value=TOP1,
                        label="Explain class (gradient methods of classifiers; another class is computed live)",
                        visible=False,
                        filterable=True,
                        elem_id="explain-class",
                    )
                    self.metrics_note = gr.Markdown(visible=False, elem_id="metrics-note")
                    self.table = gr.Dataframe(
                        label="Metrics against the boxes, with baselines", wrap=True, max_height=250, elem_id="metrics"
                    )
                    self.top5 = gr.Label(label="Top-5 ImageNet classes", num_top_classes=5, visible=False)
            # the chart spans the page: its legend (map, coverage and five baselines) is one row that Vega never
            # wraps, and a column's width cut it ("sob")
            self.chart = chart(
                gr.LinePlot,
                "layer",
                "value",
                "series",
                title="This image at every layer",
                axes=("layer", "score"),
                elem_id="layer-chart",
                color_title="",
                height=310,
                tooltip="all",
            )
            self.chart_note = gr.Markdown(visible=False, elem_id="layer-chart-note")
            self.scale = gr.Radio(
                list(views.SCALES), value=views.SCALES[0], label="Colour scale of the strip and the grid"
            )
            self.strip = gr.Image(label="The same map at every layer (click one)", elem_id="layer-strip", **PICTURE)
            self.strip_note = gr.Markdown(visible=False, elem_id="layer-strip-note")
            self.grid = gr.Image(label="Every head of this layer (click one)", elem_id="head-grid", **PICTURE)
            self.strip_layout, self.grid_layout = gr.State(None), gr.State(None)  # where their tiles lie
            with gr.Row():
                self.export = gr.Button("Export this view: map .npy, tables .csv, picture .png", size="sm")
                self.files = gr.File(label="Files", file_count="multiple", interactive=False, elem_id="export")
            with gr.Accordion("Raw maps (numbers)", open=False):
                self.data = gr.JSON(label="attention")
                self.strip_data, self.grid_data = gr.JSON(label="layer maps"), gr.JSON(label="head maps")
        page.header.explain = self.explain


# -- endpoints ---------------------------------------------------------------------------------------------------


def ping(ex: Explorer) -> str:
    """A no-op that answers "pong": a health check, and the yardstick of Gradio's own latency."""
    return "pong"


def endpoints(page: Page, a: api.Inputs) -> None:
    """The endpoints of the Attention view: ping, info, image, attention, layer_metrics, layers, heads, predictions."""
    ex = page.explorer
    o_picture, o_map, o_data = api.picture("picture"), api.data("map"), api.data("data")
    view = [a.image, a.model, a.method, a.layer, a.head]
    api.endpoint("ping", api.bind(ping, ex), [], [api.plain("answer")], **VIEWS)
    api.endpoint("info", api.bind(views.info, ex), [], [api.data("info")], **VIEWS)
    api.endpoint("image", api.bind(views.image, ex), [a.image], [o_picture, o_data], **VIEWS)
    maps = [o_picture, api.table("metrics"), o_map]
    api.endpoint("attention", api.bind(views.attention, ex), [*view, a.opacity, a.mask, a.box, a.target], maps, **VIEWS)
    rows = [api.table("rows")]
    api.endpoint(
        "layer_metrics", api.bind(views.layer_chart, ex), [*view, a.percentile, a.box, a.target], rows, **VIEWS
    )
    strip_in = [a.image, a.model, a.method, a.head, a.opacity, a.scale, a.target]
    api.endpoint("layers", api.bind(views.layer_strip, ex), strip_in, [o_picture, api.data("maps")])
    grid_in = [a.image, a.model, a.method, a.layer, a.opacity, a.scale, a.target]
    api.endpoint("heads", api.bind(views.head_grid, ex), grid_in, [o_picture, api.data("maps")])
    live = not ex.predictions_stored
    top5 = [api.classes("top5")]
    api.endpoint("predictions", api.bind(views.predictions, ex), [a.image, a.model], top5, **(LIVE if live else VIEWS))


# -- the page's views and steps ----------------------------------------------------------------------------------


def _target(ex: Explorer, model: str, method: str, target) -> int:
    """The class picker's value as a view's target: the top-1 where the picker does not apply (hidden, it keeps its
    last value)."""
    chosen = views.page_target(ex, model, method, target)
    return TOP1 if chosen is None else chosen


NO_BOXES = (
    "This image has no boxes to score against: draw or type yours on the **Your image** tab and press Score boxes "
    "(an upload's boxes are then used by every tab)."
)


def page_attention(ex: Explorer, image_id, model, method, layer, head, opacity, percentile, show_mask, box, target):
    """The map, and its metrics table, or one line where the image has no boxes (an upload before yours)."""
    mask = percentile if show_mask else 0
    target = _target(ex, model, method, target)
    picture, table, data = views.attention(ex, image_id, model, method, layer, head, opacity, mask, box, target)
    boxed = bool(ex.item(image_id).boxes)
    note = gr.update(value=None if boxed else NO_BOXES, visible=not boxed)
    return picture, gr.update(value=table, visible=boxed), data, note


def page_strip(ex: Explorer, image_id, model, method, head, opacity, scale, target) -> tuple:
    """The layer strip, its numbers and its layout (for a click); a method with one layer (SigLIP's pool) has no
    strip: one line says so."""
    info = ex.info(model)
    valid = info.layers[info.check_method(method)]
    if len(valid) < 2:
        note = f"{method} has one layer ({info.layer_name(valid[0])}): the map above is all there is."
        return gr.update(value=None, visible=False), None, None, gr.update(value=note, visible=True)
    picture, numbers = views.layer_strip(
        ex, image_id, model, method, head, opacity, scale, _target(ex, model, method, target)
    )
    shown = gr.update(value=picture, visible=True)
    return shown, numbers, nav.tile_layout(picture, valid), gr.update(visible=False)


def page_chart(ex: Explorer, image_id, model, method, layer, head, percentile, box, target) -> tuple:
    """The per-layer chart, its x axis in depth order (the current layer in brackets); a method with one layer
    (SigLIP's pool) has no chart to draw: one line says so instead."""
    info = ex.info(model)
    layer = info.check_layer(method, layer)
    if len(info.layers[method]) < 2:
        note = f"{method} has one layer ({info.layer_name(layer)}): no per-layer chart; its scores are in the table."
        return gr.update(value=None, visible=False), gr.update(value=note, visible=True)
    if not ex.item(image_id).boxes:
        return gr.update(value=None, visible=False), gr.update(
            value=NO_BOXES.split(":")[0] + ": no per-layer chart.", visible=True
        )
    target = _target(ex, model, method, target)
    rows = views.layer_chart(ex, image_id, model, method, layer, head, percentile, box, target)
    order = views.chart_order(info, method, layer)
    title = f"This image at every layer (now: {info.layer_name(int(layer))})"
    return gr.update(value=rows, sort=order, title=title, visible=True), gr.update(visible=False)


def page_heads(ex: Explorer, image_id: str, model: str, method: str, layer: float, opacity: float, scale: str, target):
    """The head grid, its numbers and its layout (for a click); hidden where the method fuses heads by definition."""
    info = ex.info(model)
    if info.heads.get(method, 0) == 0:
        return gr.update(value=None, visible=False), None, None
    picture, numbers = views.head_grid(
        ex, image_id, model, method, layer, opacity, scale, _target(ex, model, method, target)
    )
    return gr.update(value=picture, visible=True), numbers, nav.tile_layout(picture, range(info.heads[method]))


def page_predictions(ex: Explorer, image_id: str, model: str, method: str) -> tuple[dict, dict]:
    """Top-5 classes, shown for classifiers only, and the classes the picker offers, shown for gradient methods of
    classifiers (the value is kept: a class index means the same class under every ImageNet classifier)."""
    if not ex.info(model).classifier:
        return gr.update(value=None, visible=False), gr.update(choices=[TOP1_CHOICE], visible=False)
    choices = [TOP1_CHOICE, *views.class_choices(ex, image_id, model)]
    shown = views.target_applies(ex, model, method)
    return gr.update(value=views.predictions(ex, image_id, model), visible=True), gr.update(
        choices=choices, visible=shown
    )


def on_image(ex: Explorer, image_id: str) -> tuple:
    """A new image: every expert box scored, the class picker at the top-1."""
    boxes = ex.item(image_id).boxes
    scope = gr.update(choices=[("all expert boxes", views.ALL_BOXES), *nav.box_choices(boxes)], value=views.ALL_BOXES)
    return scope, gr.update(value=TOP1)


def on_map_click(ex: Explorer, image_id, model, method, layer, head, box, target, evt: gr.SelectData) -> int:
    """A click on the map scopes the metrics and the chart to the expert box under it (again: all boxes)."""
    chosen = views.page_target(ex, model, method, target)
    return views.attention_click(ex, image_id, model, method, layer, head, box, evt.index, chosen)


def on_strip_click(ex: Explorer, layout: dict | None, evt: gr.SelectData) -> dict:
    """A click on a tile of the layer strip shows that layer (the tile is found in the layout the renderer
    returned with the picture, kept in a ``gr.State``: nothing is recomputed)."""
    layer = nav.tile_value(layout, evt.index)
    return gr.skip() if layer is None else gr.update(value=layer)


def on_grid_click(ex: Explorer, layout: dict | None, evt: gr.SelectData) -> dict:
    """A click on a tile of the head grid shows that head (from the grid's kept layout)."""
    head = nav.tile_value(layout, evt.index)
    return gr.skip() if head is None else gr.update(value=head)


def export_view(ex: Explorer, image_id, model, method, layer, head, opacity, percentile, show_mask, box, target):
    """The Attention view as files: the map (float32 .npy, on the model's grid), its metrics and the per-layer chart
    (CSV), the picture (PNG)."""
    target = _target(ex, model, method, target)
    chosen = None if target == TOP1 else target
    mask = percentile if show_mask else 0
    picture, table, _ = views.attention(ex, image_id, model, method, layer, head, opacity, mask, box, target)
    rows = views.layer_chart(ex, image_id, model, method, layer, head, percentile, box, target)
    info = ex.info(model)
    layer = info.check_layer(method, layer)
    fused = head is None or int(head) == FUSED or info.heads.get(method, 0) == 0
    heatmap, _ = ex.map(ex.item(image_id), model, method, layer, None if fused else int(head), target=chosen)
    parts = ("fused" if fused else f"head{int(head)}", None if chosen is None else f"class{chosen}")
    stem = export.name(image_id, model, method, f"layer{layer}", *parts)
    return [
        export.npy(stem, heatmap),
        export.csv(f"{stem}_metrics", table),
        export.csv(f"{stem}_per-layer", rows),
        export.png(stem, picture),
    ]


def build(page: Page) -> Layout:
    """Lays the tab out and registers its views."""
    ex, h = page.explorer, page.header
    t = Layout(page)
    bind = api.bind
    view = [h.image_id, h.model, h.method, h.layer, h.head]
    inputs = [*view, h.opacity, t.percentile, t.show_mask, t.scope, t.explain]
    page.views.add("attention", bind(page_attention, ex), inputs, [t.picture, t.table, t.data, t.metrics_note])
    chart_in = [*view, t.percentile, t.scope, t.explain]
    page.views.add("chart", bind(page_chart, ex), chart_in, [t.chart, t.chart_note])
    strip_in = [h.image_id, h.model, h.method, h.head, h.opacity, t.scale, t.explain]
    strip_out = [t.strip, t.strip_data, t.strip_layout, t.strip_note]
    page.views.add("layers", bind(page_strip, ex), strip_in, strip_out)
    grid_in = [h.image_id, h.model, h.method, h.layer, h.opacity, t.scale, t.explain]
    page.views.add("heads", bind(page_heads, ex), grid_in, [t.grid, t.grid_data, t.grid_layout])
    live = not ex.predictions_stored
    predicted = [h.image_id, h.model, h.method]
    page.views.add("predictions", bind(page_predictions, ex), predicted, [t.top5, t.explain], live=live)
    page.image_steps.append((bind(on_image, ex), [h.image_id], [t.scope, t.explain]))
    page.files.append(t.files)
    return t


def wire(page: Page, t: Layout) -> None:
    """The tab's own events: its controls, clicks on its pictures, the export."""
    ex, h, v = page.explorer, page.header, page.views
    bind = api.bind
    v.on([t.percentile.input], t.percentile)
    v.on([t.show_mask.input], t.show_mask)
    v.on([t.scale.input], t.scale)
    v.on([t.explain.input], t.explain, live=True)  # another class: live inference
    v.on([t.scope.input], t.scope)
    map_in = [*h.view, t.scope, t.explain]
    v.after(t.picture.select(bind(on_map_click, ex), map_in, t.scope, **queue(False)).then, t.scope)
    v.after(t.strip.select(bind(on_strip_click, ex), t.strip_layout, h.layer, **queue(False)).then, h.layer)
    v.after(t.grid.select(bind(on_grid_click, ex), t.grid_layout, h.head, **queue(False)).then, h.head)
    view = [*h.view, h.opacity, t.percentile, t.show_mask, t.scope, t.explain]
    t.export.click(bind(export_view, ex), view, t.files, **queue(False))
