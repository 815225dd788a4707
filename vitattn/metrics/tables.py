"""The metrics tables as plain column mappings, and the rows the precompute job writes into them.

A table is a ``Mapping[str, np.ndarray]`` of equal-length columns (e.g. ``{c: t[c].to_numpy() for c in
t.column_names}`` for a pyarrow table), so this package needs neither pandas nor pyarrow.

- metrics table: ``KEY_COLUMNS + METRIC_NAMES + prompt``, one row per (image, model, method, layer, head, prompt);
  ``head == FUSED_HEAD`` (-1) is the map with all heads fused.
- per-box table: ``BOX_COLUMNS``, one row per box of each of those maps, ``iou`` = ``per_box_iou`` at 90.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from vitattn.boxes import LabeledBox
from vitattn.metrics.scores import METRIC_NAMES, BoxList, per_box_iou

Table = Mapping[str, np.ndarray]

KEY_COLUMNS = ("image_id", "model", "method", "layer", "head")
METRICS_COLUMNS = (*KEY_COLUMNS, *METRIC_NAMES, "prompt")  # prompt: a text map's box label, "" for image maps
BOX_COLUMNS = (*KEY_COLUMNS, "box", "label", "iou")
FUSED_HEAD = -1


def require_columns(table: Table, columns: Sequence[str]) -> int:
    """Checks that ``table`` has ``columns``, all of one length; returns the number of rows.

    Raises:
        ValueError: naming the missing columns (and those present), or the columns whose lengths differ.
    """
    missing = [c for c in columns if c not in table]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}; it has {sorted(table)}")
    lengths = {c: len(table[c]) for c in table}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"table columns differ in length: {lengths}")
    return next(iter(lengths.values()), 0)


def select(table: Table, **criteria: object) -> dict[str, np.ndarray]:
    """The rows whose columns equal the given values, e.g. ``select(t, model="dino_s16", head=-1)``.

    Raises:
        ValueError: for a missing column, a value absent from its column (listing the known values), or a
            combination that matches no row.
    """
    keep = np.ones(require_columns(table, tuple(criteria)), dtype=bool)  # [rows]
    for column, value in criteria.items():
        values = np.asarray(table[column])
        match = np.broadcast_to(values == value, values.shape)  # [rows] bool
        if not match.any():
            known = sorted({v.item() if isinstance(v, np.generic) else v for v in values.tolist()}, key=str)
            raise ValueError(f"unknown {column} {value!r}; the table has {known}")
        keep &= match
    if not keep.any():
        raise ValueError(f"no rows match {criteria}")
    return {c: np.asarray(v)[keep] for c, v in table.items()}


def box_rows(keys: Mapping[str, object], box_iou: np.ndarray, boxes: BoxList) -> list[dict[str, object]]:
    """Per-box table rows: ``keys`` (image_id, model, method, layer, head) plus box index, label and IoU.

    Args:
        keys: the map's key columns.
        box_iou: ``[B]`` IoU per box (``per_box_iou`` or a row of ``BatchScores.box_iou``).
        boxes: the ``B`` boxes; a ``LabeledBox`` gives its label, a plain box the label ``""``.
    """
    if len(box_iou) != len(boxes):
        raise ValueError(f"got {len(box_iou)} IoUs for {len(boxes)} boxes")
    labels = [b.label if isinstance(b, LabeledBox) else "" for b in boxes]
    return [
        {**keys, "box": i, "label": label, "iou": float(v)}
        for i, (label, v) in enumerate(zip(labels, box_iou, strict=True))
    ]


def per_box_rows(
    keys: Mapping[str, object], heatmap: np.ndarray, boxes: BoxList, resolution: int = 224
) -> list[dict[str, object]]:
    """Per-box table rows of one ``[gh, gw]`` map: ``per_box_iou`` at 90 for each box (see ``box_rows``)."""
    return box_rows(keys, per_box_iou(heatmap, boxes, 90, resolution), boxes)
