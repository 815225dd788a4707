"""The page: ``build_demo(explorer)`` lays out the header and every tab, then wires them (two phases, so a link
from one tab to another is wired after both exist), and adds the public API.

    from vitattn.ui import AppConfig, Explorer
    from vitattn.ui.demo import build_demo
    demo = build_demo(Explorer.open(AppConfig.from_env()))
    demo.queue(); demo.launch()
"""

from __future__ import annotations

import gradio as gr

from vitattn.ui.data.config import TEMP_FILES
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell import api, header
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import LAST, queue
from vitattn.ui.tabs import (
    attention,
    compare,
    features,
    gallery,
    heads,
    iou,
    query,
    similarity,
    text,
    trust,
    upload,
    variants,
)

TITLE = "vitattn · where do vision models look?"
# the tab bar's order; Text after Your image, whose boxes (page.user_boxes) it reads
TABS = (attention, similarity, query, compare, iou, upload, text, gallery, heads, variants, features, trust)


def build_demo(explorer: Explorer) -> gr.Blocks:
    """The whole page around ``explorer``; nothing is computed until a browser loads it."""
    ex = explorer
    with gr.Blocks(title=TITLE, delete_cache=TEMP_FILES) as demo:
        h, playback = header.build(ex)
        page = Page(ex, h)
        page.views.open_tab = gr.State(attention.ID)  # the tab shown: views bound to a tab run while it is open
        with gr.Tabs() as tabs:
            page.tabs = tabs
            built = [(tab, tab.build(page)) for tab in TABS]
        stray = [type(c).__name__ for c in tabs.children if not isinstance(c, gr.Tab)]
        if stray:  # Gradio numbers tabs by their place among the children: the tab bar would show one twice
            raise ValueError(f"components made between tabs (make them inside a tab): {stray}")
        page.views.add("status", api.bind(header.page_status, ex), None, [h.status], always=True)
        # export files describe the view they came from: any control of that view empties them
        page.views.add("files", _no_files(len(page.files)), [*h.view, h.opacity, page.user_boxes], page.files)
        with gr.Column(visible=False):  # the public API: hidden typed inputs, named outputs, one endpoint per action
            inputs = api.Inputs(ex, ex.models(), ex.extent()[1])
            for tab, _ in built:
                tab.endpoints(page, inputs)
        for tab, layout in built:
            tab.wire(page, layout)
        for tab in (c for c in tabs.children if isinstance(c, gr.Tab)):
            page.views.on_open(tab, tab.id)
        _wire_header(demo, page, playback)
    return demo


def _wire_header(demo: gr.Blocks, page: Page, playback: header.Playback) -> None:
    """The header's events: each control recomputes every view that reads it (``page.views``)."""
    ex, h, v, bind = page.explorer, page.header, page.views, api.bind
    v.on([h.layer.input], h.layer)  # input: a drag, a click and the keyboard's arrows (release misses the keys)
    v.on([h.head.input], h.head)  # a dropdown: input hears the keyboard (once per pick: registry)
    v.on([h.opacity.input], h.opacity)
    controls = [h.model, h.method, h.layer, h.head]
    steered = [h.method, h.layer, h.head, h.explain]
    h.shown_model = gr.State(ex.models()[0])
    # A pick (mouse or keyboard) sets the controls it steers, then every view (once per pick: ``Registry.on_pick``).
    # No preprocessing: a stale method of the model before reaches on_model, which fixes it, instead of Gradio
    # refusing it against the new choices. A model pick keeps the layer's relative depth (resnet50's last stage -> a
    # ViT's last block).
    model_in, model_out = [*controls, h.shown_model], [*steered, h.shown_model]
    pick = bind(header.on_model_pick, ex)
    v.on_pick(h.model, pick, model_in, model_out, *controls, h.explain, header=True, preprocess=False)
    v.on_pick(
        h.method, bind(header.on_model, ex), controls, steered, *controls, h.explain, header=True, preprocess=False
    )
    for how, button in playback.buttons.items():
        v.after(
            button.click(bind(header.on_step, ex), [*controls[:3], gr.State(how)], h.layer, **queue(False)).then,
            h.layer,
        )
    started = playback.play.click(
        bind(header.on_play, ex),
        [*controls[:3], playback.playing],
        [playback.playing, playback.timer, playback.play, h.layer],
        **queue(False),
    )
    v.after(started.then, h.layer)
    ticked = playback.timer.tick(
        bind(header.on_tick, ex),
        [*controls[:3], playback.playing],
        [h.layer, playback.playing, playback.timer, playback.play],
        **queue(False),
    )
    v.after(ticked.then, h.layer)

    # A new image: its resets (boxes, region, class), then every view that reads the image, in one request (the
    # picture comes first), on the image's "change" event: once per new value, picked or typed (an upload's id).
    # A change made by a step that shows the image itself finds it shown already and does nothing.
    step = _image_step(page)
    names = v.names([h.image_id]) + tuple(n for n in ("status",) if n not in v.names([h.image_id]))
    v.start(h.image_id.change, names, step=(step[0], [h.image_id, h.shown_image], step[2]), options=LAST)
    for after in page.links:  # a link set the header (maybe the image): its resets first, then every view
        refreshed = after(step[0], [h.image_id, gr.State(None)], step[2], **queue(False))
        refreshed.then(lambda m: m, h.model, h.shown_model, **queue(False))  # the model a link showed
        v.after(refreshed.then, h.image_id, *controls, h.explain, header=True)

    # On load: status line, gallery, valid controls, and every view of the first image.
    for fn, inputs, outputs in page.loads:
        demo.load(fn, inputs, outputs, **queue(False))
    loaded = demo.load(bind(header.on_model, ex), controls, steered, **queue(False))
    loaded = loaded.then(step[0], [h.image_id, gr.State(None)], step[2], **queue(False))
    v.after(loaded.then, h.image_id, *controls, h.explain, header=True)
    for names in page.on_load:
        v.after(demo.load, *names)


def _image_step(page: Page) -> tuple:
    """One step that runs every tab's resets for a new image and records it as shown (None: shown already)."""
    h = page.header
    steps = page.image_steps
    outputs = [o for _, _, outs in steps for o in outs] + [h.shown_image]

    def on_image(image_id: str, shown: str | None):
        if image_id == shown:
            return None
        out: list = []
        for fn, _, outs in steps:
            result = fn(image_id)
            out += [result] if len(outs) == 1 else list(result)
        return (*out, image_id)

    return on_image, [h.image_id, h.shown_image], outputs


def _no_files(n: int):
    """A view that empties ``n`` export file lists."""

    def no_files(*_):
        return None if n == 1 else (None,) * n

    return no_files
