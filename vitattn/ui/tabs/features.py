"""The Features tab: PCA feature maps, head statistics and faithfulness curves; its endpoints ``/pca``,
``/head_stats`` and ``/faithfulness``."""

from __future__ import annotations

import time

import gradio as gr
import pandas as pd

from vitattn import render
from vitattn.specs import get_spec
from vitattn.ui.actions import features as features_view
from vitattn.ui.actions.common import all_models
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell import api
from vitattn.ui.shell.components import chart, table
from vitattn.ui.shell.links import link_updates
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import LAST, LIVE, PNG, VIEWS
from vitattn.ui.shell.wiring import listen, skips

PICTURE = PNG

BACKGROUNDS = ("none", "auto", "0.3", "0.5")
FEATURES_INTRO = (
    "**PCA feature maps** of the model and layer chosen above (DINOv2 paper, Fig. 1): the first three principal "
    "components of the patch features as R, G, B; add images to colour them with one joint PCA. **Head statistics**: "
    "the ViT paper's mean attention distance per head and depth, and how different a layer's heads are. "
    "**Faithfulness**: does removing the map's most important patches first change the model's output faster than "
    "a random order (deletion), and does adding them first restore it faster (insertion)?"
)


def build(page: Page) -> None:
    """Lays out the tab, its events and its endpoints."""
    ex, controls = page.explorer, page.header
    ids = ex.image_ids()
    with_heads = [m for m in ex.models() if get_spec(m).family != "resnet"]  # the spec: no network loaded
    image_id, model, method, layer = controls.image_id, controls.model, controls.method, controls.layer
    with gr.Tab("Features", id="features", elem_id="features-panel"):
        gr.Markdown(FEATURES_INTRO)
        gr.Markdown("### PCA feature maps (model and layer: the controls above)")
        with gr.Row():
            more = gr.Dropdown(
                ids,
                value=[],
                multiselect=True,
                max_choices=features_view.MAX_IMAGES - 1,
                label="More images (joint PCA)",
            )
            background = gr.Dropdown(list(BACKGROUNDS), value="none", label="Remove background (threshold on PC1)")
            joint = gr.Checkbox(value=True, label="One joint PCA for all images")
        pca = gr.Image(label="PCA feature maps", elem_id="pca-picture", **PICTURE)
        gr.Markdown("### Head statistics")
        with gr.Row():
            stat_models = gr.Dropdown(
                with_heads, value=with_heads[:4], multiselect=True, label="Models (ViTs)", elem_id="stat-models"
            )
            stat = gr.Dropdown(
                [(features_view.STAT_TITLES[s], s) for s in features_view.STATS],
                value="distance_px",
                label="Statistic",
            )
        stat_note = gr.Markdown(elem_id="head-stats-note")
        dots = gr.Image(
            label="Per head and layer (click a dot: open that head in the Attention tab)",
            elem_id="head-stats-plot",
            **PICTURE,
        )
        diversity = chart(
            gr.ScatterPlot,
            "layer",
            "diversity",
            "model",
            title="Head diversity per layer (0: all heads alike, 1: disjoint)",
            axes=("layer (0 = first block)", "heads' mean pairwise TV distance"),
            elem_id="head-diversity-plot",
            y_lim=[0, 1],  # the distance's whole range: no dot on the frame's edge, two models compare
        )
        dot_places = gr.State([])  # where the picture's dots are (render.Dot), for a click
        picked = gr.State()  # the head a click on the picture picked
        stat_table = table(
            "Per head (click a row: open that head in the Attention tab)",
            "head-stats-table",
            csv="head-statistics",
            max_height=260,
        )
        gr.Markdown("### Faithfulness (image, model, method and layer: the controls above; all heads fused)")
        with gr.Row():
            mode = gr.Radio(list(features_view.MODES), value="blur", label="A removed patch becomes")
            run = gr.Button(
                f"Compute deletion and insertion ({4 * features_view.STEPS - 2} forward passes, live)",
                variant="primary",
            )
        # the chart spans the page: its legend (four curves) is one row Vega never wraps, and its title names the view
        curves = chart(
            gr.LinePlot,
            "fraction",
            "score",
            "curve",
            title="Deletion and insertion",
            axes=("share of patches removed or inserted", "model score"),
            elem_id="faithfulness-plot",
        )
        areas = table(
            "Areas under the curves (press the button)",
            "faithfulness-areas",
            csv="faithfulness-areas",
            value=pd.DataFrame(columns=["curve", "auc", "better", "score", "source"]),
        )

    def on_pca(image, extra, model_name, lay, back, together):
        picture, _ = features_view.pca(ex, [image, *(extra or [])], model_name, int(lay), back, bool(together))
        return picture

    def on_stats(models, image, which):
        frame, div, note = features_view.head_stats(ex, models or [], image, which)
        picture, places = features_view.dots_picture(ex, frame, which)
        layers = sorted(int(v) for v in div["layer"].unique())
        div = div.assign(layer=lambda f: f["layer"].map(str))  # categories, one tick each, in the layers' order
        return picture, places, gr.update(value=div, sort=[str(v) for v in layers]), note, frame

    def on_run(image, model_name, meth, lay, how):
        """The curves, titled with what they are of (model, method, layer: the header's, all heads fused)."""
        curves_rows, areas_rows = features_view.faithfulness(ex, image, model_name, meth, int(lay), how)
        model_info = ex.info(model_name)
        what = f"{model_name} · {meth} · {model_info.layer_name(int(lay))} · all heads fused · {image}"
        return gr.update(value=curves_rows, title=f"Deletion and insertion: {what}"), areas_rows

    link_outputs, wire = page.link_outputs, page.follow

    def head_link(image, model_name: str, lay: int, hd: int) -> tuple:
        """Opens one head in the Attention tab, under the image-level method the statistics describe."""
        model_info = ex.info(model_name)
        meth = next((m for m in features_view.DIVERSITY_METHODS if model_info.heads.get(m, 0) > 0), None)
        if meth is None or lay not in model_info.layers[meth]:
            meth = next(m for m in model_info.methods if model_info.heads.get(m, 0) > 0)
        return link_updates(ex, image, model_name, meth, lay, hd)

    def on_stat_row(image, frame: pd.DataFrame, evt: gr.SelectData):
        row = frame.iloc[int(evt.index[0])]
        return head_link(image, str(row["model"]), int(row["layer"]), int(row["head"]))

    def on_dot(places, evt: gr.SelectData):
        """A click on the picture: the nearest dot within a few pixels, else nothing at all (no link, no request)."""
        dot = render.dot_at(places or [], float(evt.index[0]), float(evt.index[1]))
        if dot is None:
            return gr.skip()
        return {"model": dot.model, "layer": dot.layer, "head": dot.head, "click": time.monotonic_ns()}  # a new
        # value on every click (a second click on the same dot opens it again)

    def on_picked(image, pick: dict | None):
        if not pick:
            return skips(len(link_outputs))
        return head_link(image, pick["model"], int(pick["layer"]), int(pick["head"]))

    pca_inputs = [image_id, more, model, layer, background, joint]
    for trigger in (more.input, background.input, joint.input):  # the header's values: read when the tab opens
        listen(trigger, on_pca, pca_inputs, pca, **LAST)
    stat_inputs = [stat_models, image_id, stat]
    stat_outputs = [dots, dot_places, diversity, stat_note, stat_table]
    for trigger in (stat_models.input, stat.input):
        listen(trigger, on_stats, stat_inputs, stat_outputs, live=True, **LAST)
    wire(listen(stat_table.select, on_stat_row, [image_id, stat_table], link_outputs, **LAST))
    listen(dots.select, on_dot, dot_places, picked, **LAST)
    wire(listen(picked.change, on_picked, [image_id, picked], link_outputs, **LAST))
    listen(run.click, on_run, [image_id, model, method, layer, mode], [curves, areas], live=True, **LAST)

    # Views of this tab (computed while it is open and when it opens): the PCA follows the header's image, model
    # and layer; the statistics the header's image.
    page.views.add("pca", on_pca, pca_inputs, [pca], tab="features")
    page.views.add("head_stats", on_stats, stat_inputs, stat_outputs, tab="features", live=True)


def pca(ex: Explorer, image_ids: str, model: str, layer: int, background: str, joint: bool):
    """PCA feature maps of a layer (first 3 components as RGB) for one or several images, one joint PCA."""
    return features_view.pca(ex, image_ids, model, layer, background, joint)


def head_stats(ex: Explorer, models: str, image_id: str, stat: str):
    """Per head and layer a statistic (mean attention distance in px, CLS entropy or prefix share) of every
    chosen ViT, and head diversity per layer; from the store's table, else live on the image."""
    return features_view.head_stats(ex, models, image_id, stat)


def faithfulness(ex: Explorer, image_id: str, model: str, method: str, layer: int, mode: str):
    """Deletion and insertion curves of a fused map beside a random patch order, and their areas (live)."""
    return features_view.faithfulness(ex, image_id, model, method, layer, mode)


def endpoints(page: Page, a: api.Inputs | None = None) -> None:
    """``/pca``, ``/head_stats`` and ``/faithfulness`` on hidden typed inputs."""
    ex = page.explorer
    models, ids = all_models(ex), ex.image_ids()
    model = api.free_choice("model", "a model name", models, models[0] if models else None)
    method = api.text("method", "a method of the model, e.g. cls", "cls")
    layer = api.integer("layer", "layer (-1: the last)", -1)
    image = api.free_choice("image_id", "an image id", ids, ids[0] if ids else None)
    images = api.text("image_ids", "one image id or several, comma-separated (at most 6)")
    background = api.text("background", "'none', 'auto' or a threshold in (0, 1)", "none")
    joint = gr.Checkbox(True, label="joint: one PCA for all images", **api.HIDDEN)
    names = api.text("models", "comma-separated model names (empty: every model)", "")
    stat = api.free_choice("stat", "distance_px, entropy or prefix_share", features_view.STATS, "distance_px")
    mode = api.free_choice("mode", "blur or mean", features_view.MODES, "blur")
    pca_out = [api.png("pca"), gr.JSON(label="data", visible=False)]
    api.add("pca", api.bind(pca, ex), [images, model, layer, background, joint], pca_out, VIEWS)
    stats_out = [api.table("heads"), api.table("diversity"), gr.Textbox(label="source", visible=False)]
    api.add("head_stats", api.bind(head_stats, ex), [names, image, stat], stats_out, LIVE)
    curves_out = [api.table("curves"), api.table("areas")]
    api.add("faithfulness", api.bind(faithfulness, ex), [image, model, method, layer, mode], curves_out, LIVE)


def wire(page: Page, layout: None) -> None:
    """Nothing left to wire: ``build`` wires the tab's events (closures over its components)."""
