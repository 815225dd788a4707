"""Handlers of the Heads, Variants and Features tabs as plain functions, on a real random-weight store.

The store (``test_app_more_support.more_store``) holds tiny dinov2, siglip, vit, resnet50 and a fine-tuned variant
``vit@full`` (the fine-tune job with ``--random-weights``). Each handler is checked against the library it calls,
computed here independently from the store's own tables and maps.
"""

from __future__ import annotations

import re

import gradio as gr
import numpy as np
import pytest
from test_app_more_support import VARIANT, more_store

from vitattn import variants
from vitattn.datasets import load_examples
from vitattn.metrics import all_metrics, head_exemplars, head_feature_matrix, head_ranking, upsample
from vitattn.pca import joint_pca
from vitattn.ui import AppConfig, Explorer
from vitattn.ui.actions import features as features_view, heads, variants as variants_view
from vitattn.ui.actions.common import RANDOM_WEIGHTS, all_models, attention_link

EXPLORER_STORE = more_store  # the explorer fixture (conftest.py) opens this store


def test_models_include_the_stored_variant(ex):
    assert VARIANT in ex.models() and all_models(ex) == ex.models()  # the app serves a stored variant as a model
    assert variants_view.pairs(ex) == [("vit", VARIANT)]
    assert variants_view.shared_methods(ex, "vit", VARIANT) == ["cls", "mean", "rollout"]  # no head: no agcam


def test_head_choices_hide_what_does_not_apply(ex):
    assert heads.head_models(ex) == ["dinov2", "siglip", "vit", VARIANT]
    resnet = heads.choices(ex, "resnet50")
    assert resnet.methods == () and "resnet50 has no attention heads" in resnet.note
    siglip = heads.choices(ex, "siglip", "rollout")  # rollout fuses heads: the first per-head method instead
    assert siglip.methods == ("mean", "pool") and siglip.method == "mean" and siglip.note == ""
    assert heads.choices(Explorer(AppConfig(), examples=()), "vit").note.startswith("The Heads tab needs a store")


def test_ranking_is_the_library_ranking_of_the_stored_table(ex):
    table = ex.store.metrics()
    want = head_ranking(table, "vit", "cls", [0, 1], "iou_90")
    frame = heads.ranking(ex, "vit", "cls", "iou_90", 0, -1)
    assert frame["rank"].tolist() == list(range(1, 9))
    assert list(zip(frame["layer"], frame["head"], strict=True)) == [(r["layer"], r["head"]) for r in want]
    assert np.allclose(frame["iou_90"], [r["mean"] for r in want], atol=1e-4)
    assert np.allclose(frame["top1"].sum(), 1.0, atol=1e-3)  # one top-1 head per image, ties shared
    lower = heads.ranking(ex, "vit", "cls", "emd", 1, 1)
    assert "emd (lower is better)" in lower.columns and set(lower["layer"]) == {1}
    ranked = head_ranking(table, "vit", "cls", [1], "emd")
    assert lower["head"].tolist() == [r["head"] for r in ranked]


def test_matrix_and_exemplars_follow_the_box_table(ex):
    boxes = ex.store.box_metrics()
    want = head_feature_matrix(boxes, "vit", "cls", layers=[0, 1])
    picture, best = heads.matrix(ex, "vit", "cls", 0, 1)
    assert picture.width > 400 and picture.height > 400
    assert best["feature"].tolist() == list(want.features)
    assert list(zip(best["layer"], best["head"], strict=True)) == [(b["layer"], b["head"]) for b in want.best]
    gallery, frame = heads.exemplars(ex, "vit", "cls", 1, 2, "face", 3)
    rows = head_exemplars(boxes, 1, 2, "face", 3, model="vit", method="cls")
    assert frame["image_id"].tolist() == [r["image_id"] for r in rows] and len(gallery) == len(rows)
    assert all(caption.startswith(r["image_id"]) for (_, caption), r in zip(gallery, rows, strict=True))
    assert heads.best_head(ex, "vit", "cls", "face", 0, 1) == next(
        (b["layer"], b["head"]) for b in want.best if b["feature"] == "face"
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ex: heads.ranking(ex, "resnet50", "gradcam"), "has no per-head maps"),
        (lambda ex: heads.ranking(ex, "vit", "cls", "iou_33"), "unknown metric"),
        (lambda ex: heads.ranking(ex, "vit", "cls", "iou_90", 1, 0), "first layer 1 is after last layer 0"),
        (lambda ex: heads.ranking(ex, "vit", "cls", "iou_90", 0, 7), "layer 7 out of range"),
        (lambda ex: heads.exemplars(ex, "vit", "cls", 1, 9, "face"), "head 9 out of range"),
        (lambda ex: heads.exemplars(ex, "vit", "cls", 1, 0, "face", 0), "k must be 1..12"),
        (lambda ex: heads.exemplars(ex, "vit", "cls", 1.5, 0, "face"), "layer must be a whole number"),
        (lambda ex: variants_view.compare(ex, "astronaut", "vit", "resnet50", "cls"), "share no method"),
        (lambda ex: variants_view.compare(ex, "astronaut", "vit", VARIANT, "cls", box=99), "no expert box 99"),
        (lambda ex: variants_view.table(ex, "cls", "first"), "layer (a number, 'last' or 'best')"),
        (lambda ex: features_view.pca(ex, "astronaut", "vit", 0, "dark"), "background must be"),
        (lambda ex: features_view.pca(ex, ["astronaut"] * 1 + list("abcdefg"), "vit"), "at most 6 images"),
        (lambda ex: features_view.head_stats(ex, "vit", "astronaut", "speed"), "stat must be one of"),
        (lambda ex: attention_link(ex, None, "vit@nope", "cls", 1, 0), "the Attention tab does not serve"),
    ],
)
def test_bad_input_gives_one_line(ex, call, message):
    with pytest.raises(gr.Error, match=re.escape(message)) as caught:
        call(ex)
    assert "\n" not in caught.value.message


def test_variant_compare_against_the_stored_maps(ex):
    pair, shift, table = variants_view.compare(ex, "astronaut", "vit", VARIANT, "cls", -1, -1, -1)
    a = ex.store.map("astronaut", "vit", "cls", 1)
    b = ex.store.map("astronaut", VARIANT, "cls", 1)
    diff, limit = variants.shift_map(b, a)
    assert limit == pytest.approx(float(np.abs(b - a).max())) and limit > 0  # fine-tuning moved the map
    assert pair.width > shift.width > 300
    iou = table.set_index("metric")
    stored_a = ex.scores(ex.item("astronaut"), "vit", "cls", 1, None)[0]["iou_90"]
    assert iou.loc["iou_90", "A"] == pytest.approx(stored_a, abs=1e-4)
    assert iou.loc["emd", "better"] == "lower" and iou.loc["iou_90", "better"] == "higher"
    # one box: the metrics of each map against that box alone
    _, _, one = variants_view.compare(ex, "astronaut", "vit", VARIANT, "cls", 1, 2, 0)
    box = ex.item("astronaut").boxes[0]
    want = all_metrics(ex.store.map("astronaut", VARIANT, "cls", 1, 2), [box])
    got = one.set_index("metric")
    assert got.loc["iou_90", "B"] == pytest.approx(want["iou_90"], abs=1e-4)
    assert set(got["scope"]) == {"box 0: face"}


def test_shift_map_of_models_on_other_grids_uses_the_metrics_upsampling(ex):
    _, shift, _ = variants_view.compare(ex, "astronaut", "dinov2", "siglip", "mean", 1, -1, -1)
    a = upsample(ex.store.map("astronaut", "dinov2", "mean", 1), 224)
    b = upsample(ex.store.map("astronaut", "siglip", "mean", 1), 224)
    assert shift.height > 300 and variants.shift_map(b, a)[1] == pytest.approx(float(np.abs(b - a).max()))


def test_box_under_a_click_is_the_smallest_that_holds_it(ex):
    boxes = ex.item("astronaut").boxes
    x0, y0, x1, y1 = boxes[0].box
    assert variants_view.box_at_click(ex, "astronaut", (x0 + x1) / 2, (y0 + y1) / 2) == 0
    assert variants_view.box_at_click(ex, "astronaut", 0.999, 0.001) == -1
    assert variants_view.box_choices(ex, "astronaut")[:2] == [("whole image", -1), ("box 0: face", 0)]


def test_delta_table_is_the_library_table_with_accuracy(ex):
    frame, summary = variants_view.table(ex, "cls", "last", "iou_90")
    manifest = ex.store.manifest
    want = variants.delta_table(
        ex.store.metrics(),
        [("vit", VARIANT)],
        method="cls",
        metric="iou_90",
        val_accuracy=variants.validation_accuracies(manifest),
        manifest=manifest,
    )[0]
    row = frame.iloc[0]
    assert (row["model"], row["variant"], row["strategy"], row["label"]) == ("vit", VARIANT, "full", want["label"])
    assert row["delta"] == pytest.approx(want["delta"], abs=1e-4) and row["p_holm"] == pytest.approx(
        want["p_holm"], abs=1e-4
    )
    assert row["val_accuracy"] == manifest["models"][VARIANT]["variant"]["val_accuracy"]
    assert f"**{want['label']}** 1" in summary and "of 1" in summary
    # a lower-is-better metric: a drop is the gain
    emd, text = variants_view.table(ex, "cls", "last", "emd")
    raw = variants.delta_table(ex.store.metrics(), [("vit", VARIANT)], method="cls", metric="emd")[0]
    lower = variants.classify(raw["delta"], raw["p_holm"], lower_is_better=True)  # the library flips it itself
    assert emd["label"].iloc[0] == raw["label"] == lower and "lower is better" in text
    # a method no pair has: an empty table and one line, not an error
    empty, note = variants_view.table(ex, "agcam", "last", "iou_90")
    assert empty.empty and note == "No variant pair has method 'agcam'."


def test_pca_equals_the_library_on_stored_features(ex):
    picture, data = features_view.pca(ex, "astronaut,chelsea", "dinov2", 1, "none", True)
    feats = [ex.store.features(i, "dinov2", 1) for i in ("astronaut", "chelsea")]
    want = joint_pca(feats, [(4, 4), (4, 4)])
    got = [np.array(d["rgb"]) for d in data["images"]]
    assert all(np.allclose(g, w, atol=1e-4) for g, w in zip(got, want, strict=True))
    assert data["joint"] and picture.width > 2 * 200
    _, single = features_view.pca(ex, ["astronaut", "chelsea"], "dinov2", -1, "auto", False)
    own = joint_pca([feats[1]], [(4, 4)], background="auto")[0]
    assert np.allclose(single["images"][1]["rgb"], own, atol=1e-4) and not single["joint"]
    _, resnet = features_view.pca(ex, "astronaut", "resnet50", 0)  # a ResNet stage has its own grid
    assert resnet["images"][0]["grid"] == ex.store.manifest["models"]["resnet50"]["feature_grids"][0]


def test_head_stats_are_the_stored_means_over_images(ex):
    heads_frame, diversity, note = features_view.head_stats(ex, ["vit", "resnet50", "siglip"], "astronaut")
    table = ex.store.head_stats("vit")
    want = np.zeros((2, 4))
    for layer, head, value in zip(table["layer"], table["head"], table["distance_px"], strict=True):
        want[layer, head] += value / len(set(table["image_id"]))
    vit = heads_frame[heads_frame["model"] == "vit"].sort_values(["layer", "head"])
    assert np.allclose(vit["distance_px"].to_numpy(), want.reshape(-1), atol=1e-3)
    assert set(heads_frame["model"]) == {"vit", "siglip"} and "Left out (no attention heads): resnet50" in note
    assert "the store's head statistics (mean over 7 images)" in note
    assert set(diversity["model"]) == {"vit", "siglip"} and diversity["diversity"].between(0, 1).all()
    entropy, _, note = features_view.head_stats(ex, "siglip", "astronaut", "entropy")
    assert set(entropy["layer"]) == {1} and "SigLIP has no CLS token" in note  # the pooling head: last layer only


def test_the_dots_picture_has_one_dot_per_row_each_found_by_a_click_on_it(ex):
    from vitattn import render

    frame, _, _ = features_view.head_stats(ex, ["dinov2", "siglip", "vit"], "astronaut", "distance_px")
    picture, dots = features_view.dots_picture(ex, frame, "distance_px")
    assert len(dots) == len(frame) and picture.width > 400
    got = {(d.model, d.layer, d.head): d for d in dots}
    for row in frame.itertuples():
        dot = got[(row.model, row.layer, row.head)]
        assert dot.value == pytest.approx(row.distance_px)
        assert 0 <= dot.x < picture.width and 0 <= dot.y < picture.height
        assert render.dot_at(dots, dot.x, dot.y) == dot  # every head has its own place
    band = render.text_band(picture.width, RANDOM_WEIGHTS).height  # random weights: the label
    red = np.abs(np.asarray(picture)[:band].astype(int) - render.WARNING_RED).sum(axis=2) < 60
    assert red.any()
    y_vit = [d.y for d in dots if d.model == "vit"]  # a larger mean distance is drawn higher
    v_vit = [d.value for d in dots if d.model == "vit"]
    assert np.all(np.diff(np.array(y_vit)[np.argsort(v_vit)]) <= 1e-6)
    assert features_view.dots_picture(ex, frame.iloc[:0], "distance_px") == (None, [])
    with pytest.raises(gr.Error, match="stat must be one of"):
        features_view.dots_picture(ex, frame, "speed")


def test_head_stats_without_a_store_are_computed_live():
    live = Explorer(AppConfig(weights="small"), examples=load_examples())
    heads_frame, diversity, note = features_view.head_stats(live, "vit", "astronaut", "prefix_share")
    want = live.live.load("vit").analyze(live.item("astronaut").image(), stats=True).head_stats["prefix_share"]
    got = heads_frame.sort_values(["layer", "head"])["prefix_share"].to_numpy()
    assert np.allclose(got, want.reshape(-1), atol=1e-4) and note == "computed live on image astronaut."
    assert len(diversity) == 2


def test_faithfulness_curves_and_areas(ex):
    curves, areas = features_view.faithfulness(ex, "astronaut", "vit", "cls", -1, "blur")
    assert set(curves["curve"]) == {
        "deletion (map order)",
        "deletion (random order)",
        "insertion (map order)",
        "insertion (random order)",
    }
    assert (curves.groupby("curve").size() == features_view.STEPS + 1).all()
    auc = areas.set_index("curve")["auc"]
    assert auc["ABPC = insertion - deletion (map)"] == pytest.approx(
        auc["insertion (map order)"] - auc["deletion (map order)"], abs=2e-4
    )
    deletion = curves[curves["curve"] == "deletion (map order)"]
    assert deletion["fraction"].iloc[0] == 0 and deletion["fraction"].iloc[-1] == 1
    assert set(areas["source"]) == {"stored by the precompute job"}  # the job's default: the last layer
    assert areas["score"].iloc[0].startswith("probability")
    item = ex.item("astronaut")
    live = features_view._evaluate(ex, item, "vit", ex.map(item, "vit", "cls", 1, None)[0].astype(float), "blur")
    assert auc["deletion (map order)"] == pytest.approx(live.auc_deletion, abs=1e-4)  # the job's curves, live
    _, first = features_view.faithfulness(ex, "astronaut", "vit", "cls", 0, "blur")
    assert set(first["source"]) == {"computed live"}  # layer 0 is not stored
    _, dino = features_view.faithfulness(ex, "astronaut", "dinov2", "rollout", 1, "mean")
    assert dino["score"].iloc[0].startswith("cosine")  # no class head: the embedding's cosine similarity


def test_links_to_the_attention_view(ex):
    link = attention_link(ex, "chelsea", "vit", "cls", -1, 3)
    assert (link.image_id, link.model, link.method, link.layer, link.head) == ("chelsea", "vit", "cls", 1, 3)
    assert attention_link(ex, None, "resnet50", "gradcam", 2, -1).head == -1


def test_the_page_builds_without_a_store_and_says_what_needs_one():
    """Live mode (the bundled examples, no store): the whole page builds around the Explorer; Heads says it needs a
    store; no variant pairs; every endpoint is there."""
    from vitattn.ui.demo import build_demo

    live = Explorer(AppConfig(weights="random"), examples=load_examples())
    demo = build_demo(live)
    notes = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown) and isinstance(b.value, str)]
    assert any(n.startswith("The Heads tab needs a store") for n in notes)
    assert variants_view.NO_VARIANTS in notes and variants_view.pairs(live) == []
    api = {d.api_name for d in demo.fns.values() if d.api_name}
    assert {"head_ranking", "head_matrix", "head_exemplars", "variant_compare", "variant_table", "pca"} <= api
    assert {"head_stats", "faithfulness", "attention", "query_attention", "compare_maps"} <= api
