"""The Query tab: click a patch and see where its token attends, per layer and head, beside feature similarity.

The DINO / BertViz idiom: the attention row of one query patch token (``vitattn.query``), at the layer and head
chosen here, over the image; the cosine feature similarity of the same patch at that layer (the Similarity tab's
view with a point); and the query's attention at every layer. Image and model are the header's: while the tab is
open its view follows them (a tab-bound view, ``shell/registry.py``); its layer and head start from the header's
each time the tab opens (its own ``tab.select``). A model without attention (ResNet-50) gets a line saying so
instead of the attention views, and its similarity still works. The public endpoint ``/query_attention`` takes
hidden typed inputs (``shell/api.py``); the actions are in ``actions/query.py``.
"""

from __future__ import annotations

import gradio as gr

from vitattn.ui.actions import query as query_view, views
from vitattn.ui.data.catalog import FUSED
from vitattn.ui.data.errors import guard
from vitattn.ui.shell import api
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import BANDED, LAST, PICTURE, VIEWS
from vitattn.ui.shell.wiring import listen

INTRO = (
    "**Click a patch** on the left picture: the middle one shows where that patch's token attends at the chosen "
    "layer and head (the share it gives to the CLS and register tokens is in the title), the right one how similar "
    "every patch's feature is to it at that layer, and the strip below its attention at every layer. Image and "
    "model are the ones chosen above; layer and head here start from theirs when the tab opens."
)


def endpoints(page: Page, a=None) -> None:
    """The public endpoint ``/query_attention``."""
    ex = page.explorer

    def query_attention(
        image_id: str, model: str, layer: int, head: int = FUSED, x: float = 0.5, y: float = 0.5, opacity: float = 0.6
    ):
        """Where the patch under the point (x, y) (normalized to [0, 1], from the top left) attends at one layer and
        head of a ViT (head -1: the mean over heads), live: the map over the image with the query patch outlined,
        and the numbers (the [gh, gw] attention over the patches, the query cell (row, col), the share on the
        prefix tokens CLS and registers). ResNet has no attention: a clear error."""
        return query_view.attention(ex, image_id, model, layer, head, x, y, opacity)

    inputs = [
        api.text("image_id", "an image id from /info, or the id /analyze returned"),
        api.choice("model", "a ViT from /info (ResNet has no attention)", ex.models()),
        api.integer("layer", "0-based layer"),
        api.integer("head", "head number, or -1 for the mean over heads", FUSED),
        api.number("x", "query point from the left, normalized to [0, 1]", 0.5, 0, 1),
        api.number("y", "query point from the top, normalized to [0, 1]", 0.5, 0, 1),
        api.number("opacity", "weight of the map colours over the image, 0..1", 0.6, 0, 1),
    ]
    outputs = [api.picture("picture"), api.data("data")]
    description = (query_attention.__doc__ or "").replace("\n", " ")
    api.endpoint(
        "query_attention",
        guard(query_attention),
        inputs,
        outputs,
        api_description=" ".join(description.split()),
        **VIEWS,
    )


def build(page: Page) -> None:
    """Lays out the Query tab and wires its events."""
    ex, h = page.explorer, page.header
    image_id, model, header_layer, header_head, opacity = h.image_id, h.model, h.layer, h.head, h.opacity
    deepest = max(1, ex.extent()[0] - 1)  # one range for every model (Gradio checks values against it)
    first = ex.models()[0]
    with gr.Tab("Query", id="query", elem_id="query-panel") as tab:
        gr.Markdown(INTRO)
        with gr.Row():
            layer = gr.Slider(0, deepest, value=deepest, step=1, label="Layer (query)", elem_id="query-layer")
            head = gr.Dropdown(
                query_view.head_choices(ex, first),
                value=FUSED,
                label="Head (query)",
                allow_custom_value=True,  # choices follow the model: a stale value reaches the handler, which checks it
                elem_id="query-head",
            )
            scale = gr.Radio(list(views.SCALES), value=views.SCALES[0], label="Colour scale of the strip")
        note = gr.Markdown(visible=False, elem_id="query-note")
        with gr.Row(equal_height=True):
            surface = gr.Image(label="Click a patch", elem_id="query-surface", **BANDED)
            attention = gr.Image(label="Where it attends", elem_id="query-attention", **BANDED)
            similarity = gr.Image(label="Feature similarity to it", elem_id="query-similarity", **BANDED)
        strip = gr.Image(label="Its attention at every layer", elem_id="query-strip", **PICTURE)
        with gr.Accordion("Query attention (numbers)", open=False):
            data = gr.JSON(label="query attention", elem_id="query-data")
        point = gr.State(None)  # [x, y, image_id] of the query

    outputs = [layer, head, point, note, surface, attention, similarity, strip, data]

    def everything(image, model_name, lay, hd, pt, opac, sc, clicked=None):
        lay, hd, choices = query_view.tab_controls(ex, model_name, lay, hd)
        if clicked is not None:
            x, y = clicked
        elif pt and len(pt) == 3 and pt[2] == image:
            x, y = float(pt[0]), float(pt[1])
        else:  # a new image: its first expert box
            x, y = query_view.start_point(ex, image)
        sim, _ = query_view.similarity(ex, image, model_name, lay, x, y, opac)
        picture = query_view.surface(ex, image, model_name, lay, x, y)
        if query_view.has_attention(ex, model_name):
            amap, numbers = query_view.attention(ex, image, model_name, lay, hd, x, y, opac)
            row = query_view.strip(ex, image, model_name, hd, x, y, opac, sc)
            note, shown = gr.update(visible=False), True
        else:
            amap = numbers = row = None
            note, shown = gr.update(value=query_view.no_attention(model_name), visible=True), False
        return (
            gr.update(
                value=lay,
                maximum=max(1, ex.info(model_name).num_layers - 1),  # a ResNet's 4 stages, a ViT's blocks
                label=query_view.layer_label(ex, model_name),
            ),
            gr.update(choices=choices, value=hd, interactive=len(choices) > 1),
            [x, y, image],
            note,
            picture,
            gr.update(value=amap, visible=shown),
            sim,
            gr.update(value=row, visible=shown),
            numbers,
        )

    def on_query_controls(image, model_name, lay, hd, pt, opac, sc):
        return everything(image, model_name, lay, hd, pt, opac, sc)

    def on_query_click(image, model_name, lay, hd, pt, opac, sc, evt: gr.SelectData):
        clicked = query_view.click(ex, image, evt.index)  # None: on the title band, the query stays
        return everything(image, model_name, lay, hd, pt, opac, sc, clicked)

    # While the tab is open its view follows the header's image and model (``tab="query"``); when it opens, layer and
    # head start from the header's (its own select event, below).
    page.views.add(
        "query",
        on_query_controls,
        [image_id, model, layer, head, point, opacity, scale],
        outputs,
        tab="query",
        on_open=False,
    )
    tab_inputs = [image_id, model, header_layer, header_head, point, opacity, scale]
    listen(tab.select, on_query_controls, tab_inputs, outputs, **LAST)
    inputs = [image_id, model, layer, head, point, opacity, scale]
    for trigger in (layer.input, head.input, scale.input):
        listen(trigger, on_query_controls, inputs, outputs, **LAST)
    listen(surface.select, on_query_click, inputs, outputs, **LAST)


def wire(page: Page, layout: None) -> None:
    """Nothing left to wire: ``build`` wires the tab's events (closures over its components)."""
