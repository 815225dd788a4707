"""Baseline maps: random, centre prior, spectral residual saliency, Sobel edges, saliency prior, and their metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from vitattn import metrics

BOXES = [(0.3, 0.3, 0.7, 0.7)]


def disc_image(seed: int = 0) -> np.ndarray:
    """A 96 x 128 RGB image: smooth grey texture with a bright disc of radius 10 centred at row 24, column 30."""
    texture = ndimage.gaussian_filter(np.random.default_rng(seed).random((96, 128)), 2) * 60 + 80  # [96, 128]
    rows, cols = np.mgrid[:96, :128]
    texture[(rows - 24) ** 2 + (cols - 30) ** 2 < 100] = 240
    return np.repeat(texture[..., None], 3, axis=2).astype(np.uint8)  # [96, 128, 3]


def test_random_map_is_deterministic_given_the_seed() -> None:
    a = metrics.random_map((14, 14), seed=3)
    assert a.shape == (14, 14) and a.dtype == np.float32
    assert ((a >= 0) & (a < 1)).all()
    np.testing.assert_array_equal(a, metrics.random_map((14, 14), seed=3))
    assert not np.array_equal(a, metrics.random_map((14, 14), seed=4))


def test_center_map_hand_values() -> None:
    # On a 2x2 grid every cell centre is at (0.25 or 0.75, 0.25 or 0.75): squared distance 2 * 0.25^2 from the
    # centre, so the value is exp(-0.125 / (2 * 0.25^2)) = exp(-1).
    np.testing.assert_allclose(metrics.center_map((2, 2)), np.full((2, 2), np.exp(-1.0)), rtol=1e-6)
    m = metrics.center_map((5, 7))
    assert m.argmax() == np.ravel_multi_index((2, 3), (5, 7)) and m[2, 3] == 1.0
    np.testing.assert_array_equal(m, m[::-1, ::-1])


def test_spectral_residual_finds_a_bright_disc() -> None:
    saliency = metrics.spectral_residual(disc_image())
    assert saliency.shape == (64, 64) and saliency.dtype == np.float32
    assert saliency.min() == 0.0 and saliency.max() == 1.0
    # On the 64 x 64 grid the disc spans rows 14..34 * 64 / 96 = 9..23 and columns 20..40 * 64 / 128 = 10..20.
    row, col = np.unravel_index(saliency.argmax(), saliency.shape)
    assert 8 <= row <= 24 and 9 <= col <= 21
    np.testing.assert_array_equal(saliency, metrics.spectral_residual(disc_image()))


def test_spectral_residual_of_a_flat_image_is_zero() -> None:
    saliency = metrics.spectral_residual(np.full((40, 50, 3), 7, dtype=np.uint8))
    assert np.isfinite(saliency).all() and (saliency == 0).all()


def test_spectral_residual_rejects_non_rgb() -> None:
    with pytest.raises(ValueError, match="RGB"):
        metrics.spectral_residual(np.zeros((10, 10)))


def test_baseline_maps() -> None:
    maps = metrics.baseline_maps((7, 9))
    assert set(maps) == {"random", "center", "saliency_prior"}
    maps = metrics.baseline_maps((7, 9), disc_image())
    assert set(maps) == set(metrics.BASELINE_NAMES) == {"random", "center", "saliency", "sobel", "saliency_prior"}
    assert all(m.shape == (7, 9) and m.dtype == np.float32 for m in maps.values())
    with pytest.raises(ValueError, match="grid"):
        metrics.baseline_maps((0, 9))


def test_baseline_metrics_random_is_the_mean_over_seeds() -> None:
    scores = metrics.baseline_metrics(BOXES, resolution=32, n_seeds=5, grid=(4, 4))
    assert set(scores) == {"random", "center", "saliency_prior"}
    per_seed = metrics.all_metrics_batch(np.stack([metrics.random_map((4, 4), s) for s in range(5)]), BOXES, 32)
    assert scores["random"] == pytest.approx({k: float(v.mean()) for k, v in per_seed.items()})
    assert scores["center"] == pytest.approx(metrics.all_metrics(metrics.center_map((4, 4)), BOXES, 32))
    assert scores["saliency_prior"] == pytest.approx(metrics.all_metrics(metrics.saliency_prior((4, 4)), BOXES, 32))
    assert scores == metrics.baseline_metrics(BOXES, resolution=32, n_seeds=5, grid=(4, 4))


def test_baseline_metrics_with_image_and_a_whole_image_box() -> None:
    # With the box covering the image, IoU at p is k / n for any map, coverage 1 and every peak a hit.
    scores = metrics.baseline_metrics([(0.0, 0.0, 1.0, 1.0)], disc_image(), resolution=10, n_seeds=3)
    assert set(scores) == set(metrics.BASELINE_NAMES)
    for name in scores:
        assert list(scores[name]) == list(metrics.METRIC_NAMES)
        assert scores[name]["iou_90"] == pytest.approx(0.1)
        assert scores[name]["coverage"] == pytest.approx(1.0)
        assert scores[name]["pointing"] == scores[name]["pointing_15"] == 1.0


def test_center_prior_beats_chance_on_a_centred_box() -> None:
    scores = metrics.baseline_metrics(BOXES, resolution=56, n_seeds=20)
    assert scores["center"]["iou_90"] > scores["random"]["iou_90"]
    assert scores["center"]["pointing"] == 1.0


def test_saliency_prior_points_at_the_salient_disc() -> None:
    disc_box = (20 / 128, 14 / 96, 40 / 128, 34 / 96)
    scores = metrics.baseline_metrics([disc_box], disc_image(), resolution=56, n_seeds=5, grid=(12, 16))
    assert scores["saliency"]["pointing"] == 1.0
    assert scores["saliency"]["iou_90"] > scores["random"]["iou_90"]


@pytest.mark.parametrize("n_seeds", [0, -1, 2.5, True])
def test_baseline_metrics_rejects_bad_seed_counts(n_seeds: object) -> None:
    with pytest.raises(ValueError, match="n_seeds"):
        metrics.baseline_metrics(BOXES, n_seeds=n_seeds)


def _sobel_by_hand(gray: np.ndarray) -> np.ndarray:
    """The seed study's Sobel: explicit 3x3 correlation with np.pad(mode="reflect"), magnitude over its max."""
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
    padded = np.pad(gray, 1, mode="reflect")
    h, w = gray.shape
    gx, gy = np.zeros((h, w)), np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            window = padded[i : i + 3, j : j + 3]
            gx[i, j], gy[i, j] = (window * kx).sum(), (window * kx.T).sum()
    magnitude = np.sqrt(gx**2 + gy**2)
    return magnitude / magnitude.max()


def test_sobel_matches_the_explicit_filter() -> None:
    rng = np.random.default_rng(0)
    image = (rng.random((12, 12, 3)) * 255).astype(np.uint8)
    gray = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(metrics.sobel_map(image, size=12), _sobel_by_hand(gray), rtol=1e-5, atol=1e-6)


def test_sobel_finds_a_vertical_edge_and_is_zero_on_a_flat_image() -> None:
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    image[:, 20:] = 200  # a vertical edge at half width
    edges = metrics.sobel_map(image, size=16)
    assert edges.shape == (16, 16) and edges.max() == 1.0
    assert (edges.argmax(axis=1) == 7).all()  # columns 7 and 8 tie; argmax takes the first
    assert set(np.flatnonzero(edges[0] > 0).tolist()) == {7, 8}  # only the two columns beside x = 0.5
    assert (metrics.sobel_map(np.full((9, 9, 3), 5, dtype=np.uint8)) == 0).all()


def test_saliency_prior_hand_values() -> None:
    # 2 x 2 grid: every cell centre is at distance^2 2 * 0.25^2 from the centre and 0.25 from the border, so
    # every value is exp(-0.125 / (2 / 9)) * 0.5 and the peak-1 normalisation makes them all 1.
    np.testing.assert_allclose(metrics.saliency_prior((2, 2)), np.ones((2, 2)))
    # 1 x 3 grid: centres x = 1/6, 1/2, 5/6 at y = 1/2; ramp min(x, 1 - x, 1/2) / 0.5 = 1/3, 1, 1/3;
    # Gaussian exp(-(1/3)^2 / (2/9)) = exp(-1/2) at the sides.
    np.testing.assert_allclose(metrics.saliency_prior((1, 3)), [[np.exp(-0.5) / 3, 1.0, np.exp(-0.5) / 3]], rtol=1e-6)
    m = metrics.saliency_prior((9, 11))
    assert m.max() == 1.0 and m[4, 5] == 1.0
    np.testing.assert_allclose(m, m[::-1, ::-1])


def test_every_baseline_has_the_continuous_metrics() -> None:
    scores = metrics.baseline_metrics(BOXES, disc_image(), resolution=32, n_seeds=2, grid=(4, 4))
    for name in metrics.BASELINE_NAMES:
        assert {"mse", "kl", "emd"} <= set(scores[name])
        assert all(np.isfinite(scores[name][m]) for m in ("mse", "kl", "emd"))
    # a centred box: the centred priors are closer to its soft ground truth than noise is
    assert scores["center"]["emd"] < scores["random"]["emd"]
    assert scores["saliency_prior"]["emd"] < scores["random"]["emd"]
