"""The Heads tab (the study's Q3): which single heads agree with the experts, on which feature types; its
endpoints ``/head_ranking``, ``/head_matrix``, ``/head_exemplars``."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from vitattn.metrics import METRIC_NAMES
from vitattn.ui.actions import heads
from vitattn.ui.actions.common import all_models, deepest, info, nearest
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell import api
from vitattn.ui.shell.components import table
from vitattn.ui.shell.links import link_updates
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import FREE, LAST, PNG, VIEWS
from vitattn.ui.shell.wiring import listen, skips

PICTURE = PNG

HEADS_INTRO = (
    "Which single heads agree with the experts, and on which feature types (the study's Q3)? The **ranking** orders "
    "every head by its mean rank over the images; the **heat table** gives each head's mean IoU per feature type "
    "(box label) with the number of boxes, the best head of each type outlined; **exemplars** are the images where "
    "a head scores best on a type. Click a ranking row or an exemplar to open that head in the Attention tab."
)


def build(page: Page) -> None:
    """Lays out the tab, its events and its endpoints."""
    ex = page.explorer
    models = heads.head_models(ex)
    start = heads.choices(ex, models[0] if models else "", None, features=False)  # filled when the tab opens
    with gr.Tab("Heads", id="heads", elem_id="heads-panel") as tab:
        gr.Markdown(HEADS_INTRO)
        note = gr.Markdown(start.note, visible=bool(start.note), elem_id="heads-note")
        with gr.Column(visible=not start.note) as body:
            with gr.Row():
                model = gr.Dropdown(models, value=models[0] if models else None, label="Model (with heads)")
                method = gr.Dropdown(list(start.methods), value=start.method, label="Method (per-head maps)", **FREE)
                metric = gr.Dropdown(list(METRIC_NAMES), value="iou_90", label="Rank by")
                top, deep = (max(start.layers) if start.layers else 0), deepest(ex, models)
                first = gr.Slider(
                    0, deep, value=0, step=1, label="From layer", interactive=top > 0, elem_id="heads-first"
                )
                last = gr.Slider(
                    0, deep, value=top, step=1, label="To layer", interactive=top > 0, elem_id="heads-last"
                )
            ranking = table(
                "Head ranking (click a row: open that head in the Attention tab; click a header to sort)",
                "head-ranking",
                csv="head-ranking",
                max_height=320,
            )
            # the head x feature-type table at its own size, scrolling (style.py): readable, not fitted
            matrix = gr.Image(label="Head x feature type", elem_id="head-matrix", **PICTURE)
            best = table(
                "Best head per feature type (click a row: its exemplars)", "head-best", csv="best-heads", max_height=520
            )
            with gr.Row():
                feature = gr.Dropdown(
                    list(start.features),
                    value=start.features[0] if start.features else None,
                    label="Feature type (box label)",
                    **FREE,
                )
                which = gr.Dropdown([], label="Head (default: the best for the feature type)", **FREE)
            # the label as a line above, not a badge over the first exemplar's title and random-weights band
            gr.Markdown("Exemplars: where this head scores best on this feature type (click one: open it)")
            gallery = gr.Gallery(
                label="Exemplars: where this head scores best on this feature type (click: open)",
                show_label=False,
                columns=4,
                height=420,
                object_fit="contain",
                fit_columns=False,  # a single exemplar keeps its column's width
                allow_preview=False,
                elem_id="head-exemplars",
            )
            shown = gr.State([])  # [(image_id, layer, head)] of the gallery
            no_head = gr.State(None)  # (made inside the tab: a component between tabs shifts the tab bar's order)

    main = [model, method, metric, first, last, feature]
    panel = [note, body, method, first, last, feature, ranking, matrix, best, which, gallery, shown]

    def everything(model_name, method_name, metric_name, lo, hi, feature_name, keep_feature=True):
        c = heads.choices(ex, model_name, method_name)
        if c.note:
            return (gr.update(value=c.note, visible=True), gr.update(visible=not c.models), *skips(len(panel) - 2))
        top = c.layers[-1]
        lo, hi = nearest(c.layers, lo, c.layers[0]), nearest(c.layers, hi, top)
        lo, hi = min(lo, hi), max(lo, hi)
        feature_name = feature_name if keep_feature and feature_name in c.features else (c.features or [None])[0]
        frame = heads.ranking(ex, model_name, c.method, metric_name, lo, hi)
        picture, table = heads.matrix(ex, model_name, c.method, lo, hi)
        head_choices, head_value, pictures, ids = _exemplar_parts(ex, model_name, c.method, lo, hi, feature_name, None)
        # the sliders keep one range for every model (Gradio checks a value against the range the page was built
        # with); a layer a method lacks (pool: the last only; a shallower model) is read at the nearest it has
        slider = {"interactive": len(c.layers) > 1}
        return (
            gr.update(visible=False),
            gr.update(visible=True),
            gr.update(choices=list(c.methods), value=c.method),
            gr.update(value=lo, **slider),
            gr.update(value=hi, **slider),
            gr.update(choices=list(c.features), value=feature_name),
            frame,
            picture,
            table,
            gr.update(choices=head_choices, value=head_value),
            pictures,
            ids,
        )

    def on_controls(*values):
        return everything(*values)

    def on_exemplar(model_name, method_name, lo, hi, feature_name, chosen):
        head_choices, value, pictures, ids = _exemplar_parts(ex, model_name, method_name, lo, hi, feature_name, chosen)
        return gr.update(choices=head_choices, value=value), pictures, ids

    def on_best(model_name, method_name, lo, hi, frame: pd.DataFrame, evt: gr.SelectData):
        row = frame.iloc[int(evt.index[0])]
        chosen = f"{int(row['layer'])}:{int(row['head'])}"
        head_choices, value, pictures, ids = _exemplar_parts(
            ex, model_name, method_name, lo, hi, row["feature"], chosen
        )
        return gr.update(value=row["feature"]), gr.update(choices=head_choices, value=value), pictures, ids

    link_outputs, wire = page.link_outputs, page.follow

    def on_rank(model_name, method_name, frame: pd.DataFrame, evt: gr.SelectData):
        row = frame.iloc[int(evt.index[0])]
        return link_updates(ex, None, model_name, method_name, int(row["layer"]), int(row["head"]))

    def on_gallery(model_name, method_name, ids, evt: gr.SelectData):
        image_id, layer, head = ids[int(evt.index)]
        return link_updates(ex, image_id, model_name, method_name, layer, head)

    for trigger in (tab.select, model.input, method.input, metric.input, first.input, last.input):
        listen(trigger, on_controls, main, panel, **LAST)
    ex_out = [which, gallery, shown]
    for trigger in (feature.input, which.input):
        inputs = [model, method, first, last, feature, which if trigger == which.input else no_head]
        listen(trigger, on_exemplar, inputs, ex_out, **LAST)
    listen(best.select, on_best, [model, method, first, last, best], [feature, *ex_out], **LAST)
    wire(listen(ranking.select, on_rank, [model, method, ranking], link_outputs, **LAST))
    wire(listen(gallery.select, on_gallery, [model, method, shown], link_outputs, **LAST))


def _exemplar_parts(ex: Explorer, model: str, method: str, lo, hi, feature: str | None, chosen: str | None):
    """(head choices, chosen head, gallery, [(image_id, layer, head)]) for a feature type; the best head by default."""
    if not feature:
        return [], None, [], []
    _, table = heads.matrix(ex, model, method, int(lo), int(hi))
    model_info = info(ex, model)
    choices = [
        (f"layer {layer} head {h}", f"{layer}:{h}")
        for layer in model_info.layers[method]
        if int(lo) <= layer <= int(hi)
        for h in range(model_info.heads[method])
    ]
    if chosen not in [v for _, v in choices]:
        layer, head = heads.best_head(ex, model, method, feature, int(lo), int(hi))
        chosen = f"{layer}:{head}"
    layer, head = (int(v) for v in chosen.split(":"))
    try:
        pictures, frame = heads.exemplars(ex, model, method, layer, head, feature, 6)
    except gr.Error:  # this head has no box of the type in range: show none rather than an error
        return choices, chosen, [], []
    return choices, chosen, pictures, [(str(i), layer, head) for i in frame["image_id"]]


def head_ranking(ex: Explorer, model: str, method: str, metric: str, first_layer: int, last_layer: int) -> pd.DataFrame:
    """Every single head of a model and method ranked by its mean rank over the images (1 = best), with its mean
    score, how often it is the top-1 and in the top-3 head; ``mse``, ``kl`` and ``emd`` rank the lowest first."""
    return heads.ranking(ex, model, method, metric, first_layer, last_layer)


def head_matrix(ex: Explorer, model: str, method: str, first_layer: int, last_layer: int):
    """Mean per-box IoU of each head for each feature type (box label) with box counts, as a heat table, and the
    best head per feature type as a table."""
    return heads.matrix(ex, model, method, first_layer, last_layer)


def head_exemplars(ex: Explorer, model: str, method: str, layer: int, head: int, feature: str, k: int):
    """The k images where one head scores best on one feature type: its map over each, and the numbers."""
    return heads.exemplars(ex, model, method, layer, head, feature, k)


def endpoints(page: Page, a: api.Inputs | None = None) -> None:
    """``/head_ranking``, ``/head_matrix``, ``/head_exemplars`` on hidden typed inputs."""
    ex = page.explorer
    models = all_models(ex)
    model = api.free_choice("model", "a model name", models, models[0] if models else None)
    method = api.text("method", "a method of the model, e.g. cls", "cls")
    metric = api.free_choice("metric", "a metric column; mse, kl, emd: lower is better", METRIC_NAMES, "iou_90")
    first = api.integer("first_layer", "first layer of the range", 0)
    last = api.integer("last_layer", "last layer of the range (-1: the model's last)", -1)
    layer = api.integer("layer", "layer (-1: the last)", -1)
    head = api.integer("head", "head (-1: all heads fused)", -1)
    feature = api.text("feature", "a box label (feature type)")
    k = api.integer("k", "how many images (1..12)", 6)
    bind = api.bind
    api.add("head_ranking", bind(head_ranking, ex), [model, method, metric, first, last], [api.table("ranking")], VIEWS)
    matrix_out = [api.png("matrix"), api.table("best_heads")]
    api.add("head_matrix", bind(head_matrix, ex), [model, method, first, last], matrix_out, VIEWS)
    exemplars_out = [gr.Gallery(label="exemplars", visible=False), api.table("numbers")]
    api.add("head_exemplars", bind(head_exemplars, ex), [model, method, layer, head, feature, k], exemplars_out, VIEWS)


def wire(page: Page, layout: None) -> None:
    """Nothing left to wire: ``build`` wires the tab's events (closures over its components)."""
