"""The Heads, Variants and Features tabs and their public API endpoints, built into the app's open ``gr.Tabs()``.

    with gr.Tabs(...) as tabs:
        ...                                   # the app's own tabs
        more_tabs.build(EXPLORER, {"tabs": tabs, "image_id": image_id, "model": model, "method": method,
                                   "layer": layer, "head": head, "refresh": lambda after: ...})

``controls`` are the app's components: ``tabs`` (to open the Attention tab, id ``"attention"``) and the header's
``image_id``, ``model``, ``method``, ``layer`` and ``head``, which the Features tab reads and a click on a head, an
exemplar or a table row sets. The optional ``refresh`` is a function that, given an event's ``.then``, re-runs the
Attention views (the header's own events fire on user input only, not on values set by another event).

Each control starts exactly one event, whose handler computes every view that control affects (as
``vitattn/ui/wiring.py`` explains, several events with ``trigger_mode="always_last"`` from one control loop).
Handlers live in ``heads.py``, ``variants_view.py`` and ``features_view.py`` and are plain functions of the
Explorer; the API endpoints take hidden typed inputs (``int`` layer and head), so ``view_api`` shows them right.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gradio as gr
import pandas as pd

from vitattn import render
from vitattn.metrics import METRIC_NAMES
from vitattn.specs import get_spec
from vitattn.ui.actions import export
from vitattn.ui.actions import features as features_view
from vitattn.ui.actions import heads
from vitattn.ui.actions import variants as variants_view
from vitattn.ui.data.catalog import FUSED
from vitattn.ui.data.config import LIVE_WORKERS, VIEW_WORKERS
from vitattn.ui.data.errors import guard
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.actions.common import RANDOM_WEIGHTS, all_models, attention_link, info, warning
from vitattn.ui.shell.wiring import safe

VIEWS = {"concurrency_id": "views", "concurrency_limit": VIEW_WORKERS}
LIVE = {"concurrency_id": "live", "concurrency_limit": LIVE_WORKERS}
PRIVATE = {"api_visibility": "private", "trigger_mode": "always_last"}
PICTURE = {"format": "png", "interactive": False, "buttons": ["download", "fullscreen"], "show_label": False}
HIDDEN = {"visible": False, "interactive": True}
FREE = {"allow_custom_value": True}  # choices follow other controls: a stale value reaches the handler, which checks it
ATTENTION_TAB = "attention"
BACKGROUNDS = ("none", "auto", "0.3", "0.5")
HEADS_INTRO = (
    "Which single heads agree with the experts, and on which feature types (the study's Q3)? The **ranking** orders "
    "every head by its mean rank over the images; the **heat table** gives each head's mean IoU per feature type "
    "(box label) with the number of boxes, the best head of each type outlined; **exemplars** are the images where "
    "a head scores best on a type. Click a ranking row or an exemplar to open that head in the Attention tab."
)
VARIANTS_INTRO = (
    "Does fine-tuning move attention toward what experts marked (the study's Q2)? Compare a fine-tuned variant with "
    "its frozen model (or any two models) on the image chosen above: both maps on one colour scale, the shift map "
    "B - A, and every metric with its delta, for the whole image or one box (pick it, or click it on the shift map)."
)
FEATURES_INTRO = (
    "**PCA feature maps** of the model and layer chosen above (DINOv2 paper, Fig. 1): the first three principal "
    "components of the patch features as R, G, B; add images to colour them with one joint PCA. **Head statistics**: "
    "the ViT paper's mean attention distance per head and depth, and how different a layer's heads are. "
    "**Faithfulness**: does removing the map's most important patches first change the model's output faster than "
    "a random order (deletion), and does adding them first restore it faster (insertion)?"
)


def _skip(n: int) -> tuple:
    return tuple(gr.skip() for _ in range(n))


def _doc(fn: Callable) -> str:
    """The first paragraph of a docstring: the endpoint's description in ``view_api``."""
    return (fn.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


# -- the link to the Attention tab -------------------------------------------------------------------------------


def _link_updates(ex: Explorer, image_id, model: str, method: str, layer: int, head: int) -> tuple:
    """Updates of (tabs, image_id, model, method, layer, head) that open one head's map in the Attention tab."""
    from vitattn.ui.actions.page import controls as page_controls

    link = attention_link(ex, image_id, model, method, layer, head)
    c = page_controls(ex.info(link.model), link.method, link.layer, link.head)
    return (
        gr.Tabs(selected=ATTENTION_TAB),
        gr.skip() if link.image_id is None else gr.update(value=link.image_id),
        gr.update(value=link.model),
        gr.update(choices=list(c.methods), value=c.method),
        gr.update(minimum=c.layers[0], maximum=c.layers[-1], value=c.layer, interactive=len(c.layers) > 1),
        gr.update(choices=list(c.heads), value=c.head, interactive=len(c.heads) > 1),
    )


def _linker(controls: dict) -> tuple[list, Callable]:
    outputs = [controls[k] for k in ("tabs", "image_id", "model", "method", "layer", "head")]
    refresh = controls.get("refresh")

    def wire(event) -> None:
        if refresh is not None:
            refresh(event.success)

    return outputs, wire


# -- Heads -------------------------------------------------------------------------------------------------------


def _heads_tab(ex: Explorer, controls: dict) -> None:
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
                top, deepest = (max(start.layers) if start.layers else 0), _deepest(ex, models)
                first = gr.Slider(
                    0, deepest, value=0, step=1, label="From layer", interactive=top > 0, elem_id="heads-first"
                )
                last = gr.Slider(
                    0, deepest, value=top, step=1, label="To layer", interactive=top > 0, elem_id="heads-last"
                )
            ranking = gr.Dataframe(
                label="Head ranking (click a row: open that head in the Attention tab; click a header to sort)",
                interactive=False,
                max_height=320,
                elem_id="head-ranking",
            )
            export.csv_button(ranking, "head-ranking")
            with gr.Row():
                matrix = gr.Image(label="Head x feature type", elem_id="head-matrix", scale=3, **PICTURE)
                with gr.Column(scale=2):
                    best = gr.Dataframe(
                        label="Best head per feature type (click a row: its exemplars)",
                        interactive=False,
                        max_height=520,
                        elem_id="head-best",
                    )
                    export.csv_button(best, "best-heads")
            with gr.Row():
                feature = gr.Dropdown(
                    list(start.features),
                    value=start.features[0] if start.features else None,
                    label="Feature type (box label)",
                    **FREE,
                )
                which = gr.Dropdown([], label="Head (default: the best for the feature type)", **FREE)
            gallery = gr.Gallery(
                label="Exemplars: where this head scores best on this feature type (click: open)",
                columns=4,
                height=420,
                object_fit="contain",
                fit_columns=False,  # a single exemplar keeps its column's width
                allow_preview=False,
                elem_id="head-exemplars",
            )
            shown = gr.State([])  # [(image_id, layer, head)] of the gallery

    main = [model, method, metric, first, last, feature]
    panel = [note, body, method, first, last, feature, ranking, matrix, best, which, gallery, shown]

    def everything(model_name, method_name, metric_name, lo, hi, feature_name, keep_feature=True):
        c = heads.choices(ex, model_name, method_name)
        if c.note:
            return (gr.update(value=c.note, visible=True), gr.update(visible=not c.models), *_skip(10))
        top = c.layers[-1]
        lo, hi = _nearest(c.layers, lo, c.layers[0]), _nearest(c.layers, hi, top)
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

    link_outputs, wire = _linker(controls)

    def on_rank(model_name, method_name, frame: pd.DataFrame, evt: gr.SelectData):
        row = frame.iloc[int(evt.index[0])]
        return _link_updates(ex, None, model_name, method_name, int(row["layer"]), int(row["head"]))

    def on_gallery(model_name, method_name, ids, evt: gr.SelectData):
        image_id, layer, head = ids[int(evt.index)]
        return _link_updates(ex, image_id, model_name, method_name, layer, head)

    n = len(panel)
    for trigger in (tab.select, model.input, method.input, metric.input, first.release, last.release):
        trigger(safe(n)(on_controls), main, panel, **PRIVATE, **VIEWS)
    ex_out = [which, gallery, shown]
    for trigger in (feature.input, which.input):
        inputs = [model, method, first, last, feature, which if trigger == which.input else gr.State(None)]
        trigger(safe(3)(on_exemplar), inputs, ex_out, **PRIVATE, **VIEWS)
    best.select(safe(4)(on_best), [model, method, first, last, best], [feature, *ex_out], **PRIVATE, **VIEWS)
    wire(ranking.select(safe(6)(on_rank), [model, method, ranking], link_outputs, **PRIVATE, **VIEWS))
    wire(gallery.select(safe(6)(on_gallery), [model, method, shown], link_outputs, **PRIVATE, **VIEWS))


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


def _deepest(ex: Explorer, models: list[str]) -> int:
    """The deepest layer of any of ``models`` (at least 1): one slider range for all of them."""
    if ex.store is None:  # live: the specs (reading a live model's layout would load its network)
        return max([1, *(get_spec(m).num_layers - 1 for m in models)])
    return max([1, *(info(ex, m).num_layers - 1 for m in models)])


def _nearest(valid: tuple[int, ...] | list[int], value, default: int) -> int:
    """The layer of ``valid`` nearest to ``value`` (a slider's float), or ``default`` without a value."""
    if value is None:
        return default
    return min(valid, key=lambda v: (abs(v - float(value)), v))


# -- Variants ----------------------------------------------------------------------------------------------------


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
    layer = _nearest(layers, layer, layers[-1])
    n = min(info(ex, a).heads[method], info(ex, b).heads[method])
    head_choices = [("all heads fused", FUSED), *((f"head {h}", h) for h in range(n))]
    head = int(head) if head is not None and 0 <= int(head) < n else FUSED
    return note, methods, method, layers, layer, head_choices, head


def _variants_tab(ex: Explorer, controls: dict) -> None:
    models = all_models(ex)
    a0, b0 = variants_view.default_pair(ex)
    _, methods0, method0, layers0, layer0, heads0, head0 = _pair_controls(ex, a0, b0, None, None, None)
    has_pairs = bool(variants_view.pairs(ex))
    image_id = controls["image_id"]
    with gr.Tab("Variants", id="variants", elem_id="variants-panel") as tab:
        gr.Markdown(VARIANTS_INTRO)
        with gr.Row():
            model_a = gr.Dropdown(models, value=a0, label="A (e.g. frozen)")
            model_b = gr.Dropdown(models, value=b0, label="B (e.g. fine-tuned)")
            method = gr.Dropdown(methods0, value=method0, label="Method (both models)", **FREE)
            layer = gr.Slider(
                0,
                _deepest(ex, models),
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
        deltas = gr.Dataframe(label="Metrics of A and B and their delta", interactive=False, elem_id="variant-deltas")
        export.csv_button(deltas, "variant-metrics")
        gr.Markdown("### Fine-tuned vs frozen over the store, per model and strategy")
        gr.Markdown(variants_view.NO_VARIANTS, visible=not has_pairs, elem_id="variants-note")
        with gr.Column(visible=has_pairs):
            with gr.Row():
                t_method = gr.Dropdown(methods0, value=method0, label="Method", **FREE)
                t_layer = gr.Dropdown(list(variants_view.LAYERS), value="last", label="Layer (store)")
                t_metric = gr.Dropdown(list(METRIC_NAMES), value="iou_90", label="Metric")
            summary = gr.Markdown(elem_id="variants-summary")
            table = gr.Dataframe(
                label="Delta table (click a row: compare that pair above)", interactive=False, elem_id="variants-table"
            )
            export.csv_button(table, "variant-deltas")

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

    n = len(pair_outputs)
    # The header's image is read when this tab opens and with each of its controls; listening to the header's own
    # events would start a second event beside the Attention tab's on every header change (a race on its method).
    for trigger in (model_a.input, model_b.input, method.input, layer.release, head.input, box.input):
        trigger(safe(n)(pair_view), pair_inputs, pair_outputs, **PRIVATE, **VIEWS)
    shift.select(safe(n)(on_shift), pair_inputs, pair_outputs, **PRIVATE, **VIEWS)
    t_inputs, t_outputs = [t_method, t_layer, t_metric], [table, summary]
    for trigger in (t_method.input, t_layer.input, t_metric.input):
        trigger(safe(2)(on_table), t_inputs, t_outputs, **PRIVATE, **VIEWS)
    row_inputs = [image_id, table, layer, head, box]
    table.select(safe(n + 2)(on_row), row_inputs, [model_a, model_b, *pair_outputs], **PRIVATE, **VIEWS)

    def on_tab(*values):
        first = safe(n)(pair_view)(*values[: len(pair_inputs)])
        if not has_pairs:
            return (*first, gr.skip(), gr.skip())
        second = safe(2)(on_table)(*values[len(pair_inputs) :])
        return (*first, *second)

    tab.select(on_tab, [*pair_inputs, *t_inputs], [*pair_outputs, *t_outputs], **PRIVATE, **VIEWS)


def _click_on_shift(size: tuple[int, int], index, warned: bool) -> tuple[float, float]:
    """A click on the shift picture as a normalized point of the image (the bands above the image are skipped)."""
    from PIL import Image

    from vitattn.render import banner, fit

    w, h = fit(Image.new("RGB", size), variants_view.SHIFT_SIDE).size
    top = banner(w, "shift").height + (render.text_band(w, RANDOM_WEIGHTS).height if warned else 0)
    x, y = float(index[0]), float(index[1]) - top
    return min(max(x / w, 0.0), 1.0), min(max(y / h, 0.0), 1.0)


# -- Features ----------------------------------------------------------------------------------------------------


def _features_tab(ex: Explorer, controls: dict) -> None:
    ids = ex.image_ids()
    with_heads = [m for m in ex.models() if get_spec(m).family != "resnet"]  # the spec: no network loaded
    image_id, model, method, layer = (controls[k] for k in ("image_id", "model", "method", "layer"))
    with gr.Tab("Features", id="features", elem_id="features-panel") as tab:
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
        with gr.Row():
            diversity = gr.ScatterPlot(
                x="layer",
                y="diversity",
                color="model",
                title="Head diversity per layer (0: all heads alike, 1: disjoint)",
                x_title="layer (0 = first block)",
                y_title="mean pairwise TV distance of the heads' maps",
                height=360,
                elem_id="head-diversity-plot",
                show_label=False,
            )
        dot_places = gr.State([])  # where the picture's dots are (render.Dot), for a click
        picked = gr.State()  # the head a click on the picture picked
        stat_table = gr.Dataframe(
            label="Per head (click a row: open that head in the Attention tab)",
            interactive=False,
            max_height=260,
            elem_id="head-stats-table",
        )
        export.csv_button(stat_table, "head-statistics")
        gr.Markdown("### Faithfulness (image, model, method and layer: the controls above; all heads fused)")
        with gr.Row():
            mode = gr.Radio(list(features_view.MODES), value="blur", label="A removed patch becomes")
            run = gr.Button(
                f"Compute deletion and insertion ({4 * features_view.STEPS - 2} forward passes, live)",
                variant="primary",
            )
        with gr.Row():
            curves = gr.LinePlot(
                x="fraction",
                y="score",
                color="curve",
                title="Deletion and insertion",
                x_title="share of patches removed (deletion) or inserted (insertion)",
                y_title="model score",
                height=360,
                elem_id="faithfulness-plot",
                show_label=False,
            )
            with gr.Column():
                areas = gr.Dataframe(
                    pd.DataFrame(columns=["curve", "auc", "better", "score", "source"]),
                    label="Areas under the curves (press the button)",
                    interactive=False,
                    elem_id="faithfulness-areas",
                )
                export.csv_button(areas, "faithfulness-areas")
        with gr.Column(visible=False):  # the public endpoints' typed inputs and named outputs (inside a tab: Tabs
            _api(ex)  # hold tabs only)

    def on_pca(image, extra, model_name, lay, back, together):
        picture, _ = features_view.pca(ex, [image, *(extra or [])], model_name, int(lay), back, bool(together))
        return picture

    def on_stats(models, image, which):
        frame, div, note = features_view.head_stats(ex, models or [], image, which)
        picture, places = features_view.dots_picture(ex, frame, which)
        div = div.assign(layer=lambda f: f["layer"].map(_layer_tick))
        return picture, places, div, note, frame

    def on_run(image, model_name, meth, lay, how):
        return features_view.faithfulness(ex, image, model_name, meth, int(lay), how)

    link_outputs, wire = _linker(controls)

    def head_link(image, model_name: str, lay: int, hd: int) -> tuple:
        """Opens one head in the Attention tab, under the image-level method the statistics describe."""
        model_info = ex.info(model_name)
        meth = next((m for m in features_view.DIVERSITY_METHODS if model_info.heads.get(m, 0) > 0), None)
        if meth is None or lay not in model_info.layers[meth]:
            meth = next(m for m in model_info.methods if model_info.heads.get(m, 0) > 0)
        return _link_updates(ex, image, model_name, meth, lay, hd)

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
            return _skip(6)
        return head_link(image, pick["model"], int(pick["layer"]), int(pick["head"]))

    pca_inputs = [image_id, more, model, layer, background, joint]
    for trigger in (more.input, background.input, joint.input):  # the header's values: read when the tab opens
        trigger(safe(1)(on_pca), pca_inputs, pca, **PRIVATE, **VIEWS)
    stat_inputs = [stat_models, image_id, stat]
    stat_outputs = [dots, dot_places, diversity, stat_note, stat_table]
    for trigger in (stat_models.input, stat.input):
        trigger(safe(5)(on_stats), stat_inputs, stat_outputs, **PRIVATE, **LIVE)
    wire(stat_table.select(safe(6)(on_stat_row), [image_id, stat_table], link_outputs, **PRIVATE, **VIEWS))
    dots.select(safe(1)(on_dot), dot_places, picked, **PRIVATE, **VIEWS)
    wire(picked.change(safe(6)(on_picked), [image_id, picked], link_outputs, **PRIVATE, **VIEWS))
    run.click(safe(2)(on_run), [image_id, model, method, layer, mode], [curves, areas], **PRIVATE, **LIVE)

    def on_tab(*values):
        picture = safe(1)(on_pca)(*values[: len(pca_inputs)])
        return (picture, *safe(5)(on_stats)(*values[len(pca_inputs) :]))

    tab.select(on_tab, [*pca_inputs, *stat_inputs], [pca, *stat_outputs], **PRIVATE, **LIVE)


def _layer_tick(layer: int) -> str:
    """A layer as a category of a plot's x axis ("00", "01", ...: sorted in order, one tick per layer)."""
    return f"{int(layer):02d}"


# -- the public API ----------------------------------------------------------------------------------------------


def _api(ex: Explorer) -> None:
    """The public endpoints, on hidden typed inputs (``view_api``: int layer and head, named outputs)."""
    models, ids = all_models(ex), ex.image_ids()

    def text(name: str, doc: str, default=None) -> gr.Textbox:
        return gr.Textbox(default, label=f"{name}: {doc}", **HIDDEN)

    def choice(name: str, doc: str, values, default=None) -> gr.Dropdown:
        return gr.Dropdown(list(values), value=default, label=f"{name}: {doc}", allow_custom_value=True, **HIDDEN)

    def integer(name: str, doc: str, default: int) -> gr.Number:
        return gr.Number(default, precision=0, label=f"{name}: {doc}", **HIDDEN)

    def table(name: str) -> gr.Dataframe:
        return gr.Dataframe(label=name, visible=False)

    def picture(name: str) -> gr.Image:
        return gr.Image(label=name, format="png", visible=False)

    model = choice("model", "a model name", models, models[0] if models else None)
    method = text("method", "a method of the model, e.g. cls", "cls")
    metric = choice("metric", "a metric column; mse, kl, emd: lower is better", METRIC_NAMES, "iou_90")
    first = integer("first_layer", "first layer of the range", 0)
    last = integer("last_layer", "last layer of the range (-1: the model's last)", -1)
    layer = integer("layer", "layer (-1: the last)", -1)
    head = integer("head", "head (-1: all heads fused)", -1)
    feature = text("feature", "a box label (feature type)")
    k = integer("k", "how many images (1..12)", 6)
    image = choice("image_id", "an image id", ids, ids[0] if ids else None)
    model_a = choice("model_a", "model A (e.g. the frozen model)", models, models[0] if models else None)
    model_b = choice("model_b", "model B (e.g. its fine-tuned variant)", models, models[-1] if models else None)
    box = integer("box", "an expert box index (-1: the whole image)", -1)
    opacity = gr.Number(0.6, label="opacity: weight of the map colours (0..1)", **HIDDEN)
    at = text("layer", "'last', 'best' or a layer number", "last")
    images = text("image_ids", "one image id or several, comma-separated (at most 6)")
    background = text("background", "'none', 'auto' or a threshold in (0, 1)", "none")
    joint = gr.Checkbox(True, label="joint: one PCA for all images", **HIDDEN)
    names = text("models", "comma-separated model names (empty: every model)", "")
    stat = choice("stat", "distance_px, entropy or prefix_share", features_view.STATS, "distance_px")
    mode = choice("mode", "blur or mean", features_view.MODES, "blur")

    def head_ranking(model: str, method: str, metric: str, first_layer: int, last_layer: int) -> pd.DataFrame:
        """Every single head of a model and method ranked by its mean rank over the images (1 = best), with its mean
        score, how often it is the top-1 and in the top-3 head; ``mse``, ``kl`` and ``emd`` rank the lowest first."""
        return heads.ranking(ex, model, method, metric, first_layer, last_layer)

    def head_matrix(model: str, method: str, first_layer: int, last_layer: int):
        """Mean per-box IoU of each head for each feature type (box label) with box counts, as a heat table, and the
        best head per feature type as a table."""
        return heads.matrix(ex, model, method, first_layer, last_layer)

    def head_exemplars(model: str, method: str, layer: int, head: int, feature: str, k: int):
        """The k images where one head scores best on one feature type: its map over each, and the numbers."""
        return heads.exemplars(ex, model, method, layer, head, feature, k)

    def variant_compare(
        image_id: str, model_a: str, model_b: str, method: str, layer: int, head: int, box: int, opacity: float = 0.6
    ):
        """Model A and model B (e.g. frozen and fine-tuned) on one image: both maps on one colour scale, the shift
        map B - A on a symmetric diverging scale, and every metric with its delta (whole image, or box ``box``)."""
        return variants_view.compare(ex, image_id, model_a, model_b, method, layer, head, box, opacity)

    def variant_table(method: str, layer: str, metric: str):
        """Fine-tuned vs frozen per model and strategy: means, paired delta with a bootstrap interval, d_z, the
        Holm-corrected p-value, Enhance / Preserve / Destroy, and each variant's validation accuracy."""
        at_layer = int(layer) if isinstance(layer, str) and layer.strip().lstrip("-").isdigit() else layer
        return variants_view.table(ex, method, at_layer, metric, -1)

    def pca_endpoint(image_ids: str, model: str, layer: int, background: str, joint: bool):
        """PCA feature maps of a layer (first 3 components as RGB) for one or several images, one joint PCA."""
        return features_view.pca(ex, image_ids, model, layer, background, joint)

    def head_stats(models: str, image_id: str, stat: str):
        """Per head and layer a statistic (mean attention distance in px, CLS entropy or prefix share) of every
        chosen ViT, and head diversity per layer; from the store's table, else live on the image."""
        return features_view.head_stats(ex, models, image_id, stat)

    def faithfulness(image_id: str, model: str, method: str, layer: int, mode: str):
        """Deletion and insertion curves of a fused map beside a random patch order, and their areas (live)."""
        return features_view.faithfulness(ex, image_id, model, method, layer, mode)

    pca_endpoint.__name__ = "pca"
    endpoints = {
        "head_ranking": (head_ranking, [model, method, metric, first, last], [table("ranking")], VIEWS),
        "head_matrix": (head_matrix, [model, method, first, last], [picture("matrix"), table("best_heads")], VIEWS),
        "head_exemplars": (
            head_exemplars,
            [model, method, layer, head, feature, k],
            [gr.Gallery(label="exemplars", visible=False), table("numbers")],
            VIEWS,
        ),
        "variant_compare": (
            variant_compare,
            [image, model_a, model_b, method, layer, head, box, opacity],
            [picture("pair"), picture("shift"), table("deltas")],
            VIEWS,
        ),
        "variant_table": (
            variant_table,
            [method, at, metric],
            [table("deltas"), gr.Markdown(label="summary", visible=False)],
            VIEWS,
        ),
        "pca": (
            pca_endpoint,
            [images, model, layer, background, joint],
            [picture("pca"), gr.JSON(label="data", visible=False)],
            VIEWS,
        ),
        "head_stats": (
            head_stats,
            [names, image, stat],
            [table("heads"), table("diversity"), gr.Textbox(label="source", visible=False)],
            LIVE,
        ),
        "faithfulness": (
            faithfulness,
            [image, model, method, layer, mode],
            [table("curves"), table("areas")],
            LIVE,
        ),
    }
    for name, (fn, inputs, outputs, group) in endpoints.items():
        gr.on([], guard(fn), inputs, outputs, api_name=name, api_description=_doc(fn), **group)


def build(explorer: Explorer, controls: dict) -> None:
    """Adds the Heads, Variants and Features tabs and their endpoints; call inside the app's open ``gr.Tabs()``.

    Args:
        explorer: the app's data.
        controls: the app's components ``tabs``, ``image_id``, ``model``, ``method``, ``layer``, ``head``, and
            optionally ``refresh`` (see the module docstring).
    """
    missing = [k for k in ("tabs", "image_id", "model", "method", "layer", "head") if k not in controls]
    if missing:
        raise ValueError(f"more_tabs.build needs the app's components {missing}")
    _heads_tab(explorer, controls)
    _variants_tab(explorer, controls)
    _features_tab(explorer, controls)  # also the public endpoints (_api)
