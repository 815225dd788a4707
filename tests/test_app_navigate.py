"""Moving around the page as a researcher does, in headless chromium: layer playback and keys, clicks on the layer
strip, the head grid, the leaderboard and the layer x head table, and export.

Each action must settle within ``MAX_REQUESTS`` queue requests and show no error (``app_support.Walker``); the header's
controls are read back from the page after each one, so a click that opens the wrong view fails. Runs on the tiny
random-weight store of ``app_support.KINDS`` (dinov2, siglip, vit, resnet50). Screenshots: artifacts/screens/nav-*.png.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from app_support import KINDS, Walker, app_server, open_page, store_dir
from PIL import Image

from vitattn import render
from vitattn.datasets import EXAMPLES_DIR
from vitattn.metrics import METRIC_NAMES
from vitattn.ui import AppConfig, Explorer
from vitattn.ui.actions import iou
from vitattn.ui.data.catalog import display

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LAYERS = {"dinov2": [0, 1], "siglip": [0, 1], "vit": [0, 1], "resnet50": [0, 1, 2, 3]}  # the tiny models


@pytest.fixture(scope="module")
def walker():
    with open_page(app_server(KINDS).url, "nav") as w:
        yield w


def layer(w: Walker) -> int:
    return int(float(w.page.locator("#layer input[type=number]").input_value()))


def header(w: Walker, elem_id: str) -> str:
    return w.page.locator(f"#{elem_id} input").first.input_value()


def image_size(w: Walker) -> tuple[int, int]:
    """The size of the picture the views draw on, for the page's current image (a bundled example)."""
    return display(Image.open(EXAMPLES_DIR / f"{header(w, 'image-id')}.jpg")).size


def click_natural(w: Walker, what: str, elem_id: str, x: float, y: float) -> None:
    """A click at pixel (x, y) of a picture as drawn (its natural size), wherever the page shows it."""
    img = w.page.locator(f"#{elem_id} img").first
    img.scroll_into_view_if_needed()
    natural = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    box = img.bounding_box()
    w.click(what, img, position={"x": x * box["width"] / natural[0], "y": y * box["height"] / natural[1]})


def centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


@pytest.mark.parametrize("model", KINDS)
def test_playback_buttons_and_keys_step_through_the_layers(walker, model):
    w = walker
    w.tab("Attention")
    w.pick("Model", model, within=w.page.locator("#top-controls"))
    layers = LAYERS[model]
    if not w.page.locator("#layer input[type=range]").is_enabled():  # pool: one layer
        pytest.fail(f"{model}'s first method has one layer only")
    w.click("first", w.page.locator("#layer-first"))
    assert layer(w) == layers[0]
    w.click("next", w.page.locator("#layer-next"))
    assert layer(w) == layers[1]
    w.click("last", w.page.locator("#layer-last"))
    assert layer(w) == layers[-1]
    w.click("next at the last layer", w.page.locator("#layer-next"))
    assert layer(w) == layers[-1]  # no wrap
    w.click("previous", w.page.locator("#layer-previous"))
    assert layer(w) == layers[-2]
    w.page.locator("body").click(position={"x": 5, "y": 5})
    w.act("key Home", lambda: w.page.keyboard.press("Home"))
    assert layer(w) == layers[0]
    w.act("key ArrowRight", lambda: w.page.keyboard.press("ArrowRight"))
    assert layer(w) == layers[1]
    w.act("key End", lambda: w.page.keyboard.press("End"))
    assert layer(w) == layers[-1]
    if model == "resnet50":
        assert "stage 1 (layer1)" in w.page.locator("#layer").inner_text()  # the slider names ResNet stages
    # Play from the last layer: it restarts at the first and stops at the last; each tick is one request or two.
    w.page.locator("#layer-play").click()
    w.page.get_by_role("button", name="pause").wait_for()  # it started (no progress bar on the views' events)
    w.page.wait_for_function(
        "() => document.querySelector('#layer-play').innerText.trim() === 'play'"
        " && !document.querySelector('.eta-bar')",
        polling=200,
        timeout=60_000,
    )
    w.act("after playback", lambda: None)
    assert layer(w) == layers[-1]
    w.shot(f"playback-{model}")


@pytest.mark.parametrize("model", ("dinov2", "resnet50"))
def test_a_click_on_a_strip_tile_or_a_head_tile_shows_that_layer_or_head(walker, model):
    w = walker
    w.tab("Attention")
    w.pick("Model", model, within=w.page.locator("#top-controls"))
    layers = LAYERS[model]
    size = image_size(w)
    tiles = render.tile_boxes(size, len(layers), warning=True)  # random weights: a warning band on top
    click_natural(w, "strip tile 0", "layer-strip", *centre(tiles[0]))
    assert layer(w) == layers[0]
    click_natural(w, "strip tile 1", "layer-strip", *centre(tiles[1]))
    assert layer(w) == layers[1]
    if model == "resnet50":
        assert not w.page.locator("#head-grid").is_visible()
        return
    heads = render.tile_boxes(size, 4, warning=True)
    click_natural(w, "head tile 2", "head-grid", *centre(heads[2]))
    assert header(w, "head") == "head 2"
    w.shot(f"clicked-head-{model}")


def test_a_head_a_percentile_and_a_method_picked_with_the_keyboard_reach_the_views(walker):
    """A dropdown pick with the arrow keys and Enter recomputes the views that read it (``select``, which the page
    listened to, never hears the keyboard: tests/test_dropdown_picks.py): the header's head, the Attention tab's IoU
    percentile, then the header's method (a step that steers the layer and the head, then the views)."""
    w = walker
    w.tab("Attention")
    w.pick("Model", "vit", within=w.page.locator("#top-controls"))
    w.pick("Head", "all heads fused", within=w.page.locator("#top-controls"))
    picture = w.page.locator("#attention-map img").first

    def arrow_down_enter(elem_id: str):
        def keys() -> None:
            w.page.locator(f"#{elem_id} input").first.click()
            w.page.keyboard.press("ArrowDown")
            w.page.keyboard.press("Enter")

        return keys

    for elem_id in ("head", "map-percentile", "method"):
        value, src = header(w, elem_id), picture.get_attribute("src")
        assert w.act(f"{elem_id} by the keyboard", arrow_down_enter(elem_id)) >= 1  # the views were asked
        assert header(w, elem_id) != value
        if elem_id == "head":
            assert header(w, "head") == "head 0" and picture.get_attribute("src") != src  # that head's map
        if elem_id == "method":  # a step (the method steers layer and head), then the views: the new method's map
            assert picture.get_attribute("src") != src
    w.shot("keyboard-picks")


def test_leaderboard_rows_and_table_cells_open_their_view(walker):
    w = walker
    w.tab("IoU")
    top = iou.leaderboard(Explorer.open(AppConfig(store=str(store_dir(KINDS)))), 90, "best").iloc[0]
    model, method, at = top["model"], top["method"], int(top["layer"])
    cell = w.page.locator("#board [role=gridcell]").filter(has_text=re.compile(rf"^\s*{model}\s*$")).first
    w.click("leaderboard row 1", cell)  # one row per model
    assert w.page.get_by_role("tab", name="Attention", selected=True).count() == 1
    assert (header(w, "model"), header(w, "method"), layer(w)) == (model, method, at)
    w.shot("from-leaderboard")

    w.tab("IoU")
    w.pick("Model", "dinov2", within=w.page.locator("#grid-model"))
    w.pick("Method", "cls", within=w.page.locator("#grid-method"))
    x0, y0 = _cell_origin(["layer 0", "layer 1"])
    click_natural(w, "table cell layer 1, head 3", "layer-head", x0 + 3 * 44 + 20, y0 + 1 * render.TABLE_ROW + 10)
    assert w.page.get_by_role("tab", name="Attention", selected=True).count() == 1
    assert (header(w, "model"), header(w, "method"), layer(w), header(w, "head")) == ("dinov2", "cls", 1, "head 3")
    w.shot("from-table")


def _cell_origin(names: list[str]) -> tuple[int, int]:
    """The first cell's pixel, found by asking ``table_cell_at`` along a line (no layout arithmetic repeated)."""
    x = next(x for x in range(400) if render.table_cell_at(names, 5, (x, 60), title="t") is not None)
    y = next(y for y in range(200) if render.table_cell_at(names, 5, (x, y), title="t") is not None)
    return x, y


def file_names(links) -> list[str]:
    """The names of the files a gr.File lists (its links show their sizes; the names end their URLs)."""
    return [h.rsplit("/", 1)[-1] for h in links.evaluate_all("links => links.map(a => a.href)")]


def test_export_gives_the_map_as_npy_and_the_tables_as_csv(walker):
    w = walker
    w.tab("Attention")
    w.pick("Model", "dinov2", within=w.page.locator("#top-controls"))
    w.click("export", w.page.get_by_role("button", name="Export this view: map .npy, tables .csv, picture .png"))
    links = w.page.locator("#export a")
    names = file_names(links)
    assert sorted(n.rsplit(".", 1)[-1] for n in names) == ["csv", "csv", "npy", "png"], names
    npy = next(i for i, n in enumerate(names) if n.endswith(".npy"))
    with w.page.expect_download() as download:
        links.nth(npy).click()
    exported = np.load(download.value.path())  # its values: tests/test_app_handlers.py checks them
    assert exported.dtype == np.float32 and exported.shape == (4, 4) and np.isfinite(exported).all()
    w.tab("IoU")
    w.click("IoU export", w.page.locator("#iou-export"))
    names = file_names(w.page.locator("#iou-files a"))
    assert sum(n.endswith(".csv") for n in names) == 5 and any("leaderboard" in n for n in names), names
    w.shot("export")


def test_a_later_tabs_table_exports_as_csv(walker):
    w = walker
    w.tab("Compare")
    panel = w.page.locator("#compare-panel")
    w.click("export the compare table", panel.get_by_role("button", name="Export this table (CSV)"))
    links = panel.locator("a[href*='compare-metrics']")
    assert file_names(links) == ["compare-metrics.csv"]
    with w.page.expect_download() as download:
        links.first.click()
    table = pd.read_csv(download.value.path())
    assert table["metric"].tolist() == list(METRIC_NAMES)  # the table as shown, every metric
    w.shot("export-compare")
