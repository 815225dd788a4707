"""The CPU path of ``batched.score_maps``: the same numbers as the numpy reference with fewer passes over the pixels.

``host_upsample`` (``raster.upsample``'s bits, the x lerp's operands repeated per source column), one sort per map
(32-bit keys where they fit) whose inside pixels serve every threshold, the relevance rank, the pointing game and
the pixel AP (``batched_ranks.host_ranks``); per-box counts over the boxes' rectangles; float64 sums over the EMD
grid's cells and the union's tiles; mse, kl and emd over the normalised maps; no BLAS (OpenBLAS threads spun
against the caller on a shared machine). ``host_targets`` holds what one box list needs, computed once;
``Buffers`` the largest temporaries, reused from block to block."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vitattn.metrics.batched_ranks import Buffers, host_ranks
from vitattn.metrics.continuous import EMD_GRID, KL_EPSILON, emd_grids, soft_ground_truth, wasserstein_grids
from vitattn.metrics.ranking import top_k_count
from vitattn.metrics.raster import (
    _area_matrix,
    _lerp_indices,
    box_masks,
)
from vitattn.metrics.scores import PERCENTILES, _near_box, literature_tolerance


@dataclass(frozen=True)
class HostTargets:
    """What the CPU path (``host_scores``) needs from one box list, computed once (``host_targets``)."""

    n: int  # pixels, R * R
    side: int  # R
    area: int  # pixels inside the union (K)
    ks: np.ndarray  # [T] int64: top-k counts of PERCENTILES, box_percentile, then K (relevance rank)
    outside_bit: np.ndarray  # [n] uint8: 1 outside the union
    rects: tuple  # per box (y0, y1, x0, x1): its mask is that rectangle (box_masks)
    areas: np.ndarray  # [B] float64 box areas
    union_rects: tuple  # disjoint rectangles (y0, y1, x0, x1) that tile the union
    far: np.ndarray  # [n] bool: farther than the pointing_15 tolerance from the union
    gt: np.ndarray  # [n] float32 soft ground truth clipped to [0, 1] (mse)
    p: np.ndarray  # [n] float64 soft ground truth + epsilon, summing to 1 (kl)
    p_log_p: float
    rows: np.ndarray  # [g, R] float32 area-resize matrix (emd)
    cols_t: np.ndarray  # [R, g] float32
    q_emd: np.ndarray  # [g, g] float64


def _rectangle(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` of a ``[R, R]`` mask that is one rectangle (``box_masks``'s are), checked."""
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
    if mask[y0:y1, x0:x1].sum() != mask.sum():
        raise AssertionError("box_masks gave a mask that is not a rectangle")
    return y0, y1, x0, x1


def _tiles(mask: np.ndarray) -> tuple:
    """Disjoint rectangles ``(y0, y1, x0, x1)`` that tile a ``[R, R]`` mask: runs of equal rows, cut into runs of
    columns (a union of a few boxes gives a few rectangles)."""
    out = []
    y = 0
    while y < mask.shape[0]:
        y1 = y + 1
        while y1 < mask.shape[0] and np.array_equal(mask[y1], mask[y]):
            y1 += 1
        edges = np.flatnonzero(np.diff(np.concatenate([[0], mask[y].astype(np.int8), [0]])))  # run starts, ends
        out += [(y, y1, int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
        y = y1
    return tuple(out)


def _mass(grid: np.ndarray, h: HostTargets) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``[c]`` float64 sums of ``[c, R, R]`` float32 maps over all pixels and over the union (its tiles), and the
    ``[c, g * g]`` float64 sums over the EMD grid's cells where ``R`` is a multiple of ``g`` (else None).

    Plain float64 reductions, no BLAS: OpenBLAS's threads would spin against the caller's on a loaded machine."""
    c, g = len(grid), EMD_GRID
    if h.side % g == 0:  # each cell is b x b pixels: whole rows added first, then the cells' columns
        rows = grid.reshape(c, g, h.side // g, h.side).sum(axis=2, dtype=np.float64)  # [c, g, R]
        cells = rows.reshape(c, g, g, h.side // g).sum(axis=3).reshape(c, -1)  # [c, g * g]
        total = cells.sum(axis=1)
    else:
        cells, total = None, grid.reshape(c, -1).sum(axis=1, dtype=np.float64)  # [c]
    inside = sum(grid[:, y0:y1, x0:x1].sum(axis=(1, 2), dtype=np.float64) for y0, y1, x0, x1 in h.union_rects)
    return total, inside, cells


@lru_cache(maxsize=32)
def host_targets(boxes: tuple, side: int, box_percentile: float) -> HostTargets:
    n = side * side
    masks = box_masks(list(boxes), side)  # [B, R, R] bool
    union = masks.any(axis=0).reshape(-1)  # [n]
    near = _near_box(union.reshape(side, side), literature_tolerance(side)).reshape(-1)  # [n]
    ks = [top_k_count(n, p) for p in (*PERCENTILES, box_percentile)] + [int(union.sum())]
    gt = soft_ground_truth(list(boxes), side)  # [R, R] float64
    p = gt.reshape(-1) + KL_EPSILON
    p /= p.sum()
    area = _area_matrix(side, EMD_GRID).astype(np.float32)  # [g, R]
    return HostTargets(
        n=n,
        side=side,
        area=int(union.sum()),
        ks=np.array(ks, dtype=np.int64),
        outside_bit=(~union).astype(np.uint8),
        rects=tuple(_rectangle(m) for m in masks),
        areas=masks.reshape(len(masks), -1).sum(axis=1).astype(np.float64),
        union_rects=_tiles(union.reshape(side, side)),
        far=~near,
        gt=np.clip(gt, 0.0, 1.0).reshape(-1).astype(np.float32),
        p=p,
        p_log_p=float((p * np.log(p)).sum()),
        rows=area,
        cols_t=np.ascontiguousarray(area.T),
        q_emd=emd_grids(gt[None])[0],
    )


@lru_cache(maxsize=32)
def _host_lerp(n_in: tuple[int, int], side: int) -> tuple[np.ndarray, ...]:
    """``raster._lerp_indices`` along y and x; along x the source column after each column (edge-clamped) and how
    many output columns each source column starts (``x0`` ascends: the gather is a ``repeat``)."""
    y0, y1, wy = _lerp_indices(n_in[0], side)
    x0, x1, wx = _lerp_indices(n_in[1], side)
    nxt = np.minimum(np.arange(n_in[1]) + 1, n_in[1] - 1)  # [gw] as _lerp_indices: x1 = min(x0 + 1, gw - 1)
    counts = np.bincount(x0, minlength=n_in[1])  # [gw]
    if not (np.array_equal(nxt[x0], x1) and np.array_equal(np.repeat(np.arange(n_in[1]), counts), x0)):
        raise AssertionError("_lerp_indices changed: x0 no longer ascends, or x1 is not min(x0 + 1, gw - 1)")
    return y0, y1, wy[:, None], nxt, counts, wx


def host_upsample(maps: np.ndarray, side: int) -> np.ndarray:
    """``raster.upsample`` of ``[c, gh, gw]`` float32 maps, the same bits (tested), in fewer passes at ``R x R``.

    The same lerps ``a + w * (b - a)`` in float32 in the same order (rows first). Along x the difference
    ``b - a`` of two source columns is the same for every output pixel between them, so it is taken once per
    source column on the ``[c, R, gw]`` rows, and repeated with them: one copy, one product and one sum at full
    size instead of two gathers, a difference, a product and a sum."""
    y0, y1, wy, nxt, counts, wx = _host_lerp(maps.shape[-2:], side)
    top, bottom = maps[:, y0, :], maps[:, y1, :]  # [c, R, gw]
    rows = top + wy * (bottom - top)  # [c, R, gw]
    pair = np.repeat(np.stack([rows, rows[..., nxt] - rows]), counts, axis=-1)  # [2, c, R, R]: a and b - a
    out, step = pair[0], pair[1]
    np.multiply(step, wx, out=step)
    return np.add(out, step, out=out)  # [c, R, R]


def host_scores(
    maps: np.ndarray, h: HostTargets, box_column: int, buffers: Buffers | None = None
) -> dict[str, np.ndarray]:
    """Every metric of ``[c, gh, gw]`` float32 maps, and ``box_iou`` ``[c, B]``, with numpy on the CPU; the largest
    temporaries in ``buffers`` (reused by the caller from one block to the next; default: new ones)."""
    buffers = buffers or Buffers()
    c = maps.shape[0]
    n, side, k_in = h.n, h.side, h.area
    up = host_upsample(maps, side).reshape(c, n)  # [c, n] float32: raster.upsample's bits
    # A lerp between values without a sign bit has none (>= 0, never -0.0): the maps tell for their upsampling
    sign_free = not np.signbit(maps).any()
    hits, share, thresholds, ap, peaks_in, ordered, lo_hi = host_ranks(up, h.outside_bit, h.ks, buffers, sign_free)
    ks = h.ks.astype(np.float64)  # [T]
    ious = hits / (ks + k_in - hits)  # [c, T]
    out = {f"iou_{p}": ious[:, j] for j, p in enumerate(PERCENTILES)}
    out["iou_auc"] = ious[:, : len(PERCENTILES)].mean(axis=1)
    # Per-box IoU at box_percentile: pixels above and at its threshold inside each box (a rectangle).
    k_box = h.ks[box_column]
    threshold = thresholds[:, box_column, None, None]  # [c, 1, 1]
    grid = ordered.reshape(c, side, side)
    above = np.empty((c, len(h.rects)))
    tied = np.empty((c, len(h.rects)))
    for b, (y0, y1, x0, x1) in enumerate(h.rects):
        block = grid[:, y0:y1, x0:x1]
        above[:, b] = _count(block > threshold)
        tied[:, b] = _count(block == threshold)
    box_hits = above + share[:, box_column, None] * tied  # [c, B]
    out["box_iou"] = box_hits / (k_box + h.areas - box_hits)
    lo, hi = lo_hi[:, 0], lo_hi[:, 1]  # [c] float32
    total, inside, cells = _mass(up.reshape(c, side, side), h)  # [c], [c] float64; [c, g * g] or None
    lo64 = lo.astype(np.float64)
    flat = lo == hi
    shifted_total, shifted_inside = total - n * lo64, inside - k_in * lo64  # [c] mass of up - min
    out["coverage"] = np.where(flat, k_in / n, shifted_inside / np.where(flat, 1.0, shifted_total))
    out["pointing"] = peaks_in.astype(np.float64)
    near = peaks_in.copy()  # peaks in the union are within the tolerance; the others are looked at
    for i in np.flatnonzero(~peaks_in):
        near[i] = not h.far[np.flatnonzero(up[i] == hi[i])].any()
    out["pointing_15"] = near.astype(np.float64)
    negative = np.flatnonzero(lo < 0)
    if negative.size:  # negative values carry no mass
        total[negative], inside[negative], _ = _mass(np.maximum(up[negative], 0.0).reshape(-1, side, side), h)
    positive = total > 0
    out["relevance_mass"] = np.where(positive, inside / np.where(positive, total, 1.0), 0.0)
    out["relevance_rank"] = hits[:, -1] / k_in
    out["pxap"] = ap
    out.update(_host_continuous(up, lo, hi, shifted_total, cells, h, buffers))  # last: overwrites up
    return out


def _count(flags: np.ndarray) -> np.ndarray:
    """``[c]`` true entries of ``[c, ...]`` contiguous flags (as bytes: a plain sum along one axis)."""
    return flags.view(np.uint8).reshape(len(flags), -1).sum(axis=1, dtype=np.int64)


def _host_continuous(
    up: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    shifted_total: np.ndarray,
    cells: np.ndarray | None,
    h: HostTargets,
    buffers: Buffers,
) -> dict[str, np.ndarray]:
    """mse, kl and emd of ``[c, n]`` upsampled maps (``continuous``'s definitions), numpy on the CPU, given each
    map's min and max ``[c]``, ``shifted_total`` ``[c]`` (the float64 sum of ``up - min``) and ``_mass``'s cell
    sums. Overwrites ``up`` with the normalised maps."""
    c, n = up.shape
    span = (hi - lo)[:, None]  # [c, 1] float32
    scale = np.divide(np.float32(1.0), span, out=np.zeros_like(span), where=span > 0)  # 0 for a flat map
    m = np.subtract(up, lo[:, None], out=up)
    m *= scale
    np.clip(m, 0.0, 1.0, out=m)  # [c, n] normalize_maps
    diff = np.subtract(m, h.gt, out=buffers.get("pixels", m.shape, np.float32))  # [c, n]
    np.square(diff, out=diff)
    mse = diff.sum(axis=1, dtype=np.float64) / n  # [c]
    log_q = np.add(m, np.float32(KL_EPSILON), out=diff)
    np.log(log_q, out=log_q)  # [c, n] float32: relative error ~1e-7 per pixel
    # The sum of m is (sum of up - n min) / span: each m rounds within 2 ulp of it (relative error < 2e-7 in total)
    totals = shifted_total * scale[:, 0] + n * KL_EPSILON  # [c]
    cross = np.einsum("cn,n->c", log_q, h.p)  # [c] sum p log q in float64, no BLAS (see _mass)
    kl = np.maximum(h.p_log_p - cross + np.log(totals), 0.0)  # [c]
    if cells is not None:  # the area resize of the normalised map, made a distribution: its cells' share of the
        cells = cells - (n // cells.shape[1]) * lo.astype(np.float64)[:, None]  # sum of up - min (1 / span cancels)
        np.maximum(cells, 0.0, out=cells)  # (a sum of values >= min: only rounding could dip below 0)
    else:
        cells = (h.rows @ m.reshape(c, h.side, h.side) @ h.cols_t).astype(np.float64).reshape(c, -1)  # [c, g * g]
    mass = cells.sum(axis=1, keepdims=True)  # [c, 1]
    mass[span == 0] = 0.0  # a flat map normalises to 0: uniform
    dist = np.where(mass > 0, cells / np.where(mass > 0, mass, 1.0), 1.0 / cells.shape[1])
    return {"mse": mse, "kl": kl, "emd": wasserstein_grids(dist, h.q_emd)}
