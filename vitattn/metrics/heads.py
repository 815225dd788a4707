"""Which single heads align with the experts, and with which feature types (the seed study's Q3).

Numpy over the stored tables (``tables.py``): the metrics table (one row per image, model, method, layer and
head; ``head >= 0`` rows are single heads, ``head == -1`` the fused map) and the per-box table (one row per box of
each of those maps, ``iou`` = the per-box IoU at the 90th percentile). The precompute job writes per-head rows
in both tables for every method whose maps have heads (``Analysis.has_heads``, e.g. ``cls``); methods without
heads (rollout, Grad-CAM) have only fused rows, and these functions then raise that the selection has no heads.

- ``head_ranking``: per (layer, head), the mean score over images, the mean rank among all selected heads on
  each image (1 = best; ties share the average rank) and how often it is the top-1 / in the top-3 head (a tie at
  the cut shares the places evenly, as ``ranking.expected_top_k_hits`` does for pixels). Metrics in
  ``LOWER_IS_BETTER`` rank the lowest value first.
- ``head_feature_matrix``: the mean per-box IoU of each head for each box label (or label group), with the box
  counts, and the best head per feature type.
- ``head_exemplars``: for one head and feature type, the images where it scores best.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from vitattn.metrics.continuous import LOWER_IS_BETTER
from vitattn.metrics.tables import Table, require_columns, select

Row = dict[str, object]
TOP_K = (1, 3)


@dataclass(frozen=True)
class HeadFeatureMatrix:
    """Mean per-box IoU of each head (rows) for each feature type (columns)."""

    heads: tuple[tuple[int, int], ...]  # (layer, head) of each row, sorted
    features: tuple[str, ...]  # feature types (labels or groups) of the columns, sorted
    mean: np.ndarray  # [H, F] mean per-box IoU; NaN where a head has no box of that feature
    count: np.ndarray  # [H, F] number of boxes averaged
    best: tuple[Row, ...]  # per feature: {"feature", "layer", "head", "mean", "count"} of its best head


def _python(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _heads_of(table: Table, model: str | None, method: str | None, layers: Sequence[int] | None) -> dict:
    """Rows of one model and method, single heads only (``head >= 0``), restricted to ``layers``."""
    criteria = {k: v for k, v in (("model", model), ("method", method)) if v is not None}
    rows = select(table, **criteria) if criteria else {c: np.asarray(v) for c, v in table.items()}
    for column in ("model", "method"):
        present = sorted({_python(v) for v in rows[column].tolist()}, key=str)
        if len(present) > 1:
            raise ValueError(f"the table holds several {column}s {present}; pass {column}= to pick one")
    keep = np.asarray(rows["head"]) >= 0
    if layers is not None:
        keep &= np.isin(np.asarray(rows["layer"]), np.asarray(list(layers)))
    if not keep.any():
        raise ValueError(
            f"no single-head rows (head >= 0) for model={model!r}, method={method!r}, layers={layers!r}: "
            "the method has no per-head maps or the layers are not stored"
        )
    return {c: np.asarray(v)[keep] for c, v in rows.items()}


def _finite(values: np.ndarray, metric: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise ValueError(f"column {metric!r} has {bad} non-finite value(s)")
    return values


def expected_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """``[m, H]`` chance that each column is among the ``k`` highest of its row, ties at the cut shared evenly."""
    k = min(k, scores.shape[1])
    cut = np.sort(scores, axis=1)[:, -k][:, None]  # [m, 1] the k-th highest value
    above, tied = scores > cut, scores == cut  # [m, H]
    share = (k - above.sum(axis=1, keepdims=True)) / tied.sum(axis=1, keepdims=True)  # [m, 1]
    return above + share * tied


def head_ranking(
    metrics_table: Table, model: str, method: str, layers: Sequence[int] | None = None, metric: str = "iou_90"
) -> list[Row]:
    """Ranks every single head of a model and method over the images that have all of them.

    Args:
        metrics_table: the metrics table (columns ``image_id, model, method, layer, head`` and ``metric``).
        model: model name.
        method: method name (one with per-head maps).
        layers: layers whose heads compete (default: every stored layer).
        metric: the metrics-table column to rank by; ``LOWER_IS_BETTER`` metrics rank the lowest first.

    Returns:
        One row per (layer, head), best mean rank first: ``layer, head, mean`` (mean of ``metric`` over images),
        ``mean_rank`` (1 = best of ``n_heads``), ``top1``, ``top3`` (share of images), ``n`` (images) and
        ``n_heads``.
    """
    require_columns(metrics_table, ("image_id", "model", "method", "layer", "head", metric))
    rows = _heads_of(metrics_table, model, method, layers)
    values = _finite(rows[metric], metric)
    images, image_of = np.unique(rows["image_id"], return_inverse=True)  # [m], [rows]
    pairs, pair_of = np.unique(np.stack([rows["layer"], rows["head"]], axis=1), axis=0, return_inverse=True)
    grid = np.full((len(images), len(pairs)), np.nan)  # [m, H]
    counts = np.zeros(grid.shape, dtype=np.int64)
    np.add.at(counts, (image_of.reshape(-1), pair_of.reshape(-1)), 1)
    if counts.max() > 1:
        raise ValueError("the table has several rows for one image, layer and head")
    grid[image_of.reshape(-1), pair_of.reshape(-1)] = values
    grid = grid[(counts == 1).all(axis=1)]  # [m', H] images with every head
    if grid.shape[0] == 0:
        raise ValueError("no image has a row for every selected head")
    score = -grid if metric in LOWER_IS_BETTER else grid  # [m', H] higher is better
    ranks = stats.rankdata(-score, axis=1)  # [m', H] 1 = best, average ranks for ties
    tops = {k: expected_top_k(score, k).mean(axis=0) for k in TOP_K}  # k -> [H]
    out = [
        {
            "layer": int(layer),
            "head": int(head),
            "mean": float(grid[:, j].mean()),
            "mean_rank": float(ranks[:, j].mean()),
            "top1": float(tops[1][j]),
            "top3": float(tops[3][j]),
            "n": int(grid.shape[0]),
            "n_heads": len(pairs),
        }
        for j, (layer, head) in enumerate(pairs.tolist())
    ]
    return sorted(out, key=lambda r: (r["mean_rank"], r["layer"], r["head"]))


def _features(rows: Mapping[str, np.ndarray], by: str, groups: Mapping[str, str] | None) -> np.ndarray:
    """``[rows]`` feature type of each box: the ``by`` column, mapped through ``groups`` when given."""
    if by not in rows:
        raise ValueError(f"table has no column {by!r}; it has {sorted(rows)}")
    values = np.asarray(rows[by]).astype(str)
    if groups is None:
        return values
    missing = sorted(set(values.tolist()) - set(groups))
    if missing:
        raise ValueError(f"groups has no entry for {by} value(s) {missing}")
    return np.array([groups[v] for v in values.tolist()], dtype=object).astype(str)


def head_feature_matrix(
    box_table: Table,
    model: str | None = None,
    method: str | None = None,
    *,
    layers: Sequence[int] | None = None,
    by: str = "label",
    groups: Mapping[str, str] | None = None,
) -> HeadFeatureMatrix:
    """Mean per-box IoU of each single head for each feature type, and the best head per feature type.

    Args:
        box_table: the per-box table (``image_id, model, method, layer, head, box, label, iou``).
        model: model name (may be omitted when the table holds one model).
        method: method name (may be omitted when the table holds one method).
        layers: layers whose heads are included (default: all).
        by: the column that names the feature type (``label``).
        groups: optional label -> group name, to pool labels into groups.

    Returns:
        ``HeadFeatureMatrix``; the best head of a feature is the highest mean, ties to the lower (layer, head).
    """
    require_columns(box_table, ("image_id", "model", "method", "layer", "head", "iou", by))
    rows = _heads_of(box_table, model, method, layers)
    iou = _finite(rows["iou"], "iou")
    features, feature_of = np.unique(_features(rows, by, groups), return_inverse=True)  # [F], [rows]
    pairs, pair_of = np.unique(np.stack([rows["layer"], rows["head"]], axis=1), axis=0, return_inverse=True)
    cell = (pair_of.reshape(-1), feature_of.reshape(-1))
    sums, count = np.zeros((len(pairs), len(features))), np.zeros((len(pairs), len(features)), dtype=np.int64)
    np.add.at(sums, cell, iou)
    np.add.at(count, cell, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, sums / count, np.nan)  # [H, F]
    best = []
    for f, name in enumerate(features.tolist()):
        j = int(np.nanargmax(mean[:, f]))  # first maximum: the lowest (layer, head)
        layer, head = pairs[j].tolist()
        best.append(
            {"feature": name, "layer": layer, "head": head, "mean": float(mean[j, f]), "count": int(count[j, f])}
        )
    return HeadFeatureMatrix(
        heads=tuple((int(a), int(b)) for a, b in pairs.tolist()),
        features=tuple(features.tolist()),
        mean=mean,
        count=count,
        best=tuple(best),
    )


def head_exemplars(
    box_table: Table,
    layer: int,
    head: int,
    label: str,
    k: int = 6,
    *,
    model: str | None = None,
    method: str | None = None,
    by: str = "label",
    groups: Mapping[str, str] | None = None,
) -> list[Row]:
    """The ``k`` images where one head scores best on one feature type.

    An image's score is the mean per-box IoU of its boxes of that feature type; ties go to the smaller image id.

    Args:
        box_table: the per-box table.
        layer: the head's layer.
        head: the head (``>= 0``).
        label: the feature type (a label, or a group when ``groups`` is given).
        k: how many images.
        model: model name (may be omitted when the table holds one model).
        method: method name (may be omitted when the table holds one method).
        by: the column that names the feature type.
        groups: optional label -> group name.

    Returns:
        Up to ``k`` rows, best first: ``image_id``, ``iou`` (mean over its boxes of that type), ``n_boxes`` and
        ``box`` (index of its best box of that type, into the image's box list).
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    require_columns(box_table, ("image_id", "model", "method", "layer", "head", "box", "iou", by))
    rows = _heads_of(box_table, model, method, [layer])
    match = (rows["head"] == head) & (_features(rows, by, groups) == str(label))
    if not match.any():
        raise ValueError(f"no boxes of {by} {label!r} for layer {layer}, head {head}")
    image_ids, iou, box = rows["image_id"][match], _finite(rows["iou"][match], "iou"), rows["box"][match]
    out = []
    for image_id in np.unique(image_ids).tolist():
        mine = image_ids == image_id
        best = int(np.argmax(iou[mine]))
        out.append(
            {
                "image_id": image_id,
                "iou": float(iou[mine].mean()),
                "n_boxes": int(mine.sum()),
                "box": int(box[mine][best]),
            }
        )
    return sorted(out, key=lambda r: (-r["iou"], str(r["image_id"])))[:k]
