"""MSE, KL and EMD against the soft ground truth, and CorLoc: cases worked by hand, invariances, brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import linprog

from vitattn.metrics import (
    LOWER_IS_BETTER,
    METRIC_NAMES,
    corloc,
    emd,
    kl_divergence,
    mse,
    score_batch,
    soft_ground_truth,
    wasserstein_grid,
)
from vitattn.metrics.continuous import (
    _cell_distances,
    _highs_direct,
    _transport_constraints,
    map_emd,
    map_kl,
    map_mse,
    transport_cost,
    wasserstein_grids,
)

SMALL_BOX = (0.45, 0.45, 0.55, 0.55)


def _centres(g: int) -> np.ndarray:
    c = (np.arange(g) + 0.5) / g
    y, x = np.meshgrid(c, c, indexing="ij")
    return np.stack([x.ravel(), y.ravel()], axis=1)  # [g * g, 2]


def _brute_w1(p: np.ndarray, q: np.ndarray) -> float:
    """The full ``n x n`` transport LP from p to q (no reduction to the net difference)."""
    pts = _centres(p.shape[0])
    n = len(pts)
    cost = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)).ravel()  # [n * n]
    a = sparse.vstack([sparse.kron(sparse.eye(n), np.ones((1, n))), sparse.kron(np.ones((1, n)), sparse.eye(n))])
    q = q.ravel() * (p.sum() / q.sum())
    result = linprog(cost, A_eq=a, b_eq=np.concatenate([p.ravel(), q]), bounds=(0, None), method="highs")
    assert result.status == 0, result.message
    return float(result.fun)


def test_soft_ground_truth_by_hand():
    r = 20
    box = (0.2, 0.4, 0.6, 0.6)  # 8 x 4 px, centre (8, 10) px; sigma_x = 2, sigma_y = 1
    gt = soft_ground_truth([box], r)
    j = np.arange(r) + 0.5
    gx, gy = np.exp(-((j - 8) ** 2) / 8), np.exp(-((j - 10) ** 2) / 2)
    expected = np.outer(gy, gx)
    np.testing.assert_allclose(gt, expected / expected.max())
    assert gt.max() == 1.0 and gt.shape == (r, r)


def test_soft_ground_truth_union_is_max_and_sigma_floor():
    a, b = (0.0, 0.0, 0.3, 0.3), (0.5, 0.5, 0.52, 1.0)  # b is 0.4 px wide at R = 20: sigma_x floored to 1
    ga, gb = soft_ground_truth([a], 20), soft_ground_truth([b], 20)
    np.testing.assert_allclose(soft_ground_truth([a, b], 20), np.maximum(ga, gb))
    j = np.arange(20) + 0.5
    row = gb[int(np.argmax(gb.max(axis=1)))]
    np.testing.assert_allclose(row / row.max(), np.exp(-((j - 10.2) ** 2) / 2) / np.exp(-((j - 10.2) ** 2) / 2).max())


def test_one_hot_map_against_uniform_ground_truth():
    n_side = 8
    n = n_side * n_side
    hot = np.zeros((1, n_side, n_side))
    hot[0, 0, 0] = 1.0
    uniform = np.ones((n_side, n_side))
    # MSE: the hot pixel matches, the other n - 1 differ by 1
    assert map_mse(hot, uniform)[0] == pytest.approx((n - 1) / n)
    # KL(P || Q): P = 1/n everywhere; Q = (1 + e) / (1 + n e) at the hot pixel, e / (1 + n e) elsewhere
    e = 1e-8
    expected = (1 / n) * math.log((1 / n) * (1 + n * e) / (1 + e)) + ((n - 1) / n) * math.log((1 / n) * (1 + n * e) / e)
    assert map_kl(uniform, hot)[0] == pytest.approx(expected, rel=1e-12)
    # EMD from a point mass to the uniform distribution: the mean distance from the corner cell to every cell
    expected_emd = np.linalg.norm(_centres(8) - _centres(8)[0], axis=1).mean()
    assert map_emd(hot, uniform)[0] == pytest.approx(expected_emd, abs=1e-9)


def test_emd_between_corner_cells():
    p, q = np.zeros((8, 8)), np.zeros((8, 8))
    p[0, 0], q[7, 7] = 1.0, 1.0
    assert wasserstein_grid(p, q) == pytest.approx(7 / 8 * math.sqrt(2), abs=1e-12)
    q2 = np.zeros((8, 8))
    q2[0, 7] = 1.0
    assert wasserstein_grid(p, q2) == pytest.approx(7 / 8, abs=1e-12)


def test_map_equal_to_ground_truth_scores_zero():
    gt = soft_ground_truth([SMALL_BOX], 224)
    assert gt.min() < 1e-30  # min-max normalisation leaves it as it is
    assert mse(gt, [SMALL_BOX]) == pytest.approx(0.0, abs=1e-12)  # float32 upsampling
    assert kl_divergence(gt, [SMALL_BOX]) == pytest.approx(0.0, abs=1e-12)
    assert emd(gt, [SMALL_BOX]) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_emd_matches_brute_force_lp(seed):
    rng = np.random.default_rng(seed)
    g = 8 if seed % 2 else 4
    p, q = rng.random((g, g)) ** 3, rng.random((g, g)) ** 3
    if seed % 3 == 0:
        p[rng.random((g, g)) < 0.6] = 0.0  # sparse supports
    if seed % 4 == 1:
        q += 1e-13 * rng.random((g, g))  # tiny differences next to large ones
        p = q + 1e-9 * (rng.random((g, g)) - 0.5)
        p = np.abs(p)
    p, q = p / p.sum(), q / q.sum()
    assert wasserstein_grid(p, q) == pytest.approx(_brute_w1(p, q), abs=1e-9)
    assert wasserstein_grid(p, q) == pytest.approx(wasserstein_grid(q, p), abs=1e-9)
    assert wasserstein_grids(p[None], q)[0] == pytest.approx(_brute_w1(p, q), abs=1e-9)  # POT's network simplex


def test_emd_threads_give_the_same_numbers():
    rng = np.random.default_rng(0)
    ps = rng.random((9, 64)) ** 3
    ps /= ps.sum(axis=1, keepdims=True)
    q = rng.random(64)
    q /= q.sum()
    alone = wasserstein_grids(ps, q)
    np.testing.assert_array_equal(wasserstein_grids(ps, q, workers=4), alone)
    assert alone == pytest.approx([_brute_w1(p.reshape(8, 8), q.reshape(8, 8)) for p in ps], abs=1e-9)


def test_emd_direct_network_simplex_is_ot_emd2_bit_for_bit():
    """``wasserstein_grids`` calls POT's solver without ``ot.emd2``'s wrapper: the same costs, bit for bit."""
    import ot

    from vitattn.metrics.continuous import _cell_distances, _network_simplex

    solve, cost = _network_simplex(), _cell_distances(8)
    rng = np.random.default_rng(3)
    for _ in range(40):
        d = rng.random(64) ** 3 - rng.random(64) ** 3
        d[rng.random(64) < 0.3] = 0.0
        src, dst = d > 0, d < 0
        a, b = d[src] / d[src].sum(), -d[dst] / -d[dst].sum()
        sub = np.ascontiguousarray(cost[np.ix_(src, dst)])
        assert solve(a, b, sub) == float(ot.emd2(a, b, sub))


def test_invariances():
    rng = np.random.default_rng(0)
    m = rng.random((14, 14))
    box = (0.1, 0.2, 0.5, 0.7)
    base = {f: f(m, [box]) for f in (mse, kl_divergence, emd)}
    for f, v in base.items():  # equal up to the float32 rounding of the upsampling
        assert f(3.0 * m - 2.0, [box]) == pytest.approx(v, rel=1e-6)  # min-max normalised: affine invariant
        assert f(m.T, [(box[1], box[0], box[3], box[2])]) == pytest.approx(v, rel=1e-6)  # transpose both
        assert f(m[:, ::-1], [(1 - box[2], box[1], 1 - box[0], box[3])]) == pytest.approx(v, rel=1e-6)  # mirror


def test_nan_inf_count_as_zero_and_constant_map_is_defined():
    rng = np.random.default_rng(1)
    m = rng.random((14, 14)) + 0.5
    bad, zero = m.copy(), m.copy()
    bad[2, 3], bad[5, 5], bad[7, 1] = np.nan, np.inf, -np.inf
    zero[2, 3] = zero[5, 5] = zero[7, 1] = 0.0
    box = [(0.3, 0.3, 0.6, 0.9)]
    for f in (mse, kl_divergence, emd):
        assert f(bad, box) == f(zero, box)
    gt = soft_ground_truth(box)
    flat = np.full((14, 14), 0.7)
    assert mse(flat, box) == pytest.approx((gt**2).mean())  # a flat map normalises to 0
    assert kl_divergence(flat, box) == pytest.approx(map_kl(gt, np.ones((1, 224, 224)))[0])  # Q uniform
    assert emd(flat, box) == pytest.approx(map_emd(np.ones((1, 224, 224)), gt)[0])  # no mass: uniform
    assert all(math.isfinite(f(np.full((14, 14), np.nan), box)) for f in (mse, kl_divergence, emd))


def test_score_batch_has_the_continuous_columns():
    rng = np.random.default_rng(2)
    maps = rng.random((3, 7, 7)).astype(np.float32)
    box = [(0.1, 0.1, 0.4, 0.5), (0.6, 0.5, 0.9, 0.95)]
    scores = score_batch(maps, box, 56).metrics
    assert list(scores) == list(METRIC_NAMES)
    assert set(LOWER_IS_BETTER) == {"mse", "kl", "emd"}
    for j in range(3):
        assert scores["mse"][j] == pytest.approx(mse(maps[j], box, 56), rel=1e-6)
        assert scores["kl"][j] == pytest.approx(kl_divergence(maps[j], box, 56), rel=1e-6)
        assert scores["emd"][j] == pytest.approx(emd(maps[j], box, 56), rel=1e-6)


def test_better_map_scores_lower():
    box = [(0.0, 0.0, 0.5, 0.5)]
    good, bad = np.zeros((8, 8)), np.zeros((8, 8))
    good[1, 1], bad[6, 6] = 1.0, 1.0
    for f in (mse, kl_divergence, emd):
        assert f(good, box) < f(bad, box)


def test_corloc():
    assert corloc([0.1, 0.5, 0.7, np.nan]) == 0.5  # 0.5 reaches the threshold; NaN is a miss
    assert corloc([0.3, 0.4], threshold=0.3) == 1.0
    with pytest.raises(ValueError, match="at least one"):
        corloc([])
    with pytest.raises(ValueError, match="threshold"):
        corloc([0.5], threshold=2)


def test_bad_heatmap_shape():
    with pytest.raises(ValueError, match="2-D"):
        mse(np.zeros(5), [SMALL_BOX])


@pytest.mark.parametrize("seed", range(5))
def test_direct_highs_call_equals_linprog(seed):
    rng = np.random.default_rng(seed)
    ns, nt = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    supply, demand = rng.random(ns), rng.random(nt)
    supply, demand = supply / supply.sum(), demand / demand.sum()
    src, dst = rng.choice(64, ns, replace=False), rng.choice(64, nt, replace=False)
    cost = _cell_distances(8)[np.ix_(src, dst)].reshape(-1)
    a_eq, b_eq = _transport_constraints(ns, nt), np.concatenate([supply, demand])
    direct = _highs_direct(cost, a_eq, b_eq)
    if direct is None:
        pytest.skip("this scipy has no scipy.optimize._highspy._core bindings; transport_cost uses linprog")
    assert direct == transport_cost(cost, a_eq, b_eq)
    assert direct == pytest.approx(transport_cost(cost, a_eq, b_eq, direct=False), abs=1e-12)
