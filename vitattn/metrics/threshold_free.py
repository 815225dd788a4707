"""Threshold-free agreement of a map with the box union: relevance mass, relevance rank and pixel AP (issue 18).

Maps are upsampled exactly as for IoU (``raster.upsample``: bilinear, half-pixel centres, float32) and the boxes
rasterized on the same ``R x R`` grid (``raster.box_masks``: a pixel is inside a box when its centre is). ``n``
pixels, ``K`` of them inside the box union. Higher is better for all three.

- ``relevance_mass``: the share of the map's positive mass inside the union, ``sum(max(m, 0) * inside) /
  sum(max(m, 0))``; negative values are clipped to 0 and a map with no positive mass scores 0 (Arras, Osman and
  Samek, "CLEVR-XAI", Information Fusion 2022, sec. 4.2, "relevance mass accuracy").
- ``relevance_rank``: the share of the map's ``K`` highest pixels that lie inside the union (Arras et al. 2022,
  "relevance rank accuracy"). Pixels tied with the ``K``-th highest value share the remaining places equally
  (``ranking.expected_top_k_hits``, the rule IoU uses), so a constant map scores ``K / n``.
- ``pxap``: the average precision of the map's values as scores of the inside pixels (Choe et al., "Evaluating
  weakly supervised object localization methods right", CVPR 2020, sec. 4, PxAP), computed as scikit-learn's
  ``average_precision_score``: ``AP = sum_t (R_t - R_{t-1}) P_t`` over the distinct values ``t`` from the highest
  down, where ``P_t`` and ``R_t`` are the precision and recall of the pixels ``>= t`` (step-wise, no
  interpolation). Tied pixels enter together, so a constant map scores ``K / n``.

Numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vitattn.boxes import Box, LabeledBox
from vitattn.metrics.ranking import expected_top_k_hits
from vitattn.metrics.raster import box_masks, check_heatmaps, check_resolution, upsample

THRESHOLD_FREE_NAMES = ("relevance_mass", "relevance_rank", "pxap")
BoxList = Sequence[Box | LabeledBox | Sequence[float]]


def mass_share(up: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """``[N]`` share of the positive part of ``up`` (``[N, n]``) inside ``inside`` (``[n]`` bool); 0 if none."""
    positive = np.maximum(up, 0.0)  # [N, n] float32
    total = positive.sum(axis=1, dtype=np.float64)  # [N]
    within = positive[:, inside].sum(axis=1, dtype=np.float64)  # [N]
    return np.divide(within, total, out=np.zeros_like(total), where=total > 0)


def rank_share(up: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """``[N]`` expected share of the top ``K = inside.sum()`` pixels of ``up`` (``[N, n]``) inside ``inside``."""
    k = int(inside.sum())
    return expected_top_k_hits(up, inside[None], np.array([k]))[:, 0, 0] / k  # [N]


def average_precision(up: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """``[N]`` step-wise average precision of each row of ``up`` (``[N, n]``) as scores of ``inside`` (``[n]``).

    One stable argsort per map (values descending); a tie group of equal values counts as one threshold.
    """
    x = np.asarray(up, dtype=np.float32)
    positives = int(inside.sum())
    out = np.empty(x.shape[0])
    for i, row in enumerate(x):
        order = np.argsort(-row, kind="stable")  # [n] highest first
        values, labels = row[order], inside[order]  # [n], [n]
        ends = np.append(np.flatnonzero(values[1:] != values[:-1]), values.size - 1)  # [T] last index of each tie
        tp = np.cumsum(labels, dtype=np.int64)[ends]  # [T] true positives at each threshold
        precision = tp / (ends + 1.0)  # [T]
        recall_step = np.diff(tp, prepend=0) / positives  # [T] R_t - R_{t-1}
        out[i] = float((recall_step * precision).sum())
    return out


def _prepare(heatmap: np.ndarray, boxes: BoxList, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """One map upsampled and flattened ``[1, n]`` float32, and the flat box union ``[n]`` bool."""
    side = check_resolution(resolution)
    up = upsample(check_heatmaps(heatmap, ndim=2), side).reshape(1, -1)  # [1, n]
    return up, box_masks(boxes, side).any(axis=0).reshape(-1)


def relevance_mass(heatmap: np.ndarray, boxes: BoxList, resolution: int = 224) -> float:
    """Share of the map's positive mass inside the box union (negatives clipped to 0; 0 with no positive mass).

    Args:
        heatmap: ``[gh, gw]`` map on the patch grid, row 0 at the top, covering the whole image.
        boxes: non-empty list of normalized boxes ``(x0, y0, x1, y1)`` (or ``LabeledBox``).
        resolution: side ``R`` of the grid the map is upsampled to.
    """
    return float(mass_share(*_prepare(heatmap, boxes, resolution))[0])


def relevance_rank(heatmap: np.ndarray, boxes: BoxList, resolution: int = 224) -> float:
    """Share of the map's ``K`` highest pixels inside the box union, ``K`` its pixel count (ties shared equally)."""
    return float(rank_share(*_prepare(heatmap, boxes, resolution))[0])


def pxap(heatmap: np.ndarray, boxes: BoxList, resolution: int = 224) -> float:
    """Average precision of the map's values as scores of the pixels inside the box union (as sklearn's AP)."""
    return float(average_precision(*_prepare(heatmap, boxes, resolution))[0])
