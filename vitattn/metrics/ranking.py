"""How many pixels to keep at a percentile, and how many of the top-k fall in a mask when values tie.

Keeping the top ``k`` pixels of a map is ambiguous when several pixels share the k-th largest value (flat
regions: ReLU zeros of Grad-CAM-like maps, float16 storage, edge-clamped upsampling). ``expected_top_k_hits``
keeps exactly ``k`` and resolves the tie by its expectation over a uniformly random tie-break: with threshold
``t`` the k-th largest value, ``n_above`` pixels above ``t`` and ``n_tied`` pixels equal to ``t``, the
``k - n_above`` remaining places are shared evenly among the tied pixels, so a mask holding ``tied_in`` of them
gets ``hits = hits_above + (k - n_above) * tied_in / n_tied``. No pixel order (raster or otherwise) enters, so a
mirror-symmetric map scores the same against mirrored boxes.

``descending_order`` is a deterministic full ranking (ties in raster order) for display and inspection; the
metrics do not use it.
"""

from __future__ import annotations

import math

import numpy as np


def check_percentile(percentile: float) -> float:
    """Returns ``percentile`` as a float, or raises ValueError unless it lies strictly inside (0, 100)."""
    try:
        p = float(percentile)
    except (TypeError, ValueError):
        raise ValueError(f"percentile must be a number in (0, 100), got {percentile!r}") from None
    if not 0.0 < p < 100.0:
        raise ValueError(f"percentile must lie strictly inside (0, 100), got {percentile!r}")
    return p


def top_k_count(n: int, percentile: float) -> int:
    """How many of ``n`` pixels lie above the ``percentile``-th percentile: ``max(1, round(n * (100 - p) / 100))``.

    Rounds half up, so the count does not depend on Python's round-half-to-even.
    """
    p = check_percentile(percentile)
    return max(1, math.floor(n * (100.0 - p) / 100.0 + 0.5))


_CHUNK = 8  # maps per block in expected_top_k_hits: keeps the temporaries in cache
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)  # set bits of each byte


def _count_bits(packed: np.ndarray) -> np.ndarray:
    """Set bits along the last axis of a uint8 array (``np.packbits`` output): ``[...]`` int64."""
    bits = np.bitwise_count(packed) if hasattr(np, "bitwise_count") else _POPCOUNT[packed]  # numpy < 2 fallback
    return bits.sum(axis=-1, dtype=np.int64)


def expected_top_k_hits(values: np.ndarray, masks: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Expected number of each map's top-k pixels inside each mask, ties at the threshold shared evenly.

    Args:
        values: ``[N, n]`` finite flattened maps (compared at float32 precision).
        masks: ``[M, n]`` bool flattened masks.
        ks: ``[K]`` counts in ``[1, n]``.

    Returns:
        ``[N, K, M]`` float64 ``hits_above + (k - n_above) * tied_in / n_tied`` (see the module docstring);
        an integer when no tie straddles the threshold. Summed over masks that tile the image it gives ``k``.

    One sort per map finds the thresholds; the pixels above and at each threshold are then counted as packed
    bits (``np.packbits``), so each extra percentile or mask costs a few microseconds per map.
    """
    x = np.asarray(values, dtype=np.float32)  # [N, n]
    n_maps, n = x.shape
    ks = np.asarray(ks, dtype=np.int64).reshape(-1)  # [K]
    if ks.size == 0 or ks.min() < 1 or ks.max() > n:
        raise ValueError(f"ks must lie in [1, {n}], got {ks.tolist()}")
    masks = np.asarray(masks, dtype=bool)  # [M, n]
    if masks.ndim != 2 or masks.shape[1] != n:
        raise ValueError(f"masks must be [M, {n}], got shape {masks.shape}")
    unique_ks, which = np.unique(ks, return_inverse=True)  # [U], [K]
    packed_masks = np.packbits(masks, axis=1)  # [M, ceil(n / 8)]; padding bits are 0
    above = np.empty((n_maps, len(unique_ks), masks.shape[0] + 1), dtype=np.int64)  # [N, U, M + 1]; last: all
    tied = np.empty_like(above)  # [N, U, M + 1]; last column >= 1 (the threshold is a pixel's value)
    for start in range(0, n_maps, _CHUNK):
        rows = slice(start, start + _CHUNK)
        block = x[rows]  # [c, n]
        thresholds = np.sort(block, axis=1)[:, n - unique_ks]  # [c, U] the k-th largest values
        for j in range(len(unique_ks)):
            t = thresholds[:, j : j + 1]  # [c, 1]
            for counts, selected in ((above, block > t), (tied, block == t)):
                bits = np.packbits(selected, axis=1)  # [c, ceil(n / 8)]
                counts[rows, j, -1] = _count_bits(bits)  # [c]
                counts[rows, j, :-1] = _count_bits(bits[:, None, :] & packed_masks)  # [c, M]
    share = (unique_ks - above[..., -1]) / tied[..., -1]  # [N, U] chance that a tied pixel is kept
    hits = above[..., :-1] + share[..., None] * tied[..., :-1]  # [N, U, M]
    return hits[:, which]  # [N, K, M]


def _index_bits(n: int) -> int:
    """Bits needed to store a pixel index below ``n``."""
    return max(1, int(n - 1).bit_length())


def _descending_keys(values: np.ndarray) -> np.ndarray:
    """int64 keys whose ascending order is (value descending, pixel index ascending); ``values`` is ``[N, n]``."""
    x = np.asarray(values, dtype=np.float32) + np.float32(0.0)  # -0.0 + 0.0 == +0.0: equal values, equal bits
    bits = x.view(np.int32)  # [N, n]
    ordered = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))  # [N, n] int32, same order as the floats
    shift = _index_bits(x.shape[-1])
    index = np.arange(x.shape[-1], dtype=np.int64)  # [n]
    return ((~ordered).astype(np.int64) << shift) | index  # [N, n]; ~ reverses the order without overflow


def descending_order(values: np.ndarray) -> np.ndarray:
    """Pixel indices from the highest value to the lowest, ties in raster order (for display; not the metrics).

    Each float32 value is mapped to an integer with the same order and packed with its pixel index into one
    int64 key, and the (all distinct) keys are sorted: ~5x faster than a stable argsort.

    Args:
        values: ``[N, n]`` finite flattened maps (compared at float32 precision).

    Returns:
        ``[N, n]`` intp indices, identical to ``np.argsort(-values, axis=-1, kind="stable")``.
    """
    shift = _index_bits(values.shape[-1])
    keys = np.sort(_descending_keys(values), axis=-1)  # [N, n]
    return (keys & ((1 << shift) - 1)).astype(np.intp)  # [N, n]
