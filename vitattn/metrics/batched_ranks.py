"""The ranking half of the CPU path (``batched_host.host_scores``): one sort per map serves every IoU percentile, the
relevance rank, the pointing game and the pixel AP, with the numpy reference's tie rules.

The sort key of a pixel is its value's order-preserving bits, shifted left, with the low bit set outside the box
union (``host_keys``): ascending value, and within a tie the inside pixels first. 32-bit keys wherever they fit,
which numpy sorts about twice as fast as 64-bit ones. After the sort, the inside pixels' places (``flatnonzero`` where
the key is even; exactly ``K`` per map) and keys give each threshold's tie bounds by binary search
(``ranking.expected_top_k_hits``'s rule) and the pixel AP (``_pixel_ap``, sklearn's step-wise AP).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

SPAN = 2**31 - 2  # widest (max - min) of a map's ordered bits for uint32 keys: (span << 1 | 1) + 2 < 2^32


class Buffers:
    """Arrays reused from one block of maps to the next: each name holds bytes that grow to the largest size asked
    for, viewed as the dtype and shape asked for (names are shared by arrays whose lives do not overlap).

    numpy takes its temporaries of this size (a block's pixels, megabytes) from the C heap, which gives the pages
    back to the kernel when they are freed (heap trimming), so each block faulted fresh pages in again: that cost a
    quarter of the scoring time on worker threads, measured. Writing the largest temporaries into these instead
    keeps the pages mapped."""

    def __init__(self) -> None:
        self._bytes: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        size = math.prod(shape) * dtype.itemsize
        held = self._bytes.get(name)
        if held is None or held.size < size:
            held = self._bytes[name] = np.empty(size, dtype=np.uint8)  # (numpy aligns its data for any dtype)
        return held[:size].view(dtype).reshape(shape)


def as_float(ordered: np.ndarray) -> np.ndarray:
    """The float32 values of ordered bits (``batched.ordered_bits`` is its own inverse on int32)."""
    ordered = np.asarray(ordered, dtype=np.int32)
    return (ordered ^ ((ordered >> 31) & 0x7FFFFFFF)).view(np.float32)


def host_keys(up: np.ndarray, outside_bit: np.ndarray, buffers: Buffers, sign_free: bool | None = None) -> tuple:
    """Sort keys ``[c, n]`` of ``[c, n]`` float32 maps, their ordered bits ``[c, n]`` int32 (``batched.ordered_bits``)
    and the keys' offset ``[c]`` int64: key = ``(ordered - offset) << 1 | outside bit``. ``sign_free``: whether no
    value has its sign bit set (no negative value, no -0.0), where the caller knows (None: looked at).

    uint32 keys where every map's ordered bits span at most ``SPAN``: always for sign-free maps (their float bits
    are already ordered and at most ``0x7F800000``: offset 0), and for maps of both signs up to about +-1e38;
    int64 otherwise."""
    c = up.shape[0]
    bits = up.view(np.int32)
    if sign_free is None:
        sign_free = bool(bits.min() >= 0)
    if sign_free:  # the bits are in the values' order
        keys = np.left_shift(bits.view(np.uint32), 1, out=buffers.get("pixels", up.shape, np.uint32))
        return np.bitwise_or(keys, outside_bit, out=keys), bits, np.zeros(c, dtype=np.int64)
    bits = (up + np.float32(0.0)).view(np.int32)  # -0.0 + 0.0 == +0.0: equal values, equal bits
    ordered = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))  # [c, n] int32, the floats' order
    offset = ordered.min(axis=1).astype(np.int64)  # [c]
    if int((ordered.max(axis=1) - offset).max()) <= SPAN:  # the difference fits int32: its wrap-around is exact
        keys = np.subtract(ordered, offset.astype(np.int32)[:, None]).view(np.uint32)
        np.left_shift(keys, 1, out=keys)
    else:
        keys = np.left_shift(ordered - offset[:, None], 1)  # [c, n] int64
    return np.bitwise_or(keys, outside_bit, out=keys), ordered, offset


def host_ranks(
    up: np.ndarray, outside_bit: np.ndarray, ks: np.ndarray, buffers: Buffers, sign_free: bool | None = None
) -> tuple[np.ndarray, ...]:
    """From one sort per map of ``[c, n]`` float32 maps, with ``outside_bit`` ``[n]`` uint8 (1 outside the union of
    ``K`` pixels) and top-k counts ``ks`` ``[T]`` (the last one ``K``): expected hits ``[c, T]`` of the union in
    the top ``k``, the share of a tied pixel kept ``[c, T]``, the thresholds ``[c, T]`` (ordered bits), the pixel
    AP ``[c]``, whether every peak lies in the union ``[c]``, the ordered bits ``[c, n]`` int32 and each map's min
    and max ``[c, 2]`` float32. ``sign_free``: as ``host_keys``."""
    c, n = up.shape
    k_in = int(ks[-1])
    keys, ordered, offset = host_keys(up, outside_bit, buffers, sign_free)
    keys.sort(axis=1)  # [c, n]
    low = np.bitwise_and(keys, 1, out=buffers.get("work", keys.shape, keys.dtype))  # [c, n] the outside bit
    where = np.flatnonzero(np.equal(low, 0, out=buffers.get("flags", keys.shape, bool)))  # [c * K] inside places
    inside_keys = buffers.get("inside_keys", (c, k_in), keys.dtype)  # [c, K] ascending
    np.take(keys.reshape(-1), where, out=inside_keys.reshape(-1), mode="clip")  # ("raise" would copy: 2x slower)
    ap = _pixel_ap(where, inside_keys, n, buffers)  # [c]
    # Thresholds: the k-th largest value for every k, and the maximum (pointing). ``a`` = a value's key with the
    # low bit 0: its pixels are the places from key ``a`` up to (not including) ``a + 2`` (no overflow: SPAN).
    ks = np.append(ks, 1)  # [T + 1]
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
    return hits[:, :-1], share[:, :-1], thresholds.astype(np.int32), ap, peaks_in, ordered, as_float(ends)


def _pixel_ap(where: np.ndarray, inside_keys: np.ndarray, n: int, buffers: Buffers) -> np.ndarray:
    """Pixel AP ``[c]`` of maps from their inside pixels' flat places ``[c * K]`` in the sorted order of their rows of
    ``n`` pixels and their keys ``[c, K]``, both ascending in each row: sklearn's step-wise AP.

    The inside pixel of rank ``r`` (ascending) scores the precision of the pixels ``>=`` its value,
    ``(K - r0) / (n - g)``, where ``r0`` is the rank of the first inside pixel of its tie group and ``g`` that
    pixel's place: inside pixels sort first within a tie, so it is the group's first pixel. Most inside pixels have
    a value of their own (``r0 = r``): every pixel is summed so, then the members of tie groups are corrected."""
    c, k_in = inside_keys.shape
    ends = np.arange(n, (c + 1) * n, n, dtype=np.float64)[:, None]  # [c, 1] each row's end, flat
    rest = np.subtract(ends, where.reshape(c, k_in), out=buffers.get("work", (c, k_in), np.float64))  # n - place
    plain = np.divide(_above(k_in), rest, out=rest).sum(axis=1)  # [c] sum of (K - r) / (n - place)
    tied = buffers.get("flags", (c, k_in), bool)  # [c, K] the same value as the inside pixel before it
    tied[:, 0] = False
    np.equal(inside_keys[:, 1:], inside_keys[:, :-1], out=tied[:, 1:])
    at = np.flatnonzero(tied)  # [S] flat inside index of each tied pixel (not its group's first)
    if not at.size:
        return plain / k_in
    row, rank = np.divmod(at, k_in)  # [S]
    starts = np.flatnonzero(np.diff(at, prepend=-2) > 1)  # [G] where a run of tied pixels (one group) begins
    first = np.repeat(at[starts] - 1, np.diff(starts, append=at.size))  # [S] flat index of the group's first
    rest, first_rest = (row + 1) * n - where[at], (row + 1) * n - where[first]  # [S] n - place
    fix = (k_in - (first - row * k_in)) / first_rest - (k_in - rank) / rest  # [S]
    return (plain + np.bincount(row, weights=fix, minlength=c)) / k_in


@lru_cache(maxsize=8)
def _above(k: int) -> np.ndarray:
    """``[K]`` float64 ``K - r``: the inside pixels from inside rank ``r`` up."""
    return np.arange(k, 0, -1, dtype=np.float64)
