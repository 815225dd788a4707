"""The Gallery tab: thumbnails of the images, searchable by id or box label and filterable by metadata; a click
opens the image in the Attention tab."""

from __future__ import annotations

import gradio as gr

from vitattn.ui.actions import page as nav
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell import api
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import queue
from vitattn.ui.shell.wiring import once_per_pick


class Layout:
    def __init__(self, ex: Explorer) -> None:
        ids = ex.image_ids()
        fields = nav.filters(ex) if len(ids) <= nav.GALLERY_SIZE * 20 else {}
        with gr.Tab("Gallery", id="gallery"):
            with gr.Row():
                self.search = gr.Textbox(label="Search by id or box label", elem_id="search", scale=2)
                self.field = gr.Dropdown(["", *fields], value="", label="Filter by", elem_id="field")
                self.value = gr.Dropdown([""], value="", label="Value", elem_id="field-value", allow_custom_value=True)
            self.gallery = gr.Gallery(
                label="Images (click one to open it)", columns=6, height=560, allow_preview=False, elem_id="gallery"
            )


def on_gallery(ex: Explorer, evt: gr.SelectData) -> tuple[str, dict]:
    """A thumbnail opens its image on the Attention tab."""
    return evt.value["caption"], gr.Tabs(selected="attention")


def on_filter(ex: Explorer, search: str, field: str, value: str) -> list:
    return nav.gallery(ex, search=search, field=field, value=value)


def on_field(ex: Explorer, field: str) -> dict:
    return gr.update(choices=["", *nav.filters(ex).get(field, [])], value="")


def page_gallery(ex: Explorer) -> list:
    return nav.gallery(ex)


def build(page: Page) -> Layout:
    return Layout(page.explorer)


def wire(page: Page, t: Layout) -> None:
    ex, bind = page.explorer, api.bind
    t.gallery.select(bind(on_gallery, ex), None, [page.header.image_id, page.tabs], **queue(False))  # change shows it
    filtered = once_per_pick(bind(on_filter, ex), 3, 1)  # the value is a dropdown: one filter per pick
    gr.on([t.search.submit, t.value.input], filtered, [t.search, t.field, t.value], t.gallery, **queue(False))
    t.field.input(once_per_pick(bind(on_field, ex), 1, 1), t.field, t.value, **queue(False))
    page.loads.append((bind(page_gallery, ex), None, t.gallery))


def endpoints(page: Page, a: api.Inputs) -> None:
    """None: the gallery is a way to pick an image; ``/info`` lists them."""
