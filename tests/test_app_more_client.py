"""The endpoints of the Heads, Variants and Features tabs through ``gradio_client``, against the launched app.

The app runs as a subprocess (``python app.py --store ...``) on the store of ``test_app_more_support`` (tiny random
dinov2, siglip, vit, resnet50 and the fine-tuned variant vit@full). Checks: ``view_api`` shows typed inputs (int
layer and head) and named outputs with the handlers' descriptions; every endpoint answers with what the handler
gives in process; bad input comes back as one line.
"""

from __future__ import annotations

import numpy as np
import pytest
from app_support import api_client
from PIL import Image
from test_app_more_support import VARIANT, more_server

pytestmark = pytest.mark.slow  # the app as a process (docs/testing.md: what the inner loop leaves out)

gradio_client = pytest.importorskip("gradio_client")

ENDPOINTS = {  # name: (parameter names, output labels)
    "/head_ranking": (["model", "method", "metric", "first_layer", "last_layer"], ["ranking"]),
    "/head_matrix": (["model", "method", "first_layer", "last_layer"], ["matrix", "best_heads"]),
    "/head_exemplars": (["model", "method", "layer", "head", "feature", "k"], ["exemplars", "numbers"]),
    "/variant_compare": (
        ["image_id", "model_a", "model_b", "method", "layer", "head", "box", "opacity"],
        ["pair", "shift", "deltas"],
    ),
    "/variant_table": (["method", "layer", "metric"], ["deltas", "summary"]),
    "/pca": (["image_ids", "model", "layer", "background", "joint"], ["pca", "data"]),
    "/head_stats": (["models", "image_id", "stat"], ["heads", "diversity", "source"]),
    "/faithfulness": (["image_id", "model", "method", "layer", "mode"], ["curves", "areas"]),
}


@pytest.fixture(scope="module")
def client():
    return api_client(more_server().url)


def _rows(table: dict) -> list[dict]:
    return [dict(zip(table["headers"], row, strict=True)) for row in table["data"]]


def test_view_api_shows_typed_inputs_named_outputs_and_descriptions(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for name, (params, outputs) in ENDPOINTS.items():
        endpoint = api[name]
        assert [p["parameter_name"] for p in endpoint["parameters"]] == params, name
        assert [r["label"] for r in endpoint["returns"]] == outputs, name
        types = {p["parameter_name"]: p["python_type"]["type"] for p in endpoint["parameters"]}
        for key in ("layer", "head", "first_layer", "last_layer", "box", "k"):
            if key in types and name != "/variant_table":  # variant_table's layer is "last", "best" or a number
                assert types[key] == "int", (name, key, types[key])
        assert len(endpoint["description"]) > 40, name  # the handler's docstring reached view_api
    assert "vit@full" in api["/variant_compare"]["parameters"][2]["python_type"]["type"]  # variants are offered


def test_head_endpoints(client):
    ranking = _rows(client.predict("vit", "cls", "iou_90", 0, -1, api_name="/head_ranking"))
    assert [r["rank"] for r in ranking] == list(range(1, 9)) and {r["layer"] for r in ranking} == {0, 1}
    picture, best = client.predict("vit", "cls", 0, 1, api_name="/head_matrix")
    assert Image.open(picture).width > 400 and {r["feature"] for r in _rows(best)} >= {"face", "helmet"}
    gallery, numbers = client.predict("vit", "cls", 1, 2, "face", 3, api_name="/head_exemplars")
    assert len(gallery) == len(_rows(numbers)) >= 1
    assert gallery[0]["caption"].startswith(_rows(numbers)[0]["image_id"])


def test_variant_endpoints(client):
    pair, shift, deltas = client.predict(
        "astronaut", "vit", VARIANT, "cls", -1, -1, 0, 0.6, api_name="/variant_compare"
    )
    assert Image.open(pair).width > Image.open(shift).width
    rows = {r["metric"]: r for r in _rows(deltas)}
    assert rows["iou_90"]["scope"] == "box 0: face" and rows["emd"]["better"] == "lower"
    assert rows["iou_90"]["B - A"] == pytest.approx(rows["iou_90"]["B"] - rows["iou_90"]["A"], abs=2e-4)
    table, summary = client.predict("cls", "last", "iou_90", api_name="/variant_table")
    (row,) = _rows(table)
    assert (row["model"], row["variant"], row["strategy"]) == ("vit", VARIANT, "full")
    assert row["val_accuracy"] is not None and row["label"] in summary


def test_feature_endpoints(client):
    picture, data = client.predict("astronaut,chelsea", "dinov2", 1, "auto", True, api_name="/pca")
    assert [i["image_id"] for i in data["images"]] == ["astronaut", "chelsea"] and data["joint"]
    assert np.asarray(data["images"][0]["rgb"]).shape == (4, 4, 3) and Image.open(picture).height > 200
    heads, diversity, source = client.predict("vit,resnet50", "astronaut", "entropy", api_name="/head_stats")
    assert {r["model"] for r in _rows(heads)} == {"vit"} and "resnet50" in source
    assert {r["layer"] for r in _rows(diversity)} == {0, 1}
    curves, areas = client.predict("astronaut", "vit", "cls", 0, "mean", api_name="/faithfulness")
    assert len(_rows(curves)) == 4 * 21 and {r["source"] for r in _rows(areas)} == {"computed live"}


@pytest.mark.parametrize(
    ("args", "name", "message"),
    [
        (("resnet50", "gradcam", "iou_90", 0, -1), "/head_ranking", "has no per-head maps"),
        (("vit", "cls", 1, 7, "face", 3), "/head_exemplars", "head 7 out of range for vit/cls: valid heads 0..3"),
        (("astronaut", "vit", "resnet50", "cls", -1, -1, -1, 0.6), "/variant_compare", "share no method"),
        (("nope", "vit", 0, "none", True), "/pca", "unknown image id 'nope'"),
        (("astronaut", "vit", "cls", 5, "blur"), "/faithfulness", "layer 5 out of range for vit/cls"),
    ],
)
def test_bad_input_is_one_line(client, args, name, message):
    with pytest.raises(Exception, match=message) as caught:
        client.predict(*args, api_name=name)
    assert "\n" not in str(caught.value).strip() and "Traceback" not in str(caught.value)
