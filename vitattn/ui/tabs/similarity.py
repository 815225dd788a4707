"""The Similarity tab: click an expert box, a point or two corners on the image; every patch's cosine similarity
to the mean feature of the outlined patches, at the header's model and layer; the endpoint ``/similarity``."""

from __future__ import annotations

import gradio as gr
from PIL import Image

from vitattn.ui.actions import page as nav, similarity as sim, views
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell import api
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import BANDED, queue

INTRO = (
    "Click the left picture: on an expert box, a point, or two corners of your own box (or type four numbers and "
    "press Show). The right picture shows how similar every patch's feature is to the mean feature of the outlined "
    "patches, at the chosen model and layer."
)


class Layout:
    def __init__(self) -> None:
        with gr.Tab("Similarity", id="similarity"):
            gr.Markdown(INTRO)
            with gr.Row():
                self.mode = gr.Radio(
                    list(nav.CLICK_MODES), value=nav.CLICK_MODES[0], label="A click selects", elem_id="click-mode"
                )
                self.box_choice = gr.Dropdown([], label="Expert box", type="value", elem_id="box-choice")
                self.region = [
                    gr.Number(v, label=n, minimum=0, maximum=1)
                    for n, v in (("x0", 0.25), ("y0", 0.25), ("x1", 0.75), ("y1", 0.75))
                ]
                self.scale = gr.Radio(
                    list(views.SIM_SCALES), value=views.SIM_SCALES[0], label="Colour scale", elem_id="sim-scale"
                )
                self.show = gr.Button("Show", variant="primary")
            self.pending = gr.State(None)
            with gr.Row():
                self.surface = gr.Image(
                    label="Click here", elem_id="click-surface", **BANDED
                )  # no badge over a box label
                self.picture = gr.Image(label="Cosine similarity", elem_id="similarity-map", **BANDED)
            with gr.Accordion("Similarity (numbers)", open=False):
                self.data = gr.JSON(label="similarity")


def endpoints(page: Page, a: api.Inputs) -> None:
    sim_in = [a.image, a.model, a.layer, *a.coords, a.opacity, a.sim_scale]
    api.endpoint(
        "similarity", api.bind(sim.similarity, page.explorer), sim_in, [api.picture("picture"), api.data("map")]
    )


def page_surface(ex: Explorer, image_id: str, x0: float, y0: float, x1: float, y1: float, pending) -> Image.Image:
    """The click surface with the selected region and a pending first corner drawn."""
    return sim.surface(ex, image_id, (x0, y0, x1, y1), pending)


def on_image(ex: Explorer, image_id: str) -> tuple:
    """A new image: the region starts at its first expert box, the box list holds its boxes, no corner pending."""
    boxes = ex.item(image_id).boxes
    first = gr.update(choices=nav.box_choices(boxes), value=0 if boxes else None)
    return (*nav.first_region(boxes), first, None)


def on_box_choice(ex: Explorer, image_id: str, index: int | None) -> tuple[float, float, float, float]:
    boxes = ex.item(image_id).boxes
    if index is None or not 0 <= int(index) < len(boxes):
        raise gr.Error(f"no expert box {index!r} on {image_id}")
    return boxes[int(index)].box


def on_region_click(ex: Explorer, image_id: str, mode: str, pending, x0, y0, x1, y1, evt: gr.SelectData):
    """A click on the picture: an expert box, a point, or one corner of a box (see ``page.click_region``)."""
    item = ex.item(image_id)
    x, y = nav.click_point(evt.index, item.picture.size)
    region, pending = nav.click_region(mode, pending, item.boxes, x, y)
    boxes = [b.box for b in item.boxes]
    chosen = boxes.index(region) if region in boxes else None
    return (*(region or (x0, y0, x1, y1)), pending, chosen)


def build(page: Page) -> Layout:
    ex, h = page.explorer, page.header
    t = Layout()
    sim_in = [h.image_id, h.model, h.layer, *t.region, h.opacity, t.scale]
    page.views.add("similarity", api.bind(sim.similarity, ex), sim_in, [t.picture, t.data])
    page.views.add("image", api.bind(page_surface, ex), [h.image_id, *t.region, t.pending], [t.surface])
    page.image_steps.append((api.bind(on_image, ex), [h.image_id], [*t.region, t.box_choice, t.pending]))
    return t


def wire(page: Page, t: Layout) -> None:
    ex, h, v = page.explorer, page.header, page.views
    v.on([t.show.click], "similarity", "image")
    v.on([t.scale.input], t.scale)
    clicked = t.surface.select(
        api.bind(on_region_click, ex),
        [h.image_id, t.mode, t.pending, *t.region],
        [*t.region, t.pending, t.box_choice],
        **queue(False),
    )
    v.after(clicked.then, "similarity", "image")
    v.on_pick(t.box_choice, api.bind(on_box_choice, ex), [h.image_id, t.box_choice], t.region, "similarity", "image")
