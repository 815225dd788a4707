"""Adebayo et al.'s four similarities between an original and a randomised map (NeurIPS 2018, sec. 3 and
Appendix: Spearman rank correlation with and without absolute values, SSIM, and the Pearson correlation of HOG
features). Numpy, scipy and scikit-image only.

Settings, chosen so the numbers mean the same on every model's grid:

* Spearman (plain and of absolute values) on the map's own grid values (``gh x gw``): the ranks the method gives;
  upsampling would only add interpolated values. Ties share their average rank (``scipy.stats.rankdata``).
* SSIM and HOG need an image: each map is upsampled to ``R x R`` (default 224, bilinear with half-pixel centres as
  every metric, `vitattn.metrics.raster.upsample`) and min-max normalised to [0, 1] (a constant map becomes 0).
* SSIM: scikit-image ``structural_similarity`` with ``data_range=1``, a Gaussian window of sigma 1.5 and population
  covariances, the settings of Wang et al. 2004 (``gaussian_weights=True, use_sample_covariance=False``).
* HOG: scikit-image ``hog`` with 9 orientations, 16 x 16 pixel cells (one ViT-B/16 patch at 224) and 2 x 2 cell
  blocks (L2-Hys), the Dalal & Triggs layout; the similarity is the Pearson correlation of the two feature vectors.

A correlation is NaN where one side is constant (no ranks or gradients to compare).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from vitattn.metrics.raster import upsample

RESOLUTION = 224
HOG_SETTINGS = {"orientations": 9, "pixels_per_cell": (16, 16), "cells_per_block": (2, 2), "block_norm": "L2-Hys"}
SIMILARITY_NAMES = ("spearman", "spearman_abs", "ssim", "hog_similarity")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-size arrays (float64); NaN where either is constant.

    Written as ``<a, b> / sqrt(<a, a> <b, b>)`` of the centred values, so identical inputs give exactly 1.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"maps of different sizes: {np.shape(a)} and {np.shape(b)}")
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float("nan") if den == 0 else float(np.clip(np.dot(x, y) / den, -1.0, 1.0))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN where either map is constant."""
    return pearson(rankdata(np.ravel(a)), rankdata(np.ravel(b)))


def normalized_image(heatmap: np.ndarray, resolution: int = RESOLUTION) -> np.ndarray:
    """``(gh, gw)`` map -> ``(R, R)`` float64 in [0, 1]: upsampled, then min-max normalised (constant: zeros)."""
    up = upsample(np.asarray(heatmap, dtype=np.float32), resolution).astype(np.float64)  # (R, R)
    span = up.max() - up.min()
    return np.zeros_like(up) if span == 0 else (up - up.min()) / span


def ssim(a: np.ndarray, b: np.ndarray, resolution: int = RESOLUTION) -> float:
    """SSIM of the two maps as normalised ``R x R`` images (settings in the module docstring)."""
    from skimage.metrics import structural_similarity

    x, y = normalized_image(a, resolution), normalized_image(b, resolution)
    return float(structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))  # fmt: skip


def hog_similarity(a: np.ndarray, b: np.ndarray, resolution: int = RESOLUTION) -> float:
    """Pearson correlation of the HOG features of the two maps as normalised ``R x R`` images."""
    from skimage.feature import hog

    x = hog(normalized_image(a, resolution), feature_vector=True, **HOG_SETTINGS)
    y = hog(normalized_image(b, resolution), feature_vector=True, **HOG_SETTINGS)
    return pearson(x, y)


def similarities(original: np.ndarray, other: np.ndarray, resolution: int = RESOLUTION) -> dict[str, float]:
    """All four similarities of ``other`` to ``original`` (``SIMILARITY_NAMES``), both ``(gh, gw)``."""
    a, b = np.asarray(original), np.asarray(other)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two (gh, gw) maps of one shape, got {a.shape} and {b.shape}")
    return {
        "spearman": spearman(a, b),
        "spearman_abs": spearman(np.abs(a), np.abs(b)),
        "ssim": ssim(a, b, resolution),
        "hog_similarity": hog_similarity(a, b, resolution),
    }
