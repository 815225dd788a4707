"""How well a map agrees with expert boxes: IoU at percentiles, coverage, pointing game.

Every metric upsamples the map bilinearly to an ``R x R`` grid over the whole image (``raster.upsample``) and
rasterizes the boxes on the same grid (``raster.box_masks``: a pixel is in a box when its centre is in
``[x0, x1) x [y0, y1)``). Maps are compared at float32 precision. Conventions:

- IoU at percentile p keeps exactly ``k = max(1, round(n * (100 - p) / 100))`` of the ``n = R * R`` pixels, the
  highest first; ties at the threshold go to the earlier pixel in raster order (``ranking.descending_order``).
  Thresholding a map at a percentile of its values follows Network Dissection (Bau et al., CVPR 2017) and
  DINO's attention masks (Caron et al., ICCV 2021); IoU against the box union is the Jaccard index.
- Coverage is the share of the map's mass inside the box union after subtracting the map's minimum (over
  the upsampled grid). A constant map spreads its mass uniformly, so its coverage is the union's area fraction.
- Pointing game (Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016): a hit when the
  peak falls within ``tolerance`` pixels of a box. When several pixels share the maximum, all of them must be
  within tolerance (the conservative choice: a flat map does not score by luck of raster order).

``score_batch`` does the work once for a stack of maps and one box list: it upsamples, rasterizes and sorts
once and reads every percentile off the same ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vitattn.boxes import Box, LabeledBox
from vitattn.metrics.ranking import check_percentile, descending_order, top_k_count
from vitattn.metrics.raster import box_masks, check_resolution, upsample

PERCENTILES = (90, 85, 80, 75, 70, 60, 50)
METRIC_NAMES = (*(f"iou_{p}" for p in PERCENTILES), "iou_auc", "coverage", "pointing")
BoxList = Sequence[Box | LabeledBox | Sequence[float]]


@dataclass(frozen=True)
class BatchScores:
    """Scores of ``N`` maps against one box list."""

    metrics: dict[str, np.ndarray]  # METRIC_NAMES -> [N] float64 (pointing as 0.0 / 1.0)
    box_iou: np.ndarray  # [N, B] IoU of the thresholded map with each box alone, at box_percentile


def check_heatmaps(heatmaps: np.ndarray, *, ndim: int = 3) -> np.ndarray:
    """Validates ``[gh, gw]`` (ndim=2) or ``[N, gh, gw]`` (ndim=3) finite real maps; returns them as float32."""
    m = np.asarray(heatmaps)
    what = "heatmap" if ndim == 2 else "heatmaps"
    if m.ndim != ndim:
        shape = "[gh, gw]" if ndim == 2 else "[N, gh, gw]"
        raise ValueError(f"{what} must be {ndim}-D {shape}, got shape {m.shape}")
    if m.size == 0:
        raise ValueError(f"{what} is empty, got shape {m.shape}")
    if not (np.issubdtype(m.dtype, np.floating) or np.issubdtype(m.dtype, np.integer)):
        raise ValueError(f"{what} must hold real numbers, got dtype {m.dtype}")
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported just below
        m32 = m.astype(np.float32)
    if not np.isfinite(m32).all():
        raise ValueError(f"{what} has non-finite values (NaN, inf, or beyond float32 range)")
    return m32


def _near_box(union: np.ndarray, tolerance: float) -> np.ndarray:
    """``[R, R]`` bool: pixels within ``tolerance`` (Euclidean, in pixels) of a box pixel."""
    if not (isinstance(tolerance, int | float | np.number) and np.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number >= 0 (pixels of the R grid), got {tolerance!r}")
    if tolerance == 0:
        return union
    return ndimage.distance_transform_edt(~union) <= tolerance  # distance to the nearest box pixel


def _top_k_hits(order: np.ndarray, mask: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """``[N, K]`` how many of the top-k pixels (for each k in ``ks``) lie in ``mask`` (``[n]`` bool)."""
    k_max = int(ks.max())
    hits = mask[order[:, :k_max]]  # [N, k_max] bool, in rank order
    return np.cumsum(hits, axis=1, dtype=np.int64)[:, ks - 1]  # [N, K]


def _iou(hits: np.ndarray, ks: np.ndarray, area: int) -> np.ndarray:
    """Jaccard index of k kept pixels and a mask of ``area`` pixels, ``hits`` of them shared: ``[N, K]``."""
    return hits / (ks + area - hits)


def _coverage(up: np.ndarray, union: np.ndarray) -> np.ndarray:
    """``[N]`` share of ``up - min`` (``[N, n]``) inside ``union`` (``[n]``); the area fraction for flat maps."""
    shifted = up - up.min(axis=1, keepdims=True)  # [N, n] >= 0, zero only at the minimum
    total = shifted.sum(axis=1, dtype=np.float64)  # [N]
    inside = shifted[:, union].sum(axis=1, dtype=np.float64)  # [N]
    flat = total == 0
    return np.where(flat, union.mean(), inside / np.where(flat, 1.0, total))


def _pointing(up: np.ndarray, near: np.ndarray) -> np.ndarray:
    """``[N]`` bool: every pixel holding the maximum of ``up`` (``[N, n]``) lies in ``near`` (``[n]``)."""
    peaks = up == up.max(axis=1, keepdims=True)  # [N, n]
    return ~(peaks & ~near).any(axis=1)


def _prepare(heatmaps: np.ndarray, boxes: BoxList, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Upsampled flat maps ``[N, n]`` float32 and flat box masks ``[B, n]`` bool."""
    resolution = check_resolution(resolution)
    masks = box_masks(boxes, resolution).reshape(-1, resolution * resolution)  # [B, n]
    up = upsample(heatmaps, resolution).reshape(heatmaps.shape[0], -1)  # [N, n]
    return up, masks


def score_batch(
    heatmaps: np.ndarray, boxes: BoxList, resolution: int = 224, *, box_percentile: float = 90
) -> BatchScores:
    """All metrics of a stack of maps against one box list, sorting each map once.

    Args:
        heatmaps: ``[N, gh, gw]`` maps on the patch grid, row 0 at the top, covering the whole image.
        boxes: non-empty list of normalized boxes ``(x0, y0, x1, y1)`` (or ``LabeledBox``).
        resolution: side ``R`` of the grid the metrics are computed on.
        box_percentile: percentile of the per-box IoU (``BatchScores.box_iou``).

    Returns:
        ``BatchScores`` with every column of ``METRIC_NAMES`` and the per-box IoU.

    Temporaries take about 30 bytes per map pixel (~1.5 MB per map at R = 224): feed a few hundred maps at a time.
    """
    maps = check_heatmaps(heatmaps, ndim=3)
    up, masks = _prepare(maps, boxes, resolution)  # [N, n], [B, n]
    n = up.shape[1]
    union = masks.any(axis=0)  # [n]
    ks = np.array([top_k_count(n, p) for p in PERCENTILES])  # [K]
    order = descending_order(up)  # [N, n]
    ious = _iou(_top_k_hits(order, union, ks), ks, int(union.sum()))  # [N, K]
    metrics = {f"iou_{p}": ious[:, j] for j, p in enumerate(PERCENTILES)}
    metrics["iou_auc"] = ious.mean(axis=1)
    metrics["coverage"] = _coverage(up, union)
    metrics["pointing"] = _pointing(up, union).astype(np.float64)
    k_box = np.array([top_k_count(n, box_percentile)])  # [1]
    box_iou = np.stack([_iou(_top_k_hits(order, m, k_box), k_box, int(m.sum()))[:, 0] for m in masks], axis=1)
    return BatchScores(metrics=metrics, box_iou=box_iou)  # box_iou [N, B]


def all_metrics_batch(heatmaps: np.ndarray, boxes: BoxList, resolution: int = 224) -> dict[str, np.ndarray]:
    """``METRIC_NAMES`` -> ``[N]`` scores of ``[N, gh, gw]`` maps against one box list (see ``score_batch``)."""
    return score_batch(heatmaps, boxes, resolution).metrics


def all_metrics(heatmap: np.ndarray, boxes: BoxList, resolution: int = 224) -> dict[str, float]:
    """Every metric of one ``[gh, gw]`` map, keyed by the metrics-table column names ``METRIC_NAMES``."""
    scores = all_metrics_batch(check_heatmaps(heatmap, ndim=2)[None], boxes, resolution)
    return {name: float(scores[name][0]) for name in METRIC_NAMES}


def _ranked(heatmap: np.ndarray, boxes: BoxList, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The ranking ``[1, n]`` of one ``[gh, gw]`` map's upsampled pixels and the flat box masks ``[B, n]``."""
    up, masks = _prepare(check_heatmaps(heatmap, ndim=2)[None], boxes, resolution)  # [1, n], [B, n]
    return descending_order(up), masks


def _union_ious(heatmap: np.ndarray, boxes: BoxList, percentiles: Sequence[float], resolution: int) -> np.ndarray:
    """``[K]`` IoU of one map with the box union at each percentile."""
    order, masks = _ranked(heatmap, boxes, resolution)  # [1, n], [B, n]
    union = masks.any(axis=0)  # [n]
    ks = np.array([top_k_count(order.shape[1], p) for p in percentiles])  # [K]
    return _iou(_top_k_hits(order, union, ks), ks, int(union.sum()))[0]


def iou(heatmap: np.ndarray, boxes: BoxList, percentile: float = 90, resolution: int = 224) -> float:
    """IoU of the map's top ``100 - percentile`` % pixels (exactly k, ties in raster order) with the box union.

    Args:
        heatmap: ``[gh, gw]`` map on the patch grid, row 0 at the top, covering the whole image.
        boxes: non-empty list of normalized boxes ``(x0, y0, x1, y1)`` (or ``LabeledBox``).
        percentile: keep the pixels above this percentile, in (0, 100); 90 keeps the top 10 %.
        resolution: side ``R`` of the grid the IoU is computed on.
    """
    return float(_union_ious(heatmap, boxes, (check_percentile(percentile),), resolution)[0])


def iou_auc(heatmap: np.ndarray, boxes: BoxList, resolution: int = 224) -> float:
    """The mean IoU over ``PERCENTILES`` (a summary over thresholds, so no single cut-off decides)."""
    return float(_union_ious(heatmap, boxes, PERCENTILES, resolution).mean())


def per_box_iou(heatmap: np.ndarray, boxes: BoxList, percentile: float = 90, resolution: int = 224) -> np.ndarray:
    """``[B]`` IoU of the thresholded map (as in ``iou``) with each box on its own, to break results down by label."""
    order, masks = _ranked(heatmap, boxes, resolution)  # [1, n], [B, n]
    ks = np.array([top_k_count(order.shape[1], check_percentile(percentile))])  # [1]
    return np.array([_iou(_top_k_hits(order, m, ks), ks, int(m.sum()))[0, 0] for m in masks])  # [B]


def coverage(heatmap: np.ndarray, boxes: BoxList, resolution: int = 224) -> float:
    """Share of the map's mass inside the box union, after subtracting its minimum; area fraction if flat."""
    up, masks = _prepare(check_heatmaps(heatmap, ndim=2)[None], boxes, resolution)  # [1, n], [B, n]
    return float(_coverage(up, masks.any(axis=0))[0])


def pointing_game(heatmap: np.ndarray, boxes: BoxList, resolution: int = 224, tolerance: float = 0) -> bool:
    """Whether the map's peak lies within ``tolerance`` pixels (of the R grid) of a box.

    A hit needs every pixel that holds the maximum to be within tolerance (Euclidean distance to the nearest
    box pixel); with ``tolerance=0`` the peak must lie inside a box.
    """
    up, masks = _prepare(check_heatmaps(heatmap, ndim=2)[None], boxes, resolution)  # [1, n], [B, n]
    side = check_resolution(resolution)
    near = _near_box(masks.any(axis=0).reshape(side, side), tolerance).reshape(-1)  # [n]
    return bool(_pointing(up, near)[0])
