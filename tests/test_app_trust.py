"""The Trust tab and the IoU tab's metric choice, label filter and flow, on a tiny random-weight store with
randomisation curves (``--sanity-images 1``), flow at the last layer and naclip text maps (``store_dir(TRUST_MODELS,
trust=True)``): every number checked against the store's own rows or the library computed here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from app_support import TRUST_MODELS, store_dir
from small_models import small_overrides

import vitattn
from vitattn.metrics import FUSED_HEAD, LOWER_IS_BETTER, all_metrics, select
from vitattn.metrics.boxacc import max_box_acc_summary
from vitattn.sanity import SIMILARITY_NAMES, model_randomization
from vitattn.store import open_store
from vitattn.ui import AppConfig, Explorer
from vitattn.ui.actions import iou

EXPLORER_STORE = lambda: store_dir(TRUST_MODELS, trust=True)  # noqa: E731


@pytest.fixture(scope="module")
def store():
    with open_store(EXPLORER_STORE()) as s:
        yield s


@pytest.mark.parametrize("model", TRUST_MODELS)
def test_the_curves_are_the_stores_rows(handlers, store, model):
    """One sanity image: each point of the curve is that image's row (the mean over one image)."""
    rows = handlers.sanity_curves(model)
    table = store.sanity(model)
    assert len(rows) == len(table["step"]) > 0
    for r in rows.to_dict("records"):
        at = np.flatnonzero((table["method"] == r["method"]) & (table["step"] == r["step"]))
        assert len(at) == 1 and r["images"] == 1
        for k in SIMILARITY_NAMES:
            stored = float(table[k][at[0]])
            assert (np.isnan(stored) and np.isnan(r[k])) or r[k] == pytest.approx(stored, abs=1e-6), (model, r, k)
        stage = str(table["stage"][at[0]])
        assert r["stage"] == (f"stage {stage[5:]} ({stage})" if model == "resnet50" and stage[:5] == "layer" else stage)
    assert set(rows["method"]) == set(store.manifest["models"][model]["methods"]) - {"flow"}


def test_resnet_stages_are_named_as_stages(handlers):
    stages = handlers.sanity_curves("resnet50")["stage"].tolist()
    assert "stage 4 (layer4)" in stages and not any("head" in s for s in stages)


def test_the_view_follows_the_model_and_keeps_valid_choices(handlers, store):
    for model in TRUST_MODELS:
        note, rank, structure, table, method, image, strip, live, shown = handlers.page_trust(model, "no-such", None)
        assert shown["visible"] is True
        methods = sorted(set(store.sanity(model)["method"]))
        assert method["choices"] == methods and method["value"] == methods[0]
        assert image["value"] == store.image_ids()[0]
        assert "random weights" in note and model in note
        assert rank is not None and structure is not None and len(table) == len(store.sanity(model)["step"])
        steps = int(np.sum(store.sanity(model)["method"] == methods[0]))
        assert len(strip.info["tiles"]) == steps  # one randomised map per stage
        assert live["value"] in live["choices"]


def test_without_curves_one_line_says_how_to_compute_them():
    ex = Explorer.open(AppConfig(store=None, weights="small"))
    from vitattn.ui.tabs.trust import page_trust

    note, *rest = page_trust(ex, "vit", None, None)
    assert "--sanity-images" in note and "python -m precompute" in note
    assert rest[0] is None and rest[5] is None and rest[-1]["visible"] is False


def test_the_live_run_is_the_librarys(handlers, explorer):
    image_id = explorer.image_ids()[0]
    rows, strip = handlers.sanity_live(image_id, "clip", "rollout")
    torch.manual_seed(0)  # what the app's live models (and the store) build
    net = vitattn.load_model("clip", pretrained=False, device="cpu", **small_overrides("clip"))
    expected = model_randomization(net, explorer.item(image_id).image(), "rollout")
    assert rows["stage"].tolist() == [r["stage"] for r in expected]
    for k in SIMILARITY_NAMES:
        np.testing.assert_allclose(rows[k].to_numpy(float), [r[k] for r in expected], atol=1e-3)
    assert len(strip.info["tiles"]) == len(expected)


# -- the IoU tab's leaderboard: metric choice, lower-is-better, MaxBoxAccV2, the label filter ----------------------


def _best_per_model(table, metric: str) -> list[tuple[str, str, int, float]]:
    """Per model its best (method, layer) by the fused mean of ``metric`` (lowest for lower-is-better), ranked."""
    fused = select(table, head=FUSED_HEAD)
    frame = pd.DataFrame({k: fused[k] for k in ("model", "method", "layer", metric)})
    means = frame.groupby(["model", "method", "layer"], as_index=False)[metric].mean()
    lower = metric in LOWER_IS_BETTER
    best = means.sort_values(metric, ascending=lower).groupby("model").head(1)
    return [(r.model, r.method, int(r.layer), float(getattr(r, metric))) for r in best.itertuples()]


@pytest.mark.parametrize("metric", ["pxap", "relevance_mass", "mse"])
def test_the_leaderboard_by_a_metric_is_the_tables_ranking(handlers, store, metric):
    board = handlers.leaderboard(90, "best", metric)
    models = board[board["rank"].notna()]
    expected = _best_per_model(store.metrics(), metric)
    assert list(models["model"]) == [m for m, *_ in expected]
    assert list(models["method"]) == [m for _, m, *_ in expected]
    assert list(models["layer"].astype(int)) == [v for *_, v, _ in expected]
    np.testing.assert_allclose(models[metric].to_numpy(float), [v for *_, v in expected], atol=1e-4)
    values = models[metric].to_numpy(float)
    assert list(values) == sorted(values, reverse=metric not in LOWER_IS_BETTER)


def test_max_box_acc_is_boxaccs_summary(handlers, store):
    board = handlers.leaderboard(90, "cls", iou.MAX_BOX_ACC)
    summary = max_box_acc_summary(store, methods=["cls"])
    best = {}
    for r in summary:  # the best layer per model (ties: the shallower, the first in layer order)
        if r["model"] not in best or r["max_box_acc"] > best[r["model"]]["max_box_acc"]:
            best[r["model"]] = r
    assert sorted(board["model"]) == sorted(best)
    for r in board.to_dict("records"):
        assert r["layer"] == best[r["model"]]["layer"]
        assert r["max_box_acc"] == pytest.approx(best[r["model"]]["max_box_acc"], abs=1e-4)
        assert r["images"] == best[r["model"]]["n_images"]


def test_a_label_ranks_text_methods_beside_image_methods(handlers, explorer, store):
    text = store.metrics(text=True)
    prompts = [p for p in text["prompt"] if p]
    label = max(set(prompts), key=prompts.count)  # the label with the most text rows
    board = handlers.leaderboard(90, "best", "pxap", label)
    kinds = set(board["kind"])
    assert kinds == {"image", f"text: {label}"}
    for r in board[board["kind"] != "image"].to_dict("records"):
        pick = (text["prompt"] == label) & (text["model"] == r["model"]) & (text["method"] == r["method"])
        pick &= text["layer"] == r["layer"]
        assert r["pxap"] == pytest.approx(float(np.mean(text["pxap"][pick])), abs=1e-4)
    row = board[board["kind"] == "image"].iloc[0]
    ids = [i for i in store.image_ids() if any(b.label == label for b in store.image(i).boxes)]
    expected = []
    for i in ids:
        boxes = [b for b in store.image(i).boxes if b.label == label]
        heatmap = store.map(i, row["model"], row["method"], int(row["layer"]))
        expected.append(all_metrics(heatmap, boxes)["pxap"])
    assert row["images"] == len(ids) and row["pxap"] == pytest.approx(float(np.mean(expected)), abs=1e-4)
    pxap = board["pxap"].to_numpy(float)
    assert list(pxap) == sorted(pxap, reverse=True)


def test_the_metric_choices_and_a_bad_one(handlers, explorer):
    choices = iou.board_metrics(explorer)
    assert choices[0] == iou.IOU_AT and choices[-1] == iou.MAX_BOX_ACC
    assert {"coverage", "pointing", "mse", "relevance_mass", "relevance_rank", "pxap"} <= set(choices)
    with pytest.raises(Exception, match="valid: IoU@p"):
        handlers.leaderboard(90, "best", "accuracy")


# -- flow: stored at some layers, live on request -------------------------------------------------------------------


def test_stored_flow_exists_at_its_layers_only(handlers, explorer, store):
    info = explorer.info("clip")
    assert info.layers["flow"] == (info.num_layers - 1,) and info.heads["flow"] == 0
    assert "flow" not in explorer.info("resnet50").methods
    image_id = explorer.image_ids()[0]
    picture, metrics, _ = handlers.attention(image_id, "clip", "flow", info.num_layers - 1, -1)
    assert picture is not None and metrics is not None
    rows = handlers.layer_metrics(image_id, "clip", "flow", info.num_layers - 1)
    assert set(rows["layer"]) == {f"[layer {info.num_layers - 1}]"}  # the per-layer chart: the one stored layer
    with pytest.raises(Exception, match="valid layers"):
        handlers.attention(image_id, "clip", "flow", 0, -1)


def test_live_flow_is_offered_for_vits_and_computed_on_request():
    ex = Explorer.open(AppConfig(store=None, weights="small"))
    info = ex.info("vit")
    assert "flow" in info.methods and info.layers["flow"] == (info.num_layers - 1,)
    assert "flow" not in ex.info("resnet50").methods
    item = ex.item(ex.image_ids()[0])
    heatmap, origin = ex.map(item, "vit", "flow", info.num_layers - 1, None)
    torch.manual_seed(0)
    net = vitattn.load_model("vit", pretrained=False, device="cpu", **small_overrides("vit"))
    expected = net.analyze(item.image(), methods=["flow"], features=False).map("flow", info.num_layers - 1)
    assert origin == "live"
    np.testing.assert_allclose(heatmap, expected, rtol=1e-5, atol=1e-6)


def test_the_header_offers_flow_at_its_one_layer_with_its_cost():
    """A method that exists at one layer only (live flow: the last) keeps the header valid: the layer slider shows
    that layer and is off, the head control is off (flow fuses heads), and the method's info line gives the cost."""
    from vitattn.ui.data.catalog import FLOW_COST
    from vitattn.ui.shell.header import on_model

    ex = Explorer.open(AppConfig(store=None, weights="small"))
    last = ex.info("vit").num_layers - 1
    method, slider, head, _ = on_model(ex, "vit", "flow", 0, 3)
    assert method["value"] == "flow" and method["info"] == FLOW_COST and "flow" in method["choices"]
    assert slider["value"] == last and slider["interactive"] is False
    assert head["value"] == -1 and head["interactive"] is False
    method, *_ = on_model(ex, "vit", "cls", 0, -1)
    assert method["info"] == ""
