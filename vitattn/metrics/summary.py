"""Summaries of the metrics tables: bootstrap means, best layers, layer x head grids, breakdowns, paired tests.

Tables are column mappings (see ``tables.py``). Images are the unit of resampling: the bootstrap draws image
ids with replacement and averages every row of the drawn images, so rows of one image (several boxes, say)
stay together. Each group uses a fresh generator seeded with ``seed``, so a group's interval does not depend on
which other groups the table holds, and groups over the same images share their resamples.

``best_layers`` picks a layer by its mean, so its interval redoes that choice in every resample (the interval
of the max-over-layers mean); ``summarize`` of one fixed layer gives the interval conditional on that layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from vitattn.metrics.tables import FUSED_HEAD, Table, require_columns, select

DEFAULT_BY = ("model", "method", "layer", "head")
Row = dict[str, object]


def _python(value: object) -> object:
    """A numpy scalar as the plain Python value (for JSON and readable rows)."""
    return value.item() if isinstance(value, np.generic) else value


def _metric(table: Table, metric: str) -> np.ndarray:
    """The metric column as float64, or ValueError if it holds NaN or inf."""
    values = np.asarray(table[metric], dtype=np.float64)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise ValueError(f"column {metric!r} has {bad} non-finite value(s)")
    return values


def _groups(table: Table, by: Sequence[str]) -> list[tuple[tuple, np.ndarray]]:
    """``(key values, row indices)`` for each distinct combination of the ``by`` columns, sorted by key."""
    n = require_columns(table, by)
    if not by:
        return [((), np.arange(n))]
    uniques, codes = zip(*(np.unique(np.asarray(table[c]), return_inverse=True) for c in by), strict=True)
    dims = tuple(len(u) for u in uniques)
    code = np.ravel_multi_index(tuple(c.reshape(-1) for c in codes), dims)  # [rows] one int per combination
    order = np.argsort(code, kind="stable")  # [rows]
    present, starts = np.unique(code[order], return_index=True)
    key_codes = np.unravel_index(present, dims)  # one [G] array per column
    return [
        (tuple(_python(u[k[g]]) for u, k in zip(uniques, key_codes, strict=True)), rows)
        for g, rows in enumerate(np.split(order, starts[1:]))
    ]


def _check_bootstrap(n_boot: int, ci: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must lie strictly inside (0, 1), got {ci!r}")


def bootstrap_mean(
    values: np.ndarray, image_ids: np.ndarray, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> tuple[float, float, float, int]:
    """Mean of ``values`` and its percentile-bootstrap interval, resampling images (Efron & Tibshirani, 1993).

    Args:
        values: ``[rows]`` metric values.
        image_ids: ``[rows]`` image of each row; a drawn image contributes all its rows.
        n_boot: number of resamples.
        ci: coverage of the interval.
        seed: seed of the generator (fresh per call, so the result is deterministic).

    Returns:
        ``(mean, lo, hi, n_images)``.
    """
    _check_bootstrap(n_boot, ci)
    images, inverse = np.unique(np.asarray(image_ids), return_inverse=True)
    sums = np.bincount(inverse.reshape(-1), weights=values)  # [m]
    counts = np.bincount(inverse.reshape(-1)).astype(np.float64)  # [m]
    draws = np.random.default_rng(seed).integers(0, len(images), size=(n_boot, len(images)))  # [n_boot, m]
    boot = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)  # [n_boot]
    lo, hi = np.quantile(boot, [(1.0 - ci) / 2.0, (1.0 + ci) / 2.0])
    return float(values.mean()), float(lo), float(hi), len(images)


def summarize(
    table: Table, metric: str, by: Sequence[str] = DEFAULT_BY, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> list[Row]:
    """Mean of ``metric`` per group with a bootstrap interval over images.

    Returns:
        One row per group, sorted by key: the ``by`` values, ``mean``, ``lo``, ``hi`` and ``n`` (images).
    """
    by = tuple(by)
    require_columns(table, ("image_id", metric, *by))
    _check_bootstrap(n_boot, ci)
    values, image_ids = _metric(table, metric), np.asarray(table["image_id"])
    rows = []
    for key, idx in _groups(table, by):
        mean, lo, hi, n = bootstrap_mean(values[idx], image_ids[idx], n_boot, ci, seed)
        rows.append({**dict(zip(by, key, strict=True)), "mean": mean, "lo": lo, "hi": hi, "n": n})
    return rows


def group_means(table: Table, metric: str, by: Sequence[str]) -> list[tuple[tuple, float]]:
    """``(key values, mean of metric)`` per group of the ``by`` columns, sorted by key; no bootstrap."""
    require_columns(table, (metric, *by))
    values = _metric(table, metric)
    return [(key, float(values[idx].mean())) for key, idx in _groups(table, tuple(by))]


def _best_layer_bootstrap(
    values: np.ndarray, image_ids: np.ndarray, layers: np.ndarray, n_boot: int, ci: float, seed: int
) -> tuple[int, float, float, float, float, int]:
    """The best layer of one model and method and the bootstrap interval of the best-layer mean.

    Every resample draws images with replacement (the same draws as ``bootstrap_mean`` with this seed) and
    picks its own best layer; the interval is that of ``max over layers of the layer mean``.

    Returns:
        ``(layer index into np.unique(layers), mean, lo, hi, p_best, n_images)``.
    """
    images, image_of = np.unique(image_ids, return_inverse=True)  # [m], [rows]
    layer_values, layer_of = np.unique(layers, return_inverse=True)  # [L], [rows]
    m, n_layers = len(images), len(layer_values)
    cell = image_of.reshape(-1) * n_layers + layer_of.reshape(-1)  # [rows]
    sums = np.bincount(cell, weights=values, minlength=m * n_layers).reshape(m, n_layers)  # [m, L]
    counts = np.bincount(cell, minlength=m * n_layers).reshape(m, n_layers).astype(np.float64)  # [m, L]
    means = sums.sum(axis=0) / counts.sum(axis=0)  # [L]; every layer has rows
    best = int(np.argmax(means))  # first maximum: ties go to the shallower layer
    draws = np.random.default_rng(seed).integers(0, m, size=(n_boot, m))  # [n_boot, m]
    weights = (
        np.bincount((draws + m * np.arange(n_boot)[:, None]).reshape(-1), minlength=n_boot * m)
        .reshape(n_boot, m)
        .astype(np.float64)
    )  # [n_boot, m] how often each image is drawn
    boot_counts = weights @ counts  # [n_boot, L]
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_means = np.where(boot_counts > 0, (weights @ sums) / boot_counts, -np.inf)  # [n_boot, L]
    boot_best = boot_means.max(axis=1)  # [n_boot]; a layer absent from a resample cannot win it
    lo, hi = np.quantile(boot_best, [(1.0 - ci) / 2.0, (1.0 + ci) / 2.0])
    p_best = float((boot_means.argmax(axis=1) == best).mean())
    return best, float(means[best]), float(lo), float(hi), p_best, m


def best_layers(
    table: Table, metric: str, method: str | None = None, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> list[Row]:
    """Per (model, method), the layer whose fused-head (``head == -1``) mean is highest, with a selection-aware CI.

    Ties go to the shallower layer. The interval accounts for the selection: each bootstrap resample of images
    re-selects its own best layer, and ``lo`` / ``hi`` are the percentile interval of the resampled
    max-over-layers mean (not of the chosen layer's mean with the choice held fixed, which would be optimistic).
    Because the max of noisy means is biased upwards, the interval can sit slightly above ``mean`` when several
    layers are close; ``p_best`` says how often the resamples pick the reported layer (near 1 when it is clearly
    best). For the conditional interval of one fixed layer, use ``summarize`` on that layer.

    Returns:
        Rows ``model, method, layer, mean, lo, hi, p_best, n`` (n = images), sorted by model, method.
    """
    require_columns(table, ("image_id", "model", "method", "layer", "head", metric))
    _check_bootstrap(n_boot, ci)
    fused = select(table, head=FUSED_HEAD)
    if method is not None:
        fused = select(fused, method=method)
    values, image_ids, layers = _metric(fused, metric), np.asarray(fused["image_id"]), np.asarray(fused["layer"])
    rows = []
    for (model, meth), idx in _groups(fused, ("model", "method")):
        best, mean, lo, hi, p_best, n = _best_layer_bootstrap(
            values[idx], image_ids[idx], layers[idx], n_boot, ci, seed
        )
        layer = _python(np.unique(layers[idx])[best])
        rows.append(
            {"model": model, "method": meth, "layer": layer, "mean": mean, "lo": lo, "hi": hi, "p_best": p_best, "n": n}
        )
    return rows


def layer_head_grid(table: Table, model: str, method: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``metric`` per layer and head of one model and method.

    Returns:
        ``grid [L, H]`` (row = layer number, column = head number, NaN where the table has no rows) and
        ``fused [L]`` (the ``head == -1`` means), with ``L = max layer + 1`` and ``H = max head + 1``.
    """
    require_columns(table, ("model", "method", "layer", "head", metric))
    cells = group_means(select(table, model=model, method=method), metric, ("layer", "head"))
    if min(int(layer) for (layer, _), _ in cells) < 0:
        raise ValueError("layer numbers must be >= 0")
    n_layers = max(int(layer) for (layer, _), _ in cells) + 1
    n_heads = max((int(head) + 1 for (_, head), _ in cells), default=0)
    grid = np.full((n_layers, n_heads), np.nan)  # [L, H]
    fused = np.full(n_layers, np.nan)  # [L]
    for (layer, head), mean in cells:
        if head == FUSED_HEAD:
            fused[layer] = mean
        elif head >= 0:
            grid[layer, head] = mean
        else:
            raise ValueError(f"head must be >= 0 or {FUSED_HEAD} (fused), got {head}")
    return grid, fused


def _meta_column(image_ids: np.ndarray, image_meta: Mapping[str, Mapping[str, object]], key: str) -> np.ndarray:
    """``[rows]`` object array: ``image_meta[image_id][key]`` of each row."""
    values = []
    for image_id in np.asarray(image_ids).tolist():
        if image_id not in image_meta:
            raise ValueError(f"image_meta has no entry for image {image_id!r}")
        if key not in image_meta[image_id]:
            raise ValueError(f"image_meta[{image_id!r}] has no key {key!r}; it has {sorted(image_meta[image_id])}")
        values.append(image_meta[image_id][key])
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def breakdown(
    table: Table,
    metric: str,
    by: str | Sequence[str],
    image_meta: Mapping[str, Mapping[str, object]] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> list[Row]:
    """``summarize`` by columns of the table (e.g. ``label`` of the per-box table) or image metadata keys.

    Args:
        table: metrics or per-box table; filter it first (``select``) to one model, method, layer and head.
        metric: column to average (``iou`` in the per-box table).
        by: column name(s); a name that is not a column is looked up in ``image_meta[image_id]``.
        image_meta: image id -> metadata dict (e.g. ``{"style": "Gothic"}``).
        n_boot: bootstrap resamples.
        ci: interval coverage.
        seed: bootstrap seed.
    """
    names = (by,) if isinstance(by, str) else tuple(by)
    require_columns(table, ("image_id", metric))
    columns = dict(table)
    for name in names:
        if name in table:
            continue
        if image_meta is None:
            raise ValueError(f"table has no column {name!r}; pass image_meta to break down by an image metadata key")
        columns[name] = _meta_column(table["image_id"], image_meta, name)
    return summarize(columns, metric, names, n_boot, ci, seed)


def paired_values(table: Table, selector: Mapping[str, object], metric: str, name: str) -> dict[object, float]:
    """image id -> metric for the rows ``selector`` picks; ValueError unless it picks one row per image."""
    if not selector:
        raise ValueError(f"selector {name} is empty; pin model, method, layer and head")
    rows = select(table, **selector)
    ids = np.asarray(rows["image_id"]).tolist()
    if len(set(ids)) != len(ids):
        raise ValueError(f"selector {name}={dict(selector)} matches several rows per image; pin layer and head too")
    return dict(zip(ids, _metric(rows, metric).tolist(), strict=True))


def rank_biserial(differences: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of paired differences (Kerby, 2014, "The simple difference formula").

    ``r = (R+ - R-) / (R+ + R-)``, the rank sums of the positive and negative differences when the non-zero
    ``|d|`` are ranked (average ranks for ties, zeros dropped as in Wilcoxon's test); 0 when all are zero.
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def paired_test(table: Table, a: Mapping[str, object], b: Mapping[str, object], metric: str) -> dict[str, float]:
    """Wilcoxon signed-rank test of ``a - b`` over the images both selections cover.

    Args:
        table: metrics table.
        a: selector of one map per image, e.g. ``{"model": "dino_s16", "method": "cls", "layer": 11, "head": -1}``.
        b: the selector to compare with.
        metric: column to compare.

    Returns:
        ``n`` (shared images), ``mean_a``, ``mean_b``, ``mean_diff`` (a - b), ``statistic`` and ``pvalue`` of
        ``scipy.stats.wilcoxon`` (two-sided, zero differences dropped) and ``rank_biserial`` (effect size in
        [-1, 1], positive when a scores higher). When every difference is zero: statistic 0, p-value 1, effect 0.
    """
    require_columns(table, ("image_id", metric))
    va, vb = paired_values(table, a, metric, "a"), paired_values(table, b, metric, "b")
    shared = sorted(set(va) & set(vb), key=str)
    if len(shared) < 2:
        raise ValueError(f"selectors a and b share {len(shared)} image(s); a paired test needs at least 2")
    xa = np.array([va[i] for i in shared])  # [n]
    xb = np.array([vb[i] for i in shared])  # [n]
    d = xa - xb  # [n]
    if np.all(d == 0):
        statistic, pvalue = 0.0, 1.0
    else:
        result = stats.wilcoxon(xa, xb)
        statistic, pvalue = float(result.statistic), float(result.pvalue)
    return {
        "n": len(shared),
        "mean_a": float(xa.mean()),
        "mean_b": float(xb.mean()),
        "mean_diff": float(d.mean()),
        "statistic": statistic,
        "pvalue": pvalue,
        "rank_biserial": rank_biserial(d),
    }
