"""Baseline maps: random, centre prior, spectral residual saliency, and their metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from vitattn.metrics import (
    METRIC_NAMES,
    all_metrics,
    all_metrics_batch,
    baseline_maps,
    baseline_metrics,
    center_map,
    random_map,
    spectral_residual,
)

BOXES = [(0.3, 0.3, 0.7, 0.7)]


def disc_image(seed: int = 0) -> np.ndarray:
    """A 96 x 128 RGB image: smooth grey texture with a bright disc of radius 10 centred at row 24, column 30."""
    texture = ndimage.gaussian_filter(np.random.default_rng(seed).random((96, 128)), 2) * 60 + 80  # [96, 128]
    rows, cols = np.mgrid[:96, :128]
    texture[(rows - 24) ** 2 + (cols - 30) ** 2 < 100] = 240
    return np.repeat(texture[..., None], 3, axis=2).astype(np.uint8)  # [96, 128, 3]


def test_random_map_is_deterministic_given_the_seed() -> None:
    a = random_map((14, 14), seed=3)
    assert a.shape == (14, 14) and a.dtype == np.float32
    assert ((a >= 0) & (a < 1)).all()
    np.testing.assert_array_equal(a, random_map((14, 14), seed=3))
    assert not np.array_equal(a, random_map((14, 14), seed=4))


def test_center_map_hand_values() -> None:
    # On a 2x2 grid every cell centre is at (0.25 or 0.75, 0.25 or 0.75): squared distance 2 * 0.25^2 from the
    # centre, so the value is exp(-0.125 / (2 * 0.25^2)) = exp(-1).
    np.testing.assert_allclose(center_map((2, 2)), np.full((2, 2), np.exp(-1.0)), rtol=1e-6)
    m = center_map((5, 7))
    assert m.argmax() == np.ravel_multi_index((2, 3), (5, 7)) and m[2, 3] == 1.0
    np.testing.assert_array_equal(m, m[::-1, ::-1])


def test_spectral_residual_finds_a_bright_disc() -> None:
    saliency = spectral_residual(disc_image())
    assert saliency.shape == (64, 64) and saliency.dtype == np.float32
    assert saliency.min() == 0.0 and saliency.max() == 1.0
    # On the 64 x 64 grid the disc spans rows 14..34 * 64 / 96 = 9..23 and columns 20..40 * 64 / 128 = 10..20.
    row, col = np.unravel_index(saliency.argmax(), saliency.shape)
    assert 8 <= row <= 24 and 9 <= col <= 21
    np.testing.assert_array_equal(saliency, spectral_residual(disc_image()))


def test_spectral_residual_of_a_flat_image_is_zero() -> None:
    saliency = spectral_residual(np.full((40, 50, 3), 7, dtype=np.uint8))
    assert np.isfinite(saliency).all() and (saliency == 0).all()


def test_spectral_residual_rejects_non_rgb() -> None:
    with pytest.raises(ValueError, match="RGB"):
        spectral_residual(np.zeros((10, 10)))


def test_baseline_maps() -> None:
    maps = baseline_maps((7, 9))
    assert set(maps) == {"random", "center"}
    maps = baseline_maps((7, 9), disc_image())
    assert set(maps) == {"random", "center", "saliency"}
    assert all(m.shape == (7, 9) and m.dtype == np.float32 for m in maps.values())
    with pytest.raises(ValueError, match="grid"):
        baseline_maps((0, 9))


def test_baseline_metrics_random_is_the_mean_over_seeds() -> None:
    scores = baseline_metrics(BOXES, resolution=32, n_seeds=5, grid=(4, 4))
    assert set(scores) == {"random", "center"}
    per_seed = all_metrics_batch(np.stack([random_map((4, 4), s) for s in range(5)]), BOXES, 32)
    assert scores["random"] == pytest.approx({k: float(v.mean()) for k, v in per_seed.items()})
    assert scores["center"] == pytest.approx(all_metrics(center_map((4, 4)), BOXES, 32))
    assert scores == baseline_metrics(BOXES, resolution=32, n_seeds=5, grid=(4, 4))


def test_baseline_metrics_with_image_and_a_whole_image_box() -> None:
    # With the box covering the image, IoU at p is k / n for any map, coverage 1 and every peak a hit.
    scores = baseline_metrics([(0.0, 0.0, 1.0, 1.0)], disc_image(), resolution=10, n_seeds=3)
    assert set(scores) == {"random", "center", "saliency"}
    for name in scores:
        assert list(scores[name]) == list(METRIC_NAMES)
        assert scores[name]["iou_90"] == pytest.approx(0.1)
        assert scores[name]["coverage"] == pytest.approx(1.0)
        assert scores[name]["pointing"] == scores[name]["pointing_15"] == 1.0


def test_center_prior_beats_chance_on_a_centred_box() -> None:
    scores = baseline_metrics(BOXES, resolution=56, n_seeds=20)
    assert scores["center"]["iou_90"] > scores["random"]["iou_90"]
    assert scores["center"]["pointing"] == 1.0


def test_saliency_prior_points_at_the_salient_disc() -> None:
    disc_box = (20 / 128, 14 / 96, 40 / 128, 34 / 96)
    scores = baseline_metrics([disc_box], disc_image(), resolution=56, n_seeds=5, grid=(12, 16))
    assert scores["saliency"]["pointing"] == 1.0
    assert scores["saliency"]["iou_90"] > scores["random"]["iou_90"]


@pytest.mark.parametrize("n_seeds", [0, -1, 2.5, True])
def test_baseline_metrics_rejects_bad_seed_counts(n_seeds: object) -> None:
    with pytest.raises(ValueError, match="n_seeds"):
        baseline_metrics(BOXES, n_seeds=n_seeds)
