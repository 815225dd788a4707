"""The Text tab: where a language-supervised model (clip, siglip, siglip2) sees a prompt, and how well that matches
the boxes of that label; the endpoints ``/text_map`` and ``/text_metrics``.

Type one or more prompts (commas or new lines between them) or pick a box label of the image: every text method's
map (``vitattn.text``) of each prompt side by side on one colour scale, the boxes of that label outlined, and every
metric of each map against those boxes beside the baselines. Image, model and opacity are the header's: the tab's
view follows them while the tab is open and when it opens (a tab-bound view, ``shell/registry.py``). On an upload
the boxes are yours (drawn or typed in the Your image tab); without boxes the maps come with one line instead of
metrics. A model without a text tower gets one line naming the models with one. The actions are in
``actions/text.py``, the maps' sources (store or live) in ``data/text.py``.
"""

from __future__ import annotations

import gradio as gr

from vitattn.text.specs import TEXT_METHODS
from vitattn.ui.actions import text as text_view
from vitattn.ui.data.catalog import parse_boxes
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.data.text import TEMPLATES
from vitattn.ui.shell import api
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import LIVE, PNG

ID = "text"
AS_STORED = "as stored"  # the store's templates for its labels (else the app's default, imagenet80)
TEMPLATE_CHOICES = (AS_STORED, *TEMPLATES)
INTRO = (
    "**Where does the model see this?** Type prompts (commas between them) and press Enter, or pick a box label of "
    "the image. Each text method's map at the last layer, one row per prompt, all on **one colour scale**, with the "
    "boxes of that label outlined; below, every metric of each map against those boxes beside the baselines. "
    "Image and model are the ones chosen above (text models: clip, siglip, siglip2)."
)


class Layout:
    def __init__(self) -> None:
        with gr.Tab("Text", id=ID, elem_id="text-panel") as self.tab:
            gr.Markdown(INTRO)
            with gr.Row(equal_height=True):
                self.label = gr.Dropdown([], label="Box label", elem_id="text-label", scale=1)
                self.prompts = gr.Textbox(
                    label="Prompts (commas between them; Enter shows them)",
                    elem_id="text-prompts",
                    max_lines=1,
                    scale=2,
                )
                self.templates = gr.Dropdown(
                    list(TEMPLATE_CHOICES), value=AS_STORED, label="Prompt templates", elem_id="text-templates", scale=1
                )
            self.methods = gr.CheckboxGroup(
                list(TEXT_METHODS), value=list(TEXT_METHODS), label="Text methods", elem_id="text-methods"
            )
            self.note = gr.Markdown(visible=False, elem_id="text-note")
            self.picture = gr.Image(label="Text maps", elem_id="text-maps", **PNG)
            self.empty = gr.Markdown(visible=False, elem_id="text-empty")
            self.table = gr.Dataframe(
                label="Metrics of each map against the boxes of its label, baselines beside (mse, kl, emd: lower is "
                "better)",
                elem_id="text-metrics",
                interactive=False,
                wrap=True,
            )
            with gr.Accordion("Text maps (numbers)", open=False):
                self.data = gr.JSON(label="text maps")


def _templates(choice: str | None) -> str:
    return "" if choice in (None, AS_STORED) else choice


def page_text(ex: Explorer, image_id, model, prompts, methods, templates, opacity, boxes) -> tuple:
    """The tab's view: the line for a model without a text tower, else the maps, the metrics and the empty state."""
    hidden = gr.update(visible=False)
    if not text_view.has_text_tower(ex, model):
        note = gr.update(value=text_view.no_text(ex, model), visible=True)
        return note, hidden, hidden, gr.update(value=None, visible=False), None
    mine = boxes if ex.item(image_id).origin == "upload" and _parses(boxes) else ""
    if not (prompts or "").strip():
        note = gr.update(value="Type a prompt or pick a box label of the image.", visible=True)
        return note, gr.update(value=None, visible=True), hidden, gr.update(value=None, visible=False), None
    methods = ",".join(methods or ()) or text_view.ALL
    how = _templates(templates)
    picture, data = text_view.text_map(ex, image_id, model, prompts, methods, how, opacity, mine)
    empty = text_view.empty_state(ex, image_id, prompts, mine)
    table = None if empty else text_view.text_metrics(ex, image_id, model, prompts, methods, how, mine)
    return (
        gr.update(visible=False),
        gr.update(value=picture, visible=True),
        gr.update(value=empty, visible=bool(empty)),
        gr.update(value=table, visible=not empty),
        data,
    )


def _parses(boxes: str | None) -> bool:
    try:
        parse_boxes(boxes or "")
    except gr.Error:
        return False
    return True


def on_text_image(ex: Explorer, image_id: str) -> tuple:
    """A new image: its box labels to pick from; the prompt starts at the first one."""
    labels = text_view.labels(ex, image_id)
    first = labels[0] if labels else None
    return gr.update(choices=labels, value=first), first or ""


def on_text_label(ex: Explorer, label: str | None) -> str:
    """A picked box label becomes the prompt."""
    return label or ""


def endpoints(page: Page, a: api.Inputs) -> None:
    """The public endpoints ``/text_map`` and ``/text_metrics``."""
    ex = page.explorer
    prompts = api.text("prompts", "one or more prompts, separated by commas (a box label is scored)")
    methods = api.text("methods", f"all, or comma-separated text methods: {', '.join(TEXT_METHODS)}", "all")
    templates = api.free_choice("templates", "imagenet80, none (as typed), or empty: the store's", ["", *TEMPLATES], "")
    boxes = api.text("boxes", "your boxes, x0 y0 x1 y1 [label] per line; empty: the image's", "")
    shown = [a.image, a.model, prompts, methods, templates]
    for name, fn, inputs, outputs in (
        ("text_map", text_view.text_map, [*shown[:5], a.opacity, boxes], [api.png("picture"), api.data("data")]),
        ("text_metrics", text_view.text_metrics, [*shown, boxes], [api.table("metrics")]),
    ):
        api.endpoint(name, api.bind(fn, ex), inputs, outputs, api_description=api.description(fn), **LIVE)


def build(page: Page) -> Layout:
    ex, h = page.explorer, page.header
    t = Layout()
    inputs = [h.image_id, h.model, t.prompts, t.methods, t.templates, h.opacity, page.user_boxes]
    outputs = [t.note, t.picture, t.empty, t.table, t.data]
    page.views.add("text", api.bind(page_text, ex), inputs, outputs, live=True, tab=ID)
    page.image_steps.append((api.bind(on_text_image, ex), [h.image_id], [t.label, t.prompts]))
    return t


def wire(page: Page, t: Layout) -> None:
    ex, v = page.explorer, page.views
    v.on([t.prompts.submit, t.methods.input, t.templates.input], "text")
    v.on_pick(t.label, api.bind(on_text_label, ex), [t.label], [t.prompts], "text")
