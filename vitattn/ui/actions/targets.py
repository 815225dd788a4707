"""The class a gradient method of an ImageNet classifier explains: the top-1 by default, or the class ``target``
(an index 0..999; None or -1: the top-1); pictures say which class, with its probability and logit."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from vitattn import render
from vitattn.labels import NUM_CLASSES, alphabetical, short_label
from vitattn.specs import GRADIENT_METHODS
from vitattn.ui.data.classes import ClassScore
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer

TOP1 = -1  # the target value meaning "the top-1 class"
DECIMALS = 6  # of the raw maps returned as numbers


def target_applies(ex: Explorer, model: str, method: str) -> bool:
    """Whether a class can be chosen for ``method`` under ``model``: a gradient method (gradcam, agcam, gae) of an
    ImageNet classifier. The page shows its class picker where this holds."""
    return ex.explains_class(model, method)


def check_target(ex: Explorer, model: str, method: str, target: float | None) -> int | None:
    """``target`` as a class index, or None for the top-1 class (``target`` None or -1)."""
    if target is None or (isinstance(target, int | float) and not isinstance(target, bool) and target == TOP1):
        return None
    if isinstance(target, bool) or not isinstance(target, int | float | np.integer) or target != int(target):
        raise fail(
            f"target must be a whole number: an ImageNet class index 0..{NUM_CLASSES - 1}, or -1 for the top-1 class;"
            f" got {brief(target)}"
        )
    if not ex.explains_class(model, method):
        classifiers = ", ".join(m for m in ex.models() if ex.info(m).classifier) or "none here"
        raise fail(
            f"target applies only to the gradient methods ({', '.join(GRADIENT_METHODS)}) of ImageNet classifiers "
            f"({classifiers}); {model}/{method} explains no chosen class: use target -1"
        )
    if not 0 <= target < NUM_CLASSES:
        last = NUM_CLASSES - 1
        raise fail(f"target {int(target)} out of range: valid ImageNet classes 0..{last}, or -1 for the top-1 class")
    return int(target)


def page_target(ex: Explorer, model: str, method: str, target: float | None) -> int | None:
    """The page's class picker value as a view's ``target``: None where no class can be chosen (the picker is
    hidden there but keeps its last value)."""
    return check_target(ex, model, method, target) if target_applies(ex, model, method) else None


def class_choices(ex: Explorer, image_id: str, model: str) -> list[tuple[str, int]]:
    """The classes a page offers to explain, as ``(label, index)``: the classifier's top-5 with their probabilities
    first ("1. church, church building · 0.41"), then every ImageNet class alphabetically ("church, church building
    (497)"); empty for a model without an ImageNet head."""
    item = ex.item(image_id)
    if not ex.info(model).classifier:
        return []
    top = [(f"{rank}. {label} · {_probability(p)}", i) for rank, (i, label, p) in enumerate(ex.top5(item, model), 1)]
    return top + [(f"{label} ({i})", i) for label, i in alphabetical()]


def _probability(p: float) -> str:
    return f"{p:.2f}" if p >= 0.005 else f"{p:.1e}"


def _class_score(ex: Explorer, item, model: str, method: str, target: int | None) -> ClassScore | None:
    return ex.class_score(item, model, target) if ex.explains_class(model, method) else None


def explained_text(score: ClassScore, width: int | None = None) -> str:
    """ "explaining 'church, church building' (top-1, p 0.412, logit 9.1)": the class's short name when the whole
    description does not fit ``width`` pixels. No logit when only the store's probability is at hand."""
    numbers_ = f"p {score.prob:.3g}" + ("" if score.logit is None else f", logit {score.logit:.3g}")
    detail = f"({'top-1, ' if score.top1 else ''}{numbers_})"
    text = f"explaining '{score.label}' {detail}"
    if width is not None:
        measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        if measure.textlength(text, font=render.font(14)) + 12 > width:
            text = f"explaining '{short_label(score.label)}' {detail}"
    return text


def _bands(width: int, title: str, warning: str, score: ClassScore | None) -> list[Image.Image]:
    """The title band and, for a gradient map of a classifier, a second band naming the explained class."""
    bands = [render.banner(width, title, warning)] if title or warning else []
    return bands + ([render.banner(width, explained_text(score, width))] if score is not None else [])


def _class_data(score: ClassScore | None) -> dict:
    """The explained class in a view's numbers (all None where no class is explained)."""
    if score is None:
        return {"target": None, "target_label": None, "target_prob": None, "target_logit": None, "target_top1": None}
    return {
        "target": score.index,
        "target_label": score.label,
        "target_prob": round(score.prob, DECIMALS),
        "target_logit": None if score.logit is None else round(score.logit, DECIMALS),
        "target_top1": score.top1,
    }


def _with_class(picture: Image.Image, score: ClassScore | None) -> Image.Image:
    """A band naming the explained class below a picture of tiles (below: a click on a tile is found from the top)."""
    if score is None:
        return picture
    return render.stack([picture, render.banner(picture.width, explained_text(score, picture.width))])
