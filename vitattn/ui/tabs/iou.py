"""The IoU tab (needs a store): leaderboard, per-layer curves with bootstrap bands, the layer x head table, the
breakdown by box label or image style, and the paired comparison of two models; their endpoints."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from vitattn.metrics import PERCENTILES
from vitattn.ui.actions import export, iou, iou_plot, page as nav
from vitattn.ui.data.catalog import FUSED
from vitattn.ui.data.errors import warn
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.shell import api
from vitattn.ui.shell.header import open_view
from vitattn.ui.shell.page import Page
from vitattn.ui.shell.presets import PICTURE, VIEWS, queue

NO_STORE = (
    "**The IoU tab needs a store** of precomputed metrics. Build one with `python -m precompute --output store` "
    "(add `--models dinov2,clip` to limit it) and restart the app; it picks up `./store` by itself."
)


class Layout:
    def __init__(self, ex: Explorer) -> None:
        models, methods = ex.models(), ex.extent()[1]
        first_methods = iou.methods_of(ex, models[0])
        metrics = iou.board_metrics(ex)
        with gr.Tab("IoU", id="iou", elem_id="iou-panel"):
            if ex.store is None:
                gr.Markdown(NO_STORE)
            with gr.Row():
                self.percentile = gr.Dropdown(
                    list(PERCENTILES), value=90, label="IoU percentile", elem_id="iou-percentile"
                )
                self.board_method = gr.Dropdown(
                    [iou.BEST, *methods], value=iou.BEST, label="Method", elem_id="board-method"
                )
                self.board_metric = gr.Dropdown(
                    metrics, value=iou.IOU_AT, label="Leaderboard metric", elem_id="board-metric"
                )
                self.board_label = gr.Dropdown(  # the store's labels: filled when the page loads (page_labels)
                    [iou.ALL_BOXES],
                    value=iou.ALL_BOXES,
                    label="Box label",
                    elem_id="board-label",
                )
            self.board = gr.Dataframe(
                label="Leaderboard: each model at its best layer (click a row to open it)", wrap=True, elem_id="board"
            )
            gr.Markdown(iou.SELECTION_NOTE)
            gr.Markdown(iou.BOARD_NOTE)
            self.curves = iou_plot.curves_component(elem_id="layer-curves")  # bands and chance lines: Vega-Lite
            gr.Markdown(iou.BANDS_NOTE)
            with gr.Row():
                self.grid_model = gr.Dropdown(models, value=models[0], label="Model", elem_id="grid-model")
                self.grid_method = gr.Dropdown(
                    first_methods,
                    value=first_methods[0] if first_methods else None,
                    label="Method",
                    elem_id="grid-method",
                )
            self.grid_picture = gr.Image(
                label="Layer x head (click a cell to open it)", elem_id="layer-head", **PICTURE
            )
            self.grid_numbers = gr.JSON(label="layer x head means", visible=False)
            styles = ex.store is not None and iou.has_styles(ex)
            with gr.Row():
                self.by = gr.Radio(
                    list(iou.BREAKDOWNS), value="label", label="Break down by", visible=styles, elem_id="by"
                )
                self.group_method = gr.Dropdown(
                    [iou.BEST, *first_methods], value=iou.BEST, label="Method", elem_id="group-method"
                )
                self.group_layer = gr.Number(-1, label="Layer (-1: best)", precision=0, elem_id="group-layer")
            self.groups = gr.Dataframe(
                label="Breakdown by box label (for the grid's model)", wrap=True, elem_id="groups"
            )
            with gr.Row():
                self.model_a = gr.Dropdown(models, value=models[0], label="Model A", elem_id="model-a")
                self.model_b = gr.Dropdown(models, value=models[-1], label="Model B", elem_id="model-b")
            self.paired = gr.Dataframe(
                label="Paired comparison B - A, every metric (t or Wilcoxon, Holm-corrected)",
                wrap=True,
                elem_id="paired",
            )
            with gr.Row():
                self.export = gr.Button("Export these tables (CSV)", size="sm", elem_id="iou-export")
                self.files = gr.File(label="Files", file_count="multiple", interactive=False, elem_id="iou-files")


# -- endpoints ---------------------------------------------------------------------------------------------------


def endpoints(page: Page, a: api.Inputs) -> None:
    ex, rows = page.explorer, [api.table("rows")]
    metric = api.choice(
        "metric", "IoU@p (at the percentile), another metric column, or max_box_acc", iou.board_metrics(ex), iou.IOU_AT
    )
    # a string, not a list of the store's labels: reading them needs the box table, and start-up reads the manifest only
    label = api.text("label", f"a box label of the store (e.g. a Gallery image's), or {iou.ALL_BOXES!r}", iou.ALL_BOXES)
    board_in = [a.percentile, a.board_method, metric, label]
    api.endpoint("leaderboard", api.bind(iou.leaderboard, ex), board_in, rows, **VIEWS)
    api.endpoint("layer_curves", api.bind(iou.curves, ex), [a.percentile, a.board_method], rows, **VIEWS)
    grid_out = [api.picture("picture"), api.data("data")]
    api.endpoint("layer_head", api.bind(iou.grid, ex), [a.model, a.method, a.percentile], grid_out, **VIEWS)
    group_in = [a.model, a.board_method, a.group_layer, a.by, a.percentile]
    api.endpoint("breakdown", api.bind(iou.by_group, ex), group_in, rows, **VIEWS)
    api.endpoint("compare", api.bind(iou.compare, ex), [a.model, a.model_b, a.percentile], rows, **VIEWS)


# -- page steps --------------------------------------------------------------------------------------------------


def page_curves(ex: Explorer, percentile: int, method: str):
    """The per-layer curves with their 95% bootstrap bands and the baselines as chance lines (hover: the numbers)."""
    return iou_plot.curves_plot(ex, percentile, method)


def page_labels(ex: Explorer) -> dict:
    """The label filter's choices: every box label of the store, most boxes first (read when the page loads, not
    when the app starts)."""
    return gr.update(choices=[iou.ALL_BOXES, *iou.labels(ex)])


def on_grid_model(ex: Explorer, model: str, method: str) -> tuple[dict, dict]:
    """The layer x head grid and the breakdown offer the chosen model's methods only."""
    methods = iou.methods_of(ex, model)
    grid_method = gr.update(choices=methods, value=method if method in methods else methods[0])
    return grid_method, gr.update(choices=[iou.BEST, *methods], value=iou.BEST)


def on_board_click(ex: Explorer, board: pd.DataFrame, evt: gr.SelectData) -> tuple:
    """A click on a leaderboard row opens that model at its method and layer (baseline rows open nothing)."""
    row = board.iloc[int(evt.index[0])] if board is not None and len(board) > int(evt.index[0]) else None
    if row is None or str(row["model"]) not in ex.models() or pd.isna(row["layer"]):
        return tuple(gr.skip() for _ in range(6))
    if str(row["method"]) not in ex.info(str(row["model"])).methods:  # a text method (label filter): no image view
        return tuple(gr.skip() for _ in range(6))
    return open_view(ex, str(row["model"]), str(row["method"]), int(row["layer"]), FUSED)


def on_table_click(ex: Explorer, model: str, method: str, evt: gr.SelectData) -> tuple:
    """A click on a cell of the layer x head table opens that layer and head ("fused": all heads)."""
    at = nav.table_view(ex.info(model), method, evt.index)
    if at is None:
        return tuple(gr.skip() for _ in range(6))
    return open_view(ex, model, method, *at)


def export_iou(
    ex: Explorer,
    percentile,
    board_method,
    grid_model,
    grid_method,
    group_method,
    group_layer,
    by,
    a,
    b,
    metric=iou.IOU_AT,
    label=iou.ALL_BOXES,
):
    """The IoU tab's tables as CSV: leaderboard, per-layer curves, layer x head means, breakdown, comparison."""
    stem = export.name("iou", percentile)
    _, numbers = iou.grid(ex, grid_model, grid_method, percentile)
    heads = pd.DataFrame(numbers["grid"], columns=[f"h{h}" for h in range(len(numbers["grid"][0]))])
    heads.insert(0, "layer", range(len(heads)))
    heads["fused"] = numbers["fused"]
    files = [
        export.csv(f"{stem}_leaderboard", iou.leaderboard(ex, percentile, board_method, metric, label)),
        export.csv(f"{stem}_per-layer", iou.curves(ex, percentile, board_method)),
        export.csv(export.name(stem, grid_model, grid_method, "layer-head"), heads),
    ]
    for what, table in (
        (f"by-{by}", lambda: iou.by_group(ex, grid_model, group_method, group_layer, by, percentile)),
        (f"{a}-vs-{b}", lambda: iou.compare(ex, a, b, percentile)),
    ):
        try:  # one table that cannot be computed (no styles, one model) does not stop the others
            files.append(export.csv(export.name(stem, what), table()))
        except gr.Error as e:
            warn(f"not exported: {what}: {e.message}")
    return files


def build(page: Page) -> Layout:
    ex, bind = page.explorer, api.bind
    t = Layout(ex)
    v = page.views
    board_in = [t.percentile, t.board_method, t.board_metric, t.board_label]
    v.add("leaderboard", bind(iou.leaderboard, ex), board_in, [t.board])
    v.add("layer_curves", bind(page_curves, ex), [t.percentile, t.board_method], [t.curves])
    v.add(
        "layer_head",
        bind(iou.grid, ex),
        [t.grid_model, t.grid_method, t.percentile],
        [t.grid_picture, t.grid_numbers],
    )
    group_in = [t.grid_model, t.group_method, t.group_layer, t.by, t.percentile]
    v.add("breakdown", bind(iou.by_group, ex), group_in, [t.groups])
    v.add("compare", bind(iou.compare, ex), [t.model_a, t.model_b, t.percentile], [t.paired])
    tables = [t.percentile, t.board_method, t.board_metric, t.board_label, t.grid_model, t.grid_method]
    tables += [t.group_method, t.group_layer, t.by]
    v.add("iou_files", lambda *_: None, [*tables, t.model_a, t.model_b], [t.files])  # the files of another view: gone
    return t


def wire(page: Page, t: Layout) -> None:
    ex, v, bind = page.explorer, page.views, api.bind
    v.on([t.percentile.input], t.percentile)
    v.on([t.board_method.input], t.board_method)
    v.on([t.board_metric.input, t.board_label.input], "leaderboard", "iou_files")
    v.on([t.grid_method.input], t.grid_method)
    v.on([t.by.input, t.group_method.input, t.group_layer.submit], "breakdown")
    v.on([t.model_a.input, t.model_b.input], "compare")
    grid_in, grid_out = [t.grid_model, t.grid_method], [t.grid_method, t.group_method]
    # no preprocessing: a stale method reaches on_grid_model, which fixes it
    v.on_pick(t.grid_model, bind(on_grid_model, ex), grid_in, grid_out, "layer_head", "breakdown", preprocess=False)
    h = page.header
    opens = [page.tabs, h.model, h.method, h.layer, h.head, h.explain]
    page.follow(t.board.select(bind(on_board_click, ex), t.board, opens, **queue(False)))
    page.follow(t.grid_picture.select(bind(on_table_click, ex), [t.grid_model, t.grid_method], opens, **queue(False)))
    tables = [t.percentile, t.board_method, t.grid_model, t.grid_method, t.group_method, t.group_layer, t.by]
    board = [t.board_metric, t.board_label]
    t.export.click(bind(export_iou, ex), [*tables, t.model_a, t.model_b, *board], t.files, **queue(False))
    if ex.store is not None:
        page.loads.append((bind(page_labels, ex), None, t.board_label))
        page.on_load.append(("leaderboard", "layer_curves", "layer_head", "breakdown", "compare"))
