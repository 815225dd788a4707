"""How well a map agrees with expert boxes: IoU at percentiles, coverage, pointing game.

Every metric upsamples the map bilinearly to an ``R x R`` grid over the whole image (``raster.upsample``) and
rasterizes the boxes on the same grid (``raster.box_masks``: a pixel is in a box when its centre is in
``[x0, x1) x [y0, y1)``). Maps are compared at float32 precision. Conventions:

- IoU at percentile p keeps exactly ``k = max(1, round(n * (100 - p) / 100))`` of the ``n = R * R`` pixels, the
  highest first. Pixels tied at the threshold (the k-th largest value ``t``) get their expected share under a
  uniformly random tie-break (``ranking.expected_top_k_hits``): ``hits = hits_above + (k - n_above) *
  tied_in / n_tied``, where ``n_above`` pixels exceed ``t``, ``hits_above`` of them in the mask, and
  ``tied_in`` of the ``n_tied`` pixels equal to ``t`` lie in the mask. Then ``IoU = hits / (k + area - hits)``,
  the expected intersection over the expected union (``area`` = mask pixels). No pixel order enters, so a flat
  region does not favour the top of the image, and a constant map scores ``(k * area / n) / (k + area - k *
  area / n)``. The per-box IoU (``per_box_iou``, ``BatchScores.box_iou``) follows the same rule with each box.
  Thresholding a map at a percentile of its values follows Network Dissection (Bau et al., CVPR 2017) and
  DINO's attention masks (Caron et al., ICCV 2021); IoU against the box union is the Jaccard index.
- ``iou_auc`` is the unweighted mean of the IoUs at ``PERCENTILES`` (90, 85, 80, 75, 70, 60, 50): a summary over
  thresholds, not a trapezoidal area under an IoU curve (the percentiles are unevenly spaced and each counts
  once).
- Coverage is the share of the map's mass inside the box union after subtracting the map's minimum (over
  the upsampled grid). A constant map spreads its mass uniformly, so its coverage is the union's area fraction.
- Pointing game (after Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016): a hit when
  the peak lies within ``tolerance`` pixels (Euclidean distance, pixels of the R grid) of a pixel of the box
  union. Two columns: ``pointing`` with tolerance 0 (the peak must lie inside a box) and ``pointing_15`` with
  Zhang et al.'s 15 pixel tolerance, taken at R = 224 and scaled to ``15 * R / 224`` on other grids (so it is a
  fixed 15 / 224 of the image side, not 15 pixels of the original photograph). When several pixels share the
  maximum, a hit needs all of them within tolerance (the conservative choice: a flat map does not score by
  luck of pixel order; a constant map hits only when the boxes, widened by the tolerance, cover the image).

The continuous metrics ``mse``, ``kl`` and ``emd`` (against a soft ground truth; lower is better, see
``LOWER_IS_BETTER``) are defined in ``continuous.py``; the threshold-free ``relevance_mass``, ``relevance_rank``
and ``pxap`` in ``threshold_free.py``.

``score_batch`` does the work once for a stack of maps and one box list: it upsamples, rasterizes and finds the
percentile thresholds once and reads every percentile and box off them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vitattn.boxes import Box, LabeledBox
from vitattn.metrics.continuous import CONTINUOUS_NAMES, continuous_scores, soft_ground_truth
from vitattn.metrics.ranking import check_percentile, expected_top_k_hits, top_k_count
from vitattn.metrics.raster import box_masks, check_heatmaps, check_resolution, upsample
from vitattn.metrics.threshold_free import THRESHOLD_FREE_NAMES, average_precision, mass_share, rank_share

PERCENTILES = (90, 85, 80, 75, 70, 60, 50)
POINTING_TOLERANCE = 15  # Zhang et al. (ECCV 2016): pixels ...
POINTING_REFERENCE_RESOLUTION = 224  # ... on a 224 px grid; scaled as 15 * R / 224 on an R grid
METRIC_NAMES = (
    *(f"iou_{p}" for p in PERCENTILES),
    "iou_auc",
    "coverage",
    "pointing",
    "pointing_15",
    *CONTINUOUS_NAMES,
    *THRESHOLD_FREE_NAMES,  # threshold_free.py: relevance_mass, relevance_rank, pxap
)
BoxList = Sequence[Box | LabeledBox | Sequence[float]]


@dataclass(frozen=True)
class BatchScores:
    """Scores of ``N`` maps against one box list."""

    metrics: dict[str, np.ndarray]  # METRIC_NAMES -> [N] float64 (pointing, pointing_15 as 0.0 / 1.0)
    box_iou: np.ndarray  # [N, B] IoU of the thresholded map with each box alone, at box_percentile


def _near_box(union: np.ndarray, tolerance: float) -> np.ndarray:
    """``[R, R]`` bool: pixels within ``tolerance`` (Euclidean, in pixels) of a box pixel."""
    if isinstance(tolerance, bool) or not (
        isinstance(tolerance, int | float | np.number) and np.isfinite(tolerance) and tolerance >= 0
    ):
        raise ValueError(f"tolerance must be a finite number >= 0 (pixels of the R grid), got {tolerance!r}")
    if tolerance == 0:
        return union
    return ndimage.distance_transform_edt(~union) <= tolerance  # distance to the nearest box pixel


def literature_tolerance(resolution: int) -> float:
    """The ``pointing_15`` tolerance on an R grid: ``15 * R / 224`` pixels (15 px at 224, Zhang et al.)."""
    return POINTING_TOLERANCE * check_resolution(resolution) / POINTING_REFERENCE_RESOLUTION


def _iou(hits: np.ndarray, ks: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Jaccard index of k kept pixels and masks of ``areas`` pixels, ``hits`` of them shared.

    ``hits`` is ``[N, K, M]``, ``ks`` ``[K]``, ``areas`` ``[M]``; returns ``[N, K, M]``.
    """
    return hits / (ks[:, None] + areas[None, :] - hits)


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


def _ious(up: np.ndarray, masks: np.ndarray, percentiles: Sequence[float]) -> np.ndarray:
    """``[N, K, M]`` IoU of each map (``[N, n]``) thresholded at each percentile with each mask (``[M, n]``)."""
    n = up.shape[1]
    ks = np.array([top_k_count(n, p) for p in percentiles])  # [K]
    return _iou(expected_top_k_hits(up, masks, ks), ks, masks.sum(axis=1))


def score_batch(
    heatmaps: np.ndarray, boxes: BoxList, resolution: int = 224, *, box_percentile: float = 90
) -> BatchScores:
    """All metrics of a stack of maps against one box list, thresholding each map once.

    Args:
        heatmaps: ``[N, gh, gw]`` maps on the patch grid, row 0 at the top, covering the whole image.
        boxes: non-empty list of normalized boxes ``(x0, y0, x1, y1)`` (or ``LabeledBox``).
        resolution: side ``R`` of the grid the metrics are computed on.
        box_percentile: percentile of the per-box IoU (``BatchScores.box_iou``).

    Returns:
        ``BatchScores`` with every column of ``METRIC_NAMES`` and the per-box IoU.

    Temporaries take about 50 bytes per map pixel (~2.5 MB per map at R = 224): feed a few hundred maps at a time.
    ``mse``, ``kl`` and ``emd`` (``continuous``; lower is better) solve one small exact transport LP per map.
    """
    maps = check_heatmaps(heatmaps, ndim=3)
    box_percentile = check_percentile(box_percentile)
    up, masks = _prepare(maps, boxes, resolution)  # [N, n], [B, n]
    side = check_resolution(resolution)
    union = masks.any(axis=0)  # [n]
    percentiles = (*PERCENTILES, box_percentile)
    ious = _ious(up, np.concatenate([union[None], masks]), percentiles)  # [N, K + 1, 1 + B]
    metrics = {f"iou_{p}": ious[:, j, 0] for j, p in enumerate(PERCENTILES)}
    metrics["iou_auc"] = ious[:, : len(PERCENTILES), 0].mean(axis=1)
    metrics["coverage"] = _coverage(up, union)
    metrics["pointing"] = _pointing(up, union).astype(np.float64)
    near = _near_box(union.reshape(side, side), literature_tolerance(side)).reshape(-1)  # [n]
    metrics["pointing_15"] = _pointing(up, near).astype(np.float64)
    metrics.update(continuous_scores(up.reshape(-1, side, side), soft_ground_truth(boxes, side)))
    metrics["relevance_mass"] = mass_share(up, union)
    metrics["relevance_rank"] = rank_share(up, union)
    metrics["pxap"] = average_precision(up, union)
    return BatchScores(metrics=metrics, box_iou=ious[:, -1, 1:])  # box_iou [N, B]


def all_metrics_batch(heatmaps: np.ndarray, boxes: BoxList, resolution: int = 224) -> dict[str, np.ndarray]:
    """``METRIC_NAMES`` -> ``[N]`` scores of ``[N, gh, gw]`` maps against one box list (see ``score_batch``)."""
    return score_batch(heatmaps, boxes, resolution).metrics


def all_metrics(heatmap: np.ndarray, boxes: BoxList, resolution: int = 224) -> dict[str, float]:
    """Every metric of one ``[gh, gw]`` map, keyed by the metrics-table column names ``METRIC_NAMES``."""
    scores = all_metrics_batch(check_heatmaps(heatmap, ndim=2)[None], boxes, resolution)
    return {name: float(scores[name][0]) for name in METRIC_NAMES}


def _union_ious(heatmap: np.ndarray, boxes: BoxList, percentiles: Sequence[float], resolution: int) -> np.ndarray:
    """``[K]`` IoU of one map with the box union at each percentile."""
    up, masks = _prepare(check_heatmaps(heatmap, ndim=2)[None], boxes, resolution)  # [1, n], [B, n]
    return _ious(up, masks.any(axis=0, keepdims=True), percentiles)[0, :, 0]


def iou(heatmap: np.ndarray, boxes: BoxList, percentile: float = 90, resolution: int = 224) -> float:
    """IoU of the map's top ``100 - percentile`` % pixels with the box union (ties shared, see the module).

    Args:
        heatmap: ``[gh, gw]`` map on the patch grid, row 0 at the top, covering the whole image.
        boxes: non-empty list of normalized boxes ``(x0, y0, x1, y1)`` (or ``LabeledBox``).
        percentile: keep the pixels above this percentile, in (0, 100); 90 keeps the top 10 %.
        resolution: side ``R`` of the grid the IoU is computed on.
    """
    return float(_union_ious(heatmap, boxes, (check_percentile(percentile),), resolution)[0])


def iou_auc(heatmap: np.ndarray, boxes: BoxList, resolution: int = 224) -> float:
    """The unweighted mean of the IoUs at ``PERCENTILES`` (90, 85, 80, 75, 70, 60, 50).

    Each percentile counts once: this is not a trapezoidal area under the IoU-vs-threshold curve, whose uneven
    spacing (steps of 5 then 10) would weight 60 and 50 more. A summary over thresholds, so no single cut-off
    decides.
    """
    return float(_union_ious(heatmap, boxes, PERCENTILES, resolution).mean())


def per_box_iou(heatmap: np.ndarray, boxes: BoxList, percentile: float = 90, resolution: int = 224) -> np.ndarray:
    """``[B]`` IoU of the thresholded map (as in ``iou``) with each box on its own, to break results down by label."""
    p = check_percentile(percentile)
    up, masks = _prepare(check_heatmaps(heatmap, ndim=2)[None], boxes, resolution)  # [1, n], [B, n]
    return _ious(up, masks, (p,))[0, 0]  # [B]


def coverage(heatmap: np.ndarray, boxes: BoxList, resolution: int = 224) -> float:
    """Share of the map's mass inside the box union, after subtracting its minimum; area fraction if flat."""
    up, masks = _prepare(check_heatmaps(heatmap, ndim=2)[None], boxes, resolution)  # [1, n], [B, n]
    return float(_coverage(up, masks.any(axis=0))[0])


def pointing_game(heatmap: np.ndarray, boxes: BoxList, resolution: int = 224, tolerance: float = 0) -> bool:
    """Whether the map's peak lies within ``tolerance`` pixels (of the R grid) of a box.

    A hit needs every pixel that holds the maximum to be within tolerance (Euclidean distance to the nearest
    box pixel); with ``tolerance=0`` (the ``pointing`` column) the peak must lie inside a box. Zhang et al.'s
    protocol (ECCV 2016) uses 15 pixels: the ``pointing_15`` column is ``tolerance=15 * R / 224``
    (``literature_tolerance(R)``).
    """
    up, masks = _prepare(check_heatmaps(heatmap, ndim=2)[None], boxes, resolution)  # [1, n], [B, n]
    side = check_resolution(resolution)
    near = _near_box(masks.any(axis=0).reshape(side, side), tolerance).reshape(-1)  # [n]
    return bool(_pointing(up, near)[0])
