"""The Compare tab: two maps of one image side by side on one colour scale, the difference B - A, their metrics;
its endpoint ``/compare_maps``.

Side A and side B each choose a model, a method, a layer (named: "layer 7", a ResNet's "stage 3 (layer3)") and a
head (disabled where the method fuses heads). When the tab opens, side A takes the header's values and side B a
useful contrast (``actions.compare.contrast``: one layer earlier), until a person changes B or swaps the sides; the
header's image and opacity are read then and with every control. Each control here starts exactly one private
event, whose handler computes everything (``shell/wiring.py``); the actions are in ``actions/compare.py``.
"""

from __future__ import annotations

import gradio as gr

from vitattn.ui.actions import compare as compare_view
from vitattn.ui.actions.common import all_models
from vitattn.ui.actions.compare import SCALES, Side
from vitattn.ui.data.catalog import FUSED
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell import api
from vitattn.ui.shell.components import table as read_only_table
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import FREE, LAST, OPACITY, PNG as PICTURE, VIEWS
from vitattn.ui.shell.wiring import listen

INTRO = (
    "Two maps of the image chosen above, side by side on **one colour scale**: two models, two methods, or two "
    "layers or heads of one model. Side A starts from the controls above when this tab opens, side B one layer "
    "earlier. Right: the **difference B - A** on a symmetric diverging scale (red: B higher, blue: B lower). Maps on "
    "different grids are resampled bilinearly to the finer grid. Below: every metric of A and B at the image's expert "
    "boxes, and B - A (mse, kl, emd: lower is better)."
)


def _side_updates(ex: Explorer, side: Side) -> tuple:
    """Updates of one side's (model, method, layer, head) dropdowns showing ``side`` and its valid choices."""
    c = compare_view.side_controls(ex, side.model, side.method, side.layer, side.head)
    fused = len(c.heads) == 1  # the method fuses heads (rollout, gae, gradcam) or the model has none
    return (
        gr.update(value=side.model),
        gr.update(choices=list(c.methods), value=c.method),
        gr.update(
            choices=compare_view.layer_choices(ex, side.model, c.layers), value=c.layer, interactive=len(c.layers) > 1
        ),
        gr.update(choices=_heads(c), value=c.head, interactive=not fused),
    )


def _heads(c) -> list[tuple[str, int]]:
    """Head choices; where the method fuses heads, the one choice says so."""
    return [("all heads fused (this method)", FUSED)] if len(c.heads) == 1 else list(c.heads)


def _valid(ex: Explorer, model, method, layer, head) -> Side:
    """A side made valid for its model (a new model: its first method, last layer, fused heads)."""
    models = all_models(ex)
    model = model if model in models else models[0]
    c = compare_view.side_controls(ex, model, method, layer, head)
    return Side(model, c.method, c.layer, c.head)


def build(page: Page) -> None:
    """Adds the Compare tab and its endpoint ``/compare_maps``; call inside the app's open ``gr.Tabs()``.

    Args:
        explorer: the app's data.
        controls: the app's components ``image_id``, ``model``, ``method``, ``layer``, ``head`` (read when the tab
            opens) and optionally ``opacity`` (read with every view).
    """
    ex, h = page.explorer, page.header
    models = all_models(ex)
    start_a = _valid(ex, models[0], None, None, None)
    start_b = compare_view.contrast(ex, start_a)
    opacity = h.opacity

    def side(name: str, start: Side) -> list:
        c = compare_view.side_controls(ex, start.model, start.method, start.layer, start.head)
        with gr.Column(variant="panel", elem_id=f"compare-{name.lower()}"):
            gr.Markdown(f"**{name}**")
            with gr.Row():
                model = gr.Dropdown(models, value=start.model, label=f"{name} model")
                method = gr.Dropdown(list(c.methods), value=c.method, label=f"{name} method", **FREE)
                layer = gr.Dropdown(
                    compare_view.layer_choices(ex, start.model, c.layers),
                    value=c.layer,
                    label=f"{name} layer",
                    interactive=len(c.layers) > 1,
                    **FREE,
                )
                head = gr.Dropdown(_heads(c), value=c.head, label=f"{name} head", interactive=len(c.heads) > 1, **FREE)
        return [model, method, layer, head]

    with gr.Tab("Compare", id="compare", elem_id="compare-panel") as tab:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=True):
            a_controls = side("A", start_a)
            b_controls = side("B", start_b)
        with gr.Row(equal_height=True):
            scale = gr.Radio(list(SCALES), value=SCALES[0], label="Colour scale and difference of", scale=3)
            swap = gr.Button("Swap A and B", scale=1, elem_id="compare-swap")
        picture = gr.Image(label="A and B, and B - A", elem_id="compare-picture", **PICTURE)
        table = read_only_table(
            "Metrics at the image's expert boxes: A, B and B - A",
            "compare-metrics",
            csv="compare-metrics",
            max_height=640,  # every metric without scrolling
        )
        chosen = gr.State(False)  # whether a person chose side B (then opening the tab keeps it)

    image_id = h.image_id
    header = [h.model, h.method, h.layer, h.head]
    outputs = [*a_controls, *b_controls, chosen, picture, table]

    def view(image, a: Side, b: Side, scale_value, opacity_value, b_chosen: bool) -> tuple:
        shown, metrics, _ = compare_view.compare_maps(
            ex,
            image,
            a.model,
            a.method,
            a.layer,
            a.head,
            b.model,
            b.method,
            b.layer,
            b.head,
            scale_value,
            float(OPACITY if opacity_value is None else opacity_value),
        )
        return (*_side_updates(ex, a), *_side_updates(ex, b), b_chosen, shown, metrics)

    def on_side(image, am, amt, al, ah, bm, bmt, bl, bh, scale_value, opacity_value, b_chosen, touched_b=False):
        a, b = _valid(ex, am, amt, al, ah), _valid(ex, bm, bmt, bl, bh)
        return view(image, a, b, scale_value, opacity_value, bool(b_chosen) or touched_b)

    def on_b(*values):
        return on_side(*values, touched_b=True)

    def on_swap(image, am, amt, al, ah, bm, bmt, bl, bh, scale_value, opacity_value, b_chosen):
        a, b = _valid(ex, am, amt, al, ah), _valid(ex, bm, bmt, bl, bh)
        return view(image, b, a, scale_value, opacity_value, True)

    def on_open(image, hm, hmt, hl, hh, bm, bmt, bl, bh, scale_value, opacity_value, b_chosen):
        a = _valid(ex, hm, hmt, hl, hh)
        b = _valid(ex, bm, bmt, bl, bh) if b_chosen else compare_view.contrast(ex, a)
        return view(image, a, b, scale_value, opacity_value, bool(b_chosen))

    inputs = [image_id, *a_controls, *b_controls, scale, opacity, chosen]
    # A dropdown's ``input`` hears the mouse and the keyboard (``select`` misses a pick made with the keyboard); it is
    # sent twice per mouse pick in Gradio 6.31, and ``listen`` computes it once (``wiring.once_per_pick``).
    for component in a_controls:
        listen(component.input, on_side, inputs, outputs, **LAST)
    listen(scale.input, on_side, inputs, outputs, **LAST)
    for component in b_controls:
        listen(component.input, on_b, inputs, outputs, **LAST)
    listen(swap.click, on_swap, inputs, outputs, **LAST)
    listen(tab.select, on_open, [image_id, *header, *b_controls, scale, opacity, chosen], outputs, **LAST)


def endpoints(page: Page, a=None) -> None:
    """``/compare_maps`` on hidden typed inputs (``view_api``: int layers and heads, the scale's choices)."""
    ex = page.explorer
    models, ids = all_models(ex), ex.image_ids()
    inputs = [api.choice("image_id", "an image id from /info", ids, ids[0] if ids else None)]
    for name in ("a", "b"):
        inputs += [
            api.choice(f"model_{name}", f"model of side {name.upper()} (see /info)", models),
            api.text(f"method_{name}", f"a method of model_{name}, e.g. cls"),
            api.integer(f"layer_{name}", "0-based layer (-1: the method's last; ResNet: stage - 1)", -1),
            api.integer(f"head_{name}", "head number, or -1 for all heads fused", FUSED),
        ]
    inputs.append(api.choice("scale", "raw values on one scale, or each map min-max normalised", SCALES, SCALES[0]))

    outputs = [api.picture("picture"), api.table("metrics"), api.data("data")]
    # the action itself (its signature and docstring: the endpoint's parameters and description); opacity keeps its
    # default, as before
    api.endpoint("compare_maps", api.bind(compare_view.compare_maps, ex), inputs, outputs, **VIEWS)


def wire(page: Page, layout: None) -> None:
    """Nothing left to wire: ``build`` wires the tab's events (closures over its components)."""
