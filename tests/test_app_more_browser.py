"""The Heads, Variants and Features tabs used with the mouse in a real headless chromium.

On the store of ``test_app_more_support`` (tiny random dinov2: CLS + registers, siglip: no CLS, vit: a classifier,
resnet50: no heads, and vit@full: a fine-tuned variant), every dropdown, slider, checkbox, button, table row and
clickable picture of the three tabs is used the way a person does, for each of the four kinds of model. After each
action the page must settle within ``MAX_REQUESTS`` requests to Gradio's queue and show no error (no notice, no
"Error" or "failed" on the page). A click on a head opens the Attention tab on it. Screenshots:
artifacts/screens/more-*.png.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from app_support import LINK_REQUESTS, Walker, open_page
from test_app_more_support import MODELS, VARIANT, more_server, more_store

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MAX_REQUESTS = 4  # one control starts one event here (a tab opening: one; a link: the link and the Attention views)


def cell(w: Walker, table: str, row: int, col: int):
    """A cell of a Gradio table (its virtual rows: ``data-testid="cell-ROW-COL"``)."""
    return w.page.locator(f"#{table} [data-testid='cell-{row}-{col}']").first


@pytest.fixture(scope="module")
def walker():
    with open_page(more_server().url, "more", MAX_REQUESTS, notice_ok=VARIANT) as w:
        yield w


def test_the_heads_tab_with_the_mouse(walker):
    w = walker
    w.tab("Heads")
    panel = w.page.locator("#heads-panel")
    assert w.options("Model (with heads)", panel) == ["dinov2", "siglip", "vit", VARIANT]  # resnet50 has no heads
    for model in ("dinov2", "siglip", "vit"):
        w.pick("Model (with heads)", model, panel)
        for method in w.options("Method (per-head maps)", panel):
            w.pick("Method (per-head maps)", method, panel)
        w.pick("Rank by", "emd", panel)
        if w.page.locator("#heads-first input[type=range]").is_enabled():  # pool: the last layer only
            w.slide("heads-first", 1.0)
            w.slide("heads-first", 0.0)
            w.slide("heads-last", 0.0)
            w.slide("heads-last", 1.0)
        assert "emd (lower is better)" in w.page.locator("#head-ranking").inner_text()
        features = w.options("Feature type (box label)", panel)
        w.pick("Feature type (box label)", features[1], panel)
        heads = w.options("Head (default: the best for the feature type)", panel)
        w.pick("Head (default: the best for the feature type)", heads[1], panel)
        w.act("a best-head row", lambda: cell(w, "head-best", 2, 0).click())
        w.shot(f"heads-{model}")
    w.act(
        "a ranking row",
        lambda: cell(w, "head-ranking", 0, 1).click(),
        bound=LINK_REQUESTS,
    )
    assert w.selected_tab() == "Attention"
    top = w.page.locator("#top-controls")
    assert top.get_by_label("Model", exact=True).input_value() == "vit"
    assert top.get_by_label("Head", exact=True).input_value().startswith("head ")
    w.shot("heads-link-attention")
    w.tab("Heads")
    # no caption laid over an exemplar's colour-bar label (the picture's title names the image, IoU and boxes)
    assert w.page.locator("#head-exemplars img").count()
    assert not w.page.locator("#head-exemplars .caption-label").locator("visible=true").count()
    w.act("an exemplar", lambda: w.page.locator("#head-exemplars img").first.click(), bound=LINK_REQUESTS)
    assert w.selected_tab() == "Attention"


def test_the_variants_tab_with_the_mouse(walker):
    w = walker
    w.tab("Variants")
    panel = w.page.locator("#variants-panel")
    assert (
        "Preserve" in w.page.locator("#variants-table").inner_text()
        or "Enhance" in w.page.locator("#variants-table").inner_text()
        or "Destroy" in w.page.locator("#variants-table").inner_text()
    )
    for model in MODELS:
        w.pick("A (e.g. frozen)", model, panel)
        w.pick("B (e.g. fine-tuned)", VARIANT if model != "resnet50" else "resnet50", panel)
        for method in w.options("Method (both models)", panel):
            w.pick("Method (both models)", method, panel)
            if w.page.locator("#variant-layer input[type=range]").is_enabled():
                w.slide("variant-layer", 0.0)
                w.slide("variant-layer", 1.0)
            heads = w.options("Head", panel)
            if len(heads) > 1:
                w.pick("Head", heads[1], panel)
                w.pick("Head", heads[0], panel)
        w.shot(f"variants-{model}")
    w.pick("A (e.g. frozen)", "vit", panel)
    w.pick("B (e.g. fine-tuned)", VARIANT, panel)
    scopes = w.options("Metrics for", panel)
    w.pick("Metrics for", scopes[1], panel)
    assert scopes[1] in w.page.locator("#variant-deltas").inner_text()
    shift = w.page.locator("#variant-shift img").first
    size = shift.bounding_box()
    w.act("a click on the shift map", lambda: shift.click(position={"x": size["width"] * 0.5, "y": 40}))
    for choice in ("best", "last"):
        w.pick("Layer (store)", choice, panel)
    w.pick("Metric", "emd", panel)
    assert "lower is better" in w.page.locator("#variants-summary").inner_text()
    w.act("a delta-table row", lambda: cell(w, "variants-table", 0, 0).click())
    w.shot("variants")


@pytest.mark.parametrize("model", MODELS)
def test_the_features_tab_with_the_mouse_for_every_kind_of_model(walker, model):
    w = walker
    w.tab("Features")  # reached first: a page reload (see Walker.tab) would reset the header's model
    w.tab("Attention")
    w.header_model(model)
    if model == "resnet50":  # a model pick keeps the depth: the last stage (7 x 7 cells of the tiny store's model)
        w.click("first stage", w.page.locator("#layer-first"))  # leaves too few for a background threshold
    w.tab("Features")
    panel = w.page.locator("#features-panel")
    assert w.page.locator("#pca-picture img").count() == 1
    w.pick("Remove background (threshold on PC1)", "auto", panel)
    w.pick("More images (joint PCA)", "chelsea", panel)
    w.act("joint off", lambda: panel.get_by_label("One joint PCA for all images").click())
    w.act("joint on", lambda: panel.get_by_label("One joint PCA for all images").click())
    w.pick("Remove background (threshold on PC1)", "none", panel)
    for stat in ("entropy of the CLS / pooling attention (nats)", "mean attention distance (px of the 224 px input)"):
        w.pick("Statistic", stat, panel)
    w.act("Compute faithfulness", lambda: panel.get_by_role("button", name=re.compile("^Compute deletion")).click())
    areas = w.page.locator("#faithfulness-areas").inner_text()
    assert "ABPC" in areas and ("probability" in areas if model in ("vit", "resnet50") else "cosine" in areas)
    w.shot(f"features-{model}")
    if model == "vit":
        w.act(
            "a head-statistics row",
            lambda: cell(w, "head-stats-table", 5, 3).click(),
            bound=LINK_REQUESTS,
        )
        assert w.selected_tab() == "Attention"


def _picture_point(w: Walker, selector: str, x: float, y: float) -> dict:
    """A point of a picture (its own pixels) on the page: the <img> shows it scaled to fit (object-fit: contain)."""
    img = w.page.locator(selector).first
    natural = img.evaluate("e => [e.naturalWidth, e.naturalHeight]")
    box = img.bounding_box()
    scale = min(box["width"] / natural[0], box["height"] / natural[1])
    left = (box["width"] - natural[0] * scale) / 2
    top = (box["height"] - natural[1] * scale) / 2
    return {"x": left + x * scale, "y": top + y * scale}


def test_a_click_on_a_dot_opens_that_head_in_the_attention_tab(walker):
    from vitattn.ui import AppConfig, Explorer
    from vitattn.ui.actions import features as features_view

    w = walker
    w.tab("Features")
    chosen = [t.strip() for t in w.page.locator("#stat-models .token").all_inner_texts()]  # the Models (ViTs)
    ex = Explorer.open(AppConfig(store=str(more_store()), weights="small"))
    frame, _, _ = features_view.head_stats(ex, chosen, "astronaut", "distance_px")  # the store's means: any image
    picture, dots = features_view.dots_picture(ex, frame, "distance_px")
    img = "#head-stats-plot img"
    assert w.page.locator(img).first.evaluate("e => [e.naturalWidth, e.naturalHeight]") == list(picture.size)
    w.page.locator(img).first.scroll_into_view_if_needed()
    w.shot("dots-features")
    # far from every dot (the picture's title): nothing happens, no request beyond the click's own
    away = _picture_point(w, img, 6, picture.height - 4)
    assert min(np.hypot(d.x - 6, d.y - picture.height + 4) for d in dots) > 20
    sent = w.act("a click away from the dots", lambda: w.page.locator(img).first.click(position=away))
    assert sent <= 1 and w.selected_tab() == "Features"
    target = next(d for d in dots if (d.model, d.layer, d.head) == ("siglip", 0, 2))
    at = _picture_point(w, img, target.x + 2, target.y - 2)  # a couple of pixels off its centre
    w.act("a click on a dot", lambda: w.page.locator(img).first.click(position=at), bound=LINK_REQUESTS)
    assert w.selected_tab() == "Attention"
    top = w.page.locator("#top-controls")
    header = (
        top.get_by_label("Model", exact=True).input_value(),
        w.page.locator("#layer input[type=number]").input_value(),
        top.get_by_label("Head", exact=True).input_value(),
    )
    assert header == ("siglip", "0", "head 2"), header
    assert top.get_by_label("Method", exact=True).input_value() == "mean"  # pool: the last layer only; next: mean
    assert w.page.locator("#attention-map img").count() == 1  # the map settled (act waited for the page)
    w.shot("dots-attention")
