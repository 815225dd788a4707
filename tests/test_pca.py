"""PCA feature maps: components against numpy's SVD, fixed signs, joint colours, background removal, errors."""

from __future__ import annotations

import numpy as np
import pytest
from small_models import noise_image, small_model

from vitattn.pca import foreground_mask, joint_pca, otsu_threshold, pca_rgb, principal_components


def features(n: int = 64, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = np.linspace(3, 0.1, d)  # distinct variances: well separated components
    return (rng.normal(size=(n, d)) * scales @ np.linalg.qr(rng.normal(size=(d, d)))[0]).astype(np.float32)


@pytest.mark.parametrize("n,d", [(64, 32), (16, 48)])  # more patches than channels, and fewer
def test_components_equal_numpy_svd_up_to_sign(n, d):
    x = features(n, d)
    mean, comps = principal_components(x, 3)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(0), rtol=1e-12)
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    for k in range(3):
        assert abs(abs(float(comps[k] @ vt[k])) - 1) < 1e-6
        np.testing.assert_allclose(np.abs(comps[k]), np.abs(vt[k]), atol=1e-5)


def test_rank_deficient_features_fall_back_to_the_svd():
    x = np.repeat(features(n=8, d=16, seed=7)[:2], 4, axis=0)  # two distinct rows: rank 1 after centring
    _, comps = principal_components(x, 3)
    assert np.isfinite(comps).all()
    np.testing.assert_allclose(np.linalg.norm(comps, axis=1), 1, rtol=1e-9)


def test_sign_convention_largest_loading_positive():
    _, comps = principal_components(features(seed=1), 3)
    for c in comps:
        assert c[np.abs(c).argmax()] > 0


def test_signs_and_colours_are_stable_under_row_permutation():
    x = features(seed=2)
    perm = np.random.default_rng(3).permutation(len(x))
    _, c1 = principal_components(x, 3)
    _, c2 = principal_components(x[perm], 3)
    np.testing.assert_allclose(c1, c2, atol=1e-6)
    # colours follow their patch: a joint PCA of two images does not depend on the order of the patches
    a, b = x[:32], x[32:]
    p1 = joint_pca([a, b], [(4, 8), (4, 8)])
    p2 = joint_pca([a[::-1].copy(), b], [(4, 8), (4, 8)])
    np.testing.assert_allclose(p2[0].reshape(-1, 3)[::-1], p1[0].reshape(-1, 3), atol=1e-5)
    np.testing.assert_allclose(p2[1], p1[1], atol=1e-5)


def test_picture_is_the_min_max_scaled_projection():
    x = features(n=48, seed=4)
    rgb = pca_rgb(x, (6, 8))
    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.float32
    mean, comps = principal_components(x, 3)
    proj = (x - mean) @ comps.T
    expected = (proj - proj.min(0)) / (proj.max(0) - proj.min(0))
    np.testing.assert_allclose(rgb.reshape(-1, 3), expected, atol=1e-6)
    assert rgb.min() == 0 and rgb.max() == 1


def test_fewer_components_fill_fewer_channels():
    x = features(n=16, seed=5)
    grey = pca_rgb(x, (4, 4), components=1)
    np.testing.assert_array_equal(grey[..., 0], grey[..., 1])
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    two = pca_rgb(x, (4, 4), components=2)
    np.testing.assert_array_equal(two[..., 2], 0)


def test_joint_pca_gives_matching_parts_matching_colours():
    """Two images made of the same two parts (foreground feature f, background feature g, plus small noise) in
    different places: a joint PCA colours f alike in both, and the background step keeps exactly the f patches."""
    rng = np.random.default_rng(6)
    f, g = rng.normal(size=16) * 3, rng.normal(size=16) * 3
    masks = [np.zeros((5, 5), bool), np.zeros((5, 5), bool)]
    masks[0][1:3, 1:4] = True
    masks[1][2:4, 2:4] = True
    feats = [np.where(m.reshape(-1, 1), f, g) + rng.normal(size=(25, 16)) * 0.05 for m in masks]
    pics = joint_pca(feats, [(5, 5), (5, 5)], components=1)
    c0, c1 = pics[0][masks[0]][:, 0], pics[1][masks[1]][:, 0]
    assert abs(c0.mean() - c1.mean()) < 0.1 and abs(c0.mean() - pics[0][~masks[0]][:, 0].mean()) > 0.5
    for background in ("auto", 0.5):
        kept = foreground_mask(feats, [(5, 5), (5, 5)], background)
        np.testing.assert_array_equal(kept[0], masks[0])
        np.testing.assert_array_equal(kept[1], masks[1])
    pics = joint_pca(feats, [(5, 5), (5, 5)], background="auto")
    assert (pics[0][~masks[0]] == 0).all() and (pics[1][~masks[1]] == 0).all()


def test_otsu_threshold_splits_two_groups():
    values = np.concatenate([np.full(30, 0.1), np.full(10, 0.9)])
    t = otsu_threshold(values)
    assert 0.1 < t <= 0.9


def test_pca_of_real_features_and_inputs_untouched():
    a = small_model("dinov2").analyze(noise_image(seed=1), methods=["cls"])
    feats = a.features(1)
    copy = feats.copy()
    rgb = pca_rgb(feats, a.feature_grid(1), background="auto")
    assert rgb.shape == (*a.feature_grid(1), 3) and np.isfinite(rgb).all()
    assert ((rgb >= 0) & (rgb <= 1)).all()
    np.testing.assert_array_equal(feats, copy)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"grid": (3, 3)}, "do not match the grid"),
        ({"components": 4}, "components must be"),
        ({"background": 1.5}, "background must be"),
        ({"background": "yes"}, "background must be"),
        ({"features": np.full((16, 4), np.nan)}, "NaN"),
        ({"features": np.ones((16, 4)), "background": 0.99}, "too few"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, match):
    args = {"features": features(n=16, d=8), "grid": (4, 4), **kwargs}
    with pytest.raises(ValueError, match=match):
        pca_rgb(args.pop("features"), args.pop("grid"), **args)


def test_joint_pca_needs_one_grid_per_image_and_equal_channels():
    with pytest.raises(ValueError, match="one grid per"):
        joint_pca([features(n=16)], [(4, 4), (4, 4)])
    with pytest.raises(ValueError, match="channels"):
        joint_pca([features(n=16, d=8), features(n=16, d=6)], [(4, 4), (4, 4)])
