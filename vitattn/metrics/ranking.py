"""Ranking pixels by value with a deterministic tie-break, and how many to keep at a percentile.

The top-k pixels of a map are those a stable sort on ``-value`` puts first: higher values first and, among
equal values, the earlier pixel in raster order (row by row, top-left first). This equals
``np.argsort(-x, kind="stable")`` but runs ~5x faster: each float32 value is mapped to an integer with the same
order and packed with its pixel index into one int64 key, and the (all distinct) keys are sorted.
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
    """Pixel indices from the highest value to the lowest, ties in raster order.

    Args:
        values: ``[N, n]`` finite flattened maps (compared at float32 precision).

    Returns:
        ``[N, n]`` intp indices, identical to ``np.argsort(-values, axis=-1, kind="stable")``.
    """
    shift = _index_bits(values.shape[-1])
    keys = np.sort(_descending_keys(values), axis=-1)  # [N, n]
    return (keys & ((1 << shift) - 1)).astype(np.intp)  # [N, n]
