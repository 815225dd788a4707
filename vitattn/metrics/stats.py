"""Statistics over per-image scores: paired comparisons, Holm's correction, Kruskal-Wallis across groups.

Numpy and scipy only. Images are the unit: ``paired_comparison`` takes one score per image for each of two
selections (same images, same order), e.g. two (model, method, layer, head) rows of the metrics table.

- ``paired_comparison``: the paired t-test or the Wilcoxon signed-rank test on ``d = b - a``, chosen by a
  Shapiro-Wilk check of ``d`` (``test="auto"``), with Cohen's ``d_z = mean(d) / sd(d)`` (Cohen 1988; ``sd``
  with ``ddof=1``), the matched-pairs rank-biserial correlation (Kerby 2014) and a percentile bootstrap interval
  of ``mean(d)``.
- ``holm``: Holm's step-down adjusted p-values (Holm 1979, "A simple sequentially rejective multiple test
  procedure"), in input order.
- ``kruskal_by_group``: the Kruskal-Wallis H test of one score across groups (e.g. architectural style).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from vitattn.metrics.continuous import LOWER_IS_BETTER
from vitattn.metrics.summary import paired_values, rank_biserial

TESTS = ("auto", "t", "wilcoxon")


@dataclass(frozen=True)
class PairedResult:
    """A paired comparison of ``b`` against ``a`` over the same images.

    Every difference is ``b - a``: positive ``mean_diff``, ``d_z`` and ``rank_biserial`` mean that b scores higher.
    """

    n: int  # complete pairs used
    n_dropped: int  # pairs dropped because a or b was NaN or infinite
    mean_a: float
    mean_b: float
    mean_diff: float  # mean(b - a)
    ci_low: float  # percentile bootstrap interval of mean(b - a) at coverage 1 - alpha
    ci_high: float
    d_z: float  # Cohen's d_z: mean(b - a) / sd(b - a, ddof=1)
    rank_biserial: float  # matched-pairs rank-biserial of b - a, in [-1, 1]
    test: str  # "t" (paired t-test) or "wilcoxon" (signed-rank test, zero differences dropped)
    p: float  # two-sided p-value of that test
    shapiro_p: float  # Shapiro-Wilk p-value of the differences; NaN when it cannot be computed


@dataclass(frozen=True)
class KruskalResult:
    """The Kruskal-Wallis H test of one score across groups; per-group columns follow ``groups`` (sorted)."""

    H: float
    p: float
    groups: tuple  # the group values, sorted
    n: tuple[int, ...]  # finite values per group
    mean: tuple[float, ...]  # mean per group
    n_dropped: int  # values dropped because they were NaN or infinite


def _vector(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """``values`` as a 1-D float64 array, or a one-line ValueError."""
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D sequence of numbers") from None
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {x.shape}")
    return x


def _bootstrap_ci(d: np.ndarray, n_boot: int, seed: int, alpha: float) -> tuple[float, float]:
    """Percentile bootstrap interval (Efron & Tibshirani 1993) of ``mean(d)``, resampling pairs."""
    draws = np.random.default_rng(seed).integers(0, d.size, size=(n_boot, d.size))  # [n_boot, n]
    means = d[draws].mean(axis=1)  # [n_boot]
    lo, hi = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def _cohen_dz(d: np.ndarray) -> float:
    """``mean(d) / sd(d)``: 0 when every difference is 0, +-inf when all are equal and non-zero, NaN for n < 2."""
    if not d.any():
        return 0.0
    if d.size < 2:
        return float("nan")
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return float(np.copysign(np.inf, d.mean()))
    return float(d.mean() / sd)


def _shapiro_p(d: np.ndarray) -> float:
    """Shapiro-Wilk p-value of ``d``; NaN for n < 3 or differences without spread (the test is undefined)."""
    if d.size < 3 or np.ptp(d) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns that p may be inexact for n > 5000
        return float(stats.shapiro(d).pvalue)


def _check_options(test: str, n_boot: int, alpha: float) -> None:
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly inside (0, 1), got {alpha!r}")


def _test_p(d: np.ndarray, test: str) -> float:
    """Two-sided p-value of the paired t-test or the signed-rank test of ``d``, for ``d`` with some non-zero value."""
    if d.size < 3:
        return float("nan")
    if test == "t":
        if np.ptp(d) == 0:
            return 0.0  # equal non-zero differences: t is infinite
        return float(stats.ttest_1samp(d, 0.0).pvalue)  # identical to stats.ttest_rel(b, a)
    return float(stats.wilcoxon(d).pvalue)  # zero_method="wilcox": zero differences dropped


def paired_comparison(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    test: str = "auto",
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedResult:
    """Compares ``b`` with ``a``, paired by position (one score per image in each).

    ``test="auto"`` runs the paired t-test when the Shapiro-Wilk test on ``d = b - a`` does not reject normality
    at ``alpha`` (``shapiro_p >= alpha``), and the Wilcoxon signed-rank test otherwise; ``"t"`` or ``"wilcoxon"``
    forces one. Edge cases, all defined (no exception, no warning):

    - pairs where ``a`` or ``b`` is NaN or infinite are dropped and counted in ``n_dropped``; none left raises;
    - every difference zero: ``p = 1``, ``d_z = 0``, ``rank_biserial = 0``, interval ``(0, 0)``;
    - ``n < 3`` (with some non-zero difference): ``p = NaN`` (no test is meaningful; ``holm`` passes NaN
      through), ``d_z`` as usual (NaN for ``n = 1``);
    - differences without spread (Shapiro-Wilk undefined, ``shapiro_p = NaN``): ``auto`` picks Wilcoxon, as it
      does for ``n < 3``; equal non-zero differences give ``d_z = +-inf`` and, forced ``"t"``, ``p = 0``.

    Args:
        a: ``[n]`` scores of the first selection.
        b: ``[n]`` scores of the second selection, same images in the same order.
        test: ``"auto"``, ``"t"`` or ``"wilcoxon"``.
        n_boot: bootstrap resamples of the pairs for the interval of ``mean(b - a)``.
        seed: seed of the bootstrap generator (fresh per call: deterministic).
        alpha: level of the normality check; the interval covers ``1 - alpha``.

    Returns:
        ``PairedResult``.
    """
    _check_options(test, n_boot, alpha)
    xa, xb = _vector(a, "a"), _vector(b, "b")
    if xa.shape != xb.shape:
        raise ValueError(f"a and b must pair up, got {xa.size} and {xb.size} values")
    keep = np.isfinite(xa) & np.isfinite(xb)
    xa, xb = xa[keep], xb[keep]
    if xa.size == 0:
        raise ValueError("a and b have no pair with both values finite")
    d = xb - xa  # [n]
    shapiro_p = _shapiro_p(d)
    chosen = test if test != "auto" else ("t" if shapiro_p >= alpha else "wilcoxon")  # NaN >= alpha is False
    zero = not d.any()
    ci = (0.0, 0.0) if zero else _bootstrap_ci(d, n_boot, seed, alpha)
    return PairedResult(
        n=int(d.size),
        n_dropped=int((~keep).sum()),
        mean_a=float(xa.mean()),
        mean_b=float(xb.mean()),
        mean_diff=float(d.mean()),
        ci_low=ci[0],
        ci_high=ci[1],
        d_z=_cohen_dz(d),
        rank_biserial=rank_biserial(d),
        test=chosen,
        p=1.0 if zero else _test_p(d, chosen),
        shapiro_p=shapiro_p,
    )


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (Holm 1979), in the input order.

    With the ``m`` finite p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the adjusted value of the i-th is
    ``max_{j <= i} min(1, (m - j + 1) * p_(j))`` (the step-down maximum keeps them monotone); rejecting where the
    adjusted value is ``<= alpha`` is Holm's procedure at family-wise level ``alpha``. NaN entries (a comparison
    without a test) stay NaN and do not count in ``m``. Example: ``[0.01, 0.04, 0.03] -> [0.03, 0.06, 0.06]``.

    Args:
        pvalues: ``[m]`` p-values in [0, 1] (or NaN).

    Returns:
        ``[m]`` float64 adjusted p-values.
    """
    p = _vector(pvalues, "pvalues")
    finite = ~np.isnan(p)
    if ((p[finite] < 0) | (p[finite] > 1)).any():
        raise ValueError(f"p-values must lie in [0, 1] (or be NaN), got {p[finite & ((p < 0) | (p > 1))].tolist()}")
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(finite)
    order = idx[np.argsort(p[idx], kind="stable")]  # [m] ascending
    m = order.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])  # [m] (m - j + 1) * p_(j), 1-based j
    out[order] = np.maximum.accumulate(scaled)
    return out


def kruskal_by_group(values: Sequence[float] | np.ndarray, groups: Sequence[object] | np.ndarray) -> KruskalResult:
    """The Kruskal-Wallis H test (Kruskal & Wallis 1952, tie-corrected, ``scipy.stats.kruskal``) across groups.

    Non-finite values are dropped (counted in ``n_dropped``). When every remaining value is equal, ``H = 0`` and
    ``p = 1`` (the ranks carry no information).

    Args:
        values: ``[rows]`` scores (e.g. one per image).
        groups: ``[rows]`` group of each row (e.g. the image's style).

    Raises:
        ValueError: fewer than 2 groups with finite values, or lengths that differ.
    """
    x = _vector(values, "values")
    g = np.asarray(groups, dtype=object)
    if g.shape != x.shape:
        raise ValueError(f"values and groups must have one entry per row, got {x.size} and {g.size}")
    keep = np.isfinite(x)
    x, g = x[keep], g[keep]
    keys = sorted(set(g.tolist()), key=str)
    if len(keys) < 2:
        raise ValueError(f"kruskal_by_group needs at least 2 groups with finite values, got {len(keys)}: {keys}")
    samples = [x[g == k] for k in keys]
    if np.ptp(x) == 0:
        h, p = 0.0, 1.0
    else:
        result = stats.kruskal(*samples)
        h, p = float(result.statistic), float(result.pvalue)
    return KruskalResult(
        H=h,
        p=p,
        groups=tuple(keys),
        n=tuple(int(s.size) for s in samples),
        mean=tuple(float(s.mean()) for s in samples),
        n_dropped=int((~keep).sum()),
    )


def compare_selections(
    table: Mapping[str, np.ndarray],
    a: Mapping[str, object],
    b: Mapping[str, object],
    metrics: Sequence[str],
    *,
    test: str = "auto",
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> list[dict[str, object]]:
    """Paired comparison of two selections over the images both cover, one row per metric, Holm-corrected.

    Args:
        table: metrics table (column mapping, ``vitattn.metrics.tables``).
        a: selector of one map per image, e.g. ``{"model": "dinov2", "method": "cls", "layer": 11, "head": -1}``.
        b: the selector compared with ``a``; every difference is ``b - a``.
        metrics: metric columns to compare; the rows share one Holm correction (``p_holm``), since they are shown
            as one table.
        test, n_boot, seed, alpha: as `paired_comparison`.

    Returns:
        Per metric: ``metric``, ``lower_is_better``, the fields of `PairedResult` and ``p_holm``.

    Raises:
        ValueError: a selector matching several rows per image, or fewer than 2 shared images.
    """
    rows = []
    for metric in metrics:
        va, vb = paired_values(table, a, metric, "a"), paired_values(table, b, metric, "b")
        shared = sorted(set(va) & set(vb), key=str)
        if len(shared) < 2:
            raise ValueError(f"selectors a and b share {len(shared)} image(s); a paired test needs at least 2")
        result = paired_comparison(
            [va[i] for i in shared], [vb[i] for i in shared], test=test, n_boot=n_boot, seed=seed, alpha=alpha
        )
        rows.append({"metric": metric, "lower_is_better": metric in LOWER_IS_BETTER, **asdict(result)})
    for row, adjusted in zip(rows, holm([r["p"] for r in rows]), strict=True):
        row["p_holm"] = float(adjusted)
    return rows
