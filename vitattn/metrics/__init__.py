"""Alignment of attention maps with expert boxes, baselines and table summaries. Numpy and scipy only, no torch.

Maps are ``[gh, gw]`` float arrays on a model's patch grid covering the whole image; boxes are normalized
``(x0, y0, x1, y1)`` (``vitattn.boxes``). ``all_metrics`` / ``score_batch`` give every column of the metrics
table (``continuous``: MSE, KL and EMD against a soft ground truth, lower is better: ``LOWER_IS_BETTER``;
``threshold_free``: relevance mass, relevance rank and pixel AP; ``batched``, imported on its own as it needs torch:
every column for a stack of maps at once on a torch device);
``summary`` turns that table into means with bootstrap intervals, best layers and paired tests; ``stats`` holds the
paired comparison, Holm's correction and Kruskal-Wallis; ``heads`` ranks single heads and matches them to feature
types (the seed study's Q3).
"""

from vitattn.metrics.baselines import (
    BASELINE_NAMES,
    baseline_maps,
    baseline_metrics,
    center_map,
    random_map,
    saliency_prior,
    sobel_map,
    spectral_residual,
)
from vitattn.metrics.continuous import (
    CONTINUOUS_NAMES,
    LOWER_IS_BETTER,
    corloc,
    emd,
    kl_divergence,
    mse,
    soft_ground_truth,
    wasserstein_grid,
)
from vitattn.metrics.heads import HeadFeatureMatrix, head_exemplars, head_feature_matrix, head_ranking
from vitattn.metrics.ranking import descending_order, expected_top_k_hits, top_k_count
from vitattn.metrics.raster import area_resize, box_masks, union_mask, upsample
from vitattn.metrics.scores import (
    METRIC_NAMES,
    PERCENTILES,
    POINTING_REFERENCE_RESOLUTION,
    POINTING_TOLERANCE,
    BatchScores,
    all_metrics,
    all_metrics_batch,
    coverage,
    iou,
    iou_auc,
    literature_tolerance,
    per_box_iou,
    pointing_game,
    score_batch,
)
from vitattn.metrics.stats import (
    KruskalResult,
    PairedResult,
    compare_selections,
    holm,
    kruskal_by_group,
    paired_comparison,
)
from vitattn.metrics.summary import (
    best_layers,
    bootstrap_mean,
    breakdown,
    group_means,
    layer_head_grid,
    paired_test,
    rank_biserial,
    summarize,
)
from vitattn.metrics.tables import (
    BOX_COLUMNS,
    FUSED_HEAD,
    KEY_COLUMNS,
    METRICS_COLUMNS,
    box_rows,
    per_box_rows,
    select,
)
from vitattn.metrics.threshold_free import THRESHOLD_FREE_NAMES, pxap, relevance_mass, relevance_rank

__all__ = [
    "BASELINE_NAMES",
    "BOX_COLUMNS",
    "CONTINUOUS_NAMES",
    "FUSED_HEAD",
    "KEY_COLUMNS",
    "LOWER_IS_BETTER",
    "METRICS_COLUMNS",
    "METRIC_NAMES",
    "PERCENTILES",
    "POINTING_REFERENCE_RESOLUTION",
    "POINTING_TOLERANCE",
    "BatchScores",
    "HeadFeatureMatrix",
    "KruskalResult",
    "PairedResult",
    "THRESHOLD_FREE_NAMES",
    "all_metrics",
    "all_metrics_batch",
    "area_resize",
    "baseline_maps",
    "baseline_metrics",
    "best_layers",
    "bootstrap_mean",
    "box_masks",
    "box_rows",
    "breakdown",
    "compare_selections",
    "center_map",
    "corloc",
    "coverage",
    "descending_order",
    "emd",
    "expected_top_k_hits",
    "group_means",
    "head_exemplars",
    "head_feature_matrix",
    "head_ranking",
    "holm",
    "iou",
    "iou_auc",
    "kl_divergence",
    "kruskal_by_group",
    "layer_head_grid",
    "literature_tolerance",
    "mse",
    "paired_comparison",
    "paired_test",
    "per_box_iou",
    "per_box_rows",
    "pxap",
    "pointing_game",
    "random_map",
    "rank_biserial",
    "relevance_mass",
    "relevance_rank",
    "saliency_prior",
    "score_batch",
    "select",
    "sobel_map",
    "soft_ground_truth",
    "spectral_residual",
    "summarize",
    "top_k_count",
    "union_mask",
    "upsample",
    "wasserstein_grid",
]
