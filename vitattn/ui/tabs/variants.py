"""The Variants tab (the study's Q2): a fine-tuned variant beside its frozen model on one image, and the delta
table over the store; its endpoints ``/variant_compare`` and ``/variant_table``."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from vitattn import render
from vitattn.metrics import METRIC_NAMES
from vitattn.ui.actions import variants as variants_view
from vitattn.ui.actions.common import RANDOM_WEIGHTS, all_models, deepest, info, nearest, warning
from vitattn.ui.data.catalog import FUSED
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell import api
from vitattn.ui.shell.components import table
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import FREE, LAST, PNG, VIEWS
from vitattn.ui.shell.wiring import listen

PICTURE = PNG

VARIANTS_INTRO = (
    "Does fine-tuning move attention toward what experts marked (the study's Q2)? Compare a fine-tuned variant with "
    "its frozen model (or any two models) on the image chosen above: both maps on one colour scale, the shift map "
    "B - A, and every metric with its delta, for the whole image or one box (pick it, or click it on the shift map)."
)


def _pair_controls(ex: Explorer, a: str, b: str, method: str | None, layer, head) -> tuple:
    """Valid method, layer and head of two models: what both have."""
    methods = variants_view.shared_methods(ex, a, b)
    note = "" if methods else f"{a} and {b} share no method: pick another pair."
    method = method if method in methods else (methods[0] if methods else None)
    if method is None:
        return note, [], None, [0], 0, [("all heads fused", FUSED)], FUSED
    layers = [v for v in info(ex, a).layers[method] if v in info(ex, b).layers[method]]
    if not layers:
        return f"{a} and {b} share no layer of {method}.", methods, method, [0], 0, [("all heads fused", FUSED)], FUSED
    layer = nearest(layers, layer, layers[-1])
    n = min(info(ex, a).heads[method], info(ex, b).heads[method])
    head_choices = [("all heads fused", FUSED), *((f"head {h}", h) for h in range(n))]
    head = int(head) if head is not None and 0 <= int(head) < n else FUSED
    return note, methods, method, layers, layer, head_choices, head


def build(page: Page) -> None:
    """Lays out the tab, its events and its endpoints."""
    ex, controls = page.explorer, page.header
    models = all_models(ex)
    a0, b0 = variants_view.default_pair(ex)
    _, methods0, method0, layers0, layer0, heads0, head0 = _pair_controls(ex, a0, b0, None, None, None)
    has_pairs = bool(variants_view.pairs(ex))
    image_id = controls.image_id
    with gr.Tab("Variants", id="variants", elem_id="variants-panel"):
        gr.Markdown(VARIANTS_INTRO)
        with gr.Row():
            model_a = gr.Dropdown(models, value=a0, label="A (e.g. frozen)")
            model_b = gr.Dropdown(models, value=b0, label="B (e.g. fine-tuned)")
            method = gr.Dropdown(methods0, value=method0, label="Method (both models)", **FREE)
            layer = gr.Slider(
                0,
                deepest(ex, models),
                value=layer0,
                step=1,
                label="Layer",
                elem_id="variant-layer",
                interactive=len(layers0) > 1,
            )
            head = gr.Dropdown(heads0, value=head0, label="Head", **FREE)
            box = gr.Dropdown([("whole image", -1)], value=-1, label="Metrics for", **FREE)
        pair_note = gr.Markdown(visible=False)
        with gr.Row():
            pair = gr.Image(label="A and B on one colour scale", elem_id="variant-pair", scale=2, **PICTURE)
            shift = gr.Image(
                label="Shift B - A (click a box to scope the metrics)", elem_id="variant-shift", scale=1, **PICTURE
            )
        deltas = table("Metrics of A and B and their delta", "variant-deltas", csv="variant-metrics")
        gr.Markdown("### Fine-tuned vs frozen over the store, per model and strategy")
        gr.Markdown(variants_view.NO_VARIANTS, visible=not has_pairs, elem_id="variants-note")
        with gr.Column(visible=has_pairs):
            with gr.Row():
                t_method = gr.Dropdown(methods0, value=method0, label="Method", **FREE)
                t_layer = gr.Dropdown(list(variants_view.LAYERS), value="last", label="Layer (store)")
                t_metric = gr.Dropdown(list(METRIC_NAMES), value="iou_90", label="Metric")
            summary = gr.Markdown(elem_id="variants-summary")
            store_table = table(
                "Delta table (click a row: compare that pair above)", "variants-table", csv="variant-deltas"
            )

    pair_inputs = [image_id, model_a, model_b, method, layer, head, box]
    pair_outputs = [pair_note, method, layer, head, box, pair, shift, deltas]

    def pair_view(image, a, b, meth, lay, hd, bx, scope_changed: bool = False):
        note, methods, meth, layers, lay, head_choices, hd = _pair_controls(ex, a, b, meth, lay, hd)
        scopes = variants_view.box_choices(ex, image)
        bx = int(bx) if bx is not None and int(bx) in [v for _, v in scopes] else -1
        updates = (
            gr.update(value=note, visible=bool(note)),
            gr.update(choices=methods, value=meth),
            gr.update(value=lay, interactive=len(layers) > 1),
            gr.update(choices=head_choices, value=hd),
            gr.update(choices=scopes, value=bx),
        )
        if meth is None:
            return (*updates, None, None, None)
        return (*updates, *variants_view.compare(ex, image, a, b, meth, lay, hd, bx))

    def on_shift(image, a, b, meth, lay, hd, bx, evt: gr.SelectData):
        item = ex.item(image)
        x, y = _click_on_shift(item.picture.size, evt.index, bool(warning(ex, a) or warning(ex, b)))
        return pair_view(image, a, b, meth, lay, hd, variants_view.box_at_click(ex, image, x, y))

    def on_table(meth, lay, metric):
        frame, text = variants_view.table(ex, meth, lay, metric, -1)
        return frame, text

    def on_row(image, frame: pd.DataFrame, lay, hd, bx, evt: gr.SelectData):
        row = frame.iloc[int(evt.index[0])]
        a, b = str(row["model"]), str(row["variant"])
        return (gr.update(value=a), gr.update(value=b), *pair_view(image, a, b, None, lay, hd, bx))

    # The header's image is read when this tab opens and with each of its controls; listening to the header's own
    # events would start a second event beside the Attention tab's on every header change (a race on its method).
    for trigger in (model_a.input, model_b.input, method.input, layer.input, head.input, box.input):
        listen(trigger, pair_view, pair_inputs, pair_outputs, **LAST)
    listen(shift.select, on_shift, pair_inputs, pair_outputs, **LAST)
    t_inputs, t_outputs = [t_method, t_layer, t_metric], [store_table, summary]
    for trigger in (t_method.input, t_layer.input, t_metric.input):
        listen(trigger, on_table, t_inputs, t_outputs, **LAST)
    row_inputs = [image_id, store_table, layer, head, box]
    listen(store_table.select, on_row, row_inputs, [model_a, model_b, *pair_outputs], **LAST)

    # Views of this tab (computed while it is open and when it opens): the pair follows the header's image.
    page.views.add("variant_pair", pair_view, pair_inputs, pair_outputs, tab="variants")
    if has_pairs:
        page.views.add("variant_table", on_table, t_inputs, t_outputs, tab="variants")


def _click_on_shift(size: tuple[int, int], index, warned: bool) -> tuple[float, float]:
    """A click on the shift picture as a normalized point of the image (the bands above the image are skipped)."""
    from PIL import Image

    from vitattn.render import banner, fit

    w, h = fit(Image.new("RGB", size), variants_view.SHIFT_SIDE).size
    top = banner(w, "shift").height + (render.text_band(w, RANDOM_WEIGHTS).height if warned else 0)
    x, y = float(index[0]), float(index[1]) - top
    return min(max(x / w, 0.0), 1.0), min(max(y / h, 0.0), 1.0)


def variant_compare(
    ex: Explorer,
    image_id: str,
    model_a: str,
    model_b: str,
    method: str,
    layer: int,
    head: int,
    box: int,
    opacity: float = 0.6,
):
    """Model A and model B (e.g. frozen and fine-tuned) on one image: both maps on one colour scale, the shift
    map B - A on a symmetric diverging scale, and every metric with its delta (whole image, or box ``box``)."""
    return variants_view.compare(ex, image_id, model_a, model_b, method, layer, head, box, opacity)


def variant_table(ex: Explorer, method: str, layer: str, metric: str):
    """Fine-tuned vs frozen per model and strategy: means, paired delta with a bootstrap interval, d_z, the
    Holm-corrected p-value, Enhance / Preserve / Destroy, and each variant's validation accuracy."""
    at_layer = int(layer) if isinstance(layer, str) and layer.strip().lstrip("-").isdigit() else layer
    return variants_view.table(ex, method, at_layer, metric, -1)


def endpoints(page: Page, a: api.Inputs | None = None) -> None:
    """``/variant_compare`` and ``/variant_table`` on hidden typed inputs."""
    ex = page.explorer
    models, ids = all_models(ex), ex.image_ids()
    image = api.free_choice("image_id", "an image id", ids, ids[0] if ids else None)
    model_a = api.free_choice("model_a", "model A (e.g. the frozen model)", models, models[0] if models else None)
    model_b = api.free_choice(
        "model_b", "model B (e.g. its fine-tuned variant)", models, models[-1] if models else None
    )
    method = api.text("method", "a method of the model, e.g. cls", "cls")
    layer = api.integer("layer", "layer (-1: the last)", -1)
    head = api.integer("head", "head (-1: all heads fused)", -1)
    box = api.integer("box", "an expert box index (-1: the whole image)", -1)
    opacity = gr.Number(0.6, label="opacity: weight of the map colours (0..1)", **api.HIDDEN)
    at = api.text("layer", "'last', 'best' or a layer number", "last")
    metric = api.free_choice("metric", "a metric column; mse, kl, emd: lower is better", METRIC_NAMES, "iou_90")
    pair_in = [image, model_a, model_b, method, layer, head, box, opacity]
    pair_out = [api.png("pair"), api.png("shift"), api.table("deltas")]
    api.add("variant_compare", api.bind(variant_compare, ex), pair_in, pair_out, VIEWS)
    table_out = [api.table("deltas"), gr.Markdown(label="summary", visible=False)]
    api.add("variant_table", api.bind(variant_table, ex), [method, at, metric], table_out, VIEWS)


def wire(page: Page, layout: None) -> None:
    """Nothing left to wire: ``build`` wires the tab's events (closures over its components)."""
