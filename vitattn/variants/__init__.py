"""Variants of a model (fine-tuned weights) against their frozen base: delta tables, breakdowns, shift maps.

Does fine-tuning move attention toward what experts marked? (the study's Q2). Every comparison pairs, image by
image, one map selection of the frozen model (``clip``) with the same selection of a variant (``clip@lora``) in a
metrics table (``store.metrics()``: columns ``image_id, model, method, layer, head`` and every metric)::

    from vitattn.store import open_store
    from vitattn import variants
    store = open_store("hf://datasets/ns/vitattn-wikichurches")
    table = store.metrics()                                    # all models, variants included
    rows = variants.delta_table(table, method="cls", layer="last", metric="iou_90",
                                val_accuracy=variants.validation_accuracies(store.manifest))
    variants.label_counts(rows)                                # {"Enhance": 3, "Preserve": 12, "Destroy": 3}
    diff, limit = variants.shift_map(store.map(i, "clip@lora", "cls", 11), store.map(i, "clip", "cls", 11))

Statistics come from `vitattn.metrics.stats`: the paired difference ``variant - frozen`` with its percentile
bootstrap interval, Cohen's d_z, the p-value of the paired t-test or the Wilcoxon signed-rank test (chosen by a
Shapiro-Wilk check), Holm-corrected over every row of one table. A row is **Enhance** when the corrected p is at
most ``alpha`` and the difference positive, **Destroy** when it is at most ``alpha`` and negative, else **Preserve**.
``PairedTest`` holds these settings (``alpha``, ``n_boot``, ``seed``, ``test``) for the delta table and both breakdowns.
Numpy and scipy only, except `checkpoint_record` (reads a checkpoint; imports torch on use).
"""

from vitattn.variants.deltas import (
    DESTROY,
    ENHANCE,
    LABELS,
    PRESERVE,
    PairedTest,
    Row,
    classify,
    delta_table,
    feature_deltas,
    frozen_delta_correlation,
    label_counts,
    paired_scores,
    style_deltas,
)
from vitattn.variants.image import box_deltas, image_deltas, shift_map
from vitattn.variants.names import (
    base_of,
    checkpoint_of,
    checkpoint_record,
    is_variant,
    strategy_of,
    validation_accuracies,
    variant_pairs,
)

__all__ = [
    "DESTROY",
    "ENHANCE",
    "LABELS",
    "PRESERVE",
    "PairedTest",
    "Row",
    "base_of",
    "box_deltas",
    "checkpoint_of",
    "checkpoint_record",
    "classify",
    "delta_table",
    "feature_deltas",
    "frozen_delta_correlation",
    "image_deltas",
    "is_variant",
    "label_counts",
    "paired_scores",
    "shift_map",
    "strategy_of",
    "style_deltas",
    "validation_accuracies",
    "variant_pairs",
]
