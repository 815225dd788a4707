"""The class a gradient map explains (``target``) and the similarity map's fixed [-1, 1] scale, as the handlers give
them, on the tiny random-weight store (no browser, no server).

Every chosen-class map is checked against ``Model.analyze(image, target=t)`` of a model built here independently of
the app (``small_models.small_model``: the same seeded recipe the store was made with), and every class score
against torch's softmax of that model's own logits.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from app_support import store_dir
from small_models import small_model

from vitattn import render
from vitattn.labels import imagenet_labels
from vitattn.metrics import all_metrics
from vitattn.store import open_store
from vitattn.ui import AppConfig, Explorer
from vitattn.ui.actions import similarity as sim_actions, views
from vitattn.ui.data.catalog import FUSED

# (model, method, head) of every gradient method of a classifier: agcam per head too, gae and gradcam fused only.
EXPLAINED = [("vit", "agcam", None), ("vit", "agcam", 1), ("vit", "gae", None), ("resnet50", "gradcam", None)]
IMAGE = "chelsea"


@pytest.fixture(scope="module")
def store() -> Path:
    return store_dir()


def reference_logits(model: str, image) -> torch.Tensor:
    """The classifier's ``(1000,)`` logits, straight from its torch module."""
    m = small_model(model)
    with torch.no_grad():
        return m.module(m.transform(image).unsqueeze(0))[0].double()


def ranked(model: str, image) -> list[int]:
    """Class indexes by the reference logits, best first."""
    return torch.argsort(reference_logits(model, image), descending=True).tolist()


def not_top1(model: str, image) -> int:
    """A class other than the top-1: the third best (a class the page's top-5 offers)."""
    return ranked(model, image)[2]


# -- maps of a chosen class ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model, method, head", EXPLAINED)
def test_a_chosen_class_map_is_the_models_own_map_of_that_class(ex, model, method, head):
    image = ex.item(IMAGE).image()
    target = not_top1(model, image)
    layer = ex.info(model).layers[method][-1]
    _, _, data = views.attention(ex, IMAGE, model, method, layer, FUSED if head is None else head, 0.6, target=target)
    expected = small_model(model).analyze(image, target=target).map(method, layer, head)
    np.testing.assert_allclose(np.array(data["map"]), expected, atol=1e-5)
    assert data["source"] == "live" and data["random_weights"] is True  # live, random weights: labelled as such
    assert data["target"] == target and data["target_label"] == imagenet_labels()[target]
    assert data["target_top1"] is False
    top1 = np.array(views.attention(ex, IMAGE, model, method, layer, FUSED if head is None else head)[2]["map"])
    assert not np.allclose(top1, expected, atol=1e-4)  # the class does change the map


@pytest.mark.parametrize("model, method, head", EXPLAINED)
def test_no_target_and_the_top1_index_both_give_the_stored_top1_map(ex, store, model, method, head):
    image = ex.item(IMAGE).image()
    top1 = ranked(model, image)[0]
    layer = ex.info(model).layers[method][0]
    h = FUSED if head is None else head
    stored = open_store(store).map(IMAGE, model, method, layer, head)
    direct = small_model(model).analyze(image, target=top1).map(method, layer, head)  # the class named explicitly
    np.testing.assert_allclose(stored, direct, atol=1e-4 * max(1.0, float(np.abs(direct).max())))
    for target in (None, -1, top1):
        _, _, data = views.attention(ex, IMAGE, model, method, layer, h, 0.6, target=target)
        assert data["source"] == "store" and data["target"] == top1 and data["target_top1"] is True
        np.testing.assert_allclose(np.array(data["map"]), stored, atol=1e-5)


def _another_class(item) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The tiny vit's logits and probabilities on ``item`` (computed here, not by the app), and a class that is not
    its top-1."""
    logits = reference_logits("vit", item.image())
    return logits, torch.softmax(logits, dim=-1), not_top1("vit", item.image())


def test_the_class_score_is_the_softmax_of_the_models_logits(ex):
    item = ex.item(IMAGE)
    logits, probs, target = _another_class(item)
    _, _, data = views.attention(ex, IMAGE, "vit", "agcam", 1, FUSED, 0.6, target=target)
    assert data["target_prob"] == pytest.approx(float(probs[target]), abs=1e-5)
    assert data["target_logit"] == pytest.approx(float(logits[target]), abs=1e-4)
    # The top-1 class: its probability as the store has it (the precompute job's own softmax), the same number.
    stored = open_store(ex.config.store).predictions(IMAGE, "vit")
    fresh = Explorer.open(AppConfig(store=ex.config.store))  # nothing computed live yet: the store alone answers
    _, _, top = views.attention(fresh, IMAGE, "vit", "agcam", 1, FUSED, 0.6)
    assert top["target_label"] == stored[0][0] == imagenet_labels()[int(torch.argmax(logits))]
    assert top["target_prob"] == pytest.approx(float(probs.max()), abs=1e-4) == pytest.approx(stored[0][1])
    assert top["target_logit"] is None and fresh.live.cached_logits(item.key, "vit") is None  # no network loaded


def test_the_picture_names_the_explained_class_with_its_probability_and_logit(ex):
    item = ex.item(IMAGE)
    logits, probs, target = _another_class(item)
    picture, _, _ = views.attention(ex, IMAGE, "vit", "agcam", 1, FUSED, 0.6, target=target)
    width = item.picture.width
    label = imagenet_labels()[target]
    text = f"explaining '{label}' (p {float(probs[target]):.3g}, logit {float(logits[target]):.3g})"
    title = f"{IMAGE} · vit · agcam · layer 1 · all heads fused"
    first = render.banner(width, title, views.RANDOM_LABEL)
    second = render.banner(width, text if _fits(text, width) else text.replace(label, label.split(",")[0]))
    shown = np.asarray(picture)
    assert np.array_equal(shown[: first.height], np.asarray(first))
    assert np.array_equal(shown[first.height : first.height + second.height], np.asarray(second))
    # A click on the map finds the expert box under it below both bands (the smallest box: nothing nests in it).
    smallest = min(range(len(item.boxes)), key=lambda i: _area(item.boxes[i].box))
    box = item.boxes[smallest].box
    x, y = (box[0] + box[2]) / 2 * width, first.height + second.height + (box[1] + box[3]) / 2 * item.picture.height
    assert views.attention_click(ex, IMAGE, "vit", "agcam", 1, FUSED, -1, (x, y), target) == smallest
    # An attention map explains no class: one band, no class in the numbers.
    plain, _, data = views.attention(ex, IMAGE, "vit", "cls", 1, FUSED, 0.6)
    assert data["target"] is None and plain.height == picture.height - second.height


def _area(box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _fits(text: str, width: int) -> bool:
    from PIL import Image, ImageDraw

    return ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=render.font(14)) + 12 <= width


def test_the_strip_the_head_grid_and_the_chart_follow_the_chosen_class(ex):
    image = ex.item(IMAGE).image()
    target = not_top1("vit", image)
    reference = small_model("vit").analyze(image, target=target)
    _, strip = views.layer_strip(ex, IMAGE, "vit", "agcam", FUSED, 0.6, "per map", target)
    for layer, values in zip(strip["layers"], strip["maps"], strict=True):
        np.testing.assert_allclose(np.array(values), reference.map("agcam", layer), atol=1e-5)
    assert strip["target"] == target and strip["source"] == ["live"]
    _, grid = views.head_grid(ex, IMAGE, "vit", "agcam", 1, 0.6, "shared", target)
    np.testing.assert_allclose(np.array(grid["maps"]), reference.heads("agcam", 1), atol=1e-5)
    rows = views.layer_chart(ex, IMAGE, "vit", "agcam", 1, FUSED, 50, -1, target)
    boxes = ex.item(IMAGE).boxes
    got = rows[rows["series"] == "map iou_50"]["value"].tolist()
    expected = [all_metrics(reference.map("agcam", v), boxes)["iou_50"] for v in (0, 1)]
    assert got == pytest.approx(expected, abs=1e-4)
    _, strip = views.layer_strip(ex, IMAGE, "resnet50", "gradcam", FUSED, 0.6, "per map", not_top1("resnet50", image))
    resnet = small_model("resnet50").analyze(image, target=not_top1("resnet50", image))
    for layer, values in zip(strip["layers"], strip["maps"], strict=True):
        np.testing.assert_allclose(np.array(values), resnet.map("gradcam", layer), atol=1e-5)


def test_attention_methods_ignore_the_class_and_a_chosen_class_recomputes_gradient_methods_only(ex):
    item = ex.item(IMAGE)
    target = not_top1("vit", item.image())
    cls_top1, _ = ex.map(item, "vit", "cls", 1, None)
    cls_target, origin = ex.map(item, "vit", "cls", 1, None, target)
    assert origin == "store" and np.array_equal(cls_top1, cls_target)
    ex.map(item, "vit", "agcam", 1, None, target)
    explained = ex.live.cached(item.key, "vit", target)
    assert explained is not None and set(explained.methods) == {"agcam", "gae"} and not explained.feats


def test_a_chosen_class_analysis_is_cached_within_the_live_bound(store):
    ex = Explorer.open(AppConfig(store=str(store), analyses=2))
    item = ex.item(IMAGE)
    classes = ranked("vit", item.image())[1:4]
    for t in classes:
        ex.map(item, "vit", "gae", 1, None, t)
    assert [ex.live.cached(item.key, "vit", t) is not None for t in classes] == [False, True, True]
    again = ex.live.cached(item.key, "vit", classes[-1])
    ex.map(item, "vit", "gae", 0, None, classes[-1])
    assert ex.live.cached(item.key, "vit", classes[-1]) is again  # the same analysis, not recomputed


def test_where_a_class_can_be_chosen_and_the_errors_elsewhere(ex):
    assert views.target_applies(ex, "vit", "agcam") and views.target_applies(ex, "vit32", "gae")
    assert views.target_applies(ex, "resnet50", "gradcam")
    assert not views.target_applies(ex, "vit", "cls") and not views.target_applies(ex, "dinov2", "gae")
    with pytest.raises(gr.Error, match=r"target applies only to the gradient methods .* use target -1"):
        views.attention(ex, IMAGE, "vit", "cls", 1, FUSED, 0.6, target=3)
    with pytest.raises(gr.Error, match=r"target applies only .*dinov2/gae"):
        views.layer_strip(ex, IMAGE, "dinov2", "gae", FUSED, 0.6, "per map", 3)
    views.attention(ex, IMAGE, "dinov2", "gae", 1, FUSED, 0.6, target=-1)  # -1 (the top-1) is fine anywhere
    for bad in (1000, -2):
        with pytest.raises(gr.Error, match=r"target .* out of range: valid ImageNet classes 0\.\.999"):
            views.attention(ex, IMAGE, "vit", "agcam", 1, FUSED, 0.6, target=bad)
    for bad in (2.5, "7", True):
        with pytest.raises(gr.Error, match="target must be a whole number"):
            views.head_grid(ex, IMAGE, "vit", "agcam", 1, 0.6, "per map", bad)
    assert views.page_target(ex, "vit", "cls", 7) is None and views.page_target(ex, "vit", "agcam", 7) == 7


def test_the_class_choices_are_the_top5_then_every_class_alphabetically(ex):
    item = ex.item(IMAGE)
    probs = torch.softmax(reference_logits("vit", item.image()), dim=-1)
    choices = views.class_choices(ex, IMAGE, "vit")
    best = torch.argsort(probs, descending=True)[:5].tolist()
    assert [i for _, i in choices[:5]] == best
    labels = imagenet_labels()
    first = choices[0][0]
    assert first.startswith(f"1. {labels[best[0]]} · ")
    assert float(first.rsplit(" · ", 1)[1]) == pytest.approx(float(probs[best[0]]), abs=0.01)
    rest = choices[5:]
    assert sorted(i for _, i in rest) == list(range(1000))
    assert [name for name, _ in rest] == sorted((name for name, _ in rest), key=str.lower)
    assert ("crane (134)", 134) in rest and ("crane (517)", 517) in rest  # ImageNet's one twice-used name
    assert views.class_choices(ex, IMAGE, "dinov2") == []


# -- similarity on a fixed scale ----------------------------------------------------------------------------------


def _hex(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


BLUE, RED = _hex("#2166ac"), _hex("#b2182b")  # the two ends of ColorBrewer's RdBu (reversed): -1 and 1


def test_a_fixed_scale_similarity_map_is_drawn_on_minus_one_to_one(ex):
    # A point selects one patch, whose cosine similarity to itself is exactly 1.
    args = (ex, IMAGE, "dinov2", 1, 0.3, 0.4, 0.3, 0.4, 1.0)  # opacity 1: the map's colours alone
    fixed, data = sim_actions.similarity(*args, "fixed [-1, 1]")
    own, own_data = sim_actions.similarity(*args, "per map")
    sim = np.array(data["similarity"])
    assert data["scale"] == "fixed [-1, 1]" and data["range"] == [-1.0, 1.0]
    assert own_data["range"] == pytest.approx([sim.min(), sim.max()], abs=1e-6) and sim.min() > -1
    item = ex.item(IMAGE)
    width, height = item.picture.size
    top = render.banner(width, f"{IMAGE} · dinov2 · layer 1 · similarity to the point", views.RANDOM_LABEL).height
    # the same picture above the bar; a diverging bar (the fixed scale) puts its caption on a line of its own
    assert fixed.width == own.width == width and fixed.height > own.height
    (r, c), gh, gw = data["selected"][0], *sim.shape
    centre = np.asarray(fixed)[top + int((r + 0.5) * height / gh), int((c + 0.5) * width / gw)].astype(float)
    assert np.abs(centre - RED).max() <= 3  # similarity 1: the red end
    # The least similar patch: on its own range it is the darkest inferno colour; on the fixed scale the colour of
    # its value, (s + 1) / 2 along the blue-white-red ramp (worked out here from the ramp's nine stops).
    r, c = np.unravel_index(np.argmin(sim), sim.shape)
    y, x = top + int((r + 0.5) * height / gh), int((c + 0.5) * width / gw)
    stops = np.array([_hex(h) for h in render.DIVERGING])
    t = (sim[r, c] + 1) / 2
    expected = np.array([np.interp(t, np.linspace(0, 1, 9), stops[:, k]) for k in range(3)])
    assert np.abs(np.asarray(fixed)[y, x].astype(float) - expected).max() <= 6
    assert np.abs(np.asarray(own)[y, x].astype(float) - _hex("#000004")).max() <= 6
    # The colour bars: blue to red on the fixed scale, inferno's ends on the map's own range.
    for picture, (left, right) in ((fixed, (BLUE, RED)), (own, (_hex("#000004"), _hex("#fcffa4")))):
        bar = np.asarray(picture)[top + height + 2 + render.BAR_HEIGHT // 2]  # the ramp's middle row
        assert (
            np.abs(bar[8].astype(float) - left).max() <= 3 and np.abs(bar[width - 9].astype(float) - right).max() <= 3
        )
    with pytest.raises(gr.Error, match="scale must be one of 'per map', 'fixed \\[-1, 1\\]'"):
        sim_actions.similarity(*args, "shared")
    assert views.SIM_SCALES == ("per map", "fixed [-1, 1]")


def test_the_class_names_read_from_timms_files_are_timms_imagenet_info():
    """``imagenet_labels`` reads timm's label files without importing timm (seconds on a CPU); what it reads must be
    what timm's own ``ImageNetInfo`` gives, index by index."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    assert imagenet_labels() == tuple(info.index_to_description(i) for i in range(info.num_classes()))
    assert imagenet_labels()[281] == "tabby, tabby cat" and imagenet_labels()[134] == imagenet_labels()[517] == "crane"
