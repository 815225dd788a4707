"""The header above the tabs (image, model, method, layer with playback, head, opacity) and its page steps.

Its controls are read by most tabs' views; which views a header change recomputes comes from the view registry
(``registry.py``): every view that reads the changed control. The steps here keep the controls valid (a method the
model has, a layer the method has) and play the layers.
"""

from __future__ import annotations

import gradio as gr

from vitattn.ui.actions import page as nav, views
from vitattn.ui.data.catalog import FLOW_COST
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell.page import Header
from vitattn.ui.shell.presets import OPACITY

INTRO = "## Where do vision models look, and do they look where experts do?"
PLAY, PAUSE = "play", "pause"
PLAY_SECONDS = 1.2  # layer playback: one layer per tick
STEPS = ("first", "previous", "next", "last")
# Keyboard stepping: arrow keys (or , and .) step the layer, Home/End jump to the first/last layer, p plays or pauses;
# not while typing in a field (a focused slider keeps its own arrow keys).
KEYS = """() => {
  const keys = {ArrowLeft: 'layer-previous', ',': 'layer-previous', ArrowRight: 'layer-next', '.': 'layer-next',
                Home: 'layer-first', End: 'layer-last', p: 'layer-play'};
  document.addEventListener('keydown', (e) => {
    const t = e.target, tag = (t && t.tagName || '').toLowerCase();
    if (e.altKey || e.ctrlKey || e.metaKey || tag === 'input' || tag === 'textarea' || tag === 'select'
        || (t && t.isContentEditable) || !(e.key in keys)) return;
    const button = document.getElementById(keys[e.key]);
    if (!button) return;
    e.preventDefault();
    button.click();
  });
}"""


class Playback:
    """The playback buttons, the play/pause state and its timer."""

    def __init__(self) -> None:
        with gr.Row(elem_id="playback"):  # first, previous, play/pause, next, last
            self.buttons = {"first": gr.Button("|◀", size="sm", min_width=30, elem_id="layer-first")}
            self.buttons["previous"] = gr.Button("◀", size="sm", min_width=30, elem_id="layer-previous")
            self.play = gr.Button(PLAY, size="sm", min_width=50, elem_id="layer-play")
            self.buttons["next"] = gr.Button("▶", size="sm", min_width=30, elem_id="layer-next")
            self.buttons["last"] = gr.Button("▶|", size="sm", min_width=30, elem_id="layer-last")
        self.playing, self.timer = gr.State(False), gr.Timer(PLAY_SECONDS, active=False)


def build(ex: Explorer) -> tuple[Header, Playback]:
    """The intro, the status line and the header's controls, at the first image and model."""
    ids, models = ex.image_ids(), ex.models()
    start = nav.controls(ex.info(models[0]), None, None, None)
    deepest = ex.extent()[0] - 1  # one range for every model (Gradio checks a value against the built range)
    with gr.Row(equal_height=True):
        gr.Markdown(INTRO)
    status = gr.Markdown(elem_id="status")
    with gr.Row(equal_height=True, elem_id="top-controls"):
        image_id = gr.Dropdown(ids, value=ids[0], label="Image", allow_custom_value=True, scale=2, elem_id="image-id")
        shown = gr.State(ids[0])
        model = gr.Dropdown(models, value=models[0], label="Model", elem_id="model")
        method = gr.Dropdown(list(start.methods), value=start.method, label="Method", elem_id="method")
        with gr.Column(scale=2, min_width=250, elem_id="layer-box"):
            info = "play or step; keys ← → Home End, p plays"
            layer = gr.Slider(0, deepest, value=start.layer, step=1, label="Layer", info=info, elem_id="layer")
            playback = Playback()
        head = gr.Dropdown(list(start.heads), value=start.head, label="Head", elem_id="head")
        opacity = gr.Slider(0, 1, value=OPACITY, step=0.05, label="Opacity", elem_id="opacity")
    return Header(image_id, shown, model, method, layer, head, opacity, status), playback


def on_model(ex: Explorer, model: str, method: str, layer: float, head: int) -> tuple:
    """Keeps method, layer and head valid for the chosen model or method; the head control is off where the
    method fuses heads by definition (rollout, gradcam)."""
    info = ex.info(model)
    c = nav.controls(info, method, layer, head)
    return (
        gr.update(choices=list(c.methods), value=c.method, info=FLOW_COST if c.method == "flow" else ""),
        gr.update(  # one layer only (pool): the whole range shown, the slider off (Gradio refuses minimum == maximum)
            minimum=c.layers[0] if len(c.layers) > 1 else 0,
            maximum=c.layers[-1] if c.layers[-1] > 0 else 1,
            value=c.layer,
            interactive=len(c.layers) > 1,
            label=nav.layer_label(info, c.layers),
        ),
        gr.update(choices=list(c.heads), value=c.head, interactive=len(c.heads) > 1),
        gr.update(visible=views.target_applies(ex, model, c.method)),
    )


def on_model_pick(ex: Explorer, model: str, method: str, layer: float, head: int, shown: str | None) -> tuple:
    """``on_model`` for a model picked in the header: the layer keeps its relative depth (``page.same_depth``), not
    its index; and the model now shown."""
    if shown and shown != model and shown in ex.models():
        c = nav.controls(ex.info(model), method, None, None)
        layer = nav.same_depth(ex.info(shown), layer, ex.info(model), c.method)
    return (*on_model(ex, model, method, layer, head), model)


def open_view(ex: Explorer, model: str, method: str, layer: int, head: int) -> tuple:
    """Updates of (tabs, model, method, layer, head, class picker) that show one view in the Attention tab."""
    return gr.Tabs(selected="attention"), gr.update(value=model), *on_model(ex, model, method, layer, head)


def on_step(ex: Explorer, model: str, method: str, layer: float, how: str) -> dict:
    """A playback button (or its key): the method's first, previous, next or last layer."""
    layers = nav.controls(ex.info(model), method, layer, None).layers
    return gr.update(value=nav.step_layer(layers, layer, how))


def on_play(ex: Explorer, model: str, method: str, layer: float, playing: bool) -> tuple:
    """Play (from the first layer when at the last) or pause: the timer steps one layer per tick."""
    layers = nav.controls(ex.info(model), method, layer, None).layers
    if playing or len(layers) < 2:
        return False, gr.Timer(active=False), gr.update(value=PLAY), gr.skip()
    start = gr.update(value=layers[0]) if int(layer) >= layers[-1] else gr.skip()
    return True, gr.Timer(active=True), gr.update(value=PAUSE), start


def on_tick(ex: Explorer, model: str, method: str, layer: float, playing: bool) -> tuple:
    """One playback step; playback stops at the last layer."""
    layers = nav.controls(ex.info(model), method, layer, None).layers
    if not playing:
        return gr.skip(), False, gr.Timer(active=False), gr.update(value=PLAY)
    after = nav.step_layer(layers, layer, "next")
    if after == layers[-1]:
        return gr.update(value=after), False, gr.Timer(active=False), gr.update(value=PLAY)
    return gr.update(value=after), True, gr.skip(), gr.skip()


def page_status(ex: Explorer) -> str:
    """The status line: store, mode, problems found while serving (shown without a reload)."""
    return nav.status(ex)
