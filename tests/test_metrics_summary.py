"""Summaries of the metrics tables: bootstrap, best layers, grids, breakdowns, paired tests, table rows."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from vitattn.boxes import LabeledBox
from vitattn.metrics import (
    BOX_COLUMNS,
    best_layers,
    bootstrap_mean,
    box_rows,
    breakdown,
    layer_head_grid,
    paired_test,
    per_box_iou,
    per_box_rows,
    rank_biserial,
    select,
    summarize,
)

IMAGES = [f"img{i:02d}" for i in range(12)]
MODELS = ("dino", "resnet")
LAYERS = (0, 1, 2)
HEADS = (-1, 0, 1)


def make_table(seed: int = 0) -> dict[str, np.ndarray]:
    """A metrics table whose iou_90 is 0.1 * layer + 0.01 * head (+ 0.05 for dino) plus small noise."""
    rng = np.random.default_rng(seed)
    rows = list(itertools.product(IMAGES, MODELS, ("cls",), LAYERS, HEADS))
    image_id, model, method, layer, head = (np.array(c) for c in zip(*rows, strict=True))
    value = 0.1 * layer + 0.01 * head + 0.05 * (model == "dino") + rng.normal(0, 0.01, len(rows))
    return {"image_id": image_id, "model": model, "method": method, "layer": layer, "head": head, "iou_90": value}


def test_summarize_means_and_bootstrap_interval() -> None:
    table = make_table()
    rows = summarize(table, "iou_90", n_boot=500)
    assert len(rows) == len(MODELS) * len(LAYERS) * len(HEADS)
    assert [tuple(r[k] for k in ("model", "method", "layer", "head")) for r in rows] == sorted(
        itertools.product(MODELS, ("cls",), LAYERS, HEADS)
    )
    for row in rows:
        group = select(table, model=row["model"], layer=row["layer"], head=row["head"])
        assert row["mean"] == pytest.approx(group["iou_90"].mean())
        assert row["lo"] < row["mean"] < row["hi"]
        assert row["n"] == len(IMAGES)
        assert isinstance(row["layer"], int) and isinstance(row["model"], str)


def test_summarize_is_deterministic_given_the_seed() -> None:
    table = make_table()
    assert summarize(table, "iou_90", n_boot=200, seed=3) == summarize(table, "iou_90", n_boot=200, seed=3)
    assert summarize(table, "iou_90", n_boot=200, seed=3) != summarize(table, "iou_90", n_boot=200, seed=4)


def test_bootstrap_resamples_images_not_rows() -> None:
    # Image "a" has two rows (0, 0), image "b" one row (3). A resample of two images averages all their rows:
    # (a, a) -> 0 / 4 = 0 (p = 1/4), (a, b) or (b, a) -> 3 / 3 = 1 (p = 1/2), (b, b) -> 6 / 2 = 3 (p = 1/4).
    # So the 40th..60th percentiles are 1, the 5th is 0 and the 95th is 3.
    values = np.array([0.0, 0.0, 3.0])
    mean, lo, hi, n = bootstrap_mean(values, np.array(["a", "a", "b"]), n_boot=2000, ci=0.2)
    assert (mean, n) == (1.0, 2)
    assert (lo, hi) == (1.0, 1.0)
    _, lo, hi, _ = bootstrap_mean(values, np.array(["a", "a", "b"]), n_boot=2000, ci=0.9)
    assert (lo, hi) == (0.0, 3.0)


def test_single_image_gives_a_zero_width_interval() -> None:
    assert bootstrap_mean(np.array([0.4, 0.6]), np.array(["x", "x"]), n_boot=10) == (0.5, 0.5, 0.5, 1)


@pytest.mark.parametrize(("kwargs", "match"), [({"n_boot": 0}, "n_boot"), ({"ci": 1.0}, "ci"), ({"ci": 0}, "ci")])
def test_summarize_rejects_bad_bootstrap_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        summarize(make_table(), "iou_90", **kwargs)


def test_summarize_rejects_missing_columns_and_nan() -> None:
    table = make_table()
    with pytest.raises(ValueError, match="lacks column"):
        summarize(table, "coverage")
    with pytest.raises(ValueError, match="lacks column"):
        summarize({k: v for k, v in table.items() if k != "image_id"}, "iou_90")
    broken = {**table, "iou_90": np.where(np.arange(len(table["iou_90"])) == 3, np.nan, table["iou_90"])}
    with pytest.raises(ValueError, match="non-finite"):
        summarize(broken, "iou_90")


def test_best_layers_picks_the_highest_fused_mean() -> None:
    rows = best_layers(make_table(), "iou_90", n_boot=200)
    assert [(r["model"], r["method"], r["layer"]) for r in rows] == [("dino", "cls", 2), ("resnet", "cls", 2)]
    assert all(r["lo"] <= r["mean"] <= r["hi"] and r["n"] == len(IMAGES) for r in rows)
    with pytest.raises(ValueError, match="unknown method"):
        best_layers(make_table(), "iou_90", method="rollout")


def noise_table(n_layers: int = 6, n_images: int = 30, seed: int = 1) -> dict[str, np.ndarray]:
    """Fused rows of one model whose layers are all pure noise of the same mean (no layer is truly best)."""
    rng = np.random.default_rng(seed)
    rows = list(itertools.product([f"img{i:02d}" for i in range(n_images)], range(n_layers)))
    image_id, layer = (np.array(c) for c in zip(*rows, strict=True))
    n = len(rows)
    return {
        "image_id": image_id,
        "model": np.array(["dino"] * n),
        "method": np.array(["cls"] * n),
        "layer": layer,
        "head": np.full(n, -1),
        "iou_90": rng.normal(0.5, 0.1, n),
    }


def test_best_layers_interval_redoes_the_selection_in_each_resample() -> None:
    table = noise_table()
    (row,) = best_layers(table, "iou_90", n_boot=300, seed=2)
    # Reference: the same image draws as bootstrap_mean (seed 2), the best layer re-chosen in every resample.
    images = np.unique(table["image_id"])
    layers = np.unique(table["layer"])
    cell = np.array(
        [[table["iou_90"][(table["image_id"] == i) & (table["layer"] == la)][0] for la in layers] for i in images]
    )
    draws = np.random.default_rng(2).integers(0, len(images), size=(300, len(images)))  # [300, 30]
    boot = cell[draws].mean(axis=1)  # [300, L] per-layer means of each resample
    lo, hi = np.quantile(boot.max(axis=1), [0.025, 0.975])
    assert row["layer"] == int(np.argmax(cell.mean(axis=0)))
    assert row["mean"] == pytest.approx(cell.mean(axis=0).max())
    assert (row["lo"], row["hi"]) == pytest.approx((lo, hi))
    assert row["p_best"] == pytest.approx(np.mean(boot.argmax(axis=1) == row["layer"]))
    # Holding the chosen layer fixed (the old behaviour) gives a lower, optimistic interval: with six equally
    # good layers the max over layers in a resample beats the chosen layer's mean in that resample.
    (fixed,) = summarize(select(table, layer=row["layer"]), "iou_90", n_boot=300, seed=2)
    assert row["lo"] > fixed["lo"] and row["hi"] > fixed["hi"]
    assert row["p_best"] < 0.9


def test_best_layers_clear_winner_matches_the_fixed_layer_interval() -> None:
    # Layer 2 beats the others by 0.1 with noise 0.01: every resample picks it, so re-selection changes nothing.
    rows = best_layers(make_table(), "iou_90", n_boot=200)
    for row in rows:
        (fixed,) = summarize(
            select(make_table(), model=row["model"], layer=row["layer"], head=-1), "iou_90", n_boot=200
        )
        assert row["p_best"] == 1.0
        assert (row["mean"], row["lo"], row["hi"], row["n"]) == pytest.approx(
            (fixed["mean"], fixed["lo"], fixed["hi"], fixed["n"])
        )


def test_best_layers_breaks_ties_towards_the_shallower_layer() -> None:
    table = {**make_table(), "iou_90": np.ones(len(make_table()["image_id"]))}
    assert {r["layer"] for r in best_layers(table, "iou_90", n_boot=10)} == {0}


def test_best_layers_needs_fused_rows() -> None:
    table = select(make_table(), head=0)
    with pytest.raises(ValueError, match="head"):
        best_layers(table, "iou_90")


def test_layer_head_grid() -> None:
    table = make_table()
    table["iou_90"] = 0.1 * table["layer"] + 0.01 * table["head"]  # exact, no noise
    grid, fused = layer_head_grid(table, "resnet", "cls", "iou_90")
    np.testing.assert_allclose(grid, [[0.0, 0.01], [0.1, 0.11], [0.2, 0.21]])
    np.testing.assert_allclose(fused, [-0.01, 0.09, 0.19])
    partial = {k: v[table["layer"] != 1] for k, v in table.items()}
    grid, fused = layer_head_grid(partial, "resnet", "cls", "iou_90")
    assert grid.shape == (3, 2) and np.isnan(grid[1]).all() and np.isnan(fused[1])
    with pytest.raises(ValueError, match="unknown model"):
        layer_head_grid(table, "vit", "cls", "iou_90")


def box_table() -> dict[str, np.ndarray]:
    """Per-box rows: 'portal' boxes score 0.8, 'window' boxes 0.2; two windows on img00."""
    rows = [("img00", "portal", 0.8), ("img00", "window", 0.2), ("img00", "window", 0.2), ("img01", "portal", 0.8)]
    image_id, label, value = (np.array(c) for c in zip(*rows, strict=True))
    n = len(rows)
    return {
        "image_id": image_id,
        "model": np.array(["dino"] * n),
        "method": np.array(["cls"] * n),
        "layer": np.full(n, 11),
        "head": np.full(n, -1),
        "box": np.array([0, 1, 2, 0]),
        "label": label,
        "iou": value,
    }


def test_breakdown_by_label_and_by_image_metadata() -> None:
    rows = breakdown(box_table(), "iou", "label", n_boot=50)
    assert [(r["label"], r["mean"], r["n"]) for r in rows] == [("portal", 0.8, 2), ("window", 0.2, 1)]
    meta = {"img00": {"style": "Gothic"}, "img01": {"style": "Baroque"}}
    rows = breakdown(box_table(), "iou", ("style", "label"), image_meta=meta, n_boot=50)
    assert [(r["style"], r["label"], r["mean"]) for r in rows] == [
        ("Baroque", "portal", 0.8),
        ("Gothic", "portal", 0.8),
        ("Gothic", "window", 0.2),
    ]


def test_breakdown_errors() -> None:
    with pytest.raises(ValueError, match="image_meta"):
        breakdown(box_table(), "iou", "style")
    with pytest.raises(ValueError, match="img01"):
        breakdown(box_table(), "iou", "style", image_meta={"img00": {"style": "Gothic"}})
    with pytest.raises(ValueError, match="no key 'style'"):
        breakdown(box_table(), "iou", "style", image_meta={"img00": {}, "img01": {}})


A_SEL = {"model": "dino", "method": "cls", "layer": 2, "head": -1}
B_SEL = {"model": "resnet", "method": "cls", "layer": 2, "head": -1}


def test_paired_test_matches_scipy_and_a_always_winning_gives_rank_biserial_one() -> None:
    table = make_table()
    result = paired_test(table, A_SEL, B_SEL, "iou_90")
    a, b = select(table, **A_SEL)["iou_90"], select(table, **B_SEL)["iou_90"]  # same image order (img00..)
    expected = stats.wilcoxon(a, b)
    assert result["n"] == len(IMAGES)
    assert result["statistic"] == pytest.approx(expected.statistic)
    assert result["pvalue"] == pytest.approx(expected.pvalue)
    assert result["mean_diff"] == pytest.approx((a - b).mean())
    assert np.all(a > b) and result["rank_biserial"] == 1.0
    assert paired_test(table, B_SEL, A_SEL, "iou_90")["rank_biserial"] == -1.0


def test_paired_test_uses_shared_images_only() -> None:
    table = make_table()
    keep = ~((table["model"] == "resnet") & np.isin(table["image_id"], IMAGES[:4]))
    result = paired_test({k: v[keep] for k, v in table.items()}, A_SEL, B_SEL, "iou_90")
    a = select(table, **A_SEL)["iou_90"][4:]
    b = select(table, **B_SEL)["iou_90"][4:]
    assert result["n"] == len(IMAGES) - 4
    assert result["pvalue"] == pytest.approx(stats.wilcoxon(a, b).pvalue)


def test_paired_test_with_all_zero_differences() -> None:
    table = make_table()
    result = paired_test(table, A_SEL, A_SEL, "iou_90")
    assert (result["statistic"], result["pvalue"], result["rank_biserial"], result["mean_diff"]) == (0, 1, 0, 0)


def test_rank_biserial_hand_case() -> None:
    # |d| = 1, 2, 3 ranks 1, 2, 3; R+ = 1 + 3 = 4, R- = 2: r = (4 - 2) / 6. The zero is dropped.
    assert rank_biserial(np.array([1.0, -2.0, 3.0, 0.0])) == pytest.approx(1 / 3)
    assert rank_biserial(np.zeros(3)) == 0.0


def test_paired_test_errors() -> None:
    table = make_table()
    with pytest.raises(ValueError, match="several rows per image"):
        paired_test(table, {"model": "dino", "method": "cls"}, B_SEL, "iou_90")
    with pytest.raises(ValueError, match="unknown model"):
        paired_test(table, {**A_SEL, "model": "vit"}, B_SEL, "iou_90")
    with pytest.raises(ValueError, match="empty"):
        paired_test(table, {}, B_SEL, "iou_90")
    with pytest.raises(ValueError, match="lacks column"):
        paired_test(table, A_SEL, B_SEL, "pointing")
    one_image = {k: v[table["image_id"] == "img00"] for k, v in table.items()}
    with pytest.raises(ValueError, match="at least 2"):
        paired_test(one_image, A_SEL, B_SEL, "iou_90")


def test_select_errors() -> None:
    table = make_table()
    with pytest.raises(ValueError, match="lacks column"):
        select(table, style="Gothic")
    with pytest.raises(ValueError, match="no rows match"):
        select(
            {**table, "method": np.where(table["model"] == "dino", "cls", "gradcam")}, model="dino", method="gradcam"
        )
    with pytest.raises(ValueError, match="differ in length"):
        select({**table, "head": table["head"][:-1]}, model="dino")


def test_box_rows_and_per_box_rows() -> None:
    heatmap = np.array([[1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    boxes = [LabeledBox((0.0, 0.0, 0.5, 0.5), label="portal"), (0.5, 0.5, 1.0, 1.0)]
    keys = {"image_id": "img00", "model": "dino", "method": "cls", "layer": 11, "head": -1}
    rows = per_box_rows(keys, heatmap, boxes, resolution=8)
    assert [tuple(r) for r in rows] == [BOX_COLUMNS] * 2
    assert [(r["box"], r["label"]) for r in rows] == [(0, "portal"), (1, "")]
    assert [r["iou"] for r in rows] == pytest.approx([0.375, 0.0])  # see test_metrics: 6 / 16
    assert box_rows(keys, per_box_iou(heatmap, boxes, resolution=8), boxes) == rows
    with pytest.raises(ValueError, match="IoUs for"):
        box_rows(keys, np.zeros(3), boxes)
