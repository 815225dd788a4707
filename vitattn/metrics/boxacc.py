"""MaxBoxAccV2 (Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right", CVPR 2020, sec. 4.1
and their wsolevaluation code): box localisation accuracy over a set of images at the best map threshold.

For each image the map is upsampled to ``R x R`` as for IoU (bilinear, half-pixel centres:
`vitattn.metrics.raster.upsample`) and min-max normalised to [0, 1] (a constant map becomes 0). At each threshold
``tau`` in 0, 0.01, ..., 0.99 the pixels with value ``> tau`` (strictly, as ``cv2.threshold(THRESH_BINARY)`` in
their code) form connected regions (8-connectivity, ``scipy.ndimage.label``), and each region gets its bounding box
(``multi_contour_eval``: every region, not only the largest). An image counts at ``(tau, delta)`` when some region's
box has IoU ``>= delta`` with some expert box. BoxAcc(tau, delta) is the share of images that count; MaxBoxAcc(delta)
its maximum over ``tau``; MaxBoxAccV2 the mean over ``delta`` in (0.3, 0.5, 0.7).

Boxes are compared as pixel rectangles on the same grid: an expert box covers the pixels whose centre it contains
(`vitattn.metrics.raster.box_masks`), a region's box the pixel rows and columns it spans, and IoU counts pixels,
as Choe et al.'s ``(x1 - x0 + 1) * (y1 - y0 + 1)`` areas do. Unlike their code, maps are not quantised to 8 bits
first. Numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vitattn.metrics.raster import box_masks, check_resolution, upsample

THRESHOLDS = np.arange(100) / 100  # 0, 0.01, ..., 0.99 (Choe et al.'s cam_curve_interval 0.01)
DELTAS = (0.3, 0.5, 0.7)
EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity


@dataclass(frozen=True)
class BoxAcc:
    """MaxBoxAccV2 of a set of maps and how it was reached."""

    max_box_acc: float  # mean over deltas of the best accuracy
    per_delta: dict[float, float]  # delta -> MaxBoxAcc(delta)
    best_threshold: dict[float, float]  # delta -> the (first) threshold reaching it
    curve: np.ndarray  # (len(THRESHOLDS), len(deltas)) BoxAcc(tau, delta)
    n_images: int


def normalized(heatmap: np.ndarray, resolution: int) -> np.ndarray:
    """``(gh, gw)`` -> ``(R, R)`` float64 upsampled and min-max normalised (constant: zeros)."""
    up = upsample(heatmap, resolution).astype(np.float64)  # (R, R)
    low, span = up.min(), up.max() - up.min()
    return np.zeros_like(up) if span == 0 else (up - low) / span


def _rectangles(masks: np.ndarray) -> np.ndarray:
    """``(B, R, R)`` rectangle masks -> ``(B, 4)`` ``(r0, c0, r1, c1)`` with exclusive ends."""
    rows, cols = masks.any(2), masks.any(1)  # (B, R)
    r0, c0 = rows.argmax(1), cols.argmax(1)
    r1 = rows.shape[1] - rows[:, ::-1].argmax(1)
    c1 = cols.shape[1] - cols[:, ::-1].argmax(1)
    return np.stack([r0, c0, r1, c1], axis=1)


def _rect_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel IoU of rectangles ``(n, 4)`` and ``(m, 4)`` ``(r0, c0, r1, c1)`` (exclusive ends) -> ``(n, m)``."""
    ih = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iw = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ih * iw
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def region_boxes(mask: np.ndarray) -> np.ndarray:
    """Bounding rectangles ``(n, 4)`` ``(r0, c0, r1, c1)`` (exclusive ends) of the 8-connected regions of ``mask``."""
    labels, n = ndimage.label(mask, structure=EIGHT)
    slices = ndimage.find_objects(labels)
    return np.array([[r.start, c.start, r.stop, c.stop] for r, c in slices], dtype=np.int64).reshape(n, 4)


def best_ious(heatmap: np.ndarray, boxes, resolution: int = 224, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """``(len(thresholds),)``: per threshold, the best IoU of any region's box with any expert box (0: no region)."""
    norm = normalized(heatmap, resolution)
    experts = _rectangles(box_masks(boxes, resolution))  # (B, 4)
    out = np.zeros(len(thresholds))
    for i, tau in enumerate(thresholds):
        regions = region_boxes(norm > tau)
        if len(regions):
            out[i] = _rect_iou(regions, experts).max()
    return out


def box_acc(
    maps: Sequence[np.ndarray], boxes_per_image: Sequence, deltas: Sequence[float] = DELTAS, resolution: int = 224
) -> BoxAcc:
    """MaxBoxAccV2 with its parts (see the module docstring).

    Args:
        maps: one ``(gh, gw)`` map per image (grids may differ).
        boxes_per_image: the expert boxes of each image (normalized ``(x0, y0, x1, y1)``; at least one each).
        deltas: IoU thresholds in (0, 1].
        resolution: side of the pixel grid.

    Raises:
        ValueError: no images, unequal counts, a bad delta, map or box.
    """
    from vitattn.metrics.scores import check_heatmaps

    resolution = check_resolution(resolution)
    if len(maps) == 0 or len(maps) != len(boxes_per_image):
        raise ValueError(f"need one list of boxes per map and at least one map, got {len(maps)} maps and "
                         f"{len(boxes_per_image)} box lists")  # fmt: skip
    d = np.asarray(deltas, dtype=np.float64)
    if d.ndim != 1 or d.size == 0 or not ((d > 0) & (d <= 1)).all():
        raise ValueError(f"deltas must be IoU thresholds in (0, 1], got {deltas!r}")
    pairs = zip(maps, boxes_per_image, strict=True)
    best = np.stack([best_ious(check_heatmaps(m, ndim=2), b, resolution) for m, b in pairs])  # (N, thresholds)
    curve = (best[:, :, None] >= d[None, None, :]).mean(0)  # (thresholds, deltas)
    top = curve.max(0)
    return BoxAcc(
        max_box_acc=float(top.mean()),
        per_delta={float(x): float(v) for x, v in zip(d, top, strict=True)},
        best_threshold={float(x): float(THRESHOLDS[i]) for x, i in zip(d, curve.argmax(0), strict=True)},
        curve=curve,
        n_images=len(maps),
    )


def max_box_acc(
    maps: Sequence[np.ndarray], boxes_per_image: Sequence, deltas: Sequence[float] = DELTAS, resolution: int = 224
) -> float:
    """MaxBoxAccV2 of a set of images, in [0, 1] (Choe et al. 2020); `box_acc` gives the parts."""
    return box_acc(maps, boxes_per_image, deltas, resolution).max_box_acc


def max_box_acc_summary(
    store, models: Sequence[str] | None = None, methods: Sequence[str] | None = None, resolution: int = 224
) -> list[dict]:
    """MaxBoxAccV2 of the fused map of every (model, method, layer) of a store, over its images with boxes.

    Args:
        store: a `vitattn.store.Store` (anything with ``manifest``, ``image_ids()``, ``image(id).boxes`` and
            ``map(id, model, method, layer)``).
        models: models to score (default: all in the store).
        methods: methods to score (default: every method of each model).
        resolution: side of the pixel grid.

    Returns:
        One dict per (model, method, layer): ``model, method, layer, max_box_acc, n_images`` and
        ``max_box_acc@0.3``, ``@0.5``, ``@0.7``.
    """
    boxes = {i: store.image(i).boxes for i in store.image_ids()}
    ids = [i for i, b in boxes.items() if b]
    rows = []
    for model in models or list(store.manifest["models"]):
        layers = store.manifest["models"][model]["layers"]
        for method in [m for m in layers if methods is None or m in methods]:
            for layer in layers[method]:
                maps = [store.map(i, model, method, layer) for i in ids]
                result = box_acc(maps, [boxes[i] for i in ids], resolution=resolution)
                rows.append({"model": model, "method": method, "layer": int(layer),
                             "max_box_acc": result.max_box_acc, "n_images": result.n_images,
                             **{f"max_box_acc@{d:g}": v for d, v in result.per_delta.items()}})  # fmt: skip
    return rows
