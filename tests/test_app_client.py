"""Every named endpoint through ``gradio_client``, against the app launched on a local port (a subprocess)."""

from __future__ import annotations

import io

import pytest
from app_support import api_client, app_server
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from small_models import noise_image

pytestmark = pytest.mark.slow  # the app as a process (docs/testing.md: what the inner loop leaves out)

ENDPOINTS = {
    "/ping",
    "/info",
    "/image",
    "/attention",
    "/layers",
    "/heads",
    "/predictions",
    "/similarity",
    "/analyze",
    "/metrics",
    "/leaderboard",
    "/layer_curves",
    "/layer_head",
    "/breakdown",
    "/compare",
    "/layer_metrics",
    # the Heads, Variants and Features tabs (vitattn/ui/tabs/heads.py, variants.py, features.py)
    "/head_ranking",
    "/head_matrix",
    "/head_exemplars",
    "/variant_compare",
    "/variant_table",
    "/pca",
    "/head_stats",
    "/faithfulness",
    # the Compare and Query tabs
    "/compare_maps",
    "/query_attention",
    # the Text tab (tests/test_text_tab.py); the API grows with the tabs, so new endpoints are added here
    "/text_map",
    "/text_metrics",
    # the Trust tab
    "/sanity_curves",
    "/sanity_strip",
    "/sanity_live",
}


@pytest.fixture(scope="module")
def client() -> Client:
    return api_client(app_server().url)


@pytest.fixture(scope="module")
def upload_id(client, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("upload") / "noise.png"
    noise_image(100, 70, seed=5).save(path)
    image_id, picture, data = client.predict(handle_file(str(path)), "clip", api_name="/analyze")
    assert image_id.startswith("upload-") and data["source"] == "live"
    assert Image.open(picture).width == 448  # small images are enlarged for display (render.MIN_SIDE)
    return image_id


def opened(path: str) -> Image.Image:
    with open(path, "rb") as f:
        return Image.open(io.BytesIO(f.read()))


def test_view_api_documents_the_named_endpoints_and_hides_the_page_plumbing(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == ENDPOINTS  # exactly: a page event named like an endpoint renames it
    assert not api["unnamed_endpoints"]


def test_view_api_types_layer_and_head_as_integers_and_names_outputs(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    attention = {p["parameter_name"]: p for p in api["/attention"]["parameters"]}
    assert attention["layer"]["python_type"]["type"] == "int" and attention["head"]["python_type"]["type"] == "int"
    assert attention["head"]["parameter_default"] == -1 and attention["opacity"]["parameter_has_default"]
    assert [r["label"] for r in api["/attention"]["returns"]] == ["picture", "metrics", "map"]
    for name in ("/metrics", "/similarity", "/layers", "/heads"):
        opacity = [p for p in api[name]["parameters"] if p["parameter_name"] == "opacity"]
        assert opacity and opacity[0]["parameter_has_default"], name  # display-only: never required
    assert "fuses all heads" in api["/attention"]["description"]  # the handler's docstring
    assert client.predict("astronaut", "clip", "cls", 1, 2, api_name="/attention")[2]["head"] == 2
    assert client.predict("astronaut", "clip", "cls", 1, None, api_name="/attention")[2]["head"] == -1


def test_a_chosen_class_and_the_fixed_similarity_scale_through_the_api(client):
    top1 = client.predict("astronaut", "vit", "agcam", 1, api_name="/attention")[2]
    other = 7 if top1["target"] != 7 else 8
    chosen = client.predict("astronaut", "vit", "agcam", 1, target=other, api_name="/attention")[2]
    assert top1["target_top1"] is True and chosen["target"] == other and chosen["target_top1"] is False
    assert chosen["map"] != top1["map"]  # another class, another gradient map
    rows = client.predict("astronaut", "vit", "agcam", 1, target=other, api_name="/layer_metrics")
    assert rows["data"]
    with pytest.raises(Exception, match="target applies only"):
        client.predict("astronaut", "dinov2", "cls", 1, target=3, api_name="/attention")
    _, fixed = client.predict(
        "astronaut", "dinov2", 1, 0.2, 0.2, 0.4, 0.4, scale="fixed [-1, 1]", api_name="/similarity"
    )
    assert fixed["scale"] == "fixed [-1, 1]" and fixed["range"] == [-1, 1]


def test_ping_and_info(client):
    assert client.predict(api_name="/ping") == "pong"
    info = client.predict(api_name="/info")
    assert info["mode"] == "store" and info["random_weights"]["store"] is True
    assert info["images"][0] == "astronaut" and info["models"]["siglip"]["layers"]["pool"] == [1]


@pytest.mark.parametrize("image_id", ["astronaut", "upload"])
def test_every_view_endpoint_on_a_stored_and_an_uploaded_image(client, upload_id, image_id):
    image_id = upload_id if image_id == "upload" else image_id
    source = "live" if image_id == upload_id else "store"
    picture, table, data = client.predict(image_id, "clip", "cls", 1, 2, 0.5, api_name="/attention")
    assert opened(picture).width > 0 and data["source"] == source and len(data["map"]) == 4
    assert table["headers"] == ["metric", "better", "map", "random", "center", "saliency", "sobel", "saliency_prior"]
    picture, data = client.predict(image_id, "clip", "mean", -1, 0.5, api_name="/layers")
    assert data["layers"] == [0, 1] and len(data["maps"]) == 2
    picture, data = client.predict(image_id, "clip", "cls", 0, 0.5, api_name="/heads")
    assert len(data["maps"]) == 4
    picture, data = client.predict(image_id, "clip", 1, 0.2, 0.3, 0.2, 0.3, 0.5, api_name="/similarity")
    assert data["selected"] == [[1, 0]] and data["source"] == source
    picture, data = client.predict(image_id, api_name="/image")
    assert data["image_id"] == image_id
    picture, table = client.predict(image_id, "clip", "rollout", 1, -1, "0.1 0.1 0.6 0.6 mine", api_name="/metrics")
    assert table["data"][0][:2] == ["iou_90", "higher"] and 0 <= table["data"][0][2] <= 1
    top5 = client.predict(image_id, "vit", api_name="/predictions")
    assert len(top5["confidences"]) == 5


def test_the_iou_endpoints(client):
    board = client.predict(90, "best", api_name="/leaderboard")
    assert board["headers"][:5] == ["rank", "model", "method", "layer", "iou_90"]
    models = [row[1] for row in board["data"] if not str(row[1]).startswith("baseline")]
    assert len(models) == 9 and len(board["data"]) - len(models) >= 3  # the baselines below
    curves = client.predict(70, "rollout", api_name="/layer_curves")
    assert curves["headers"] == ["model", "method", "layer", "depth", "iou", "lo", "hi"]
    picture, grid = client.predict("vit", "agcam", 80, api_name="/layer_head")
    assert len(grid["grid"]) == 2 and len(grid["grid"][0]) == 4
    labels = client.predict("resnet50", "gradcam", 3, "label", 90, api_name="/breakdown")
    assert "cup" in [row[0] for row in labels["data"]]
    paired = client.predict("dinov2", "siglip2", 90, api_name="/compare")
    assert paired["headers"][:4] == ["metric", "a", "b", "n"]


@pytest.mark.parametrize(
    "args, api_name, message",
    [
        (("nope", "clip", "cls", 1, -1, 0.6), "/attention", "unknown image id 'nope'"),
        (("astronaut", "clap", "cls", 1, -1, 0.6), "/attention", "unknown model 'clap'; valid models: dinov2"),
        (("astronaut", "siglip", "cls", 1, -1, 0.6), "/attention", "has no method 'cls'"),
        (("astronaut", "clip", "cls", 1, 9, 0.6), "/attention", "head 9 out of range"),
        (
            ("astronaut", "clip", "cls", 7, -1, 0.6),
            "/attention",
            "layer 7 out of range for clip/cls: valid layers 0..1",
        ),
        (("astronaut", "clip", 1, 0.6, 0.2, 0.1, 0.9, 0.6), "/similarity", "bad box"),
        (("astronaut", "clip", "cls", 1, -1, "1 2 3"), "/metrics", "four numbers"),
    ],
)
def test_bad_input_comes_back_as_a_clear_error(client, args, api_name, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=api_name)
