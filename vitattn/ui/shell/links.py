"""A link to the Attention tab: the updates that open one (image, model, method, layer, head) there."""

from __future__ import annotations

import gradio as gr

from vitattn.ui.actions.common import attention_link
from vitattn.ui.actions.page import controls as page_controls
from vitattn.ui.data.explorer import Explorer

ATTENTION_TAB = "attention"


def link_updates(ex: Explorer, image_id, model: str, method: str, layer: int, head: int) -> tuple:
    """Updates of (tabs, image_id, model, method, layer, head) that open one head's map in the Attention tab."""
    link = attention_link(ex, image_id, model, method, layer, head)
    c = page_controls(ex.info(link.model), link.method, link.layer, link.head)
    return (
        gr.Tabs(selected=ATTENTION_TAB),
        gr.skip() if link.image_id is None else gr.update(value=link.image_id),
        gr.update(value=link.model),
        gr.update(choices=list(c.methods), value=c.method),
        gr.update(minimum=c.layers[0], maximum=c.layers[-1], value=c.layer, interactive=len(c.layers) > 1),
        gr.update(choices=list(c.heads), value=c.head, interactive=len(c.heads) > 1),
    )
