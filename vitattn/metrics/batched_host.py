"""The CPU path of ``batched.score_maps``: the same numbers as the numpy reference with fewer passes over the pixels.

``host_upsample`` (``raster.upsample``'s bits in one gather), one int64 sort per map, then the inside pixels' places
in the sorted order serve every threshold (binary search), the relevance rank, the pointing game and the pixel AP
(per tie group of inside pixels, ``_pixel_ap``); per-box counts over the boxes' rectangles; sums over the union's
tiles; no BLAS (OpenBLAS threads spun against the caller on a shared machine). ``host_targets`` holds what one box
list needs, computed once.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

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


def _mass(grid: np.ndarray, h: HostTargets) -> tuple[np.ndarray, np.ndarray]:
    """``[c]`` float64 sums of ``[c, R, R]`` float32 maps over all pixels and over the union (its tiles).

    Plain float64 reductions, no BLAS: OpenBLAS's threads would spin against the caller's on a loaded machine."""
    total = grid.reshape(len(grid), -1).sum(axis=1, dtype=np.float64)  # [c]
    inside = sum(grid[:, y0:y1, x0:x1].sum(axis=(1, 2), dtype=np.float64) for y0, y1, x0, x1 in h.union_rects)
    return total, inside


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


_SPAN = 2**31 - 2  # widest (max - min) of a map's ordered bits for uint32 keys: (span << 1 | 1) + 2 < 2^32


def _as_float(ordered: np.ndarray) -> np.ndarray:
    """The float32 values of ordered bits (``ordered_bits`` is its own inverse on int32)."""
    ordered = np.asarray(ordered, dtype=np.int32)
    return (ordered ^ ((ordered >> 31) & 0x7FFFFFFF)).view(np.float32)


def _keys(up: np.ndarray, outside_bit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort keys ``[c, n]`` of ``[c, n]`` float32 maps, the ordered bits ``[c, n]`` int32 and the keys' offset
    ``[c]`` int64: key = ``(ordered - offset) << 1 | outside bit``, whose order is the values' order, then within
    a tie the inside pixels first.

    uint32 keys where every map's ordered bits span at most ``_SPAN`` (always for non-negative maps: their bits
    are already ordered, offset 0, and at most ``0x7F800000``; maps from negative to positive values up to about
    +-1e38), int64 otherwise: numpy sorts 32-bit keys about twice as fast as 64-bit ones."""
    c = up.shape[0]
    bits = up.view(np.int32)
    if bits.min() >= 0:  # no sign bit (no negative value, no -0.0): the bits are in the values' order
        keys = np.left_shift(bits.view(np.uint32), 1)  # [c, n]
        return np.bitwise_or(keys, outside_bit, out=keys), bits, np.zeros(c, dtype=np.int64)
    bits = (up + np.float32(0.0)).view(np.int32)  # -0.0 + 0.0 == +0.0: equal values, equal bits
    ordered = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))  # [c, n] int32, the floats' order
    offset = ordered.min(axis=1).astype(np.int64)  # [c]
    if int((ordered.max(axis=1) - offset).max()) <= _SPAN:  # the difference fits int32: its wrap-around is exact
        keys = np.subtract(ordered, offset.astype(np.int32)[:, None]).view(np.uint32)
        np.left_shift(keys, 1, out=keys)
    else:
        keys = np.left_shift(ordered - offset[:, None], 1)  # [c, n] int64
    return np.bitwise_or(keys, outside_bit, out=keys), ordered, offset


def _host_ranks(up: np.ndarray, h: HostTargets) -> tuple[np.ndarray, ...]:
    """From one sort per map of ``[c, n]`` float32 maps: expected hits ``[c, T]`` of the union at each ``h.ks``, the
    share of a tied pixel kept ``[c, T]``, the thresholds ``[c, T]`` (ordered bits), the pixel AP ``[c]``, whether
    every peak lies in the union ``[c]``, the ordered bits ``[c, n]`` int32 and each map's min and max ``[c]``.

    The sort keys (``_keys``) hold the value and, in the low bit, whether the pixel is outside the union. The
    inside pixels' places in the sorted order (``flatnonzero`` where the low bit is 0; exactly ``K`` per map) and
    keys give every threshold's tie bounds by binary search (``ranking.expected_top_k_hits``'s rule) and the pixel
    AP (``_pixel_ap``)."""
    c, n = up.shape
    k_in = h.area
    keys, ordered, offset = _keys(up, h.outside_bit)
    keys.sort(axis=1)  # [c, n]
    low_byte = 0 if sys.byteorder == "little" else keys.itemsize - 1  # the byte of a key holding its lowest bit
    outside = keys.view(np.uint8)[:, low_byte :: keys.itemsize] & np.uint8(1)  # [c, n] the outside bit
    where = np.flatnonzero(np.logical_not(outside, out=outside.view(bool)))  # [c * K] the inside pixels' places
    inside_keys = keys.reshape(-1)[where].reshape(c, k_in)  # [c, K] ascending
    places = where.reshape(c, k_in) - np.arange(0, c * n, n)[:, None]  # [c, K] in their row
    ap = _pixel_ap(places, inside_keys, n)  # [c]
    # Thresholds: the k-th largest value for every k, and the maximum (pointing). ``a`` = a value's key with the
    # low bit 0: its pixels are the places from key ``a`` up to (not including) ``a + 2`` (no overflow: _SPAN).
    ks = np.append(h.ks, 1)  # [T + 1]
    at = keys[:, n - ks] & ~np.array(1, dtype=keys.dtype)  # [c, T + 1]
    bounds = np.concatenate([at, at + 2], axis=1)  # [c, 2 (T + 1)] first key at the value, first above it
    found, inside_found = (np.empty(bounds.shape, dtype=np.int64) for _ in range(2))
    for i in range(c):  # two binary searches per map (numpy's searchsorted is one-dimensional)
        found[i] = np.searchsorted(keys[i], bounds[i])
        inside_found[i] = np.searchsorted(inside_keys[i], bounds[i])
    (lo, hi), (in_lo, in_hi) = np.split(found, 2, axis=1), np.split(inside_found, 2, axis=1)  # [c, T + 1]
    share = (ks - (n - hi)) / (hi - lo)  # [c, T + 1] chance that a tied pixel is kept
    hits = (k_in - in_hi) + share * (in_hi - in_lo)  # [c, T + 1]
    peaks_in = (n - lo[:, -1]) == (k_in - in_lo[:, -1])  # [c] every pixel at the maximum is inside
    ends = (keys[:, [0, -1]] >> 1) + offset[:, None]  # [c, 2] min and max, ordered bits
    thresholds = (at[:, :-1] >> 1) + offset[:, None]  # [c, T]
    return hits[:, :-1], share[:, :-1], thresholds.astype(np.int32), ap, peaks_in, ordered, _as_float(ends)


def _pixel_ap(places: np.ndarray, inside_keys: np.ndarray, n: int) -> np.ndarray:
    """Pixel AP ``[c]`` of maps from their inside pixels' places ``[c, K]`` in the sorted order of all ``n`` pixels
    and their keys ``[c, K]``, both ascending: sklearn's step-wise AP.

    The inside pixel of rank ``r`` (ascending) scores the precision of the pixels ``>=`` its value,
    ``(K - r0) / (n - g)``, where ``r0`` is the rank of the first inside pixel of its tie group and ``g`` that
    pixel's place: inside pixels sort first within a tie (``_keys``), so it is the group's first pixel. Most inside
    pixels have a value of their own (``r0 = r``): every pixel is summed so, then the tie groups are corrected."""
    c, k_in = places.shape
    rest = np.subtract(n, places, dtype=np.float64)  # [c, K] pixels from the place up
    plain = np.divide(_above(k_in), rest, out=rest).sum(axis=1)  # [c] sum of (K - r) / (n - place)
    tied = np.zeros((c, k_in), dtype=bool)  # [c, K] the same value as the inside pixel before it
    np.equal(inside_keys[:, 1:], inside_keys[:, :-1], out=tied[:, 1:])
    at = np.flatnonzero(tied)  # [S] flat inside index of each tied pixel (not its group's first)
    if not at.size:
        return plain / k_in
    row, rank = np.divmod(at, k_in)  # [S]
    starts = np.flatnonzero(np.diff(at, prepend=-2) > 1)  # [G] where a run of tied pixels (one group) begins
    first = np.repeat(at[starts] - 1, np.diff(starts, append=at.size))  # [S] flat index of the group's first
    place, first_place = places.reshape(-1)[at], places.reshape(-1)[first]  # [S]
    fix = (k_in - (first - row * k_in)) / (n - first_place) - (k_in - rank) / (n - place)  # [S]
    return (plain + np.bincount(row, weights=fix, minlength=c)) / k_in


@lru_cache(maxsize=8)
def _above(k: int) -> np.ndarray:
    """``[K]`` float64 ``K - r``: the inside pixels from inside rank ``r`` up."""
    return np.arange(k, 0, -1, dtype=np.float64)


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


def host_scores(maps: np.ndarray, h: HostTargets, box_column: int) -> dict[str, np.ndarray]:
    """Every metric of ``[c, gh, gw]`` float32 maps, and ``box_iou`` ``[c, B]``, with numpy on the CPU."""
    c = maps.shape[0]
    n, side, k_in = h.n, h.side, h.area
    up = host_upsample(maps, side).reshape(c, n)  # [c, n] float32: raster.upsample's bits
    hits, share, thresholds, ap, peaks_in, ordered, lo_hi = _host_ranks(up, h)
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
        above[:, b] = (block > threshold).sum(axis=(1, 2))
        tied[:, b] = (block == threshold).sum(axis=(1, 2))
    box_hits = above + share[:, box_column, None] * tied  # [c, B]
    out["box_iou"] = box_hits / (k_box + h.areas - box_hits)
    lo, hi = lo_hi[:, 0], lo_hi[:, 1]  # [c] float32
    total, inside = _mass(up.reshape(c, side, side), h)  # [c] float64
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
        total[negative], inside[negative] = _mass(np.maximum(up[negative], 0.0).reshape(-1, side, side), h)
    positive = total > 0
    out["relevance_mass"] = np.where(positive, inside / np.where(positive, total, 1.0), 0.0)
    out["relevance_rank"] = hits[:, -1] / k_in
    out["pxap"] = ap
    out.update(_host_continuous(up, lo, hi, shifted_total, h))  # last: overwrites up
    return out


def _host_continuous(
    up: np.ndarray, lo: np.ndarray, hi: np.ndarray, shifted_total: np.ndarray, h: HostTargets
) -> dict[str, np.ndarray]:
    """mse, kl and emd of ``[c, n]`` upsampled maps (``continuous``'s definitions), numpy on the CPU, given each
    map's min and max ``[c]`` and ``shifted_total`` ``[c]``, the sum of ``up - min`` in float64. Overwrites ``up``
    with the normalised maps."""
    c, n = up.shape
    span = (hi - lo)[:, None]  # [c, 1] float32
    scale = np.divide(np.float32(1.0), span, out=np.zeros_like(span), where=span > 0)  # 0 for a flat map
    m = np.subtract(up, lo[:, None], out=up)
    m *= scale
    np.clip(m, 0.0, 1.0, out=m)  # [c, n] normalize_maps
    diff = m - h.gt  # [c, n] float32
    np.square(diff, out=diff)
    mse = diff.sum(axis=1, dtype=np.float64) / n  # [c]
    log_q = np.add(m, np.float32(KL_EPSILON), out=diff)
    np.log(log_q, out=log_q)  # [c, n] float32: relative error ~1e-7 per pixel
    # The sum of m is (sum of up - n min) / span: each m rounds within 2 ulp of it (relative error < 2e-7 in total)
    totals = shifted_total * scale[:, 0] + n * KL_EPSILON  # [c]
    cross = np.einsum("cn,n->c", log_q, h.p)  # [c] sum p log q in float64, no BLAS (see _mass)
    kl = np.maximum(h.p_log_p - cross + np.log(totals), 0.0)  # [c]
    g = h.rows.shape[0]
    if h.side % g == 0:  # each cell averages b x b pixels: block sums (the average's 1 / b^2 cancels below)
        b = h.side // g
        cells = m.reshape(c, g, b, h.side).sum(axis=2, dtype=np.float64)  # [c, g, R] rows first: whole rows added
        cells = cells.reshape(c, g, g, b).sum(axis=3).reshape(c, -1)  # [c, g * g]
    else:
        cells = (h.rows @ m.reshape(c, h.side, h.side) @ h.cols_t).astype(np.float64).reshape(c, -1)  # [c, g * g]
    mass = cells.sum(axis=1, keepdims=True)  # [c, 1]
    dist = np.where(mass > 0, cells / np.where(mass > 0, mass, 1.0), 1.0 / cells.shape[1])
    return {"mse": mse, "kl": kl, "emd": wasserstein_grids(dist, h.q_emd)}
