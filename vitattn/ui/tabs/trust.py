"""The Trust tab: does the map depend on what the model learned? The stored model-parameter randomisation curves
of the header's model (Spearman and SSIM against the stage re-initialised, one line per method), the randomised
maps of one method on a stored image, and the same test run live on the header's image (one click); its
endpoints ``/sanity_curves``, ``/sanity_strip`` and ``/sanity_live``."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from vitattn.sanity import SIMILARITY_NAMES
from vitattn.ui.actions import trust
from vitattn.ui.actions.common import warning
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell import api
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import LIVE, PNG, VIEWS, queue

ID = "trust"
INTRO = (
    "**Model-parameter randomisation** (Adebayo et al. 2018, cascading, top-down): the precompute job "
    "re-initialises the header's model stage by stage from the output down and compares each method's map with "
    "the intact model's (docs/trust.md)."
)


class Layout:
    def __init__(self, ex: Explorer) -> None:
        with gr.Tab("Trust", id=ID, elem_id="trust-panel"):
            gr.Markdown(INTRO)
            gr.Markdown(trust.MEANING)
            self.note = gr.Markdown(elem_id="trust-note")
            with gr.Column(visible=ex.store is not None) as self.stored:  # hidden where there are no curves
                with gr.Row():
                    self.rank = gr.Plot(show_label=False, elem_id="trust-rank")
                    self.structure = gr.Plot(show_label=False, elem_id="trust-structure")
                self.table = gr.Dataframe(
                    pd.DataFrame(columns=trust.CURVE_COLUMNS),
                    label="Curves (mean over the stored images)",
                    max_height=260,
                    elem_id="trust-table",
                )
                with gr.Row():
                    self.method = gr.Dropdown(
                        [], label="Method of the strip", elem_id="trust-method", allow_custom_value=True
                    )
                    self.image = gr.Dropdown(
                        [], label="Stored sanity image", elem_id="trust-image", allow_custom_value=True
                    )
                self.strip = gr.Image(label="Randomised maps, stage by stage", elem_id="trust-strip", **PNG)
            gr.Markdown("### Live, on the header's image (an upload too)")
            gr.Markdown(trust.LIVE_COST)
            with gr.Row():
                self.live_method = gr.Dropdown(
                    [], label="Method (live)", elem_id="trust-live-method", allow_custom_value=True
                )
                self.run = gr.Button("Run the randomisation test live", variant="primary", elem_id="trust-run")
            self.live_table = gr.Dataframe(
                pd.DataFrame(columns=["step", "stage", *SIMILARITY_NAMES]),
                label="Live: similarity to the intact map per stage",
                elem_id="trust-live-table",
            )
            self.live_strip = gr.Image(label="Live: randomised maps", elem_id="trust-live-strip", **PNG)  # fmt: skip


# -- page steps and endpoints -------------------------------------------------------------------------------------


def page_trust(ex: Explorer, model: str, method: str, image_id: str, live_method: str | None = None) -> tuple:
    """The Trust view of ``model``: a line (what is shown, or the command that computes it), both charts, the
    curves as a table, the strip of ``method`` on ``image_id`` (each kept when valid, else the first), the method
    choices of a live run, and whether the stored part is shown (not where there are no curves)."""
    offered = trust.live_methods(ex, model)
    live = gr.update(choices=offered, value=live_method if live_method in offered else _first(offered, None))
    if not trust.has_curves(ex, model):
        empty = gr.update(choices=[], value=None)
        return trust.no_curves(ex, model), None, None, None, empty, empty, None, live, gr.update(visible=False)
    methods, images = trust.methods(ex, model), trust.images(ex, model)
    method = method if method in methods else methods[0]
    image_id = image_id if image_id in images else images[0]
    rows = trust.curve_rows(ex, model)
    layer = ex.info(model).layer_name(int(trust.table(ex, model)["layer"][0]))
    note = (
        f"**{model}**: {len(methods)} method{'s' * (len(methods) != 1)}, the fused map at {layer}, mean over "
        f"{len(images)} stored image{'s' * (len(images) != 1)}."
    )
    label = warning(ex, model)
    if label:
        note += f" ⚠️ **{label}**"
    return (
        note,
        trust.curves_plot(ex, model, "rank"),
        trust.curves_plot(ex, model, "structure"),
        rows.round(4),
        gr.update(choices=methods, value=method),
        gr.update(choices=images, value=image_id),
        trust.strip(ex, model, method, image_id),
        live,
        gr.update(visible=True),
    )


def _first(values: list, default):
    return values[0] if values else default


def sanity_curves(ex: Explorer, model: str):
    """The stored model-parameter randomisation curves of a model: per method and step the stage re-initialised
    and the mean Spearman, |Spearman|, SSIM and HOG similarity to the intact map over the stored images."""
    return trust.curve_rows(ex, model).round(6)


def sanity_strip(ex: Explorer, model: str, method: str, image_id: str):
    """The randomised maps of one method on one stored sanity image, stage by stage, each on its own scale."""
    return trust.strip(ex, model, method, image_id)


def sanity_live(ex: Explorer, image_id: str, model: str, method: str):
    """The randomisation test run live on any image (one analysis per stage): a row per stage and the strip."""
    return trust.live(ex, image_id, model, method)


def endpoints(page: Page, a: api.Inputs) -> None:
    ex = page.explorer
    method = api.text("method", "a method with stored curves (see /sanity_curves)", "cls")
    api.endpoint("sanity_curves", api.bind(sanity_curves, ex), [a.model], [api.table("rows")], **VIEWS)
    api.endpoint("sanity_strip", api.bind(sanity_strip, ex), [a.model, method, a.image], [api.png("strip")], **VIEWS)
    live_out = [api.table("rows"), api.png("strip")]
    api.endpoint("sanity_live", api.bind(sanity_live, ex), [a.image, a.model, method], live_out, **LIVE)


def build(page: Page) -> Layout:
    t = Layout(page.explorer)
    outputs = [t.note, t.rank, t.structure, t.table, t.method, t.image, t.strip, t.live_method, t.stored]
    inputs = [page.header.model, t.method, t.image, t.live_method]
    page.views.add("trust", api.bind(page_trust, page.explorer), inputs, outputs, tab=ID)
    return t


def wire(page: Page, t: Layout) -> None:
    ex, h = page.explorer, page.header
    page.views.on([t.method.input, t.image.input], t.method, t.image)
    t.run.click(
        api.bind(sanity_live, ex),
        [h.image_id, h.model, t.live_method],
        [t.live_table, t.live_strip],
        **queue(True, t.live_strip),
    )
