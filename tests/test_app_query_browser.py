"""The Query tab used with the mouse in a real headless chromium, for dinov2 (registers), siglip (no prefix) and
resnet50 (no attention).

On the app launched on the tiny random-weight store of ``app_support`` (``KINDS``): choose the model in the header,
open the tab (its layer and head start from the header's), click a patch on the picture, move the layer slider and
pick heads and the strip's scale with the mouse. After each action the page must settle within ``MAX_REQUESTS``
requests and show no error (``test_app_more_browser.Walker``). ResNet-50 shows a line saying it has no attention
instead of the attention views, and its similarity still follows the click. Screenshots: artifacts/screens/query-*.png.
"""

from __future__ import annotations

import pytest
from app_support import KINDS, LINK_REQUESTS, Walker, app_server, open_page

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def walker():
    with open_page(app_server(KINDS).url, "query", 4) as w:
        yield w


def source(w: Walker, elem_id: str) -> str:
    img = w.page.locator(f"#{elem_id} img")
    return img.first.get_attribute("src") if img.count() else ""


def click_surface(w: Walker, fx: float, fy: float) -> None:
    img = w.page.locator("#query-surface img").first
    box = img.bounding_box()
    w.act(
        f"click the picture at {fx:.0%}, {fy:.0%}",
        lambda: img.click(position={"x": fx * box["width"], "y": fy * box["height"]}),
    )


def numbers(w: Walker) -> str:
    """The query's numbers (the accordion opened once)."""
    data = w.page.locator("#query-data")
    if not data.is_visible():
        w.page.locator("#query-panel").get_by_text("Query attention (numbers)").click()
        w.page.wait_for_timeout(300)
    return " ".join(data.inner_text().split())


@pytest.mark.parametrize("model", ("dinov2", "siglip", "resnet50"))
def test_the_query_tab_with_the_mouse(walker, model):
    w = walker
    w.tab("Query")  # reached first: a page reload (see Walker.tab) would reset the header's model
    w.tab("Attention")
    w.header_model(model)
    top = w.page.locator("#top-controls")
    heads = w.options("Head", top) if top.get_by_label("Head", exact=True).is_enabled() else []
    if len(heads) > 2:  # the header's head: the Query tab starts from it
        w.pick("Head", heads[2], top, bound=LINK_REQUESTS)
    w.tab("Query")
    panel = w.page.locator("#query-panel")
    head_box = panel.get_by_label("Head (query)", exact=True)
    note = w.page.locator("#query-note")
    assert w.page.locator("#query-surface img").count() == 1 and w.page.locator("#query-similarity img").count() == 1
    if model == "resnet50":
        assert "resnet50 has no attention" in note.inner_text() and note.is_visible()
        assert not w.page.locator("#query-attention").is_visible() and not w.page.locator("#query-strip").is_visible()
        assert head_box.is_disabled()
    else:
        assert not note.is_visible()
        assert head_box.input_value() == heads[2]  # from the header
        assert w.page.locator("#query-attention img").count() == 1 and w.page.locator("#query-strip img").count() == 1

    before = source(w, "query-similarity"), source(w, "query-attention")
    click_surface(w, 0.85, 0.15)
    after = source(w, "query-similarity"), source(w, "query-attention")
    assert after[0] != before[0]  # the similarity follows the click
    if model != "resnet50":
        assert after[1] != before[1]
        text = numbers(w)
        assert "cell" in text and "prefix_share" in text, text[:300]
    w.shot(f"{model}-click")

    w.slide("query-layer", 0.0)
    w.slide("query-layer", 1.0)  # past a tiny ViT's last layer: the tab shows its last
    shown = w.page.locator("#query-layer input[type=number]").input_value()
    assert shown == ("3" if model == "resnet50" else "1")
    if model != "resnet50":
        choices = w.options("Head (query)", panel)
        assert choices[0] == "all heads fused (mean)" and len(choices) == 5
        w.pick("Head (query)", choices[1], panel)
        w.pick("Head (query)", choices[-1], panel)
        w.pick("Head (query)", choices[0], panel)
    for scale in ("per map", "shared"):  # the one not chosen starts an event
        w.act(f"strip scale {scale}", lambda scale=scale: panel.get_by_label(scale, exact=True).click())
    click_surface(w, 0.3, 0.6)
    w.shot(model)
