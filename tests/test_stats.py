"""Paired comparisons, Holm's correction and Kruskal-Wallis against scipy and cases worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from vitattn import metrics


def test_holm_worked_by_hand():
    # sorted: 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> max(0.06, 0.04) = 0.06
    np.testing.assert_allclose(metrics.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])


def test_holm_clips_passes_nan_and_is_monotone():
    # NaN does not count in m = 3: 0.2 * 3 = 0.6, 0.5 * 2 = 1.0, 0.9 -> max = 1.0
    out = metrics.holm([0.5, np.nan, 0.2, 0.9])
    np.testing.assert_allclose(out, [1.0, np.nan, 0.6, 1.0])
    rng = np.random.default_rng(3)
    p = rng.random(40) ** 3
    adj = metrics.holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0) and np.all(adj >= p) and np.all(adj <= 1)


def test_holm_brute_force_definition():
    rng = np.random.default_rng(0)
    p = rng.random(7) * 0.2
    m = p.size
    sorted_p = np.sort(p)
    expected = {}
    for i in range(m):
        expected[sorted_p[i]] = min(1.0, max((m - j) * sorted_p[j] for j in range(i + 1)))
    np.testing.assert_allclose(metrics.holm(p), [expected[v] for v in p])


def test_holm_rejects_out_of_range():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.holm([0.1, 1.5])
    assert metrics.holm([]).shape == (0,)


def test_paired_t_matches_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(0.3, 0.1, 40)
    b = a + rng.normal(0.05, 0.05, 40)
    r = metrics.paired_comparison(a, b, test="t")
    assert isinstance(r, metrics.PairedResult) and r.test == "t" and r.n == 40 and r.n_dropped == 0
    assert r.p == pytest.approx(stats.ttest_rel(b, a).pvalue, rel=1e-12)
    d = b - a
    assert r.mean_diff == pytest.approx(d.mean()) and r.mean_a == pytest.approx(a.mean())
    assert r.d_z == pytest.approx(d.mean() / d.std(ddof=1))
    assert r.shapiro_p == pytest.approx(stats.shapiro(d).pvalue)
    assert r.ci_low < r.mean_diff < r.ci_high


def test_paired_wilcoxon_matches_scipy_and_rank_biserial_by_hand():
    a = np.array([0.0, 0.0, 0.0, 0.0, 0.0])
    b = np.array([1.0, 2.0, -3.0, 4.0, 5.0])
    r = metrics.paired_comparison(a, b, test="wilcoxon")
    assert r.p == pytest.approx(stats.wilcoxon(b - a).pvalue)
    # ranks of |d|: 1, 2, 3, 4, 5; R+ = 1 + 2 + 4 + 5 = 12, R- = 3 -> (12 - 3) / 15
    assert r.rank_biserial == pytest.approx(9 / 15)


def test_auto_picks_by_shapiro():
    rng = np.random.default_rng(2)
    a = np.zeros(60)
    normal = metrics.paired_comparison(a, rng.normal(0.1, 1.0, 60))
    assert normal.shapiro_p >= 0.05 and normal.test == "t"
    skewed = metrics.paired_comparison(a, rng.exponential(1.0, 60) ** 3)
    assert skewed.shapiro_p < 0.05 and skewed.test == "wilcoxon"
    forced = metrics.paired_comparison(a, rng.exponential(1.0, 60) ** 3, test="t")
    assert forced.test == "t"


def test_auto_wilcoxon_p_is_scipy():
    rng = np.random.default_rng(5)
    d = rng.exponential(1.0, 50) ** 3
    r = metrics.paired_comparison(np.zeros(50), d)
    assert r.test == "wilcoxon" and r.p == pytest.approx(stats.wilcoxon(d).pvalue)


def test_bootstrap_interval_is_seeded_and_of_the_mean():
    rng = np.random.default_rng(4)
    a, b = rng.random(30), rng.random(30)
    r1, r2 = metrics.paired_comparison(a, b, seed=7), metrics.paired_comparison(a, b, seed=7)
    assert (r1.ci_low, r1.ci_high) == (r2.ci_low, r2.ci_high)
    d = b - a
    draws = np.random.default_rng(7).integers(0, 30, size=(2000, 30))
    lo, hi = np.quantile(d[draws].mean(axis=1), [0.025, 0.975])
    assert (r1.ci_low, r1.ci_high) == pytest.approx((lo, hi))


def test_all_zero_differences():
    r = metrics.paired_comparison([0.2, 0.4, 0.6, 0.1], [0.2, 0.4, 0.6, 0.1])
    assert (r.p, r.d_z, r.rank_biserial, r.ci_low, r.ci_high, r.mean_diff) == (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert math.isnan(r.shapiro_p)


def test_small_n_and_nan_pairs():
    r = metrics.paired_comparison([0.1, np.nan, 0.3, 0.2], [0.2, 0.5, np.inf, 0.5])
    assert r.n == 2 and r.n_dropped == 2 and math.isnan(r.p)
    assert r.mean_diff == pytest.approx(0.2)
    d = np.array([0.1, 0.3])
    assert r.d_z == pytest.approx(d.mean() / d.std(ddof=1))
    one = metrics.paired_comparison([0.1], [0.4])
    assert one.n == 1 and math.isnan(one.p) and math.isnan(one.d_z)
    with pytest.raises(ValueError, match="no pair"):
        metrics.paired_comparison([np.nan], [1.0])


def test_constant_nonzero_differences():
    r = metrics.paired_comparison([0.0, 1.0, 2.0], [5.0, 6.0, 7.0])
    assert r.d_z == math.inf and r.test == "wilcoxon" and r.p == pytest.approx(stats.wilcoxon([5.0] * 3).pvalue)
    assert metrics.paired_comparison([0.0, 1.0, 2.0], [5.0, 6.0, 7.0], test="t").p == 0.0


def test_paired_bad_input():
    with pytest.raises(ValueError, match="pair up"):
        metrics.paired_comparison([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="test must be"):
        metrics.paired_comparison([1, 2, 3], [1, 2, 3], test="z")
    with pytest.raises(ValueError, match="alpha"):
        metrics.paired_comparison([1, 2, 3], [1, 2, 3], alpha=1.0)


def test_kruskal_matches_scipy():
    values = np.array([0.1, 0.2, 0.3, 0.5, 0.6, 0.9, np.nan, 0.4])
    groups = ["gothic", "gothic", "gothic", "baroque", "baroque", "baroque", "baroque", "romanesque"]
    r = metrics.kruskal_by_group(values, groups)
    assert isinstance(r, metrics.KruskalResult)
    expected = stats.kruskal([0.5, 0.6, 0.9], [0.1, 0.2, 0.3], [0.4])
    assert (r.H, r.p) == pytest.approx((expected.statistic, expected.pvalue))
    assert r.groups == ("baroque", "gothic", "romanesque") and r.n == (3, 3, 1) and r.n_dropped == 1
    assert r.mean == pytest.approx((2.0 / 3, 0.2, 0.4))


def test_kruskal_edge_cases():
    with pytest.raises(ValueError, match="at least 2 groups"):
        metrics.kruskal_by_group([0.1, 0.2], ["a", "a"])
    r = metrics.kruskal_by_group([0.3, 0.3, 0.3], ["a", "b", "b"])
    assert (r.H, r.p) == (0.0, 1.0)


def test_compare_selections_pairs_by_image_and_shares_one_holm_correction():
    # Two selections over 4 images, given in different row orders; one extra image only in b.
    table = {
        "image_id": np.array(["i1", "i2", "i3", "i4", "i4", "i3", "i2", "i1", "i5"]),
        "model": np.array(["a"] * 4 + ["b"] * 5),
        "method": np.array(["cls"] * 9),
        "layer": np.array([1] * 9),
        "head": np.array([-1] * 9),
        "iou_90": np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.5, 0.3, 0.2, 0.7]),
        "kl": np.array([2.0, 1.0, 1.5, 1.2, 1.0, 1.4, 0.9, 1.6, 0.1]),
    }
    sel = {"method": "cls", "layer": 1, "head": -1}
    rows = metrics.compare_selections(table, {"model": "a", **sel}, {"model": "b", **sel}, ["iou_90", "kl"], test="t")
    # Paired by image id: b - a = [0.2-0.1, 0.3-0.2, 0.5-0.3, 0.9-0.4] and [1.6-2, 0.9-1, 1.4-1.5, 1.0-1.2].
    d_iou, d_kl = np.array([0.1, 0.1, 0.2, 0.5]), np.array([-0.4, -0.1, -0.1, -0.2])
    assert [r["metric"] for r in rows] == ["iou_90", "kl"] and [r["n"] for r in rows] == [4, 4]
    assert rows[0]["mean_diff"] == pytest.approx(d_iou.mean()) and rows[1]["mean_diff"] == pytest.approx(d_kl.mean())
    assert rows[0]["d_z"] == pytest.approx(d_iou.mean() / d_iou.std(ddof=1))
    p = [stats.ttest_rel(d_iou, np.zeros(4)).pvalue, stats.ttest_rel(d_kl, np.zeros(4)).pvalue]
    assert [r["p"] for r in rows] == pytest.approx(p)
    assert [r["p_holm"] for r in rows] == pytest.approx(metrics.holm(p))
    assert [r["lower_is_better"] for r in rows] == [False, True]
    with pytest.raises(ValueError, match="unknown model 'zzz'"):
        metrics.compare_selections(table, {"model": "a", **sel}, {"model": "zzz", **sel}, ["iou_90"])
