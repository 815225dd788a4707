"""The Text tab (issue 17): its handlers on a store of tiny random clip (text maps of every label, naclip and legrad,
prompts as given) and resnet50 (no text tower), the store the Trust tests share (``store_dir(TRUST_MODELS,
trust=True)``), and its endpoints ``/text_map`` and ``/text_metrics`` through ``gradio_client``.

Checked against the library: a stored label's map is the store's textmap; a typed prompt's map is
``Model.analyze(prompts=...)`` of the live model; two prompts give two maps; the metrics are
``vitattn.metrics.all_metrics`` of the shown map against that label's boxes, the baselines ``baseline_metrics`` on
the same boxes.
"""

from __future__ import annotations

import io
from functools import partial

import gradio as gr
import numpy as np
import pytest
from app_support import TRUST_MODELS, api_client, app_server, store_dir
from small_models import noise_image

from vitattn.metrics import all_metrics, baseline_metrics

STORED = ("naclip", "legrad")
EXPLORER_STORE = partial(store_dir, TRUST_MODELS, trust=True)  # the explorer fixture (conftest.py) opens this store
IMAGE = "astronaut"


def _maps(data: dict) -> dict[tuple[str, str], np.ndarray]:
    return {(m["prompt"], m["method"]): np.asarray(m["map"], dtype=np.float32) for m in data["maps"]}


def _label_boxes(ex, label: str):
    return [b for b in ex.item(IMAGE).boxes if b.label == label]


def test_a_stored_label_is_read_from_the_store(ex, handlers):
    label = ex.store.image(IMAGE).boxes[0].label
    picture, data = handlers.text_map(IMAGE, "clip", label, "naclip,legrad")
    layer = ex.info("clip").num_layers - 1
    assert {m["source"] for m in data["maps"]} == {"store"} and data["templates"] == "none"  # the store's templates
    for method in STORED:
        stored = ex.store.text_map(IMAGE, "clip", method, layer, label)
        np.testing.assert_allclose(_maps(data)[(label, method)], stored, atol=1e-6)
    assert picture.width > 480 and picture.height > 240


def test_a_typed_prompt_is_the_live_models_analysis_and_two_prompts_differ(ex, handlers):
    _, data = handlers.text_map(IMAGE, "clip", "rose window, portal", "all", "none")
    maps = _maps(data)
    assert {m for _, m in maps} == {"maskclip", "sclip", "clearclip", "naclip", "legrad", "gae"}
    assert {m["source"] for m in data["maps"]} == {"live"}
    model = ex.live.model("clip")
    a = model.analyze(ex.item(IMAGE).image(), methods=(), prompts=["rose window", "portal"], templates=None)
    for (prompt, method), shown in maps.items():
        np.testing.assert_allclose(shown, a.map(method, prompt=prompt), atol=2e-6)
    for method in ("naclip", "legrad", "maskclip"):
        assert not np.allclose(maps[("rose window", method)], maps[("portal", method)])
    _, eighty = handlers.text_map(IMAGE, "clip", "rose window", "naclip", "imagenet80")
    assert not np.allclose(_maps(eighty)[("rose window", "naclip")], maps[("rose window", "naclip")])


def test_metrics_are_the_librarys_against_the_labels_boxes_beside_its_baselines(ex, handlers):
    labels = sorted({b.label for b in ex.item(IMAGE).boxes})
    label = next(x for x in labels if len(_label_boxes(ex, x)) >= 1)
    _, data = handlers.text_map(IMAGE, "clip", f"{label}, rose window", "naclip,maskclip")
    table = handlers.text_metrics(IMAGE, "clip", f"{label}, rose window", "naclip,maskclip")
    boxes = _label_boxes(ex, label)
    assert set(table["prompt (boxes)"]) == {f"{label} ({len(boxes)})"}  # "rose window" labels no box: not scored
    boxes = _label_boxes(ex, label)
    item = ex.item(IMAGE)
    base = baseline_metrics(boxes, np.asarray(item.picture), grid=ex.info("clip").grid)
    for method in ("naclip", "maskclip"):
        want = all_metrics(_maps(data)[(label, method)], boxes)
        for _, row in table.iterrows():
            assert row[method] == pytest.approx(want[row["metric"]], abs=1e-3), (method, row["metric"])
    for _, row in table.iterrows():
        assert row["random"] == pytest.approx(base["random"][row["metric"]], abs=1e-4)
        assert row["better"] == ("lower" if row["metric"] in ("mse", "kl", "emd") else "higher")


def test_a_model_without_a_text_tower_gets_one_line_naming_those_with_one():
    from app_support import bound_handlers

    from vitattn.ui import AppConfig, Explorer

    every = bound_handlers(Explorer.open(AppConfig(store=str(store_dir()), weights="small")))  # the app tests' store
    note, picture, empty, table, data = every.page_text(IMAGE, "dinov2", "face", ["naclip"], "as stored", 0.6, "")
    assert note["visible"] and "dinov2 has no text tower" in note["value"]
    assert "clip, siglip, siglip2; in this app: clip, siglip, siglip2" in note["value"]
    assert picture["visible"] is False and table["visible"] is False and data is None
    with pytest.raises(gr.Error, match="has no text tower; models with one: clip, siglip, siglip2"):
        every.text_map(IMAGE, "resnet50", "face")


def test_the_tab_starts_at_the_first_label_and_reads_the_store(ex, handlers):
    label, prompts = handlers.on_text_image(IMAGE)
    assert prompts == label["value"] == sorted({b.label for b in ex.item(IMAGE).boxes})[0]
    note, picture, empty, table, data = handlers.page_text(IMAGE, "clip", prompts, ["naclip"], "as stored", 0.6, "")
    assert not note["visible"] and picture["visible"] and not empty["visible"] and len(table["value"]) > 0
    assert data["maps"][0]["source"] == "store"


def test_an_upload_without_boxes_shows_maps_and_one_line_then_your_boxes_are_scored(ex, handlers):
    buffer = io.BytesIO()
    noise_image(120, 90, seed=3).save(buffer, format="PNG")
    upload = ex.upload(buffer.getvalue()).id
    label, prompts = handlers.on_text_image(upload)
    assert label["choices"] == [] and prompts == ""
    note, picture, empty, table, _ = handlers.page_text(upload, "clip", "tower", ["naclip"], "none", 0.6, "")
    assert picture["visible"] and empty["visible"] and "no boxes" in empty["value"] and not table["visible"]
    mine = "0.1 0.1 0.6 0.5"  # drawn, unlabelled: scored against every prompt
    note, picture, empty, table, data = handlers.page_text(upload, "clip", "tower", ["naclip"], "none", 0.6, mine)
    assert not empty["visible"] and set(table["value"]["prompt (boxes)"]) == {"tower (1)"}
    shown = np.asarray(data["maps"][0]["map"], dtype=np.float32)
    boxes = handlers.text_metrics(upload, "clip", "tower", "naclip", "none", mine)
    from vitattn.ui.data.catalog import parse_boxes

    want = all_metrics(shown, list(parse_boxes(mine)))
    assert boxes.set_index("metric").loc["iou_90", "naclip"] == pytest.approx(want["iou_90"], abs=1e-3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((IMAGE, "clip", " , "), "type a prompt"),
        ((IMAGE, "clip", "face", "cls"), "unknown text method 'cls'; valid: all, or any of maskclip"),
        ((IMAGE, "clip", "face", "all", "imagenet81"), "templates must be one of imagenet80, none"),
        (("nope", "clip", "face"), "unknown image id"),
    ],
)
def test_bad_input_is_one_line(handlers, args, message):
    with pytest.raises(gr.Error, match=message):
        handlers.text_map(*args)


# -- the endpoints, through gradio_client against the launched app (every model, no stored text maps) -------------


@pytest.fixture(scope="module")
def client():
    return api_client(app_server().url)


@pytest.mark.slow  # the app as a process
def test_the_endpoints_are_typed_documented_and_give_the_live_maps(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    params = {p["parameter_name"]: p for p in api["/text_map"]["parameters"]}
    assert list(params) == ["image_id", "model", "prompts", "methods", "templates", "opacity", "boxes"]
    assert params["methods"]["parameter_default"] == "all" and params["opacity"]["parameter_has_default"]
    assert "one colour scale" in api["/text_map"]["description"]
    assert [r["label"] for r in api["/text_map"]["returns"]] == ["picture", "data"]
    assert [r["label"] for r in api["/text_metrics"]["returns"]] == ["metrics"]
    _, data = client.predict(IMAGE, "clip", "face, portal", "naclip,legrad", "none", api_name="/text_map")
    maps = {(m["prompt"], m["method"]): m["map"] for m in data["maps"]}
    assert set(maps) == {(p, m) for p in ("face", "portal") for m in ("naclip", "legrad")}
    assert maps[("face", "naclip")] != maps[("portal", "naclip")]
    table = client.predict(IMAGE, "clip", "face, portal", "naclip", api_name="/text_metrics")
    rows = [dict(zip(table["headers"], r, strict=True)) for r in table["data"]]
    assert {r["prompt (boxes)"] for r in rows} == {"face (1)"} and {r["metric"] for r in rows} >= {
        "iou_90",
        "coverage",
        "pxap",
    }
    with pytest.raises(Exception, match="has no text tower"):
        client.predict(IMAGE, "dinov2", "face", api_name="/text_map")
