"""The Query tab's handlers (``vitattn.ui.actions.query``) in process, and ``/query_attention`` on the launched app.

On a random-weight store of the tiny dinov2 (CLS + 4 registers), siglip (no prefix), vit and resnet50 (no
attention) (``app_support.store_dir``). The attention a handler returns is checked against softmax(q k^T / sqrt d)
computed here from the blocks' own qkv weights (``test_query.reference_attention``) on the network the store was
made with (``small_models.small_model``: the same seed and overrides as the store's recipe); the similarity is the
Similarity tab's own view of the same point, and its selected patch is the query patch.
"""

from __future__ import annotations

import re
from functools import partial

import gradio as gr
import numpy as np
import pytest
from app_support import KINDS, api_client, app_server, store_dir
from PIL import Image
from small_models import small_model
from test_query import reference_attention

from vitattn.ui import Explorer
from vitattn.ui.actions import query as query_view, similarity as similarity_actions
from vitattn.ui.data.catalog import FUSED

IMAGE = "astronaut"


EXPLORER_STORE = partial(store_dir, KINDS)  # the explorer fixture (conftest.py) opens this store


def reference(ex: Explorer, model: str, layer: int, token: int) -> np.ndarray:
    """``[H, T]``: the query token's attention row at ``layer``, from the block's own q and k."""
    return reference_attention(small_model(model), ex.item(IMAGE).image())[layer][:, token, :]


@pytest.mark.parametrize(("model", "prefix"), [("dinov2", 5), ("siglip", 0), ("vit", 1)])
def test_attention_is_the_query_row_of_softmax_qk(ex, model, prefix):
    picture, data = query_view.attention(ex, IMAGE, model, 1, 2, 0.9, 0.1, 0.6)
    assert data["cell"] == [0, 3] and data["index"] == 3 and data["grid"] == [4, 4]  # top right, row-major
    assert data["prefix_tokens"] == prefix and data["random_weights"] is True and data["source"] == "live"
    row = reference(ex, model, 1, prefix + 3)  # [H, T]
    np.testing.assert_allclose(data["attention"], row[2, prefix:].reshape(4, 4), atol=2e-6)
    assert data["prefix_share"] == pytest.approx(row[2, :prefix].sum(), abs=2e-6)
    np.testing.assert_allclose(data["prefix_share_per_head"], row[:, :prefix].sum(1), atol=2e-6)
    assert np.sum(data["attention"]) + data["prefix_share"] == pytest.approx(1.0, abs=1e-4)  # rows sum to 1
    _, fused = query_view.attention(ex, IMAGE, model, 1, FUSED, 0.9, 0.1, 0.6)
    np.testing.assert_allclose(fused["attention"], row[:, prefix:].mean(0).reshape(4, 4), atol=2e-6)
    assert fused["head"] == FUSED and fused["prefix_share"] == pytest.approx(row[:, :prefix].sum(1).mean(), abs=2e-6)
    # title band, image, colour bar
    assert picture.width == ex.item(IMAGE).picture.width and picture.height > ex.item(IMAGE).picture.height + 40


def test_similarity_selects_the_query_patch(ex):
    _, data = query_view.attention(ex, IMAGE, "dinov2", 0, FUSED, 0.3, 0.7, 0.6)
    picture, sim = query_view.similarity(ex, IMAGE, "dinov2", 0, 0.3, 0.7, 0.6)
    want, _ = similarity_actions.similarity(ex, IMAGE, "dinov2", 0, 0.3, 0.7, 0.3, 0.7, 0.6)
    assert sim["selected"] == [data["cell"]] == [[2, 1]]
    assert sim["region"] == [0.3, 0.7, 0.3, 0.7] and sim["similarity"][2][1] == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(np.asarray(picture), np.asarray(want))


def test_the_strip_and_surface(ex):
    item = ex.item(IMAGE)
    row = query_view.strip(ex, IMAGE, "dinov2", 1, 0.5, 0.5, 0.6, "shared")
    assert row.width >= 480 and row.height > 150  # two tiles, a random-weights band, a colour bar
    surface = query_view.surface(ex, IMAGE, "dinov2", 1, 0.1, 0.1)
    w, h = item.picture.size
    assert surface.size == (w, h + 24)  # a title band above the image
    # the query patch (0, 0) is outlined in the outline colour; the last cell is not
    pixels = np.asarray(surface)[24:]
    cyan = np.all(np.abs(pixels.astype(int) - (0, 229, 255)) < 40, axis=-1)
    assert cyan[: h // 4 + 2, : w // 4 + 2].any() and not cyan[h // 2 :, w // 2 :].any()


def test_resnet_has_no_attention_but_similarity_works(ex):
    assert not query_view.has_attention(ex, "resnet50") and query_view.has_attention(ex, "siglip")
    with pytest.raises(gr.Error, match="resnet50 has no attention") as caught:
        query_view.attention(ex, IMAGE, "resnet50", 3, FUSED, 0.5, 0.5, 0.6)
    assert "\n" not in caught.value.message
    picture, sim = query_view.similarity(ex, IMAGE, "resnet50", 0, 0.5, 0.5, 0.6)
    fgrid = query_view.surface_grid(ex, ex.item(IMAGE), "resnet50", 0)  # the stage's own grid
    assert list(fgrid) == sim["grid"] and len(sim["selected"]) == 1 and picture.width > 300
    w, h = ex.item(IMAGE).picture.size
    assert query_view.surface(ex, IMAGE, "resnet50", 0, 0.5, 0.5).size == (w, h + 24)
    assert query_view.layer_label(ex, "resnet50").startswith("Stage (query): 0 = stage 1 (layer1)")
    assert "resnet50 has no attention" in query_view.no_attention("resnet50")
    assert query_view.head_choices(ex, "resnet50") == [("all heads fused (mean)", FUSED)]


def test_tab_controls_keep_valid_header_values(ex):
    assert query_view.tab_controls(ex, "dinov2", 1, 3)[:2] == (1, 3)
    assert query_view.tab_controls(ex, "dinov2", 3, 7)[:2] == (1, FUSED)  # two blocks, four heads
    layer, head, choices = query_view.tab_controls(ex, "resnet50", 2, 3)
    assert (layer, head, len(choices)) == (2, FUSED, 1)
    x0, y0, x1, y1 = ex.item(IMAGE).boxes[0].box
    assert query_view.start_point(ex, IMAGE) == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2), abs=1e-3)
    w, h = ex.item(IMAGE).picture.size
    assert query_view.click(ex, IMAGE, (5, 10)) is None  # on the title band: the query stays
    assert query_view.click(ex, IMAGE, (0, 24)) == (round(0.5 / w, 3), round(0.5 / h, 3))
    assert query_view.click(ex, IMAGE, (w - 1, 24 + h - 1)) == (round(1 - 0.5 / w, 3), round(1 - 0.5 / h, 3))


def test_one_forward_pass_per_image_and_model(ex):
    item = ex.item(IMAGE)
    first = query_view.rows(ex, item, "vit")
    assert query_view.rows(ex, item, "vit") is first  # cached by content and model
    assert first.weights.shape == (2, 4, 17, 17)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ex: query_view.attention(ex, IMAGE, "vit", 2, FUSED), "layer 2 out of range for vit"),
        (lambda ex: query_view.attention(ex, IMAGE, "vit", 0.5, FUSED), "layer must be a whole number"),
        (lambda ex: query_view.attention(ex, IMAGE, "vit", 1, 4), "head 4 out of range for vit"),
        (lambda ex: query_view.attention(ex, IMAGE, "vit", 1, FUSED, 1.5, 0.5), "normalized to [0, 1]"),
        (lambda ex: query_view.attention(ex, IMAGE, "vit", 1, FUSED, "a", 0.5), "normalized to [0, 1]"),
        (lambda ex: query_view.attention(ex, IMAGE, "vit", 1, FUSED, 0.5, 0.5, 2), "opacity must be"),
        (lambda ex: query_view.attention(ex, IMAGE, "nope", 1), "unknown model"),
        (lambda ex: query_view.attention(ex, "nope", "vit", 1), "unknown image id"),
        (lambda ex: query_view.strip(ex, IMAGE, "vit", FUSED, 0.5, 0.5, 0.6, "log"), "scale must be one of"),
    ],
)
def test_bad_input_gives_one_line(ex, call, message):
    with pytest.raises(gr.Error, match=re.escape(message)) as caught:
        call(ex)
    assert "\n" not in caught.value.message


# -- the public endpoint on the launched app ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("gradio_client")
    return api_client(app_server(KINDS).url)


@pytest.mark.slow  # the app as a process
def test_view_api_shows_the_endpoint_typed_and_described(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert not [name for name in api if name.startswith("/query_attention_") or name.startswith("/on_query")]
    endpoint = api["/query_attention"]
    params = {p["parameter_name"]: p["python_type"]["type"] for p in endpoint["parameters"]}
    assert params == {
        "image_id": "str",
        "model": params["model"],
        "layer": "int",
        "head": "int",
        "x": "float",
        "y": "float",
        "opacity": "float",
    }
    assert [r["label"] for r in endpoint["returns"]] == ["picture", "data"]
    assert "resnet50" in params["model"] and "attends" in endpoint["description"]
    assert [p["parameter_has_default"] for p in endpoint["parameters"]] == [False, False, False] + [True] * 4


@pytest.mark.slow  # the app as a process
def test_endpoint_answers_what_the_handler_gives(client, ex):
    picture, data = client.predict(IMAGE, "dinov2", 1, 2, 0.9, 0.1, 0.6, api_name="/query_attention")
    _, want = query_view.attention(ex, IMAGE, "dinov2", 1, 2, 0.9, 0.1, 0.6)
    assert data["cell"] == [0, 3] and data["prefix_tokens"] == 5
    np.testing.assert_allclose(data["attention"], want["attention"], atol=1e-6)
    assert data["prefix_share"] == pytest.approx(want["prefix_share"], abs=1e-6)
    assert Image.open(picture).width == ex.item(IMAGE).picture.width
    fused = client.predict(IMAGE, "siglip", 0, api_name="/query_attention")[1]  # defaults: fused, the centre
    assert fused["head"] == FUSED and fused["prefix_share"] == 0.0 and fused["cell"] == [2, 2]


@pytest.mark.slow  # the app as a process
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((IMAGE, "resnet50", 3, -1, 0.5, 0.5, 0.6), "resnet50 has no attention"),
        ((IMAGE, "vit", 1, 9, 0.5, 0.5, 0.6), "head 9 out of range for vit"),
        ((IMAGE, "vit", 1, -1, 0.5, 3.0, 0.6), "normalized to [0, 1]"),
    ],
)
def test_endpoint_refuses_in_one_line(client, args, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=re.escape(message)) as caught:
        client.predict(*args, api_name="/query_attention")
    assert "\n" not in str(caught.value)
