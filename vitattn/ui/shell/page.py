"""The page object every tab is built with: the Explorer, the header's controls and the tabs, typed.

A tab module's ``build(page)`` lays its tab out and registers its views (``page.views``); its ``wire(page)`` adds
the events of its own controls. A tab that sets the header's controls (a link that opens a head in the Attention
tab) passes its event to ``page.follow``: after it, every view that reads a header control is recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gradio as gr

from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell.registry import Registry


@dataclass
class Header:
    """The controls above the tabs: every tab that shows "the image" or "the model" reads these."""

    image_id: gr.Dropdown
    shown_image: gr.State  # the image the views show (a change to the same id does nothing)
    model: gr.Dropdown
    method: gr.Dropdown
    layer: gr.Slider
    head: gr.Dropdown
    opacity: gr.Slider
    status: gr.Markdown
    explain: gr.Dropdown | None = None  # the class a gradient method explains (set by the Attention tab)
    shown_model: gr.State | None = None  # the model whose layers the layer slider shows (a pick keeps the depth)

    @property
    def view(self) -> list:
        """(image, model, method, layer, head): what a map is of."""
        return [self.image_id, self.model, self.method, self.layer, self.head]


@dataclass
class Page:
    """What a tab is built with."""

    explorer: Explorer
    header: Header
    tabs: gr.Tabs | None = None
    views: Registry = field(default_factory=Registry)
    links: list[Callable] = field(default_factory=list)  # ``.success`` of events that set the header's controls
    image_steps: list[tuple] = field(default_factory=list)  # (fn(image_id), inputs, outputs): a new image's resets
    on_load: list[tuple] = field(default_factory=list)  # view names computed when the page loads
    loads: list[tuple] = field(default_factory=list)  # (fn, inputs, outputs) run when the page loads
    user_boxes: gr.Textbox | None = None  # the boxes drawn on "Your image" (x0 y0 x1 y1 [label] per line)
    files: list = field(default_factory=list)  # export file lists, emptied when the view they exported changes

    def follow(self, event) -> None:
        """After ``event`` (which set the header's controls and maybe the image), every view follows."""
        self.links.append(event.success)

    @property
    def link_outputs(self) -> list:
        """What a link to the Attention tab sets: (tabs, image, model, method, layer, head)."""
        h = self.header
        return [self.tabs, h.image_id, h.model, h.method, h.layer, h.head]
