"""Threshold-free agreement of a map with a soft ground truth built from the boxes: MSE, KL, EMD; and CorLoc.

The soft ground truth (the seed study's ``gaussian_bbox_heatmap`` / ``soft_union_heatmap``): for each box an
anisotropic Gaussian on the pixel centres ``j + 0.5`` of the ``R x R`` grid, centred on the box centre, with
``sigma = max(box side in pixels / 4, 1)`` per axis, divided by its largest value on the grid (peak 1); boxes are
combined by the pixel-wise maximum and the union is divided by its maximum (so its peak is 1; it is not
min-max normalised, its minimum stays > 0).

A map is upsampled to ``R x R`` exactly as for IoU (``raster.upsample``) and min-max normalised to [0, 1];
NaN and infinite values count as 0, and a constant map becomes all zeros (nothing highlighted). Then:

- ``mse``: mean squared difference of the map and the ground truth, both clipped to [0, 1] (lower is better).
- ``kl_divergence``: ``KL(ground truth || map) = sum P log(P / Q)`` where ``P`` and ``Q`` are the ground truth
  and the map plus ``1e-8`` per pixel, each normalised to sum 1 (lower is better). A constant map gives
  ``Q`` uniform.
- ``emd``: the exact earth mover's (Wasserstein-1) distance between the map and the ground truth, each
  area-resized to ``8 x 8`` (``raster.area_resize``) and normalised to sum 1, with the Euclidean distance
  between cell centres ``((j + 0.5) / 8, (i + 0.5) / 8)`` in ``[0, 1]^2`` as ground distance (lower is better;
  at most ``7 / 8 * sqrt(2)``). A map with no mass (constant) counts as uniform. Solved as the transport
  linear program between the positive and negative parts of ``p - q`` (mass that stays in place costs nothing,
  so the optimum only moves the difference), with POT's network simplex (``ot.emd2``; ``wasserstein_grid`` solves
  the same LP with scipy's HiGHS, and the tests check both against the full LP).
- ``corloc``: the share of images whose IoU reaches a threshold (CorLoc, Deselaers et al., IJCV 2012).

Numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from vitattn.metrics.raster import _area_matrix, check_boxes, check_resolution, pixel_centers, upsample

CONTINUOUS_NAMES = ("mse", "kl", "emd")
LOWER_IS_BETTER = frozenset(CONTINUOUS_NAMES)  # every other metric column: higher is better
KL_EPSILON = 1e-8  # added to every pixel of both maps before normalising them to sum 1
EMD_GRID = 8  # both maps are area-resized to EMD_GRID x EMD_GRID cells for the exact transport problem
CORLOC_THRESHOLD = 0.5


def soft_ground_truth(boxes: Sequence, resolution: int = 224) -> np.ndarray:
    """The soft ground truth of a box list: per-box Gaussians (peak 1), pixel-wise max, divided by the max.

    Args:
        boxes: non-empty list of normalized boxes ``(x0, y0, x1, y1)`` (or ``LabeledBox``).
        resolution: side ``R`` of the grid.

    Returns:
        ``[R, R]`` float64 in (0, 1], peak 1.
    """
    side = check_resolution(resolution)
    centers = pixel_centers(side) * side  # [R] pixel centres j + 0.5, in pixels
    union = np.zeros((side, side))
    for x0, y0, x1, y1 in check_boxes(boxes):
        sx, sy = max((x1 - x0) * side / 4.0, 1.0), max((y1 - y0) * side / 4.0, 1.0)
        gx = np.exp(-((centers - (x0 + x1) * side / 2.0) ** 2) / (2.0 * sx**2))  # [R]
        gy = np.exp(-((centers - (y0 + y1) * side / 2.0) ** 2) / (2.0 * sy**2))  # [R]
        gaussian = gy[:, None] * gx[None, :]  # [R, R] separable
        union = np.maximum(union, gaussian / gaussian.max())
    return union / union.max()


def normalize_maps(up: np.ndarray) -> np.ndarray:
    """Min-max normalises each map of ``[N, ...]`` to [0, 1] in float32 (the precision every metric compares maps
    at); NaN / inf count as 0, flat maps become 0."""
    m = np.asarray(up, dtype=np.float32)  # [N, ...]
    flat = m.reshape(m.shape[0], -1)  # [N, n]
    if not np.isfinite(flat).all():
        flat = np.nan_to_num(flat, nan=0.0, posinf=0.0, neginf=0.0)
    lo = flat.min(axis=1, keepdims=True)  # [N, 1]
    span = flat.max(axis=1, keepdims=True) - lo  # [N, 1]
    scale = np.divide(1.0, span, out=np.zeros_like(span), where=span > 0)  # [N, 1]; 0 for a flat map
    out = (flat - lo) * scale  # [N, n]
    np.clip(out, 0.0, 1.0, out=out)  # (x - lo) / span can round to just above 1
    return out.reshape(m.shape)


def map_mse(maps: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``[N]`` mean squared difference of ``[N, R, R]`` maps and a ``[R, R]`` target, both clipped to [0, 1]."""
    n = maps.shape[0]
    diff = np.clip(maps, 0.0, 1.0).reshape(n, -1) - np.clip(target, 0.0, 1.0).reshape(1, -1).astype(maps.dtype)
    return (diff * diff).sum(axis=1, dtype=np.float64) / diff.shape[1]  # [N]; float64 sums, row by row


def map_kl(target: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """``[N]`` ``KL(target || map)`` of ``[N, R, R]`` non-negative maps, each plus ``KL_EPSILON`` and summing to 1.

    With ``P = (t + e) / T`` and ``Q = (m + e) / M``: ``KL = sum P log P - sum P log(m + e) + log M``.
    """
    p = np.asarray(target, dtype=np.float64).reshape(-1) + KL_EPSILON  # [n]
    p /= p.sum()
    q = np.asarray(maps, dtype=np.float64).reshape(maps.shape[0], -1) + KL_EPSILON  # [N, n] unnormalised
    totals = q.sum(axis=1)  # [N]
    np.log(q, out=q)
    kl = (p * np.log(p)).sum() - (q * p).sum(axis=1) + np.log(totals)  # [N]; row by row: independent of the batch
    return np.maximum(kl, 0.0)  # >= 0 (rounding can dip below)


@cache
def _cell_distances(grid: int) -> np.ndarray:
    """``[g * g, g * g]`` Euclidean distances between the cell centres of a ``g x g`` grid on [0, 1]^2."""
    c = pixel_centers(grid)  # [g]
    y, x = np.meshgrid(c, c, indexing="ij")  # [g, g]
    pts = np.stack([x.reshape(-1), y.reshape(-1)], axis=1)  # [g * g, 2]
    dist = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(axis=-1))  # [g * g, g * g]
    dist.setflags(write=False)
    return dist


@lru_cache(maxsize=256)
def _transport_constraints(ns: int, nt: int) -> sparse.csc_array:
    """``[ns + nt, ns * nt]`` equality constraints of a transport problem: variable ``k`` ships from source
    ``k // nt`` (row ``k // nt``) to sink ``k % nt`` (row ``ns + k % nt``); two ones per column, built as CSC."""
    k = np.arange(ns * nt)
    indices = np.stack([k // nt, ns + k % nt], axis=1).reshape(-1)  # [2 * ns * nt], rows ascending per column
    indptr = np.arange(0, 2 * ns * nt + 1, 2)  # [ns * nt + 1]
    return sparse.csc_array((np.ones(2 * ns * nt), indices, indptr), shape=(ns + nt, ns * nt))


def _as_distribution(cells: np.ndarray) -> np.ndarray:
    """``cells`` (non-negative) divided by their sum; uniform when they hold no mass."""
    total = cells.sum()
    return cells / total if total > 0 else np.full(cells.shape, 1.0 / cells.size)


def wasserstein_grid(p: np.ndarray, q: np.ndarray) -> float:
    """Exact Wasserstein-1 distance between two distributions on the same ``g x g`` grid of [0, 1]^2.

    Transport LP over the net difference: sources are the cells where ``p > q`` (supply ``p - q``), sinks those
    where ``q > p``; minimise ``sum c_ij x_ij`` subject to each source shipping its supply and each sink
    receiving its demand, ``x >= 0``. For a metric ground cost this equals the full ``p -> q`` transport (mass
    common to both stays put at zero cost). Solved with scipy's HiGHS simplex (``transport_cost``).

    Args:
        p: ``[g, g]`` non-negative, summing to 1.
        q: ``[g, g]`` non-negative, summing to 1.

    Returns:
        The distance (0 when ``p == q``).
    """
    d = (np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64)).reshape(-1)  # [g * g]
    src, dst = np.flatnonzero(d > 0), np.flatnonzero(d < 0)
    if src.size == 0 or dst.size == 0:
        return 0.0
    supply, demand = d[src], -d[dst]
    total = (supply.sum() + demand.sum()) / 2.0  # the mass to move; both sums equal it up to rounding
    supply, demand = supply / supply.sum(), demand / demand.sum()  # unit total: well scaled for the solver
    a_eq = _transport_constraints(src.size, dst.size)
    cost = _cell_distances(int(round(np.sqrt(d.size))))[np.ix_(src, dst)].reshape(-1)  # [ns * nt]
    return transport_cost(cost, a_eq, np.concatenate([supply, demand])) * total


def _highs_direct(cost: np.ndarray, a_eq: sparse.csc_array, b_eq: np.ndarray) -> float | None:
    """The LP through scipy's bundled HiGHS bindings (``scipy.optimize._highspy._core``, scipy >= 1.15).

    ``linprog`` solves the same problem with the same HiGHS, but for a problem this small its wrapper spends about
    two thirds of the time in per-column Python loops that collect the duals, which are not needed here (measured:
    1.6 ms against 4.0 ms per 8 x 8 EMD). Returns None when these private bindings are missing or changed, and the
    caller falls back to ``linprog``.
    """
    try:
        from scipy.optimize._highspy import _core as highs
    except ImportError:
        return None
    try:
        lp = highs.HighsLp()
        lp.num_col_, lp.num_row_ = cost.size, a_eq.shape[0]
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = cost.size, a_eq.shape[0]
        lp.a_matrix_.format_ = highs.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a_eq.indptr, a_eq.indices, a_eq.data
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, np.zeros(cost.size), np.full(cost.size, np.inf)
        lp.row_lower_, lp.row_upper_ = b_eq, b_eq
        solver, options = highs._Highs(), highs.HighsOptions()
        options.presolve, options.output_flag = "off", False
        solver.passOptions(options)
        solver.passModel(lp)
        solver.run()
        status = solver.getModelStatus()
        if status != highs.HighsModelStatus.kOptimal:
            raise RuntimeError(
                f"earth mover's distance: the transport LP failed ({solver.modelStatusToString(status)})"
            )
        return float(solver.getInfo().objective_function_value)
    except AttributeError:
        return None


def transport_cost(cost: np.ndarray, a_eq: sparse.csc_array, b_eq: np.ndarray, *, direct: bool = True) -> float:
    """``min cost @ x`` subject to ``a_eq @ x = b_eq``, ``x >= 0``, by HiGHS's simplex (no presolve).

    ``direct`` calls HiGHS through scipy's bindings (``_highs_direct``), else (or when those are unavailable)
    through ``scipy.optimize.linprog``; both run the same solver and agree to rounding (tested).
    """
    value = _highs_direct(cost, a_eq, b_eq) if direct else None
    if value is not None:
        return value
    result = linprog(
        cost,
        A_eq=a_eq,
        b_eq=b_eq,
        bounds=(0, None),
        method="highs",
        options={"presolve": False},  # presolve costs more than it saves here and can misjudge tiny masses
    )
    if result.status != 0:
        raise RuntimeError(f"earth mover's distance: the transport LP failed ({result.message})")
    return float(result.fun)


def wasserstein_grids(ps: np.ndarray, q: np.ndarray, workers: int = 1) -> np.ndarray:
    """``[N]`` exact Wasserstein-1 distances of ``N`` distributions to one, all on the same ``g x g`` grid.

    The same transport problem over the net difference as ``wasserstein_grid``, solved with POT's network simplex
    (``ot.emd2``: Bonneel et al., "Displacement interpolation using Lagrangian mass transport", SIGGRAPH Asia 2011),
    the field's exact EMD solver: about 8x faster than the general LP on 8 x 8 grids. Each map has its own sources
    and sinks, so the problems are solved one after the other, or split over ``workers`` threads.

    Args:
        ps: ``[N, g * g]`` (or ``[N, g, g]``) non-negative, each summing to 1.
        q: ``[g * g]`` (or ``[g, g]``) non-negative, summing to 1.
        workers: threads solving the problems (the same numbers for any count).
    """
    ps = np.asarray(ps, dtype=np.float64).reshape(len(ps), -1)  # [N, c]
    q = np.asarray(q, dtype=np.float64).reshape(-1)  # [c]
    if workers > 1 and len(ps) > 1:
        from concurrent.futures import ThreadPoolExecutor

        parts = np.array_split(np.arange(len(ps)), min(workers, len(ps)))
        with ThreadPoolExecutor(len(parts)) as pool:
            return np.concatenate(list(pool.map(lambda rows: _solve_each(ps[rows], q), parts)))
    return _solve_each(ps, q)


def _network_simplex():
    """``(a, b, M) -> cost``: POT's exact network simplex, the solver ``ot.emd2`` runs, called without its wrapper.

    ``ot.emd2``'s Python wrapper (backend dispatch, marginal checks, dual centring, gradients) costs about as much
    as the 8 x 8 solve itself. With positive ``a`` and ``b`` (no zero weights to filter) it does exactly this: scale
    ``b`` to ``a``'s sum, run ``emd_c`` and check its result code; so the costs are the same bits
    (``tests/test_metrics_continuous.py``). Falls back to ``ot.emd2`` where POT's private ``emd_c`` is missing or
    its signature differs.
    """
    import ot  # POT: imported here so that importing vitattn.metrics stays light

    def wrapped(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
        return float(ot.emd2(a, b, m))

    try:
        from ot.lp.emd_wrap import check_result, emd_c
    except ImportError:
        return wrapped

    def direct(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
        b = b * a.sum(0) / b.sum(0, keepdims=True)  # as ot.emd2
        _, cost, _, _, code = emd_c(a, b, m, 100000, 1)  # ot.emd2's default numItermax, one thread
        check_result(code)
        return float(cost)

    try:  # the signature of a private function: check it once on a problem with a known answer
        probe = direct(np.array([1.0]), np.array([0.5, 0.5]), np.array([[1.0, 3.0]]))
    except (TypeError, ValueError):
        return wrapped
    return direct if probe == 2.0 else wrapped


_SOLVER = []  # the solver, found on first use


def _solve_each(ps: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``wasserstein_grids`` on one thread: ``[N, c]`` and ``[c]`` float64."""
    if not _SOLVER:
        _SOLVER.append(_network_simplex())
    solve = _SOLVER[0]
    cost = _cell_distances(int(round(np.sqrt(q.size))))  # [c, c]
    out = np.zeros(len(ps))
    for i, d in enumerate(ps - q):  # d: [c]
        src, dst = d > 0, d < 0
        if not (src.any() and dst.any()):
            continue
        supply, demand = d[src], -d[dst]
        total = (supply.sum() + demand.sum()) / 2.0  # the mass to move
        sub = np.ascontiguousarray(cost[np.ix_(src, dst)])  # [ns, nt]
        out[i] = solve(supply / supply.sum(), demand / demand.sum(), sub) * total
    return out


def emd_grids(maps: np.ndarray, grid: int = EMD_GRID) -> np.ndarray:
    """``[N, g, g]`` distributions of ``[N, R, R]`` non-negative maps: area-resized, summing to 1 (uniform if empty)."""
    maps = np.asarray(maps, dtype=np.float64)
    rows, cols = _area_matrix(maps.shape[-2], grid), _area_matrix(maps.shape[-1], grid)  # [g, R], [g, R]
    cells = rows @ maps @ cols.T  # [N, g, g]
    return np.stack([_as_distribution(c) for c in cells])


def map_emd(maps: np.ndarray, target: np.ndarray, grid: int = EMD_GRID) -> np.ndarray:
    """``[N]`` exact W1 of ``[N, R, R]`` non-negative maps to a ``[R, R]`` target, both area-resized to ``grid``."""
    q = emd_grids(np.asarray(target)[None], grid)[0]  # [g, g]
    return wasserstein_grids(emd_grids(maps, grid), q)


def continuous_scores(up: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """``CONTINUOUS_NAMES`` -> ``[N]`` scores of upsampled maps ``[N, R, R]`` against a soft ground truth ``[R, R]``."""
    maps = normalize_maps(up)  # [N, R, R] in [0, 1]
    return {"mse": map_mse(maps, target), "kl": map_kl(target, maps), "emd": map_emd(maps, target)}


def _scores_of(heatmap: np.ndarray, boxes: Sequence, resolution: int) -> dict[str, float]:
    m = np.asarray(heatmap, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"heatmap must be a non-empty 2-D [gh, gw] array, got shape {m.shape}")
    m = np.nan_to_num(m, nan=0.0, posinf=0.0, neginf=0.0)  # before upsampling, so NaN does not spread
    up = upsample(m, check_resolution(resolution))[None]  # [1, R, R]
    return {k: float(v[0]) for k, v in continuous_scores(up, soft_ground_truth(boxes, resolution)).items()}


def mse(heatmap: np.ndarray, boxes: Sequence, resolution: int = 224) -> float:
    """Mean squared difference of the normalised map and the soft ground truth (see the module); lower is better.

    Args:
        heatmap: ``[gh, gw]`` map on the patch grid covering the whole image; NaN / inf count as 0.
        boxes: non-empty list of normalized boxes ``(x0, y0, x1, y1)`` (or ``LabeledBox``).
        resolution: side ``R`` of the comparison grid.
    """
    return _scores_of(heatmap, boxes, resolution)["mse"]


def kl_divergence(heatmap: np.ndarray, boxes: Sequence, resolution: int = 224) -> float:
    """``KL(soft ground truth || map)`` with ``1e-8`` per pixel (see the module); lower is better."""
    return _scores_of(heatmap, boxes, resolution)["kl"]


def emd(heatmap: np.ndarray, boxes: Sequence, resolution: int = 224) -> float:
    """Exact Wasserstein-1 between the map and the soft ground truth on ``8 x 8`` cells of [0, 1]^2; lower is better."""
    return _scores_of(heatmap, boxes, resolution)["emd"]


def corloc(ious: Sequence[float] | np.ndarray, threshold: float = CORLOC_THRESHOLD) -> float:
    """Share of images whose IoU reaches ``threshold`` (``iou >= threshold``); NaN or inf IoUs count as misses.

    Args:
        ious: ``[images]`` one IoU per image (e.g. the ``iou_90`` column of one model, method, layer and head).
        threshold: the IoU an image needs, in [0, 1].
    """
    x = np.asarray(ious, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("corloc needs at least one IoU")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
    return float((np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0) >= threshold).mean())
