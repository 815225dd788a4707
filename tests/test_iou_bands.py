"""The IoU tab's curves: bootstrap bands over images and chance lines, checked against plain numpy on a real store.

The store is the precompute job's (``app_support.store_dir``) for three tiny random models of three kinds: dinov2
(CLS + registers), siglip (no CLS) and resnet50 (stages), on the bundled examples. The bands are recomputed here
with a plain numpy bootstrap (the store's table read directly, images drawn with replacement, percentile interval);
the chance lines are the stored baselines' plain means. The browser test renders the real component in a real
chromium and reads the hover tooltips of a band and of a chance line.
"""

from __future__ import annotations

import json
from functools import partial

import gradio as gr
import numpy as np
import pandas as pd
import pytest
from app_support import ARTIFACTS, free_port, store_dir

from vitattn.metrics import BASELINE_NAMES
from vitattn.ui import Explorer
from vitattn.ui.actions import iou, iou_plot

MODELS = ("dinov2", "siglip", "resnet50")
N_BOOT = 1000


EXPLORER_STORE = partial(store_dir, MODELS)  # the explorer fixture (conftest.py) opens this store


def numpy_bootstrap(values: np.ndarray, image_ids: np.ndarray, n_boot: int = N_BOOT, seed: int = 0):
    """Mean and 95% percentile interval of the mean over images, images drawn with replacement (numpy only)."""
    images = np.unique(image_ids)
    per_image = [values[image_ids == i] for i in images]
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(images), size=len(images))
        rows = np.concatenate([per_image[d] for d in drawn])
        boot.append(rows.mean())
    return values.mean(), np.percentile(boot, 2.5), np.percentile(boot, 97.5)


def stored(ex: Explorer) -> pd.DataFrame:
    """The store's metrics table as a DataFrame, read from the store itself (not through the IoU tab's code)."""
    return pd.DataFrame({k: np.asarray(v) for k, v in ex.store.metrics().items()})


@pytest.mark.parametrize(("percentile", "method"), [(90, "best"), (50, "rollout")])
def test_bands_are_a_numpy_bootstrap_over_images(ex, percentile, method):
    table = stored(ex)
    metric = f"iou_{percentile}"
    rows = iou.curves(ex, percentile, method)
    assert list(rows.columns) == ["model", "method", "layer", "depth", "iou", "lo", "hi"]
    if method == "rollout":
        assert set(rows["method"]) == {"rollout"} and set(rows["model"]) == {"dinov2", "siglip"}  # resnet: none
    else:
        assert set(rows["model"]) == set(MODELS)
    for _, group in rows.groupby("model"):
        assert list(group["depth"]) == sorted(group["depth"]) and group["depth"].iloc[-1] == 1.0
    for _, row in rows.iterrows():
        info = ex.info(row["model"])
        layer = next(v for v in info.layers[row["method"]] if info.layer_name(v) == row["layer"])
        mine = table[
            (table["model"] == row["model"])
            & (table["method"] == row["method"])
            & (table["layer"] == layer)
            & (table["head"] == -1)
        ]
        assert len(mine) == 7  # the bundled examples, one fused row each
        mean, lo, hi = numpy_bootstrap(mine[metric].to_numpy(np.float64), mine["image_id"].to_numpy())
        assert np.isclose(row["iou"], mean, atol=1e-9), (row["model"], row["layer"])
        assert np.isclose(row["lo"], lo, atol=1e-9) and np.isclose(row["hi"], hi, atol=1e-9), (row["model"], lo, hi)
        assert row["lo"] < row["iou"] < row["hi"]


def test_chance_lines_are_the_stored_baseline_means(ex):
    baselines = pd.DataFrame({k: np.asarray(v) for k, v in ex.store.baselines().items()})
    for percentile in (50, 90):
        lines = iou.chance(ex, percentile)
        assert list(lines["baseline"]) == [b for b in BASELINE_NAMES if b in set(baselines["baseline"])]
        assert "random" in set(lines["baseline"])
        for _, line in lines.iterrows():
            values = baselines.loc[baselines["baseline"] == line["baseline"], f"iou_{percentile}"]
            assert np.isclose(line["iou"], values.mean(), atol=1e-12) and line["lo"] <= line["iou"] <= line["hi"]


def test_the_chart_holds_the_rows_bands_and_chance_lines(ex):
    value = iou_plot.curves_plot(ex, 70, "best")
    assert isinstance(value, gr.components.plot.PlotData) and value.type == "altair"
    spec = json.loads(value.plot)
    rows, lines = iou.curves(ex, 70, "best"), iou.chance(ex, 70)
    assert spec["$schema"].endswith("vega-lite/v5.json")
    shown = pd.DataFrame(spec["data"]["values"])
    assert np.allclose(shown[["iou", "lo", "hi"]], rows[["iou", "lo", "hi"]]) and list(shown["model"]) == list(
        rows["model"]
    )
    band, line, rule = spec["layer"]
    assert band["mark"]["type"] == "area" and (band["encoding"]["y"]["field"], band["encoding"]["y2"]["field"]) == (
        "lo",
        "hi",
    )
    assert line["encoding"]["y"]["field"] == "iou" and line["encoding"]["color"]["field"] == "model"
    assert rule["mark"]["type"] == "rule" and "x" not in rule["encoding"]  # flat across the whole depth axis
    assert [r["baseline"] for r in rule["data"]["values"]] == list(lines["baseline"])
    assert np.allclose([r["iou"] for r in rule["data"]["values"]], lines["iou"])
    hover = {t["field"] for t in line["encoding"]["tooltip"]}
    assert {"model", "layer", "iou", "lo", "hi"} <= hover
    assert gr.Plot().postprocess(value) is value  # Gradio passes it to the page as it is
    with pytest.raises(gr.Error, match="percentile must be one of"):
        iou_plot.curves_plot(ex, 95, "best")
    with pytest.raises(gr.Error, match="unknown method"):
        iou_plot.curves_plot(ex, 90, "nope")


# -- in a real chromium ----------------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _tooltip(page) -> str:
    tip = page.locator("#vg-tooltip-element.visible")
    return tip.inner_text() if tip.count() else ""


def _fields(text: str) -> dict[str, str]:
    """The tooltip's rows (vega-tooltip: a table of key and value cells) as a dict."""
    cells = [c.strip() for c in text.splitlines() if c.strip()]
    return dict(zip(cells[::2], cells[1::2], strict=True))


def _hover_until(page, points, want) -> str:
    """Moves the mouse over ``points`` in turn until the tooltip shows text for which ``want`` holds."""
    for x, y in points:
        page.mouse.move(x, y)
        text = _tooltip(page)
        if text and want(text):
            return text
    return ""


@pytest.mark.browser
def test_the_chart_in_chromium_shows_bands_chance_lines_and_hover_values(ex):
    playwright_api = pytest.importorskip("playwright.sync_api")
    with gr.Blocks() as demo:
        percentile = gr.Dropdown([50, 90], value=90, label="IoU percentile")
        plot = iou_plot.curves_component(elem_id="layer-curves")
        percentile.input(lambda p: iou_plot.curves_plot(ex, int(p), "best"), percentile, plot)
        demo.load(lambda: iou_plot.curves_plot(ex, 90, "best"), None, plot)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    screens = ARTIFACTS / "screens"
    screens.mkdir(parents=True, exist_ok=True)
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.set_default_timeout(20_000)
            page.goto(f"http://127.0.0.1:{port}/")
            chart = page.locator("#layer-curves svg.marks").first  # drawn as SVG (the spec's embed options)
            chart.wait_for(state="visible")
            page.wait_for_timeout(500)
            box = chart.bounding_box()
            legend = page.locator("#layer-curves .role-legend").first.locator("text").all_text_contents()
            assert sorted(legend) == sorted(["model", *MODELS])  # the first legend: the models' colours, titled
            assert box["width"] > 600 and box["height"] > 400  # fills the row, the spec's height
            rows, lines = iou.curves(ex, 90, "best"), iou.chance(ex, 90)
            # a band or a dot: sweep the plot until the tooltip names a model, then check its numbers
            grid = [
                (box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
                for fx in np.linspace(0.3, 0.8, 11)
                for fy in np.linspace(0.15, 0.9, 26)
            ]
            text = _hover_until(page, grid, lambda t: "95% low" in t and "model" in t)
            assert text, "no tooltip over the bands"
            fields = _fields(text)
            page.screenshot(path=str(screens / "iou-bands-hover.png"))
            match = rows[
                (rows["model"] == fields.get("model")) & (rows["layer"].str.endswith(fields.get("layer", "?")))
            ]
            assert len(match) >= 1, (text, fields)
            row = match.iloc[0]
            for key, column in (("mean IoU", "iou"), ("95% low", "lo"), ("95% high", "hi")):
                assert f"{row[column]:.4f}" in text, (key, text)
            # a chance line: left of the first layer (depth < 0.25) only the flat lines are drawn
            column = [(box["x"] + box["width"] * 0.12, box["y"] + y) for y in range(10, int(box["height"]) - 10)]
            text = _hover_until(page, column, lambda t: "chance line" in t)
            assert text, "no tooltip over a chance line"
            fields = _fields(text)
            line = lines.set_index("baseline").loc[fields["chance line"]]
            assert fields["mean IoU"] == f"{line['iou']:.4f}" and fields["95% low"] == f"{line['lo']:.4f}", fields
            page.screenshot(path=str(screens / "iou-bands-chance.png"))
            # another percentile: a new chart, new numbers
            page.get_by_label("IoU percentile").click()
            page.get_by_role("option", name="50").click()
            page.wait_for_timeout(1500)
            low = iou.curves(ex, 50, "best")
            text = _hover_until(page, grid, lambda t: "95% low" in t and "model" in t)
            assert any(f"{v:.4f}" in text for v in low["iou"]), text
            browser.close()
    finally:
        demo.close()
