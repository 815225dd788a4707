"""The Compare tab used with the mouse in a real headless chromium, for each kind of model.

On the random-weight store of ``app_support`` (tiny dinov2: CLS + registers, siglip: no CLS, vit: a classifier,
resnet50: stages, no heads), the header's model is set on the Attention tab, the Compare tab is opened with a click
(side A takes the header's values, side B one layer earlier), then every control of the tab is used: each of side
A's methods, its layer and head (where enabled), side B's model, method, layer and head, the scale radio and the
swap button. After each action the page must settle within ``MAX_REQUESTS`` requests to Gradio's queue and
show no error (no notice, no "Error" or "failed" on the page), with the picture shown. Screenshots:
artifacts/screens/compare-*.png.
"""

from __future__ import annotations

import pytest
from app_support import KINDS, Walker, app_server, open_page

playwright_api = pytest.importorskip("playwright.sync_api")


pytestmark = [pytest.mark.browser, pytest.mark.slow]

OTHER = {"dinov2": "resnet50", "siglip": "vit", "vit": "dinov2", "resnet50": "siglip"}  # side B's other model


@pytest.fixture(scope="module")
def walker():
    with open_page(app_server(KINDS).url, "compare", 4) as w:
        yield w


def value(w: Walker, label: str) -> str:
    return w.page.locator("#compare-panel").get_by_label(label, exact=True).input_value()


def enabled(w: Walker, label: str) -> bool:
    return w.page.locator("#compare-panel").get_by_label(label, exact=True).is_enabled()


def picture_src(w: Walker) -> str:
    shown = w.page.locator("#compare-picture img")
    assert shown.count() == 1, "the Compare picture is missing"
    return shown.first.get_attribute("src")


def layer_and_head(w: Walker, side: str, panel) -> None:
    """Another layer of one side (where it has several), and another head where the method has heads."""
    if enabled(w, f"{side} layer"):
        layers = w.options(f"{side} layer", panel)
        other = layers[0] if value(w, f"{side} layer") != layers[0] else layers[-1]
        w.pick(f"{side} layer", other, panel)
        assert value(w, f"{side} layer") == other
    if enabled(w, f"{side} head"):
        heads = w.options(f"{side} head", panel)
        w.pick(f"{side} head", heads[1], panel)
        assert value(w, f"{side} head") == heads[1]
    else:
        assert value(w, f"{side} head") == "all heads fused (this method)"


def layer_name(model: str, layer: int) -> str:
    return f"stage {layer + 1} (layer{layer + 1})" if model == "resnet50" else f"layer {layer}"


@pytest.mark.parametrize("model", KINDS)
def test_the_compare_tab_with_the_mouse(walker, model):
    w = walker
    w.act("reload", lambda: w.goto(w.page.url), bound=40, check=False)  # side B not chosen yet: a contrast of A
    w.tab("Compare")  # reached first: a page reload (see Walker.tab) would reset the header's model
    w.tab("Attention")
    w.header_model(model)
    layer = int(w.page.locator("#layer input[type=number]").input_value())
    w.tab("Compare")
    panel = w.page.locator("#compare-panel")
    assert value(w, "A model") == model and value(w, "B model") == model  # A: the header; B: a contrast of it
    assert value(w, "A layer") == layer_name(model, layer)
    assert value(w, "B layer") == layer_name(model, layer - 1 if layer > 0 else 1)  # one layer earlier, or the last
    first = picture_src(w)
    methods = w.options("A method", panel)
    for method in [*methods[1:], methods[0]]:  # every method; the first (with heads, but for resnet50) at the end
        w.pick("A method", method, panel)
    layer_and_head(w, "A", panel)
    w.shot(f"{model}-same-model")
    # The pick's event, and the page's second ``input`` of a mouse pick, answered with skips (wiring.once_per_pick)
    assert w.pick("B model", OTHER[model], panel) == 2
    assert value(w, "B model") == OTHER[model]
    w.pick("B method", w.options("B method", panel)[-1], panel)
    layer_and_head(w, "B", panel)
    w.act("scale: normalised", lambda: panel.get_by_label("each normalised to [0, 1]").click())
    w.act("scale: raw", lambda: panel.get_by_label("shared raw scale").click())
    a_before, b_before = value(w, "A model"), value(w, "B model")
    w.act("swap", lambda: panel.get_by_role("button", name="Swap A and B").click())
    assert (value(w, "A model"), value(w, "B model")) == (b_before, a_before)
    assert picture_src(w) != first
    table = w.page.locator("#compare-metrics").inner_text()
    assert "iou_90" in table and "emd" in table and "lower" in table
    w.page.locator("#compare-picture").scroll_into_view_if_needed()
    w.shot(f"{model}-{OTHER[model]}")
