"""The Compare tab's handlers (``vitattn/ui/compare_view.py``) on a real random-weight store, and its endpoint
``/compare_maps`` through ``gradio_client`` against the launched app.

The store (``app_support.store_dir(KINDS)``) holds tiny dinov2 (4x4 grid), siglip, vit (a classifier) and resnet50
(stage grids 24x24, 12x12, 6x6, 3x3, no heads), made by the precompute job with random weights. The difference is
checked against ``B - A`` computed here with numpy on maps read from the store; mismatched grids against
``vitattn.metrics.upsample`` (another bilinear implementation than the handler's ``render.resize_bilinear``).
"""

from __future__ import annotations

from functools import partial

import gradio as gr
import numpy as np
import pytest
from app_support import KINDS, api_client, app_server, store_dir
from PIL import Image

from vitattn.metrics import LOWER_IS_BETTER, METRIC_NAMES, upsample
from vitattn.render import WARNING_RED
from vitattn.ui import Explorer
from vitattn.ui.actions import compare as compare_view
from vitattn.ui.actions.compare import NORMALISED, RAW, Side

gradio_client = pytest.importorskip("gradio_client")


EXPLORER_STORE = partial(store_dir, KINDS)  # the explorer fixture (conftest.py) opens this store


def stored(ex: Explorer, image_id: str, model: str, method: str, layer: int, head: int | None) -> np.ndarray:
    """A map read from the store itself (not through the Explorer's cache)."""
    return np.asarray(ex.store.map(image_id, model, method, layer, head), dtype=np.float64)


def minmax(m: np.ndarray) -> np.ndarray:
    return (m - m.min()) / (m.max() - m.min())


def test_difference_is_b_minus_a_of_the_stored_maps(ex):
    picture, table, data = compare_view.compare_maps(ex, "chelsea", "vit", "cls", 1, 2, "vit", "cls", 0, 2, RAW)
    a, b = stored(ex, "chelsea", "vit", "cls", 1, 2), stored(ex, "chelsea", "vit", "cls", 0, 2)
    assert data["grid"] == [4, 4] and not data["resampled"]  # one grid: no resampling
    assert np.allclose(data["a"]["map"], a, atol=1e-6) and np.allclose(data["b"]["map"], b, atol=1e-6)
    assert np.allclose(data["difference"], b - a, atol=1e-6)
    assert data["limit"] == pytest.approx(np.abs(b - a).max(), rel=1e-5)  # the symmetric scale [-m, m]
    assert data["a"]["layer_name"] == "layer 1" and data["b"]["head"] == 2 and data["scale"] == RAW
    assert picture.width > 3 * compare_view.SIDE  # A, B and B - A in one row


def test_mismatched_grids_are_resampled_to_the_finer_then_normalised(ex):
    _, _, data = compare_view.compare_maps(
        ex, "astronaut", "dinov2", "mean", 1, -1, "resnet50", "gradcam", 0, -1, NORMALISED
    )
    a = stored(ex, "astronaut", "dinov2", "mean", 1, None)
    b = stored(ex, "astronaut", "resnet50", "gradcam", 0, None)
    assert a.shape == (4, 4) and b.shape == (24, 24) and a.std() > 0 and b.std() > 0
    assert data["grid"] == [24, 24] and data["resampled"]
    assert data["a"]["own_grid"] == [4, 4] and data["b"]["own_grid"] == [24, 24]
    want_a, want_b = minmax(upsample(a, 24).astype(np.float64)), minmax(b)
    assert np.allclose(data["a"]["map"], want_a, atol=1e-5) and np.allclose(data["b"]["map"], want_b, atol=1e-5)
    diff = np.asarray(data["difference"])
    assert np.allclose(diff, want_b - want_a, atol=1e-5)
    assert data["limit"] == pytest.approx(np.abs(diff).max(), abs=1e-5) and data["limit"] <= 1.0
    assert data["b"]["layer_name"] == "stage 1 (layer1)" and data["b"]["head"] == -1


def test_the_picture_is_one_row_with_the_random_weights_band(ex):
    picture, _, data = compare_view.compare_maps(ex, "astronaut", "siglip", "pool", 1, 0, "siglip", "mean", 1, 0)
    assert data["random_weights"] and data["a"]["random_weights"] and data["a"]["source"] == "store"
    top = np.asarray(picture.convert("RGB"))[:20, :400].reshape(-1, 3)
    assert (np.abs(top.astype(int) - WARNING_RED).sum(axis=1) < 60).sum() > 50  # red text: RANDOM WEIGHTS ...
    assert compare_view.grid_note((4, 4), [(4, 4), (4, 4)]) == "A and B share the 4x4 grid."
    assert "resampled bilinearly to 24x24" in compare_view.grid_note((24, 24), [(4, 4), (24, 24)])
    assert "different methods" in compare_view.scale_note(RAW, ("gae", "gradcam"))
    assert "different methods" not in compare_view.scale_note(RAW, ("cls", "cls"))
    assert "min-max" in compare_view.scale_note(NORMALISED, ("gae", "gradcam"))


def test_metrics_table_is_each_sides_scores_with_the_delta_and_direction(ex):
    _, table, _ = compare_view.compare_maps(ex, "coffee", "vit", "agcam", 1, -1, "dinov2", "gae", 0, -1)
    item = ex.item("coffee")
    want_a = ex.scores(item, "vit", "agcam", 1, None)[0]
    want_b = ex.scores(item, "dinov2", "gae", 0, None)[0]
    assert table["metric"].tolist() == [m for m in METRIC_NAMES if m in want_a]
    for row in table.to_dict("records"):
        a, b = want_a[row["metric"]], want_b[row["metric"]]
        assert row["A"] == pytest.approx(a, abs=1e-4) and row["B"] == pytest.approx(b, abs=1e-4)
        assert row["B - A"] == pytest.approx(b - a, abs=2e-4)
        lower = row["metric"] in LOWER_IS_BETTER
        assert row["better"] == ("lower" if lower else "higher")
        assert row["B is"] == ("same" if a == b else "better" if (b < a) == lower else "worse")
    assert set(table.loc[table["better"] == "lower", "metric"]) == {"mse", "kl", "emd"}


def test_a_map_against_itself_is_zero_everywhere(ex):
    picture, table, data = compare_view.compare_maps(ex, "rocket", "vit", "mean", 0, 1, "vit", "mean", 0, 1)
    assert data["limit"] == 0.0 and not np.asarray(data["difference"]).any()
    assert set(table["B is"]) == {"same"} and not table["B - A"].any()


def test_layer_choices_name_resnet_stages(ex):
    assert compare_view.layer_choices(ex, "resnet50", (0, 1, 2, 3)) == [
        ("stage 1 (layer1)", 0),
        ("stage 2 (layer2)", 1),
        ("stage 3 (layer3)", 2),
        ("stage 4 (layer4)", 3),
    ]
    assert compare_view.layer_choices(ex, "dinov2", (0, 1)) == [("layer 0", 0), ("layer 1", 1)]


def test_a_new_model_resets_method_layer_and_head(ex):
    c = compare_view.side_controls(ex, "resnet50", "cls", 1, 2)  # from vit cls, layer 1, head 2: layer 1 is valid
    assert (c.method, c.layer, c.head, c.layers) == ("gradcam", 1, -1, (0, 1, 2, 3))
    assert [v for _, v in c.heads] == [-1]  # no heads: one choice
    c = compare_view.side_controls(ex, "dinov2", "gradcam", 3, -1)  # back from resnet50 stage 4: the last layer
    assert (c.method, c.layer, c.head, c.layers) == ("cls", 1, -1, (0, 1))
    c = compare_view.side_controls(ex, "siglip", "cls", 0, 2)  # no CLS: its first method, head kept
    assert (c.method, c.layer, c.head) == ("mean", 0, 2)
    c = compare_view.side_controls(ex, "siglip", "pool", 0, 3)  # pool: the last layer only
    assert (c.layer, c.head, c.layers) == (1, 3, (1,))


def test_side_b_starts_at_a_contrast(ex):
    assert compare_view.contrast(ex, Side("vit", "cls", 1, 2)) == Side("vit", "cls", 0, 2)  # one layer earlier
    assert compare_view.contrast(ex, Side("vit", "cls", 0, -1)) == Side("vit", "cls", 1, -1)  # first: the last
    assert compare_view.contrast(ex, Side("resnet50", "gradcam", 3, -1)) == Side("resnet50", "gradcam", 2, -1)
    assert compare_view.contrast(ex, Side("siglip", "pool", 1, 3)) == Side("siglip", "mean", 1, 3)  # one layer only


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "vit", "cls", 0, -1, "vit", "cls", 1, -1), "unknown image id 'nope'"),
        (("astronaut", "vitt", "cls", 0, -1, "vit", "cls", 1, -1), "side A: unknown model 'vitt'; valid models: "),
        (("astronaut", "vit", "cls", 0, -1, "siglip", "cls", 1, -1), "side B: model 'siglip' has no method 'cls'"),
        (("astronaut", "vit", "cls", 5, -1, "vit", "cls", 1, -1), "side A: layer 5 out of range for vit/cls"),
        (
            ("astronaut", "vit", "cls", 0, -1, "resnet50", "gradcam", 4, -1),
            r"valid layers 0\.\.3 \(0 = stage 1 \(layer1\), .*3 = stage 4 \(layer4\)\)",
        ),
        (("astronaut", "vit", "cls", 0, 4, "vit", "cls", 1, -1), r"side A: head 4 out of range .* valid heads 0\.\.3"),
        (("astronaut", "vit", "rollout", 0, 1, "vit", "cls", 1, -1), "fuses all heads by definition; use head -1"),
        (("astronaut", "vit", "cls", 0.5, -1, "vit", "cls", 1, -1), "layer must be a whole number, got 0.5"),
        (("astronaut", "vit", "cls", 0, -1, "vit", "cls", 1, -1, "log"), "scale must be one of 'shared raw scale'"),
    ],
)
def test_bad_input_names_the_valid_values(ex, args, message):
    with pytest.raises(gr.Error, match=message) as caught:
        compare_view.compare_maps(ex, *args)
    assert "\n" not in caught.value.message


# -- the endpoint, through gradio_client against the launched app --------------------------------------------------


@pytest.fixture(scope="module")
def client():
    return api_client(app_server(KINDS).url)


@pytest.mark.slow  # the app as a process
def test_view_api_shows_the_endpoint_typed(client):
    endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/compare_maps"]
    params = [p["parameter_name"] for p in endpoint["parameters"]]
    assert params == [
        "image_id",
        "model_a",
        "method_a",
        "layer_a",
        "head_a",
        "model_b",
        "method_b",
        "layer_b",
        "head_b",
        "scale",
    ]
    types = {p["parameter_name"]: p["python_type"]["type"] for p in endpoint["parameters"]}
    assert all(types[k] == "int" for k in ("layer_a", "head_a", "layer_b", "head_b"))
    assert "shared raw scale" in types["scale"] and "resnet50" in types["model_b"]
    assert [r["label"] for r in endpoint["returns"]] == ["picture", "metrics", "data"]
    assert "B - A" in endpoint["description"]


@pytest.mark.slow  # the app as a process
def test_the_endpoint_answers_as_the_handler(client, ex):
    picture, metrics, data = client.predict(
        "astronaut", "dinov2", "mean", 1, -1, "resnet50", "gradcam", 0, -1, NORMALISED, api_name="/compare_maps"
    )
    _, want_table, want = compare_view.compare_maps(
        ex, "astronaut", "dinov2", "mean", 1, -1, "resnet50", "gradcam", 0, -1, NORMALISED
    )
    assert data["grid"] == [24, 24] and data["b"]["layer_name"] == "stage 1 (layer1)"
    assert np.allclose(data["difference"], want["difference"], atol=1e-6) and data["limit"] == want["limit"]
    rows = [dict(zip(metrics["headers"], r, strict=True)) for r in metrics["data"]]
    assert [r["metric"] for r in rows] == want_table["metric"].tolist()
    assert [r["B - A"] for r in rows] == pytest.approx(want_table["B - A"].tolist(), abs=1e-4)
    assert Image.open(picture).width > 3 * compare_view.SIDE
    _, _, defaults = client.predict("chelsea", "vit", "cls", -1, -1, "vit", "cls", 0, -1, api_name="/compare_maps")
    assert defaults["scale"] == RAW and defaults["a"]["layer"] == 1  # -1: the last layer


@pytest.mark.slow  # the app as a process
def test_bad_input_is_one_line_through_the_client(client):
    with pytest.raises(Exception, match="side B: layer 9 out of range for resnet50/gradcam") as caught:
        client.predict("astronaut", "vit", "cls", 0, -1, "resnet50", "gradcam", 9, -1, RAW, api_name="/compare_maps")
    assert "\n" not in str(caught.value).strip() and "Traceback" not in str(caught.value)
