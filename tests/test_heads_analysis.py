"""Head ranking, head x feature-type matrix and exemplars on tables built by hand."""

from __future__ import annotations

import numpy as np
import pytest

from vitattn.metrics import HeadFeatureMatrix, head_exemplars, head_feature_matrix, head_ranking


def _metrics_table() -> dict[str, np.ndarray]:
    """Three images, layers 0 and 1 with two heads each, plus fused rows (head -1) that must be ignored.

    iou_90 per image, heads in the order (0, 0), (0, 1), (1, 0), (1, 1):
      a: 0.1 0.4 0.3 0.2   ranks 4 1 2 3
      b: 0.5 0.2 0.5 0.1   ranks 1.5 3 1.5 4  (a tie for the top)
      c: 0.2 0.6 0.1 0.3   ranks 3 1 4 2
    """
    values = {"a": [0.1, 0.4, 0.3, 0.2], "b": [0.5, 0.2, 0.5, 0.1], "c": [0.2, 0.6, 0.1, 0.3]}
    heads = [(0, 0), (0, 1), (1, 0), (1, 1)]
    rows = []
    for image, vs in values.items():
        rows += [(image, "vit", "cls", layer, head, v) for (layer, head), v in zip(heads, vs, strict=True)]
        rows += [(image, "vit", "cls", layer, -1, 0.99) for layer in (0, 1)]  # fused: not a head
        rows += [(image, "vit", "rollout", 1, -1, 0.7)]
    columns = ("image_id", "model", "method", "layer", "head", "iou_90")
    table = {c: np.array([r[i] for r in rows]) for i, c in enumerate(columns)}
    table["emd"] = 1.0 - table["iou_90"]  # a lower-is-better column with the same order
    return table


def test_head_ranking_by_hand():
    rows = head_ranking(_metrics_table(), "vit", "cls")
    by_head = {(r["layer"], r["head"]): r for r in rows}
    assert by_head[(0, 1)]["mean"] == pytest.approx(0.4)
    assert by_head[(0, 1)]["mean_rank"] == pytest.approx((1 + 3 + 1) / 3)
    assert by_head[(0, 0)]["mean_rank"] == pytest.approx((4 + 1.5 + 3) / 3)
    assert by_head[(1, 0)]["mean_rank"] == pytest.approx((2 + 1.5 + 4) / 3)
    # top-1: a -> (0, 1); b -> (0, 0) and (1, 0) share it; c -> (0, 1)
    assert by_head[(0, 1)]["top1"] == pytest.approx(2 / 3)
    assert by_head[(0, 0)]["top1"] == pytest.approx(0.5 / 3) == by_head[(1, 0)]["top1"]
    assert by_head[(1, 1)]["top1"] == 0.0
    # top-3: a -> (0,1), (1,0), (1,1); b -> (0,0), (1,0), (0,1); c -> (0,1), (1,1), (0,0)
    assert by_head[(0, 1)]["top3"] == pytest.approx(1.0)
    assert by_head[(0, 0)]["top3"] == pytest.approx(2 / 3)
    assert by_head[(1, 1)]["top3"] == pytest.approx(2 / 3)
    assert by_head[(1, 0)]["top3"] == pytest.approx(2 / 3)
    assert sum(r["top1"] for r in rows) == pytest.approx(1.0) and sum(r["top3"] for r in rows) == pytest.approx(3.0)
    assert [(r["layer"], r["head"]) for r in rows][0] == (0, 1)  # best mean rank first
    assert all(r["n"] == 3 and r["n_heads"] == 4 for r in rows)


def test_head_ranking_lower_is_better_and_layers():
    table = _metrics_table()
    high = head_ranking(table, "vit", "cls", metric="iou_90")
    low = head_ranking(table, "vit", "cls", metric="emd")  # emd = 1 - iou: the same order
    assert [(r["layer"], r["head"], r["mean_rank"], r["top1"]) for r in high] == [
        (r["layer"], r["head"], r["mean_rank"], r["top1"]) for r in low
    ]
    only1 = head_ranking(table, "vit", "cls", layers=[1])
    # layer 1 alone: a: 0.3 > 0.2, b: 0.5 > 0.1, c: 0.1 < 0.3
    by_head = {(r["layer"], r["head"]): r for r in only1}
    assert set(by_head) == {(1, 0), (1, 1)}
    assert by_head[(1, 0)]["top1"] == pytest.approx(2 / 3) and by_head[(1, 0)]["mean_rank"] == pytest.approx(4 / 3)


def test_head_ranking_errors():
    table = _metrics_table()
    with pytest.raises(ValueError, match="no single-head rows"):
        head_ranking(table, "vit", "rollout")
    with pytest.raises(ValueError, match="unknown model"):
        head_ranking(table, "dino", "cls")
    with pytest.raises(ValueError, match="lacks column"):
        head_ranking(table, "vit", "cls", metric="nope")


def test_head_ranking_skips_images_missing_a_head():
    table = _metrics_table()
    drop = (table["image_id"] == "c") & (table["layer"] == 1) & (table["head"] == 1)
    rows = head_ranking({k: v[~drop] for k, v in table.items()}, "vit", "cls")
    assert all(r["n"] == 2 for r in rows)


def _box_table() -> dict[str, np.ndarray]:
    """Two images; layer 3 heads 0 and 1; boxes labelled window / portal / window (image a), portal (image b)."""
    rows = [
        # image, layer, head, box, label, iou
        ("a", 3, 0, 0, "window", 0.8),
        ("a", 3, 0, 1, "portal", 0.1),
        ("a", 3, 0, 2, "window", 0.4),
        ("a", 3, 1, 0, "window", 0.2),
        ("a", 3, 1, 1, "portal", 0.5),
        ("a", 3, 1, 2, "window", 0.2),
        ("b", 3, 0, 0, "portal", 0.3),
        ("b", 3, 1, 0, "portal", 0.9),
        ("b", 3, -1, 0, "portal", 1.0),  # fused: ignored
    ]
    table = {
        c: np.array([r[i] for r in rows]) for i, c in enumerate(("image_id", "layer", "head", "box", "label", "iou"))
    }
    table["model"] = np.array(["vit"] * len(rows))
    table["method"] = np.array(["cls"] * len(rows))
    return table


def test_head_feature_matrix_by_hand():
    m = head_feature_matrix(_box_table(), "vit", "cls")
    assert isinstance(m, HeadFeatureMatrix)
    assert m.heads == ((3, 0), (3, 1)) and m.features == ("portal", "window")
    # head 0: portal (0.1 + 0.3) / 2, window (0.8 + 0.4) / 2; head 1: portal (0.5 + 0.9) / 2, window 0.2
    np.testing.assert_allclose(m.mean, [[0.2, 0.6], [0.7, 0.2]])
    np.testing.assert_array_equal(m.count, [[2, 2], [2, 2]])
    assert [(b["feature"], b["layer"], b["head"]) for b in m.best] == [("portal", 3, 1), ("window", 3, 0)]
    assert m.best[0]["mean"] == pytest.approx(0.7)


def test_head_feature_matrix_groups():
    m = head_feature_matrix(_box_table(), groups={"window": "opening", "portal": "opening"})
    assert m.features == ("opening",)
    np.testing.assert_allclose(m.mean[:, 0], [(0.8 + 0.1 + 0.4 + 0.3) / 4, (0.2 + 0.5 + 0.2 + 0.9) / 4])
    with pytest.raises(ValueError, match="no entry"):
        head_feature_matrix(_box_table(), groups={"window": "opening"})


def test_head_exemplars_by_hand():
    rows = head_exemplars(_box_table(), 3, 1, "portal")
    assert [(r["image_id"], r["iou"], r["n_boxes"], r["box"]) for r in rows] == [("b", 0.9, 1, 0), ("a", 0.5, 1, 1)]
    window = head_exemplars(_box_table(), 3, 0, "window", k=1)
    assert window == [{"image_id": "a", "iou": pytest.approx(0.6), "n_boxes": 2, "box": 0}]
    with pytest.raises(ValueError, match="no boxes"):
        head_exemplars(_box_table(), 3, 0, "tower")
    with pytest.raises(ValueError, match="k must"):
        head_exemplars(_box_table(), 3, 0, "window", k=0)
    two_models = {
        k: np.concatenate([v, v]).astype(object if k == "model" else v.dtype) for k, v in _box_table().items()
    }
    two_models["model"][len(two_models["model"]) // 2 :] = "dino"
    with pytest.raises(ValueError, match="several models"):
        head_exemplars(two_models, 3, 0, "window")
    assert head_exemplars(two_models, 3, 0, "window", model="dino")[0]["image_id"] == "a"


def test_on_the_tables_the_store_writer_builds():
    """score_tables writes per-head rows in both tables; the head analysis reads them as stored."""
    from vitattn.boxes import LabeledBox
    from vitattn.store.writer import score_tables

    boxes = [LabeledBox((0.0, 0.0, 0.5, 0.5), "window"), LabeledBox((0.5, 0.5, 1.0, 1.0), "portal")]
    top_left, bottom_right = np.zeros((4, 4), np.float16), np.zeros((4, 4), np.float16)
    top_left[:2, :2], bottom_right[2:, 2:] = 1, 1
    per_image = [("cls", 2, -1, top_left), ("cls", 2, 0, top_left), ("cls", 2, 1, bottom_right)]
    metrics, per_box = score_tables("vit", ["x", "y"], [per_image, per_image], [boxes, boxes], 16)
    metrics = {c: metrics[c].to_numpy(zero_copy_only=False) for c in metrics.column_names}
    per_box = {c: per_box[c].to_numpy(zero_copy_only=False) for c in per_box.column_names}
    m = head_feature_matrix(per_box, "vit", "cls")
    assert m.heads == ((2, 0), (2, 1)) and m.features == ("portal", "window")
    assert [(b["feature"], b["head"]) for b in m.best] == [("portal", 1), ("window", 0)]
    np.testing.assert_array_equal(m.count, [[2, 2], [2, 2]])
    ranking = head_ranking(metrics, "vit", "cls", metric="iou_75")
    assert {r["head"] for r in ranking} == {0, 1} and all(r["n"] == 2 for r in ranking)
    # R = 16: the top 10 % keeps k = 26 of 256 pixels, all inside the 64-pixel box: IoU 26 / 64
    assert head_exemplars(per_box, 2, 1, "portal")[0]["iou"] == pytest.approx(26 / 64)
