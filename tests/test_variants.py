"""Variant comparisons against hand computations on small tables (numpy formulas written out, not the library's)."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from scipy import stats

from vitattn import variants
from vitattn.metrics import stats as stats_module

IMAGES = [f"i{k}" for k in range(6)]
A = np.array([0.10, 0.20, 0.30, 0.40, 0.50, 0.60])
B = np.array([0.35, 0.25, 0.45, 0.30, 0.40, 0.20])
CELLS = {  # layer 1 (the last) of method cls, fused head
    "a": A,
    "a@lora": A + np.array([0.10, 0.12, 0.09, 0.11, 0.10, 0.13]),  # a consistent gain
    "a@full": A - np.array([0.20, 0.18, 0.22, 0.21, 0.19, 0.20]),  # a consistent loss
    "b": B,
    "b@linear": B.copy(),  # a linear probe: the same maps
    "b@lora": B + np.array([0.05, -0.04, 0.03, -0.06, 0.02, -0.01]),  # noise
}
FAST = variants.PairedTest(n_boot=200)  # fewer resamples than the default, for speed
FEWER = variants.PairedTest(n_boot=100)


def _table() -> dict[str, np.ndarray]:
    """Metrics rows for every model at layers 0 and 1 (layer 0: the frozen value + 0.5 for a, - 0.5 for b)."""
    rows = []
    for model, values in CELLS.items():
        for layer in (0, 1):
            shift = 0.0 if layer == 1 else (0.5 if model.startswith("a") else -0.1)
            rows += [(i, model, "cls", layer, -1, v + shift) for i, v in zip(IMAGES, values, strict=True)]
    rows += [(i, "a", "mean", 1, -1, 0.0) for i in IMAGES]  # another method must not leak in
    columns = ("image_id", "model", "method", "layer", "head", "iou_90")
    return {c: np.array([r[k] for r in rows]) for k, c in enumerate(columns)}


def _t_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(mean d, d_z, two-sided p) of the paired t-test, written out."""
    d = b - a
    sd = np.sqrt(((d - d.mean()) ** 2).sum() / (d.size - 1))
    t = d.mean() / (sd / np.sqrt(d.size))
    return d.mean(), d.mean() / sd, 2 * stats.t.sf(abs(t), d.size - 1)


def _holm(p: list[float]) -> list[float]:
    order = np.argsort(p)
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def _bootstrap(d: np.ndarray, n_boot: int, seed: int, alpha: float) -> tuple[float, float]:
    """Percentile bootstrap of mean(d), resampling pairs with numpy's default_rng(seed) (as documented)."""
    draws = np.random.default_rng(seed).integers(0, d.size, size=(n_boot, d.size))
    return tuple(np.quantile(d[draws].mean(axis=1), [alpha / 2, 1 - alpha / 2]))


def test_delta_table_equals_a_hand_computation():
    accuracy = {"a@lora": 0.91, "a@full": 0.95}
    rows = variants.delta_table(
        _table(), method="cls", paired=variants.PairedTest(test="t", n_boot=500), val_accuracy=accuracy
    )
    assert [(r["model"], r["variant"], r["strategy"]) for r in rows] == [
        ("a", "a@lora", "lora"),
        ("a", "a@full", "full"),
        ("b", "b@linear", "linear"),
        ("b", "b@lora", "lora"),
    ]
    hand = []
    for r in rows:
        a, b = CELLS[r["model"]], CELLS[r["variant"]]
        assert (r["layer"], r["head"], r["metric"], r["n"], r["test"]) == (1, -1, "iou_90", 6, "t")
        assert r["frozen"] == pytest.approx(a.mean()) and r["variant_mean"] == pytest.approx(b.mean())
        if r["variant"] == "b@linear":  # every difference zero: p = 1, no effect, an empty interval
            assert (r["delta"], r["d_z"], r["p"], r["ci_low"], r["ci_high"]) == (0.0, 0.0, 1.0, 0.0, 0.0)
            hand.append(1.0)
            continue
        delta, d_z, p = _t_test(a, b)
        assert r["delta"] == pytest.approx(delta) and r["d_z"] == pytest.approx(d_z) and r["p"] == pytest.approx(p)
        assert (r["ci_low"], r["ci_high"]) == pytest.approx(_bootstrap(b - a, 500, 0, 0.05))
        hand.append(p)
    assert [r["p_holm"] for r in rows] == pytest.approx(_holm(hand))
    assert [r["label"] for r in rows] == ["Enhance", "Destroy", "Preserve", "Preserve"]
    assert [r["val_accuracy"] for r in rows] == [0.91, 0.95, None, None]
    assert variants.label_counts(rows) == {"Enhance": 1, "Preserve": 2, "Destroy": 1}


def test_paired_test_defaults_are_paired_comparisons_and_are_checked():
    want = inspect.signature(stats_module.paired_comparison).parameters
    got = variants.PairedTest()
    assert {k: want[k].default for k in ("alpha", "n_boot", "seed", "test")} == dataclasses.asdict(got)
    for bad, match in [({"test": "z"}, "test must be"), ({"n_boot": 0}, "n_boot"), ({"alpha": 1.5}, "alpha")]:
        with pytest.raises(ValueError, match=match):
            variants.PairedTest(**bad)


def test_delta_table_layers_pairs_and_auto_test():
    table = _table()
    best = variants.delta_table(table, [("a", "a@lora"), ("b", "b@lora")], method="cls", layer="best", paired=FAST)
    assert [r["layer"] for r in best] == [0, 1]  # a is best at layer 0 (+0.5), b at layer 1
    fixed = variants.delta_table(table, [("a", "a@lora")], method="cls", layer=0, paired=FAST)
    assert fixed[0]["layer"] == 0 and fixed[0]["frozen"] == pytest.approx(A.mean() + 0.5)
    d = CELLS["a@lora"] - A
    want = "t" if stats.shapiro(d).pvalue >= 0.05 else "wilcoxon"
    assert fixed[0]["test"] == want
    manifest = {"models": {"a@lora": {"strategy": "full"}}}  # the manifest's strategy wins over the label
    assert variants.delta_table(table, [("a", "a@lora")], method="cls", manifest=manifest)[0]["strategy"] == "full"
    with pytest.raises(ValueError, match="no rows for model 'c'"):
        variants.delta_table(table, [("c", "c@lora")], method="cls")
    with pytest.raises(ValueError, match="integer, 'last' or 'best'"):
        variants.delta_table(table, method="cls", layer="first")
    with pytest.raises(ValueError, match="lacks column"):
        variants.delta_table(table, method="cls", metric="iou_80")


def test_feature_deltas_pair_boxes_by_image_and_box():
    rows = []
    frozen = {
        ("i0", 0): ("Portal", 0.2),
        ("i0", 1): ("Tower", 0.5),
        ("i1", 0): ("Portal", 0.4),
        ("i2", 0): ("Portal", 0.1),
    }
    tuned = {("i0", 0): 0.3, ("i0", 1): 0.4, ("i1", 0): 0.6, ("i2", 0): 0.15, ("i3", 0): 0.9}  # i3: frozen lacks it
    for (image, box), (label, iou) in frozen.items():
        rows.append((image, "a", "cls", 1, -1, box, label, iou))
    for (image, box), iou in tuned.items():
        rows.append((image, "a@lora", "cls", 1, -1, box, "Portal" if box == 0 else "Tower", iou))
    columns = ("image_id", "model", "method", "layer", "head", "box", "label", "iou")
    table = {c: np.array([r[k] for r in rows]) for k, c in enumerate(columns)}
    out = variants.feature_deltas(table, "a", "a@lora", method="cls", layer=1, paired=FEWER)
    assert [r["feature"] for r in out] == ["Portal", "Tower"]
    portal, tower = out
    assert portal["n"] == 3 and portal["frozen"] == pytest.approx(0.7 / 3)
    assert portal["delta"] == pytest.approx((0.1 + 0.2 + 0.05) / 3)
    assert tower["n"] == 1 and tower["delta"] == pytest.approx(-0.1)
    assert np.isnan(tower["p"]) and tower["label"] == "Preserve"  # one box: no test


def test_style_deltas_group_images_by_style_lists():
    meta = {i: {"styles": ["Gothic"]} for i in IMAGES[:3]} | {i: {"styles": ["Romanesque"]} for i in IMAGES[3:5]}
    meta["i5"] = {"styles": ["Gothic", "Baroque"]}
    rows = variants.style_deltas(_table(), meta, "a", "a@lora", method="cls", layer=1, paired=FEWER)
    assert [(r["style"], r["n"]) for r in rows] == [("Baroque", 1), ("Gothic", 4), ("Romanesque", 2)]
    gothic = [0, 1, 2, 5]
    d = CELLS["a@lora"] - A
    assert rows[1]["delta"] == pytest.approx(d[gothic].mean())
    assert rows[1]["frozen"] == pytest.approx(A[gothic].mean())
    with pytest.raises(ValueError, match="no image of the pair has metadata 'period'"):
        variants.style_deltas(_table(), meta, "a", "a@lora", method="cls", layer=1, key="period")


def test_frozen_delta_correlation_by_hand():
    out = variants.frozen_delta_correlation(_table(), "b", "b@lora", method="cls", layer=1)
    d = CELLS["b@lora"] - B
    ranks = [np.argsort(np.argsort(v)) for v in (B, d)]  # no ties here
    assert out["n"] == 6
    assert out["pearson_r"] == pytest.approx(np.corrcoef(B, d)[0, 1])
    assert out["spearman_r"] == pytest.approx(np.corrcoef(*ranks)[0, 1])
    assert 0.0 <= out["pearson_p"] <= 1.0 and 0.0 <= out["spearman_p"] <= 1.0
    flat = variants.frozen_delta_correlation(_table(), "b", "b@linear", method="cls", layer=1)
    assert np.isnan(flat["pearson_r"])  # no change at all: no correlation defined


def test_shift_map_is_variant_minus_frozen_with_a_symmetric_range():
    variant = np.array([[0.1, 0.5], [0.2, 0.2]], dtype=np.float32)
    frozen = np.array([[0.3, 0.1], [0.2, 0.0]], dtype=np.float32)
    diff, limit = variants.shift_map(variant, frozen)
    np.testing.assert_allclose(diff, [[-0.2, 0.4], [0.0, 0.2]], atol=1e-7)
    assert limit == pytest.approx(0.4) and diff.dtype == np.float32
    assert variants.shift_map(frozen, frozen)[1] == 0.0
    assert variant[0, 0] == np.float32(0.1)  # inputs untouched
    with pytest.raises(ValueError, match="two maps on one grid"):
        variants.shift_map(variant, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        variants.shift_map(np.full((2, 2), np.nan), frozen)


def test_names_pairs_accuracies_and_labels():
    assert variants.variant_pairs(["b@lora", "a", "a@full", "c@lora", "a@lora", "b", "a@x", "a@linear"]) == [
        ("a", "a@linear"),
        ("a", "a@lora"),
        ("a", "a@full"),
        ("a", "a@x"),
        ("b", "b@lora"),
    ]  # c@lora has no frozen c
    manifest = {"models": {"a": {}, "a@lora": {"variant": {"val_accuracy": 0.8}}, "a@x": {"variant": {}}}}
    assert variants.validation_accuracies(manifest) == {"a@lora": 0.8}
    manifest["models"]["a@hub"] = {"variant": {"checkpoint": "hf-hub:ns/a-ft", "val_accuracy": 0.7}}
    manifest["models"]["a@lora"]["variant"]["checkpoint"] = "run-a-lora"
    assert [variants.checkpoint_of(manifest, n) for n in ("a@hub", "a@lora", "a", "zz")] == [
        "hf-hub:ns/a-ft",
        None,
        None,
        None,
    ]
    assert variants.strategy_of("a@x") is None and variants.strategy_of("a@lora") == "lora"
    assert (variants.is_variant("clip@lora"), variants.is_variant("clip"), variants.base_of("clip@lora")) == (
        True,
        False,
        "clip",
    )
    assert variants.classify(0.1, 0.05) == "Enhance" and variants.classify(-0.1, 0.01) == "Destroy"
    assert variants.classify(0.1, 0.051) == "Preserve" and variants.classify(0.1, float("nan")) == "Preserve"
    # mse, kl, emd: lower is better, so a significant drop is the gain
    assert variants.classify(-0.1, 0.01, lower_is_better=True) == "Enhance"
    assert variants.classify(0.1, 0.01, lower_is_better=True) == "Destroy"


def test_image_and_box_deltas_of_one_image():
    table = _table()
    rows = variants.image_deltas(table, "i2", "a", "a@lora", method="cls", layer=1)
    assert rows == [{"metric": "iou_90", "frozen": 0.30, "variant": pytest.approx(0.39), "delta": pytest.approx(0.09)}]
    with pytest.raises(ValueError, match="no row for image 'i9'"):
        variants.image_deltas(table, "i9", "a", "a@lora", method="cls", layer=1)
    columns = ("image_id", "model", "method", "layer", "head", "box", "label", "iou")
    rows = [
        ("i0", "a", "cls", 1, -1, 0, "Portal", 0.2),
        ("i0", "a", "cls", 1, -1, 1, "Tower", 0.5),
        ("i0", "a@lora", "cls", 1, -1, 0, "Portal", 0.35),
        ("i0", "a@lora", "cls", 1, -1, 1, "Tower", 0.25),
        ("i1", "a", "cls", 1, -1, 0, "Portal", 0.9),
    ]
    boxes = {c: np.array([r[k] for r in rows]) for k, c in enumerate(columns)}
    out = variants.box_deltas(boxes, "i0", "a", "a@lora", method="cls", layer=1)
    assert [(r["box"], r["label"]) for r in out] == [(0, "Portal"), (1, "Tower")]
    assert [r["delta"] for r in out] == pytest.approx([0.15, -0.25])
    with pytest.raises(ValueError, match="no box rows for image 'i1', model 'a@lora'"):
        variants.box_deltas(boxes, "i1", "a", "a@lora", method="cls", layer=1)
