"""The Text tab's actions: where a language-supervised model (CLIP, SigLIP, SigLIP 2) sees a prompt, scored
against the boxes of that label.

Prompts are typed (separated by commas or new lines) or picked among the image's box labels. Each text method's map
(``vitattn.text``: naclip, legrad, maskclip, sclip, clearclip, gae with the prompt as target) is drawn side by side,
one row per prompt, all on one colour scale (``render.map_rows``), with that prompt's boxes outlined. A prompt's
boxes are the boxes labelled with it; boxes without any label (your own, drawn on an upload) belong to every prompt.
The metrics are ``vitattn.metrics.all_metrics`` of each map against those boxes, with the baselines
(``Explorer.baselines``) on the same boxes beside them. Maps come from the store or live (``data/text.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import gradio as gr
import pandas as pd
from PIL import Image

from vitattn import render
from vitattn.boxes import LabeledBox
from vitattn.metrics import LOWER_IS_BETTER
from vitattn.text.specs import TEXT_METHODS, TOWERS, has_text
from vitattn.ui.actions.views import BASELINES, DECIMALS, OPACITY, _check_opacity, _warning, numbers
from vitattn.ui.data.catalog import parse_boxes
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.data.text import TEMPLATES, TextView

MAX_PROMPTS = 8
ALL = "all"
# One row per prompt and metric: which way is better, each method's value, then each baseline on the same boxes.
FIXED_COLUMNS = ["prompt (boxes)", "metric", "better"]


def no_text(ex: Explorer, model: str) -> str:
    """The one line the tab shows for a model without a text tower."""
    here = [m for m in ex.models() if has_text(m)]
    where = f"; in this app: {', '.join(here)}" if here else "; this app has none of them"
    return f"**{model} has no text tower.** Text maps need a language-supervised model: {', '.join(TOWERS)}{where}."


def has_text_tower(ex: Explorer, model: str) -> bool:
    ex.info(model)
    return has_text(model)


def parse_prompts(text: str | Sequence[str] | None) -> list[str]:
    """Prompts typed as text, separated by commas or new lines (or a list of them), stripped, each once."""
    parts = [text] if isinstance(text, str) or text is None else list(text)
    if not all(isinstance(p, str) or p is None for p in parts):
        raise fail(f"prompts must be text, got {brief(text)}")
    prompts = list(dict.fromkeys(s.strip() for p in parts for s in re.split(r"[,\n;]", p or "") if s.strip()))
    if not prompts:
        raise fail("type a prompt (several: separated by commas), or pick a box label of the image")
    if len(prompts) > MAX_PROMPTS:
        raise fail(f"{len(prompts)} prompts; at most {MAX_PROMPTS} at a time")
    return prompts


def check_methods(methods: str | Sequence[str] | None) -> tuple[str, ...]:
    """Text methods, comma-separated or a list; "all" (or empty) is every one, in ``TEXT_METHODS``' order."""
    names = [methods] if isinstance(methods, str) or methods is None else list(methods)
    chosen = [s.strip() for n in names for s in str(n or "").split(",") if s.strip()]
    if not chosen or chosen == [ALL]:
        return TEXT_METHODS
    bad = [m for m in chosen if m not in TEXT_METHODS]
    if bad:
        raise fail(f"unknown text method {brief(bad[0])}; valid: {ALL}, or any of {', '.join(TEXT_METHODS)}")
    return tuple(m for m in TEXT_METHODS if m in chosen)


def check_templates(ex: Explorer, model: str, templates: str | None) -> str:
    """The templates asked, or (empty) the store's for this model, else the app's default."""
    if templates in (None, ""):
        return ex.text.templates(model)
    if templates not in TEMPLATES:
        raise fail(f"templates must be one of {', '.join(TEMPLATES)} (empty: the store's), got {brief(templates)}")
    return str(templates)


def labels(ex: Explorer, image_id: str, boxes: str = "") -> list[str]:
    """The distinct box labels of the image (or of your boxes), sorted: the prompts one can pick."""
    return sorted({b.label for b in _boxes(ex, image_id, boxes) if b.label})


def _boxes(ex: Explorer, image_id: str, boxes: str) -> tuple[LabeledBox, ...]:
    """Your boxes when given (typed ``x0 y0 x1 y1 [label]`` per line), else the image's (an upload's: yours, once
    scored in the Your-image tab)."""
    return parse_boxes(boxes) if boxes and boxes.strip() else ex.item(image_id).boxes


def boxes_of(all_boxes: Sequence[LabeledBox], prompt: str) -> tuple[LabeledBox, ...]:
    """The boxes a prompt is scored against: those labelled with it; unlabelled boxes belong to every prompt."""
    return tuple(b for b in all_boxes if b.label == prompt or not b.label)


def _views(ex, image_id, model, prompts, methods, templates) -> tuple:
    item = ex.item(image_id)
    ex.text.check_model(model)
    prompts, methods = parse_prompts(prompts), check_methods(methods)
    templates = check_templates(ex, model, templates)
    return item, prompts, methods, templates, ex.text.maps(item, model, prompts, methods, templates)


def text_map(
    ex: Explorer,
    image_id: str,
    model: str,
    prompts: str,
    methods: str = ALL,
    templates: str = "",
    opacity: float = OPACITY,
    boxes: str = "",
) -> tuple[Image.Image, dict]:
    """Where a text model (clip, siglip, siglip2) sees each prompt: every text method's map at the last layer, one
    row per prompt, all on one colour scale, the boxes of that label outlined; and the maps as numbers.

    Args:
        prompts: one or more, separated by commas (a box label of the image is scored against its boxes).
        methods: "all", or comma-separated text methods (naclip, legrad, maskclip, sclip, clearclip, gae).
        templates: "imagenet80" (80 prompt templates, averaged), "none" (as typed), or "" (the store's).
        boxes: your boxes (x0 y0 x1 y1 [label] per line) instead of the image's; "" for the image's.
    """
    opacity = _check_opacity(opacity)
    item, prompts, methods, templates, shown = _views(ex, image_id, model, prompts, methods, templates)
    mine = _boxes(ex, image_id, boxes)
    rows = [[v for v in shown if v.prompt == p] for p in prompts]
    outlined = [boxes_of(mine, p) for p in prompts]
    headings = [_heading(p, len(b), templates, bool(mine)) for p, b in zip(prompts, outlined, strict=True)]
    origins = {v.origin for v in shown}
    picture = render.map_rows(
        item.picture,
        [[v.values for v in row] for row in rows],
        [[_title(v) for v in row] for row in rows],
        headings,
        boxes=outlined,
        opacity=opacity,
        side=240,
        warning=_warning(ex, origins, model),
        bar_label=f"{item.id} · {model} · cosine or relevance with the prompt, one scale for every panel",
    )
    lo, hi = render.shared_range([v.values for v in shown])
    data = {
        "image_id": item.id,
        "model": model,
        "templates": templates,
        "range": [round(lo, DECIMALS), round(hi, DECIMALS)],
        "random_weights": any(ex.random_weights(o, model) for o in origins),
        "maps": [
            {
                "prompt": v.prompt,
                "method": v.method,
                "layer": v.layer,
                "source": v.origin,
                "grid": list(v.values.shape),
                "map": numbers(v.values),
            }  # fmt: skip
            for v in shown
        ],
    }
    return picture, data


def _title(v: TextView) -> str:
    return f"{v.method} ({v.origin})"


def _heading(prompt: str, n_boxes: int, templates: str, any_boxes: bool) -> str:
    none = "no box of this label" if any_boxes else "the image has no boxes"
    boxes = f"{n_boxes} box{'es' if n_boxes != 1 else ''} outlined" if n_boxes else none
    through = "" if templates == "none" else f", through the {templates} templates"
    return f"\u201c{prompt}\u201d{through} · {boxes}"


def text_metrics(
    ex: Explorer,
    image_id: str,
    model: str,
    prompts: str,
    methods: str = ALL,
    templates: str = "",
    boxes: str = "",
) -> pd.DataFrame:
    """Every metric of each text method's map of each prompt against the boxes of that label (IoU at each
    percentile, coverage, pointing, the continuous and threshold-free ones), beside the baselines on the same boxes.
    One row per prompt (with its number of boxes) and metric; a prompt that labels no box is left out (no rows when
    none does).

    Args:
        prompts: one or more, separated by commas; box labels of the image (or of your boxes) are scored.
        methods: "all", or comma-separated text methods.
        templates: "imagenet80", "none", or "" (the store's).
        boxes: your boxes (x0 y0 x1 y1 [label] per line) instead of the image's; "" for the image's.
    """
    item, prompts, methods, templates, shown = _views(ex, image_id, model, prompts, methods, templates)
    mine = _boxes(ex, image_id, boxes)
    columns = [*FIXED_COLUMNS, *methods, *BASELINES]
    rows = []
    for prompt in prompts:
        scored = boxes_of(mine, prompt)
        if not scored:
            continue
        per_method = {v.method: ex.text.scores(item, model, v, templates, scored) for v in shown if v.prompt == prompt}
        base = ex.baselines(item, model, scored)
        for metric in next(iter(per_method.values())):
            rows.append(
                {
                    "prompt (boxes)": f"{prompt} ({len(scored)})",
                    "metric": metric,
                    "better": "lower" if metric in LOWER_IS_BETTER else "higher",
                    **{m: s[metric] for m, s in per_method.items()},
                    **{b: base.get(b, {}).get(metric) for b in BASELINES},
                }  # fmt: skip
            )
    return pd.DataFrame(rows, columns=columns).round(4)


def empty_state(ex: Explorer, image_id: str, prompts: str, boxes: str = "") -> str:
    """The one line shown instead of metrics when no prompt has boxes to be scored against ("" when one has)."""
    mine = _boxes(ex, image_id, boxes)
    try:
        asked = parse_prompts(prompts)
    except gr.Error:  # the maps' own check says what is wrong
        return ""
    if any(boxes_of(mine, p) for p in asked):
        return ""
    if not mine:
        where = "draw or type boxes in the Your image tab and press Score boxes" if _upload(ex, image_id) else ""
        return "No metrics: this image has no boxes" + (f"; {where}." if where else ".")
    return f"No metrics: no box is labelled {', '.join(map(repr, asked))}; pick a box label to score a prompt."


def _upload(ex: Explorer, image_id: str) -> bool:
    return ex.item(image_id).origin == "upload"
