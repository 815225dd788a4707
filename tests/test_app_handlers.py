"""The app's handlers as plain functions, on a store of tiny random-weight models (no browser, no server)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from app_support import bound_handlers, store_dir
from PIL import Image
from small_models import noise_image, small_model

import vitattn
from vitattn.boxes import LabeledBox
from vitattn.cache import LRU
from vitattn.metrics import METRIC_NAMES
from vitattn.store import open_store
from vitattn.ui import AppConfig, Explorer, LiveModels
from vitattn.ui.actions import page, similarity as sim, views
from vitattn.ui.data.catalog import FUSED, ModelInfo, format_boxes, parse_boxes
from vitattn.ui.data.live import on_gpu
from vitattn.ui.demo import build_demo


def demo_image_list(demo: gr.Blocks) -> int:
    """The id of the header's image list (elem_id "image-id")."""
    return next(i for i, c in demo.blocks.items() if getattr(c, "elem_id", None) == "image-id")


MODEL_METHODS = [(m, meth) for m, spec in vitattn.MODELS.items() for meth in spec.methods]


@pytest.fixture(scope="module")
def store() -> Path:
    return store_dir()


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def upload_file(tmp_path) -> str:
    path = tmp_path / "mine.png"
    path.write_bytes(png_bytes(noise_image(90, 60, seed=3)))
    return str(path)


def test_start_up_reads_the_manifest_and_nothing_else(store, monkeypatch):
    from vitattn.store import Store

    def untouchable(*args, **kwargs):
        raise AssertionError("start-up must not read maps, features, tables or images")

    for name in ("map", "features", "metrics", "box_metrics", "baselines", "image"):
        monkeypatch.setattr(Store, name, untouchable)
    monkeypatch.setenv("VITATTN_STORE", str(store))
    explorer = Explorer.open(AppConfig.from_env())
    demo = build_demo(explorer)  # builds the whole page
    assert explorer.mode == "store" and isinstance(demo, gr.Blocks)
    assert demo.get_component(demo_image_list(demo)).choices == [(i, i) for i in open_store(store).image_ids()]


# -- Attention ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model, method", MODEL_METHODS)
def test_attention_shows_the_stored_map_with_metrics_and_baselines(handlers, explorer, store, model, method):
    info = explorer.info(model)
    layer = info.layers[method][-1]
    picture, table, data = handlers.attention("chelsea", model, method, layer, FUSED, 0.5)
    assert isinstance(picture, Image.Image) and picture.width == 451  # the image's own width (fits 768)
    assert data["source"] == "store" and data["random_weights"] is True
    expected = open_store(store).map("chelsea", model, method, layer)
    np.testing.assert_allclose(np.array(data["map"]), expected, atol=1e-5)
    assert list(table.columns) == ["metric", "better", "map", "random", "center", "saliency", "sobel", "saliency_prior"]
    assert list(table["metric"]) == [m for m in METRIC_NAMES if m in open_store(store).metrics(model)]
    bounded = table[table["metric"].str.match(r"iou|coverage|pointing")]  # emd, kl, mse are not on [0, 1]
    assert bounded[["map", "random", "center", "saliency", "sobel", "saliency_prior"]].stack().between(0, 1).all()
    assert set(table[table["better"] == "lower"]["metric"]) == {"mse", "kl", "emd"}
    json.dumps(data)  # plain numbers for API clients


def test_every_head_and_the_fused_map_differ_and_are_stored(handlers, explorer):
    maps = [np.array(handlers.attention("coffee", "vit", "cls", 1, h, 0.6)[2]["map"]) for h in (-1, 0, 1, 2, 3)]
    np.testing.assert_allclose(np.mean(maps[1:], axis=0), maps[0], atol=1e-3)  # cls fuses heads by their mean
    assert not np.allclose(maps[1], maps[2])


def test_layer_strip_has_one_tile_per_layer(handlers, explorer):
    picture, data = handlers.layers("rocket", "dinov2", "rollout", FUSED, 0.6)
    assert data["layers"] == [0, 1] and np.array(data["maps"]).shape == (2, 4, 4)
    picture, data = handlers.layers("rocket", "siglip", "pool", 2, 0.6)  # pool: the last layer only, one head
    assert data["layers"] == [1] and data["head"] == 2


def test_a_resnet_layer_strip_has_one_tile_per_stage_on_its_own_grid(handlers):
    picture, data = handlers.layers("rocket", "resnet50", "gradcam", FUSED, 0.6, "shared")
    assert data["layers"] == [0, 1, 2, 3] and data["names"][0] == "stage 1 (layer1)"
    assert [np.array(m).shape for m in data["maps"]] == [(24, 24), (12, 12), (6, 6), (3, 3)]
    with pytest.raises(gr.Error, match="scale must be one of"):
        handlers.layers("rocket", "resnet50", "gradcam", FUSED, 0.6, "log")


def test_the_per_layer_chart_has_the_map_and_the_baselines_at_every_layer(handlers, explorer):
    rows = handlers.layer_metrics("coffee", "dinov2", "cls", 1, FUSED, 75)
    baselines = {f"{b} iou_75" for b in ("random", "center", "saliency", "sobel", "saliency_prior")}
    assert set(rows["series"]) == {"map iou_75", "map coverage", *baselines}
    assert list(rows[rows["series"] == "map iou_75"]["layer"]) == ["layer 0", "[layer 1]"]  # the current one marked
    stored = handlers.attention("coffee", "dinov2", "cls", 0, FUSED)[1].set_index("metric")
    assert rows[rows["series"] == "map iou_75"]["value"].iloc[0] == pytest.approx(stored.loc["iou_75", "map"], abs=1e-4)


def test_metrics_scoped_to_one_expert_box_and_the_mask_iou_keeps(handlers, explorer):
    item = explorer.item("astronaut")
    _, table, data = handlers.attention("astronaut", "vit", "cls", 1, FUSED, 0.6, 90, 2)
    assert data["box"] == 2
    alone = vitattn.metrics.all_metrics(np.array(data["map"]), [item.boxes[2]])
    assert table.set_index("metric").loc["iou_90", "map"] == pytest.approx(alone["iou_90"], abs=1e-4)
    plain, _, _ = handlers.attention("astronaut", "vit", "cls", 1, FUSED, 0.6)
    masked, _, _ = handlers.attention("astronaut", "vit", "cls", 1, FUSED, 0.6, 90)
    assert plain.size == masked.size and np.abs(np.asarray(plain, float) - np.asarray(masked, float)).mean() > 1
    with pytest.raises(gr.Error, match="box 99 out of range"):
        handlers.attention("astronaut", "vit", "cls", 1, FUSED, 0.6, 0, 99)
    with pytest.raises(gr.Error, match="percentile must be one of"):
        handlers.attention("astronaut", "vit", "cls", 1, FUSED, 0.6, 95)


def test_info_and_analyze_agree_about_random_weights(handlers):
    info = handlers.info()
    assert info["random_weights"]["live"] is True  # the store's models run live as the store made them: random
    assert all(m["random_weights"] == {"store": True, "live": True} for m in info["models"].values())
    assert info["models"]["resnet50"]["layer_names"][3] == "stage 4 (layer4)"


def test_the_gallery_searches_ids_and_box_labels(explorer):
    assert [c for _, c in page.gallery(explorer, search="cup")] == ["coffee"]
    assert [c for _, c in page.gallery(explorer, search="ROCK")] == ["rocket"]
    assert len(page.gallery(explorer)) == len(explorer.image_ids())


def test_the_head_grid_has_every_head(handlers):
    picture, data = handlers.heads("astronaut", "clip", "mean", 0, 0.6)
    assert np.array(data["maps"]).shape == (4, 4, 4)
    with pytest.raises(gr.Error, match="fuses all heads"):
        handlers.heads("astronaut", "clip", "rollout", 0, 0.6)


def test_predictions_of_classifiers_only(handlers):
    top = handlers.predictions("chelsea", "vit")
    assert len(top) == 5 and all(0 <= p <= 1 for p in top.values())
    assert handlers.predictions("chelsea", "dinov2") == {}


@pytest.mark.parametrize(
    "args, message",
    [
        (("nope", "dinov2", "cls", 1, -1, 0.6), "unknown image id 'nope'"),
        (("chelsea", "dinoX", "cls", 1, -1, 0.6), "unknown model 'dinoX'; valid models: dinov2"),
        (("chelsea", "dinov2", "pool", 1, -1, 0.6), "no method 'pool'; valid methods: cls, mean, rollout"),
        (("chelsea", "dinov2", "cls", 2, -1, 0.6), "layer 2 out of range .* valid layers 0..1"),
        (("chelsea", "dinov2", "cls", 0.5, -1, 0.6), "layer must be a whole number"),
        (("chelsea", "siglip", "pool", 0, -1, 0.6), "valid layers 1"),
        (("chelsea", "dinov2", "cls", 1, 4, 0.6), "head 4 out of range .* valid heads 0..3"),
        (("chelsea", "dinov2", "rollout", 1, 0, 0.6), "fuses all heads by definition"),
        (("chelsea", "dinov2", "cls", 1, -1, 1.5), "opacity must be a number in"),
        (("upload-0123456789abcdef", "dinov2", "cls", 1, -1, 0.6), "unknown or expired; upload the image again"),
    ],
)
def test_bad_input_is_a_clear_error(handlers, args, message):
    with pytest.raises(gr.Error, match=message):
        handlers.attention(*args)


# -- Similarity -----------------------------------------------------------------------------------------------------


def test_similarity_to_an_expert_box_outlines_its_patches(handlers, explorer):
    box = explorer.item("coffee").boxes[0].box  # the cup
    picture, data = handlers.similarity("coffee", "dinov3", 1, *box, 0.6)
    sim = np.array(data["similarity"])
    assert data["source"] == "store" and sim.shape == (4, 4)
    assert data["selected"] and all(sim[r, c] > -1 for r, c in data["selected"])
    assert np.all(sim <= 1 + 1e-6) and np.all(sim >= -1 - 1e-6)


def test_similarity_to_a_point_is_one_patch_and_is_one_there(handlers):
    _, data = handlers.similarity("coffee", "mae", 0, 0.1, 0.9, 0.1, 0.9, 0.6)
    assert data["selected"] == [[3, 0]]
    assert data["similarity"][3][0] == pytest.approx(1.0, abs=1e-5)


def test_similarity_on_a_cnn_stage_uses_its_own_grid(handlers):
    _, data = handlers.similarity("coffee", "resnet50", 0, 0.0, 0.0, 0.5, 0.5, 0.6)
    assert data["grid"] == [24, 24] and len(data["selected"]) == 12 * 12


@pytest.mark.parametrize(
    "box, message",
    [((0.5, 0.1, 0.2, 0.5), "inverted"), ((0.1, 0.1, 1.2, 0.5), "outside"), ((0.1, float("nan"), 0.2, 0.5), "finite")],
)
def test_similarity_refuses_a_bad_box(handlers, box, message):
    with pytest.raises(gr.Error, match=f"bad box: .*{message}"):
        handlers.similarity("coffee", "mae", 0, *box, 0.6)


# -- Your image -----------------------------------------------------------------------------------------------------


def test_an_upload_is_analysed_once_and_then_every_view_works(handlers, explorer, upload_file, monkeypatch):
    calls = []
    model = explorer.live.model("dinov2")
    real = model.analyze
    monkeypatch.setattr(model, "analyze", lambda *a, **k: calls.append(1) or real(*a, **k))
    image_id, picture, data = handlers.analyze(upload_file, "dinov2")
    assert image_id.startswith("upload-") and data["source"] == "live" and data["random_weights"] is True
    for layer in (0, 1):
        for head in (-1, 0, 3):
            _, _, view = handlers.attention(image_id, "dinov2", "cls", layer, head, 0.4)
            assert view["source"] == "live"
    handlers.similarity(image_id, "dinov2", 1, 0.2, 0.2, 0.6, 0.6, 0.5)
    handlers.layers(image_id, "dinov2", "mean", 1, 0.5)
    assert calls == [1]  # one analysis for the upload; the rest came from the cache
    assert handlers.analyze(upload_file, "dinov2")[0] == image_id  # same bytes, same id
    table = handlers.attention(image_id, "dinov2", "cls", 1, -1, 0.4)[1]
    assert table.empty  # an upload has no expert boxes


def test_your_boxes_give_metrics_for_your_annotation(handlers, upload_file):
    image_id = handlers.analyze(upload_file, "vit")[0]
    picture, table = handlers.metrics(image_id, "vit", "agcam", 1, -1, "0.1 0.1 0.5 0.5 roof\n0.6,0.6,0.9,0.8", 0.6)
    assert list(table["metric"]) == list(METRIC_NAMES) and table["saliency"].notna().all()
    assert handlers.metrics(image_id, "vit", "agcam", 1, -1, "", 0.6)[1].empty
    with pytest.raises(gr.Error, match="box 0 .* inverted"):
        handlers.metrics(image_id, "vit", "agcam", 1, -1, "0.5 0.1 0.1 0.5", 0.6)


def test_an_upload_that_is_not_an_image_is_refused(handlers, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    with pytest.raises(gr.Error, match="the upload is not an image"):
        handlers.analyze(str(path), "dinov2")
    with pytest.raises(gr.Error, match="no image"):
        handlers.analyze(None, "dinov2")


def test_boxes_as_text_round_trip():
    boxes = parse_boxes("0.1 0.2 0.3 0.4 west portal; 0.5, 0.5, 0.9, 0.9")
    assert boxes == (LabeledBox((0.1, 0.2, 0.3, 0.4), "west portal"), LabeledBox((0.5, 0.5, 0.9, 0.9), ""))
    assert parse_boxes(format_boxes(boxes)) == boxes
    assert parse_boxes("  \n") == ()


# -- IoU tab --------------------------------------------------------------------------------------------------------


def test_leaderboard_ranks_every_model_at_its_best_layer_beside_the_baselines(handlers, explorer):
    board = handlers.leaderboard(90, "best")
    models = [m for m in board["model"] if not m.startswith("baseline")]
    assert sorted(models) == sorted(explorer.models())
    assert {"baseline: random", "baseline: center", "baseline: saliency"} <= set(board["model"])
    ranked = board.dropna(subset=["rank"])
    assert list(ranked["iou_90"]) == sorted(ranked["iou_90"], reverse=True)
    cls_board = handlers.leaderboard(75, "cls")
    assert set(cls_board.dropna(subset=["rank"])["method"]) == {"cls"}


class Tables:
    """The two things ``iou`` asks of an explorer: the metrics table and a memo."""

    def __init__(self, table):
        self.table = table

    def metrics_table(self):
        return self.table

    def memo(self, key, make):
        return make()


def test_the_best_method_is_chosen_with_the_layer_and_its_interval_says_so():
    from vitattn.metrics import best_layers
    from vitattn.ui.actions import iou, iou_board

    rng = np.random.default_rng(0)
    rows = [
        (f"img{i}", method, layer, 0.3 + 0.1 * layer + (0.05 if method == "mean" else 0.0) + rng.normal(0, 0.05))
        for i in range(12)
        for method in ("cls", "mean")
        for layer in (0, 1, 2)
    ]
    table = {
        "image_id": np.array([r[0] for r in rows]),
        "model": np.array(["m"] * len(rows)),
        "method": np.array([r[1] for r in rows]),
        "layer": np.array([r[2] for r in rows]),
        "head": np.full(len(rows), FUSED),
        "iou_90": np.array([r[3] for r in rows]),
    }
    (best,) = iou_board.best_per_model(Tables(table), "iou_90", None)
    assert (best["method"], best["layer"]) == ("mean", 2) and 0 <= best["p_best"] <= 1
    (alone,) = best_layers(table, "iou_90", method="mean", n_boot=iou.N_BOOT)
    assert best["mean"] == pytest.approx(alone["mean"])
    # every resample re-chooses among all six (method, layer) pairs: the interval cannot sit below one method's
    assert best["lo"] >= alone["lo"] and best["hi"] >= alone["hi"]


def test_the_leaderboard_page_says_how_the_best_layer_was_chosen(handlers):
    board = handlers.leaderboard(90, "best")
    assert "p_best" in board.columns and board["p_best"].dropna().between(0, 1).all()
    from vitattn.ui.actions import iou

    assert "optimistic" in iou.SELECTION_NOTE and "resample" in iou.SELECTION_NOTE


def test_stored_predictions_need_no_inference(store):
    ex = Explorer.open(AppConfig(store=str(store), weights="small"))
    assert ex.predictions_stored
    top = ex.predictions(ex.item("rocket"), "resnet50")
    assert len(top) == 5 and ex.live.cached(ex.item("rocket").key, "resnet50") is None


def test_layer_curves_layer_head_grid_breakdowns_and_comparison(handlers):
    curves = handlers.layer_curves(50, "best")
    assert list(curves.columns) == ["model", "method", "layer", "depth", "iou", "lo", "hi"] and len(curves) >= 9 * 2
    resnet = curves[curves["model"] == "resnet50"]  # its 4 stages on the depth axis of the 2-block ViTs
    assert list(resnet["depth"]) == [0.25, 0.5, 0.75, 1.0] and resnet["layer"].iloc[0] == "stage 1 (layer1)"
    assert set(curves[curves["model"] == "dinov2"]["depth"]) == {0.5, 1.0}
    picture, grid = handlers.layer_head("dinov2", "cls", 90)
    assert np.array(grid["grid"]).shape == (2, 4) and len(grid["fused"]) == 2
    labels = handlers.breakdown("vit", "best", -1, "label", 90)
    assert {"cup", "face", "rocket"} <= set(labels["label"])
    with pytest.raises(gr.Error, match="no style metadata"):
        handlers.breakdown("vit", "cls", 0, "style", 90)
    paired = handlers.compare("dinov2", "resnet50", 90)
    assert paired["n"][0] == 7 and 0 <= paired["p"][0] <= 1
    assert list(paired["metric"]) == [m for m in METRIC_NAMES]  # every metric, one Holm correction
    assert (paired["p_holm"] >= paired["p"] - 1e-9).all() and set(paired["test"]) <= {"t", "wilcoxon"}
    assert list(paired["lower_is_better"][paired["metric"].isin(["mse", "kl", "emd"])]) == [True] * 3
    styles = handlers.breakdown("vit", "best", -1, "label", 90)
    assert 0 <= styles["kruskal_p"].iloc[0] <= 1 and styles["kruskal_p"].nunique() == 1  # Kruskal-Wallis across labels
    with pytest.raises(gr.Error, match="percentile must be one of"):
        handlers.leaderboard(95, "best")


# -- Without a store, a damaged store, random weights ---------------------------------------------------------------


@pytest.fixture(scope="module")
def live_explorer() -> Explorer:
    return Explorer.open(AppConfig(store=None, weights="small"))


def test_without_a_store_the_examples_run_live_and_the_iou_tab_says_it_needs_one(live_explorer):
    app = bound_handlers(live_explorer)
    assert live_explorer.mode == "live" and "astronaut" in live_explorer.image_ids()
    picture, table, data = app.attention("astronaut", "dinov2", "cls", 1, -1, 0.6)
    assert data["source"] == "live" and len(table) == len(METRIC_NAMES)  # against the examples' expert boxes
    with pytest.raises(gr.Error, match="needs a store"):
        app.leaderboard(90, "best")
    status = page.status(live_explorer)
    assert "No store" in status and "Random weights" in status
    assert "download" not in status.replace("no download", "")  # issue 20, problem 10: nothing is downloaded


def test_an_unreachable_store_still_starts_and_says_so(tmp_path):
    ex = Explorer.open(AppConfig(store=str(tmp_path / "missing"), weights="small"))
    assert ex.mode == "live"
    assert "cannot be opened" in page.status(ex) and "bundled example images" in page.status(ex)


@pytest.mark.filterwarnings("ignore:.*computed live:UserWarning")  # gr.Warning outside a request
def test_a_damaged_store_falls_back_to_live_inference_and_says_so(store, tmp_path):
    damaged = tmp_path / "store"
    shutil.copytree(store, damaged)
    maps = damaged / "models" / "dinov2" / "maps-00000.parquet"
    maps.write_bytes(maps.read_bytes()[:1000])  # truncated
    (damaged / "models" / "clip" / "features-00000.parquet").unlink()
    ex = Explorer.open(AppConfig(store=str(damaged)))
    assert "clip" in page.status(ex)  # the missing file is reported on opening
    _, _, data = _attention(ex, "coffee", "dinov2", "cls", 1, -1)
    assert data["source"] == "live"
    sim = _similarity(ex, "coffee", "clip", 0)
    assert sim["source"] == "live"
    status = page.status(ex)
    assert "Problems" in status and "maps-00000.parquet" in status and "computed live" in status
    _, _, again = _attention(ex, "coffee", "mae", "cls", 1, -1)
    assert again["source"] == "store"  # other models still come from the store


def _attention(ex, *args):
    from vitattn.ui.actions import views

    return views.attention(ex, *args, 0.6)


def _similarity(ex, image_id, model, layer):

    return sim.similarity(ex, image_id, model, layer, 0.1, 0.1, 0.4, 0.4, 0.6)[1]


def test_the_page_labels_a_random_weight_store(explorer):
    assert "Random weights" in page.status(explorer) and "test build" in page.status(explorer)


# -- page plumbing --------------------------------------------------------------------------------------------------


def test_controls_keep_what_stays_valid(explorer):
    info = explorer.info("siglip")
    c = page.controls(info, "cls", 1, 3)  # siglip has no cls
    assert c.method == "mean" and c.layer == 1 and c.head == 3
    c = page.controls(info, "pool", 0, 3)  # pool: last layer only
    assert c.layers == (1,) and c.layer == 1
    c = page.controls(explorer.info("resnet50"), "cls", 7, 2)
    assert c.method == "gradcam" and c.layer == 3 and c.head == FUSED and c.heads == (("whole stage (CNN)", -1),)


def test_clicks_select_an_expert_box_a_point_or_two_corners():
    boxes = (LabeledBox((0.0, 0.0, 1.0, 1.0), "all"), LabeledBox((0.2, 0.2, 0.4, 0.4), "small"))
    assert page.click_region("expert box", None, boxes, 0.3, 0.3) == ((0.2, 0.2, 0.4, 0.4), None)
    assert page.click_region("expert box", None, boxes[1:], 0.9, 0.9) == ((0.9, 0.9, 0.9, 0.9), None)
    assert page.click_region("point", None, boxes, 0.3, 0.3) == ((0.3, 0.3, 0.3, 0.3), None)
    region, pending = page.click_region("box (two clicks)", None, boxes, 0.6, 0.2)
    assert region is None and pending == (0.6, 0.2)
    assert page.click_region("box (two clicks)", pending, boxes, 0.1, 0.5) == ((0.1, 0.2, 0.6, 0.5), None)
    assert page.click_point((0, 99), (200, 100)) == (0.003, 0.995)  # rounded to 3 decimals
    assert page.click_region("box (two clicks)", (0.6, 0.2), boxes, 0.6, 0.5) == ((0.6, 0.5, 0.6, 0.5), None)  # a line


@pytest.mark.parametrize("model", list(vitattn.MODELS))
def test_the_live_model_info_matches_what_an_analysis_has(model):
    """``ModelInfo.from_spec`` (no store) must offer exactly the layers and heads an analysis holds (``flow``, on
    request only, as the app computes it live: its default layer, the last)."""
    net = small_model(model)
    analysis = net.analyze(noise_image(), features=False)
    info = ModelInfo.from_spec(net.spec)
    assert ("flow" in info.methods) == (net.spec.family == "vit")
    for method in info.methods:
        if method == "flow":
            analysis = net.analyze(noise_image(), methods=["flow"], features=False)
        assert info.layers[method] == analysis.layers(method)
        assert info.heads[method] == (analysis.heads(method).shape[0] if analysis.has_heads(method) else 0)


def test_live_models_rebuild_the_stores_network(explorer):
    stored = open_store(store_dir()).map("cell", "mae", "mean", 1)
    live = explorer.analysis(explorer.item("cell"), "mae").map("mean", 1)
    np.testing.assert_allclose(live, stored, rtol=2e-3, atol=2e-3)  # float16 in the store


def test_lru_keeps_the_most_recent_and_computes_once():
    lru = LRU(2)
    made = []
    for key in ("a", "b", "a", "c", "a", "b"):
        lru.get_or_make(key, lambda k=key: made.append(k) or k.upper())
    assert made == ["a", "b", "c", "b"] and "a" in lru and "c" not in lru


def test_config_reads_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VITATTN_STORE", raising=False)
    monkeypatch.delenv("VITATTN_WEIGHTS", raising=False)
    assert AppConfig.from_env().store is None
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "manifest.json").write_text("{}")
    assert AppConfig.from_env().store == "store"
    monkeypatch.setenv("VITATTN_STORE", "hf://datasets/ns/name")
    monkeypatch.setenv("VITATTN_WEIGHTS", "small")
    assert AppConfig.from_env() == AppConfig(store="hf://datasets/ns/name", weights="small")
    assert AppConfig.from_env(store="elsewhere").store == "elsewhere"
    with pytest.raises(ValueError, match="weights must be one of"):
        AppConfig(weights="fancy")


def test_gpu_decorator_is_a_no_op_off_zerogpu(monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)

    def f():
        return 1

    assert on_gpu(f) is f
    assert not LiveModels("pretrained").random_weights() and LiveModels("small").random_weights("dinov2")


def test_a_resnet_is_named_by_stage_and_never_by_heads(handlers, explorer):
    """Issue 20, problem 8: titles said "layer 3" and "all heads fused" for a CNN stage."""
    picture, _, data = handlers.attention("chelsea", "resnet50", "gradcam", 3, -1, 0.6)
    title = views.view_name(explorer.info("resnet50"), "gradcam", 3, None)
    assert title == "resnet50 · gradcam · stage 4 (layer4)" and "head" not in title
    method, layer, head, _ = handlers.on_model("resnet50", "gradcam", 3, -1)
    assert all("head" not in label for label, _ in head["choices"]) and "Stage" in layer["label"]
    assert views.view_name(explorer.info("vit"), "cls", 1, None).endswith("layer 1 · all heads fused")
