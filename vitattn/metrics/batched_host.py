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
    union_bit: np.ndarray  # [n] int64 0 / 1
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
        union_bit=union.astype(np.int64),
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


class _Ranks(dict):
    """``K -> arange(K)``, built once per K."""

    def __missing__(self, k: int) -> np.ndarray:
        self[k] = value = np.arange(k, dtype=np.int64)
        return value


_RANKS = _Ranks()
_LOW_BYTE = 0 if sys.byteorder == "little" else 7  # the byte of an int64 holding its lowest bit


def _as_float(ordered: np.ndarray) -> np.ndarray:
    """The float32 values of ordered bits (``ordered_bits`` is its own inverse on int32)."""
    ordered = np.asarray(ordered, dtype=np.int32)
    return (ordered ^ ((ordered >> 31) & 0x7FFFFFFF)).view(np.float32)


def _host_ranks(up: np.ndarray, h: HostTargets) -> tuple[np.ndarray, ...]:
    """From one sort per map of ``[c, n]`` float32 maps: expected hits ``[c, T]`` of the union at each ``h.ks``, the
    share of a tied pixel kept ``[c, T]``, the thresholds ``[c, T]`` (ordered bits), the pixel AP ``[c]``, whether
    every peak lies in the union ``[c]``, the ordered bits ``[c, n]`` int32 and each map's min and max ``[c]``.

    The sort key is ``(ordered bits of the value) << 1 | inside bit``: ascending value, and within a tie the outside
    pixels first. The inside pixels' places in the sorted order (``flatnonzero`` of the low bit; exactly ``K`` per
    map) give everything the union needs by binary search over ``K`` places, and the pixel AP from the inside pixels
    alone: the pixel at inside rank ``r`` (ascending) scores the precision of the pixels ``>=`` its value,
    ``(K - r0) / (n - g)``, where ``r0`` is the inside rank and ``g`` the place of its tie group's first pixel."""
    c, n = up.shape
    k_in = h.area
    bits = (up + np.float32(0.0)).view(np.int32)  # -0.0 + 0.0 == +0.0: equal values, equal bits
    ordered = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))  # [c, n] int32, the floats' order
    keys = np.left_shift(ordered, 1, dtype=np.int64)  # [c, n]
    keys |= h.union_bit
    keys.sort(axis=1)  # [c, n]
    flat = keys.reshape(-1)
    low = keys.view(np.uint8)[:, _LOW_BYTE::8] & np.uint8(1)  # [c, n] the inside bit (the key's low byte)
    where = np.flatnonzero(low.view(bool))  # [c * K] flat places of the inside pixels, ascending in each row
    places = where.reshape(c, k_in) - np.arange(0, c * n, n, dtype=np.int64)[:, None]  # [c, K] in their row
    inside_keys = flat[where].reshape(c, k_in)  # [c, K] ascending
    ap = np.array([_pixel_ap(keys[i], places[i], inside_keys[i]) for i in range(c)])  # [c]
    # Thresholds: the k-th largest value for every k, and the maximum (pointing).
    ks = np.append(h.ks, 1)  # [T + 1]
    at = keys[:, n - ks] | 1  # [c, T + 1] the threshold's key with the inside bit set
    lo, hi, in_lo, in_hi = (np.empty((c, len(ks)), dtype=np.int64) for _ in range(4))
    for i in range(c):
        lo[i] = np.searchsorted(keys[i], at[i] - 1, side="left")  # first place at the threshold
        hi[i] = np.searchsorted(keys[i], at[i], side="right")  # first place above it
        in_lo[i] = np.searchsorted(places[i], lo[i], side="left")  # inside pixels before those places
        in_hi[i] = np.searchsorted(places[i], hi[i], side="left")
    share = (ks - (n - hi)) / (hi - lo)  # [c, T + 1] chance that a tied pixel is kept
    hits = (k_in - in_hi) + share * (in_hi - in_lo)  # [c, T + 1]
    peaks_in = (n - lo[:, -1]) == (k_in - in_lo[:, -1])  # [c] every pixel at the maximum is inside
    lo_hi = _as_float(np.stack([keys[:, 0], keys[:, -1]], axis=1) >> 1)  # [c, 2] min and max
    return hits[:, :-1], share[:, :-1], (at[:, :-1] >> 1).astype(np.int32), ap, peaks_in, ordered, lo_hi


def _pixel_ap(keys: np.ndarray, places: np.ndarray, inside_keys: np.ndarray) -> float:
    """Pixel AP of one map from its sorted keys ``[n]``, its inside pixels' places ``[K]`` and keys ``[K]``.

    Over the tie groups that hold inside pixels: a group scores the precision of the pixels ``>=`` its value,
    ``(K - r0) / (n - g)``, once per inside pixel in it (sklearn's step-wise AP); ``r0`` is the inside rank of its
    first inside pixel and ``g`` the place of its first pixel (outside pixels of the same value sort just before
    the inside ones). One map at a time: the arrays stay in cache, and Python's cost is a dozen calls per map."""
    n, k_in = keys.size, inside_keys.size
    first = np.flatnonzero(inside_keys[1:] != inside_keys[:-1]) + 1  # [G - 1] a new value among the inside pixels
    first = np.concatenate([[0], first])  # [G] inside rank of each group's first inside pixel
    g = places[first]  # [G] its place
    key = inside_keys[first]  # [G]
    behind = np.flatnonzero((keys[g - 1] == key - 1) & (g > 0))  # [F] groups that start with outside pixels
    if behind.size:
        g[behind] = np.searchsorted(keys, key[behind] - 1)  # the group's first key: value << 1
    inside_in_group = np.diff(first, append=k_in)  # [G]
    return float((inside_in_group * ((k_in - first) / (n - g))).sum()) / k_in


@lru_cache(maxsize=32)
def _host_lerp(n_in: tuple[int, int], side: int) -> tuple[np.ndarray, ...]:
    """``raster._lerp_indices`` along y and x, and along x the source column after each column (edge-clamped)."""
    y0, y1, wy = _lerp_indices(n_in[0], side)
    x0, x1, wx = _lerp_indices(n_in[1], side)
    nxt = np.minimum(np.arange(n_in[1]) + 1, n_in[1] - 1)  # [gw] as _lerp_indices: x1 = min(x0 + 1, gw - 1)
    if not np.array_equal(nxt[x0], x1):
        raise AssertionError("_lerp_indices changed: x1 is no longer min(x0 + 1, gw - 1)")
    return y0, y1, wy[:, None], x0, nxt, wx


def host_upsample(maps: np.ndarray, side: int) -> np.ndarray:
    """``raster.upsample`` of ``[c, gh, gw]`` float32 maps, the same bits (tested), in fewer passes at ``R x R``.

    The same lerps ``a + w * (b - a)`` in float32 in the same order (rows first). Along x the difference
    ``b - a`` of two source columns is the same for every output pixel between them, so it is taken once per
    source column on the ``[c, R, gw]`` rows, and gathered with them: one gather, one product and one sum at full
    size instead of two gathers, a difference, a product and a sum."""
    y0, y1, wy, x0, nxt, wx = _host_lerp(maps.shape[-2:], side)
    top, bottom = maps[:, y0, :], maps[:, y1, :]  # [c, R, gw]
    rows = top + wy * (bottom - top)  # [c, R, gw]
    pair = np.stack([rows, rows[..., nxt] - rows])[..., x0]  # [2, c, R, R]: a and b - a at every pixel
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
    out.update(_host_continuous(up, lo, hi, h))
    return out


def _host_continuous(up: np.ndarray, lo: np.ndarray, hi: np.ndarray, h: HostTargets) -> dict[str, np.ndarray]:
    """mse, kl and emd of ``[c, n]`` upsampled maps (``continuous``'s definitions), numpy on the CPU."""
    c, n = up.shape
    span = (hi - lo)[:, None]  # [c, 1] float32
    scale = np.divide(np.float32(1.0), span, out=np.zeros_like(span), where=span > 0)  # 0 for a flat map
    m = up - lo[:, None]
    m *= scale
    np.clip(m, 0.0, 1.0, out=m)  # [c, n] normalize_maps
    diff = m - h.gt  # [c, n] float32
    np.square(diff, out=diff)
    mse = diff.sum(axis=1, dtype=np.float64) / n  # [c]
    log_q = np.add(m, np.float32(KL_EPSILON), out=diff)
    np.log(log_q, out=log_q)  # [c, n] float32: relative error ~1e-7 per pixel
    totals = m.sum(axis=1, dtype=np.float64) + n * KL_EPSILON  # [c]
    cross = np.einsum("cn,n->c", log_q, h.p)  # [c] sum p log q in float64, no BLAS (see _mass)
    kl = np.maximum(h.p_log_p - cross + np.log(totals), 0.0)  # [c]
    g = h.rows.shape[0]
    if h.side % g == 0:  # each cell averages b x b pixels: block sums (the average's 1 / b^2 cancels below)
        b = h.side // g
        cells = m.reshape(c, g, b, g, b).sum(axis=(2, 4), dtype=np.float64).reshape(c, -1)  # [c, g * g]
    else:
        cells = (h.rows @ m.reshape(c, h.side, h.side) @ h.cols_t).astype(np.float64).reshape(c, -1)  # [c, g * g]
    mass = cells.sum(axis=1, keepdims=True)  # [c, 1]
    dist = np.where(mass > 0, cells / np.where(mass > 0, mass, 1.0), 1.0 / cells.shape[1])
    return {"mse": mse, "kl": kl, "emd": wasserstein_grids(dist, h.q_emd)}
