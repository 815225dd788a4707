"""Frozen vs variant on one image: every metric, each expert box alone, and the shift map ``variant - frozen``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vitattn.metrics.tables import FUSED_HEAD, Table, require_columns
from vitattn.variants.deltas import Row, _rows

# ------------------------------------------------------------------------------------------------ one image


def image_deltas(
    table: Table,
    image_id: str,
    frozen: str,
    variant: str,
    *,
    method: str,
    layer: int,
    head: int = FUSED_HEAD,
    metrics: Sequence[str] | None = None,
) -> list[Row]:
    """Every metric of one image's map, frozen vs variant: rows ``metric, frozen, variant, delta`` (variant - frozen).

    Args:
        table: a metrics table with both models (``store.metrics()``).
        metrics: the metric columns (default: every column that is not a key column).
    """
    keys = ("image_id", "model", "method", "layer", "head")
    names = [c for c in table if c not in keys] if metrics is None else list(metrics)
    require_columns(table, (*keys, *names))
    values = {}
    for model in (frozen, variant):
        idx = _rows(table, image_id=image_id, model=model, method=method, layer=layer, head=head)
        if idx.size != 1:
            found = "no row" if idx.size == 0 else f"{idx.size} rows"
            raise ValueError(f"{found} for image {image_id!r}, model {model!r}, {method} layer {layer} head {head}")
        values[model] = {m: float(np.asarray(table[m])[idx[0]]) for m in names}
    return [
        {
            "metric": m,
            "frozen": values[frozen][m],
            "variant": values[variant][m],
            "delta": values[variant][m] - values[frozen][m],
        }
        for m in names
    ]


def box_deltas(
    boxes: Table, image_id: str, frozen: str, variant: str, *, method: str, layer: int, head: int = FUSED_HEAD
) -> list[Row]:
    """Each box of one image alone, frozen vs variant (per-box IoU): rows ``box, label, frozen, variant, delta``,
    by box index (the index of the box in the image's box list, as a clicked box gives it)."""
    require_columns(boxes, ("image_id", "model", "method", "layer", "head", "box", "label", "iou"))
    found = {}
    for model in (frozen, variant):
        idx = _rows(boxes, image_id=image_id, model=model, method=method, layer=layer, head=head)
        if idx.size == 0:
            raise ValueError(f"no box rows for image {image_id!r}, model {model!r}, {method} layer {layer} head {head}")
        found[model] = {
            int(b): (str(lab), float(v))
            for b, lab, v in zip(
                np.asarray(boxes["box"])[idx],
                np.asarray(boxes["label"])[idx],
                np.asarray(boxes["iou"])[idx],
                strict=True,
            )
        }
    shared = sorted(set(found[frozen]) & set(found[variant]))
    return [
        {
            "box": b,
            "label": found[frozen][b][0],
            "frozen": found[frozen][b][1],
            "variant": found[variant][b][1],
            "delta": found[variant][b][1] - found[frozen][b][1],
        }
        for b in shared
    ]


# ------------------------------------------------------------------------------------------------ maps


def shift_map(map_variant: np.ndarray, map_frozen: np.ndarray) -> tuple[np.ndarray, float]:
    """Where attention moved: ``variant - frozen`` on one grid, and the symmetric colour range ``[-limit, limit]``.

    Args:
        map_variant: ``[gh, gw]`` map of the variant (or any map B).
        map_frozen: ``[gh, gw]`` map of the frozen model (or any map A) on the same grid.

    Returns:
        ``(diff [gh, gw] float32, limit)`` with ``limit = max |diff|`` (0.0 when the maps are equal).
    """
    b, a = np.asarray(map_variant, dtype=np.float32), np.asarray(map_frozen, dtype=np.float32)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"shift_map needs two maps on one grid, got shapes {b.shape} and {a.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("shift_map: the maps hold NaN or infinite values")
    diff = b - a  # [gh, gw]
    return diff, float(np.abs(diff).max()) if diff.size else 0.0
