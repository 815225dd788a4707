"""PCA feature maps: the first principal components of patch features as an RGB picture on the patch grid.

As in the DINOv2 paper (Oquab et al. 2024, "DINOv2: Learning Robust Visual Features without Supervision", Fig. 1
and sec. 7.3): a PCA of the patch features, optionally a first PCA whose first component is thresholded to remove
the background, then the first three components of a PCA of the remaining (foreground) patches as R, G and B.
`joint_pca` fits one PCA on the patches of several images, so that matching parts get matching colours.

Conventions (numpy only, deterministic, inputs never modified):

- components are the first right singular vectors of the centred features (those of ``numpy.linalg.svd``); each
  component's sign is fixed so that its largest-magnitude loading is positive, so colours do not flip between
  calls or with the order of the patches;
- each component is scaled to [0, 1] by its minimum and maximum over the foreground patches (of all images for
  `joint_pca`); background patches are black (0, 0, 0);
- ``background``: None keeps every patch; a number ``t`` in (0, 1) removes the patches whose first component,
  scaled to [0, 1], is below ``t``; "auto" picks ``t`` by Otsu's method (the threshold that maximizes the variance
  between the two groups). The first component's sign for this step is chosen so that the patches on the border
  of the grid score lower on average than all patches (objects rarely fill the border), since its learned sign
  says nothing about which side is the object.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Background = str | float | None


def principal_components(features: np.ndarray, components: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the first principal components of ``(N, D)`` features.

    Returns:
        ``(D,)`` mean and ``(components, D)`` unit components, largest-magnitude loading positive.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] <= components or x.shape[1] < components:
        raise ValueError(f"PCA with {components} components needs (N, D) features, N > {components}, got {x.shape}")
    mean = x.mean(0)  # (D,)
    comps = _top_right_singular_vectors(x - mean, components)  # (k, D)
    sign = np.sign(comps[np.arange(components), np.abs(comps).argmax(1)])  # (k,)
    return mean, comps * np.where(sign == 0, 1.0, sign)[:, None]


def _top_right_singular_vectors(xc: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` right singular vectors of ``xc`` ``(N, D)``, as ``numpy.linalg.svd`` would give them (up to
    sign), from the eigenvectors of the smaller of ``xc xc^T`` and ``xc^T xc`` (several times faster than a full
    SVD for one image's 256 x 768 patches); falls back to the SVD when the top ``k`` are not well defined."""
    n, d = xc.shape
    gram = xc @ xc.T if n <= d else xc.T @ xc  # (m, m), m = min(N, D)
    values, vectors = np.linalg.eigh(gram)  # ascending
    values, vectors = values[::-1][:k], vectors[:, ::-1][:, :k]  # (k,), (m, k)
    if values[-1] <= 1e-10 * max(values[0], np.finfo(np.float64).tiny):  # rank < k: no unique components
        return np.linalg.svd(xc, full_matrices=False)[2][:k]
    if n > d:
        return vectors.T  # (k, D)
    return (xc.T @ vectors / np.sqrt(values)).T  # (k, D): v = X^T u / sigma


def pca_rgb(
    features: np.ndarray, grid: tuple[int, int], *, components: int = 3, background: Background = None
) -> np.ndarray:
    """One image's patch features as a ``(gh, gw, 3)`` float picture in [0, 1] (module docstring).

    Args:
        features: ``(gh * gw, D)`` patch features in raster order, e.g. ``Analysis.features(layer)``.
        grid: ``(gh, gw)``, e.g. ``Analysis.feature_grid(layer)``.
        components: 3 (RGB), 2 (R, G; B = 0) or 1 (grey).
        background: None, "auto" or a threshold in (0, 1) on the first component.
    """
    return joint_pca([features], [grid], components=components, background=background)[0]


def joint_pca(
    features: Sequence[np.ndarray],
    grids: Sequence[tuple[int, int]],
    *,
    components: int = 3,
    background: Background = None,
) -> list[np.ndarray]:
    """Several images' patch features coloured by one PCA fitted on all their patches (and one background step).

    Args:
        features: per image ``(gh * gw, D)`` patch features of the same model and layer.
        grids: per image ``(gh, gw)``.
        components: 3 (RGB), 2 (R, G; B = 0) or 1 (grey).
        background: None, "auto" or a threshold in (0, 1) on the first component of the joint PCA.

    Returns:
        Per image a ``(gh, gw, 3)`` float32 picture in [0, 1].
    """
    xs, grids = _check(features, grids, components)
    x = np.concatenate(xs)  # (N, D) all patches
    keep = _foreground(xs, grids, background)  # (N,)
    if keep.sum() <= components:
        raise ValueError(f"background threshold {background!r} leaves {int(keep.sum())} patches; too few for a PCA")
    mean, comps = principal_components(x[keep], components)
    proj = (x - mean) @ comps.T  # (N, k)
    lo, hi = proj[keep].min(0), proj[keep].max(0)  # (k,)
    scaled = np.clip((proj - lo) / np.where(hi > lo, hi - lo, 1.0), 0, 1) * keep[:, None]  # (N, k)
    rgb = np.repeat(scaled, 3, 1) if components == 1 else np.pad(scaled, ((0, 0), (0, 3 - components)))  # (N, 3)
    bounds = np.cumsum([0] + [gh * gw for gh, gw in grids])
    return [
        rgb[a:b].reshape(gh, gw, 3).astype(np.float32)
        for a, b, (gh, gw) in zip(bounds[:-1], bounds[1:], grids, strict=True)
    ]


def foreground_mask(
    features: Sequence[np.ndarray], grids: Sequence[tuple[int, int]], background: Background
) -> list[np.ndarray]:
    """Per image the ``(gh, gw)`` boolean foreground that `joint_pca` keeps (all True for ``background=None``)."""
    xs, grids = _check(features, grids, 1)
    keep = _foreground(xs, grids, background)
    bounds = np.cumsum([0] + [gh * gw for gh, gw in grids])
    return [keep[a:b].reshape(grid) for a, b, grid in zip(bounds[:-1], bounds[1:], grids, strict=True)]


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1]: the bin edge that maximizes the between-group variance."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    p = hist / hist.sum()  # (bins,)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)[:-1]  # weight of the low group for a cut after each bin
    m0 = np.cumsum(p * centers)[:-1]  # its first moment
    total = (p * centers).sum()
    between = np.where((w0 > 0) & (w0 < 1), (total * w0 - m0) ** 2 / np.maximum(w0 * (1 - w0), 1e-300), 0.0)
    return float(edges[1:-1][int(np.argmax(between))])


def _foreground(xs: list[np.ndarray], grids: list[tuple[int, int]], background: Background) -> np.ndarray:
    n = sum(len(x) for x in xs)
    if background is None:
        return np.ones(n, dtype=bool)
    auto = isinstance(background, str) and background == "auto"
    if not auto and (isinstance(background, (str, bool)) or not 0 < float(background) < 1):
        raise ValueError(f"background must be None, 'auto' or a threshold in (0, 1), got {background!r}")
    x = np.concatenate(xs)  # (N, D)
    mean, comps = principal_components(x, 1)
    first = (x - mean) @ comps[0]  # (N,)
    border = np.concatenate([_border(grid) for grid in grids])  # (N,)
    if first[border].mean() > first.mean():
        first = -first  # the border is background
    scaled = (first - first.min()) / max(first.max() - first.min(), 1e-12)  # (N,) in [0, 1]
    threshold = otsu_threshold(scaled) if auto else float(background)
    return scaled >= threshold


def _border(grid: tuple[int, int]) -> np.ndarray:
    gh, gw = grid
    edge = np.ones((gh, gw), dtype=bool)
    edge[1:-1, 1:-1] = False
    return edge.ravel()


def _check(
    features: Sequence[np.ndarray], grids: Sequence[tuple[int, int]], components: int
) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    if isinstance(components, bool) or components not in (1, 2, 3):
        raise ValueError(f"components must be 1, 2 or 3, got {components!r}")
    xs = [np.asarray(f) for f in features]
    grids = [tuple(int(v) for v in g) for g in grids]
    if not xs or len(xs) != len(grids):
        raise ValueError(f"need one grid per feature array, got {len(xs)} feature arrays and {len(grids)} grids")
    for i, (x, (gh, gw)) in enumerate(zip(xs, grids, strict=True)):
        if x.ndim != 2 or x.shape[0] != gh * gw:
            raise ValueError(f"image {i}: features {x.shape} do not match the grid {gh}x{gw} (expected ({gh * gw}, D))")
        if x.shape[1] != xs[0].shape[1]:
            raise ValueError(f"image {i}: {x.shape[1]} channels, image 0 has {xs[0].shape[1]}")
        if not np.isfinite(x).all():
            raise ValueError(f"image {i}: features contain NaN or infinity")
    return xs, grids
