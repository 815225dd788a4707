"""Maps and boxes on one pixel grid: bilinear upsampling, area resizing and box rasterization.

Every metric compares a map and boxes on an ``R x R`` grid in normalized image coordinates: pixel ``(i, j)``
(row ``i``, column ``j``) has its centre at ``((j + 0.5) / R, (i + 0.5) / R)``. A map covers the whole image, so
its grid lines up with normalized boxes whatever the image's aspect ratio. Numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vitattn.boxes import Box, LabeledBox, boxes_of

MAX_RESOLUTION = 4096  # ranking.descending_order packs a pixel index into at most 24 bits of a sort key


def check_resolution(resolution: int) -> int:
    """Returns ``resolution`` as an int, or raises ValueError unless it is an integer in [1, MAX_RESOLUTION]."""
    if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer):
        raise ValueError(f"resolution must be an integer, got {resolution!r}")
    if not 1 <= resolution <= MAX_RESOLUTION:
        raise ValueError(f"resolution must lie in [1, {MAX_RESOLUTION}], got {resolution}")
    return int(resolution)


def check_boxes(boxes: Sequence[Box | LabeledBox | Sequence[float]]) -> list[Box]:
    """Validates a non-empty list of boxes (``check_box`` on each, naming its index) and returns plain tuples."""
    if isinstance(boxes, np.ndarray):
        boxes = boxes.tolist()
    if len(boxes) == 0:
        raise ValueError("boxes is empty: metrics need at least one box")
    if len(boxes) == 4 and all(isinstance(v, int | float | np.number) for v in boxes):
        raise ValueError(f"boxes must be a list of boxes, got a single box {boxes!r}; wrap it in a list")
    return boxes_of(boxes)


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


def pixel_centers(resolution: int) -> np.ndarray:
    """The normalized centres ``(i + 0.5) / R`` of the pixels along one axis, float64 ``[R]``."""
    return (np.arange(resolution, dtype=np.float64) + 0.5) / resolution


def _lerp_indices(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of half-pixel-centre bilinear resampling along one axis, edge-clamped.

    Output pixel ``i`` samples source coordinate ``s = (i + 0.5) * n_in / n_out - 0.5`` clamped to
    ``[0, n_in - 1]``, as torch ``interpolate(mode="bilinear", align_corners=False)`` and ``cv2.resize`` do.
    """
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)  # [n_out]
    lo = np.floor(src).astype(np.intp)  # [n_out]
    hi = np.minimum(lo + 1, n_in - 1)  # [n_out]
    return lo, hi, (src - lo).astype(np.float32)


def upsample(heatmap: np.ndarray, resolution: int) -> np.ndarray:
    """Bilinearly resamples maps to ``resolution x resolution`` (half-pixel centres, edge-clamped), in float32.

    Each step is a lerp ``a + w * (b - a)``, so a constant region stays exactly constant (no rounding noise that
    would break ties at random). Matches torch ``interpolate(align_corners=False)`` to float32 rounding.

    Args:
        heatmap: ``[..., gh, gw]`` maps on a patch grid, row 0 at the top.
        resolution: the side ``R`` of the output grid.

    Returns:
        ``[..., R, R]`` float32 maps.
    """
    m = np.asarray(heatmap, dtype=np.float32)  # [..., gh, gw]
    gh, gw = m.shape[-2:]
    y0, y1, wy = _lerp_indices(gh, resolution)
    x0, x1, wx = _lerp_indices(gw, resolution)
    top, bottom = m[..., y0, :], m[..., y1, :]  # [..., R, gw]
    rows = top + wy[:, None] * (bottom - top)  # [..., R, gw]
    left, right = rows[..., x0], rows[..., x1]  # [..., R, R]
    return left + wx * (right - left)  # [..., R, R]


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` weights averaging the source cells each output cell overlaps (like cv2 INTER_AREA)."""
    edges = np.arange(n_out + 1) * (n_in / n_out)  # [n_out + 1] output cell edges in source units
    lo, hi = edges[:-1, None], edges[1:, None]  # [n_out, 1]
    j = np.arange(n_in)[None, :]  # [1, n_in]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)  # [n_out, n_in]
    return overlap / overlap.sum(axis=1, keepdims=True)


def area_resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resizes a 2-D array to ``shape`` by averaging over the area each output cell covers (float64).

    Args:
        image: ``[H, W]`` array.
        shape: ``(h, w)`` of the output.

    Returns:
        ``[h, w]`` float64 array.
    """
    h, w = shape
    a = np.asarray(image, dtype=np.float64)  # [H, W]
    return _area_matrix(a.shape[0], h) @ a @ _area_matrix(a.shape[1], w).T  # [h, w]


def _axis_mask(lo: float, hi: float, resolution: int) -> np.ndarray:
    """Pixels along one axis whose centre lies in ``[lo, hi)``; never empty (see ``box_masks``)."""
    centers = pixel_centers(resolution)  # [R]
    inside = (centers >= lo) & (centers < hi)  # [R]
    if not inside.any():
        inside[min(int((lo + hi) / 2 * resolution), resolution - 1)] = True
    return inside


def box_masks(boxes: Sequence[Box | LabeledBox | Sequence[float]], resolution: int) -> np.ndarray:
    """Rasterizes each box on the ``R x R`` grid.

    Convention: a pixel is inside a box ``(x0, y0, x1, y1)`` when its centre lies in ``[x0, x1) x [y0, y1)``.
    The box ``(0, 0, 1, 1)`` therefore covers every pixel, and ``(0, 0, 0.5, 1)`` exactly the left half when R is
    even; boxes that tile the image cover each pixel exactly once. A box thinner than a pixel along an axis
    (no centre inside) takes the one pixel containing its centre along that axis, so no box ever vanishes.

    Args:
        boxes: non-empty list of normalized boxes (checked with ``check_box``).
        resolution: the side ``R`` of the grid.

    Returns:
        ``[B, R, R]`` bool masks, one per box.
    """
    checked = check_boxes(boxes)
    resolution = check_resolution(resolution)
    masks = [
        _axis_mask(y0, y1, resolution)[:, None] & _axis_mask(x0, x1, resolution)[None, :]  # [R, R]
        for x0, y0, x1, y1 in checked
    ]
    return np.stack(masks)  # [B, R, R]


def union_mask(boxes: Sequence[Box | LabeledBox | Sequence[float]], resolution: int) -> np.ndarray:
    """The union of ``box_masks``: ``[R, R]`` bool."""
    return box_masks(boxes, resolution).any(axis=0)
