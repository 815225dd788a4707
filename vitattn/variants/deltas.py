"""Frozen vs variant over a store: paired scores per image, the delta table per (model, strategy), breakdowns by
feature type and style, and the frozen-score / delta correlation (statistics: ``vitattn.variants`` explains them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from vitattn.metrics.continuous import LOWER_IS_BETTER
from vitattn.metrics.stats import _check_options, holm, paired_comparison
from vitattn.metrics.tables import FUSED_HEAD, Table, require_columns
from vitattn.variants.names import strategy_of, variant_pairs

ENHANCE, PRESERVE, DESTROY = "Enhance", "Preserve", "Destroy"
LABELS = (ENHANCE, PRESERVE, DESTROY)
Row = dict[str, object]


# ------------------------------------------------------------------------------------------------ pairing


def _rows(table: Table, **criteria: object) -> np.ndarray:
    keep = np.ones(require_columns(table, tuple(criteria)), dtype=bool)  # [rows]
    for column, value in criteria.items():
        keep &= np.asarray(table[column]) == value
    return np.flatnonzero(keep)


def _layer(table: Table, model: str, method: str, layer: int | str, metric: str, head: int) -> int:
    """A layer number: as given, ``"last"`` (the model's deepest layer in the table) or ``"best"`` (the layer with
    the highest mean of ``metric`` for the model at ``head``, first on ties)."""
    idx = _rows(table, model=model, method=method, head=head)
    if idx.size == 0:
        raise ValueError(f"the table has no rows for model {model!r}, method {method!r}, head {head}")
    layers = np.asarray(table["layer"])[idx]
    if isinstance(layer, int | np.integer) and not isinstance(layer, bool):
        return int(layer)
    if layer == "last":
        return int(layers.max())
    if layer == "best":
        values = np.asarray(table[metric], dtype=np.float64)[idx]
        found = np.unique(layers)
        return int(found[np.argmax([values[layers == v].mean() for v in found])])
    raise ValueError(f"layer must be an integer, 'last' or 'best', got {layer!r}")


def paired_scores(
    table: Table, frozen: str, variant: str, *, method: str, layer: int, metric: str, head: int = FUSED_HEAD
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image_ids, frozen scores, variant scores)`` over the images both have, sorted by image id.

    Raises:
        ValueError: a missing column, no shared image, or several rows per image for one model.
    """
    require_columns(table, ("image_id", "model", "method", "layer", "head", metric))
    values = {}
    for model in (frozen, variant):
        idx = _rows(table, model=model, method=method, layer=layer, head=head)
        ids = np.asarray(table["image_id"])[idx].tolist()
        if len(set(ids)) != len(ids):
            raise ValueError(f"model {model!r} has several rows per image for {method} layer {layer} head {head}")
        values[model] = dict(zip(ids, np.asarray(table[metric], dtype=np.float64)[idx].tolist(), strict=True))
    shared = sorted(set(values[frozen]) & set(values[variant]))
    if not shared:
        raise ValueError(f"{frozen!r} and {variant!r} share no image for {method} layer {layer} head {head}")
    a = np.array([values[frozen][i] for i in shared])  # [n]
    b = np.array([values[variant][i] for i in shared])  # [n]
    return np.array(shared), a, b


# ------------------------------------------------------------------------------------------------ tables


@dataclass(frozen=True)
class PairedTest:
    """How `delta_table`, `feature_deltas` and `style_deltas` test each frozen / variant pair of score lists
    (`vitattn.metrics.stats.paired_comparison`), and correct over the rows of one table. Checked when made.

    Attributes:
        alpha: significance level after Holm's correction (and of the normality check of ``"auto"``); the
            bootstrap interval covers ``1 - alpha``.
        n_boot: bootstrap resamples of the pairs (images, or boxes for `feature_deltas`).
        seed: bootstrap seed (the same settings give the same intervals).
        test: ``"auto"`` (paired t-test if Shapiro-Wilk keeps normality at ``alpha``, else Wilcoxon), ``"t"`` or
            ``"wilcoxon"``.
    """

    alpha: float = 0.05
    n_boot: int = 2000
    seed: int = 0
    test: str = "auto"

    def __post_init__(self) -> None:
        _check_options(self.test, self.n_boot, self.alpha)


def _compared(a: np.ndarray, b: np.ndarray, paired: PairedTest) -> Row:
    r = paired_comparison(a, b, test=paired.test, n_boot=paired.n_boot, seed=paired.seed, alpha=paired.alpha)
    return {
        "n": r.n,
        "frozen": r.mean_a,
        "variant_mean": r.mean_b,
        "delta": r.mean_diff,
        "ci_low": r.ci_low,
        "ci_high": r.ci_high,
        "d_z": r.d_z,
        "rank_biserial": r.rank_biserial,
        "test": r.test,
        "p": r.p,
    }


def _corrected(rows: list[Row], alpha: float, metric: str = "iou") -> list[Row]:
    """Holm over every row's p (NaN stays NaN), then the Enhance / Preserve / Destroy label of each row."""
    adjusted = holm([r["p"] for r in rows]) if rows else np.zeros(0)
    lower = metric in LOWER_IS_BETTER
    return [
        {**r, "p_holm": float(p), "label": classify(r["delta"], float(p), alpha, lower_is_better=lower)}
        for r, p in zip(rows, adjusted, strict=True)
    ]


def classify(delta: float, p_holm: float, alpha: float = 0.05, *, lower_is_better: bool = False) -> str:
    """Enhance (significant gain), Destroy (significant loss) or Preserve (no significant change; also NaN p).

    ``delta`` is variant - frozen; for a metric where lower is better (mse, kl, emd) a significant drop is the gain.
    """
    if not np.isfinite(p_holm) or p_holm > alpha or delta == 0:
        return PRESERVE
    return ENHANCE if (delta < 0 if lower_is_better else delta > 0) else DESTROY


def delta_table(
    table: Table,
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    method: str,
    layer: int | str = "last",
    metric: str = "iou_90",
    head: int = FUSED_HEAD,
    val_accuracy: Mapping[str, float] | None = None,
    manifest: Mapping | None = None,
    paired: PairedTest = PairedTest(),
) -> list[Row]:
    """Frozen vs variant per (model, strategy): one row per pair, Holm-corrected over the rows of this table.

    Args:
        table: a metrics table holding both models of every pair (``store.metrics()``).
        pairs: ``(frozen, variant)`` names; default: `variant_pairs` of the table's models.
        method: map method compared (e.g. ``cls``).
        layer: a layer number, ``"last"`` (each frozen model's deepest layer) or ``"best"`` (the frozen model's
            best layer by mean ``metric``); the variant is read at the same layer.
        metric: a metric column (``iou_90`` is the headline IoU).
        head: ``-1`` (all heads fused) or one head.
        val_accuracy: variant -> validation accuracy (`validation_accuracies`), shown beside the delta.
        manifest: the store's manifest, for each variant's strategy (else read from its label).
        paired: the test of each pair and the level of the labels (`PairedTest`; e.g. ``PairedTest(test="t")``).

    Returns:
        Rows ``model, variant, strategy, method, layer, head, metric, n, frozen, variant_mean, delta, ci_low,
        ci_high, d_z, rank_biserial, test, p, p_holm, label, val_accuracy`` (``delta = variant_mean - frozen``).
    """
    require_columns(table, ("image_id", "model", "method", "layer", "head", metric))
    pairs = variant_pairs(np.unique(np.asarray(table["model"])).tolist()) if pairs is None else list(pairs)
    rows = []
    for frozen, variant in pairs:
        at = _layer(table, frozen, method, layer, metric, head)
        _, a, b = paired_scores(table, frozen, variant, method=method, layer=at, metric=metric, head=head)
        rows.append(
            {
                "model": frozen,
                "variant": variant,
                "strategy": strategy_of(variant, manifest),
                "method": method,
                "layer": at,
                "head": head,
                "metric": metric,
                **_compared(a, b, paired),
                "val_accuracy": (val_accuracy or {}).get(variant),
            }
        )
    return _corrected(rows, paired.alpha, metric)


def label_counts(rows: Iterable[Row]) -> dict[str, int]:
    """How many rows of a delta table are Enhance, Preserve and Destroy."""
    labels = [r["label"] for r in rows]
    return {label: labels.count(label) for label in LABELS}


def feature_deltas(
    boxes: Table,
    frozen: str,
    variant: str,
    *,
    method: str,
    layer: int,
    head: int = FUSED_HEAD,
    paired: PairedTest = PairedTest(),
) -> list[Row]:
    """Per feature type (box label): frozen vs variant IoU of each box alone, paired by (image, box).

    Args:
        boxes: the per-box table of both models (``store.box_metrics()``: ``image_id, model, method, layer, head,
            box, label, iou``).
        paired: as for `delta_table` (Holm over the feature types).

    Returns:
        One row per feature type (sorted): ``feature, n`` (boxes), ``frozen, variant_mean, delta, ci_low, ci_high,
        d_z, rank_biserial, test, p, p_holm`` (Holm over the feature types) and ``label`` (Enhance / Preserve /
        Destroy).
    """
    require_columns(boxes, ("image_id", "model", "method", "layer", "head", "box", "label", "iou"))
    keyed = {}
    for model in (frozen, variant):
        idx = _rows(boxes, model=model, method=method, layer=layer, head=head)
        keys = zip(np.asarray(boxes["image_id"])[idx].tolist(), np.asarray(boxes["box"])[idx].tolist(), strict=True)
        labels, ious = np.asarray(boxes["label"])[idx].tolist(), np.asarray(boxes["iou"], dtype=np.float64)[idx]
        keyed[model] = {k: (lab, v) for k, lab, v in zip(keys, labels, ious.tolist(), strict=True)}
    shared = sorted(set(keyed[frozen]) & set(keyed[variant]))
    if not shared:
        raise ValueError(f"{frozen!r} and {variant!r} share no box for {method} layer {layer} head {head}")
    rows = []
    for label in sorted({keyed[frozen][k][0] for k in shared}):
        ks = [k for k in shared if keyed[frozen][k][0] == label]
        a = np.array([keyed[frozen][k][1] for k in ks])  # [boxes]
        b = np.array([keyed[variant][k][1] for k in ks])  # [boxes]
        rows.append({"feature": label, **_compared(a, b, paired)})
    return _corrected(rows, paired.alpha)


def style_deltas(
    table: Table,
    image_meta: Mapping[str, Mapping[str, object]],
    frozen: str,
    variant: str,
    *,
    method: str,
    layer: int,
    metric: str = "iou_90",
    head: int = FUSED_HEAD,
    key: str = "styles",
    paired: PairedTest = PairedTest(),
) -> list[Row]:
    """Per style (image metadata ``key``; a list counts under each of its values): frozen vs variant, paired by image.

    Args:
        paired: as for `delta_table` (Holm over the styles).

    Returns:
        One row per style (sorted): ``style, n, frozen, variant_mean, delta, ci_low, ci_high, d_z, rank_biserial,
        test, p, p_holm, label`` (Holm over the styles; label: Enhance / Preserve / Destroy).
    """
    ids, a, b = paired_scores(table, frozen, variant, method=method, layer=layer, metric=metric, head=head)
    groups: dict[str, list[int]] = {}
    for k, image_id in enumerate(ids.tolist()):
        value = (image_meta.get(image_id) or {}).get(key)
        for style in value if isinstance(value, list | tuple) else [value]:
            if style not in (None, ""):
                groups.setdefault(str(style), []).append(k)
    if not groups:
        raise ValueError(f"no image of the pair has metadata {key!r}")
    rows = [{"style": s, **_compared(a[idx], b[idx], paired)} for s, idx in sorted(groups.items())]
    return _corrected(rows, paired.alpha, metric)


def frozen_delta_correlation(
    table: Table, frozen: str, variant: str, *, method: str, layer: int, metric: str = "iou_90", head: int = FUSED_HEAD
) -> dict[str, float]:
    """Across images, the correlation between the frozen model's score and the change fine-tuning brings.

    Returns:
        ``n, pearson_r, pearson_p, spearman_r, spearman_p`` (NaN when there are fewer than 3 images or no spread).
        A negative r means images where the frozen model did worst gained most (mind regression to the mean).
    """
    _, a, b = paired_scores(table, frozen, variant, method=method, layer=layer, metric=metric, head=head)
    d = b - a  # [n]
    nan = float("nan")
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(d) == 0:
        return {"n": int(a.size), "pearson_r": nan, "pearson_p": nan, "spearman_r": nan, "spearman_p": nan}
    pearson, spearman = stats.pearsonr(a, d), stats.spearmanr(a, d)
    return {
        "n": int(a.size),
        "pearson_r": float(pearson.statistic),
        "pearson_p": float(pearson.pvalue),
        "spearman_r": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
    }
