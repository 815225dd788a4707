"""Patch features stored smaller: float16, or int8 with one scale per token (symmetric absmax). Numpy only.

int8: each token (a row of ``D`` values) is divided by its own scale ``s = max |x| / 127`` and rounded, so the
largest value of every token is stored exactly (up to float32 rounding of ``s``) and every value within ``s / 2``;
a per-token scale keeps a token with small values from losing its precision to one with large values (the
absmax scheme of LLM.int8(), Dettmers et al. 2022, Sec. 3.1, applied per row of patch tokens). A token of
zeros has scale 0.
"""

from __future__ import annotations

import warnings

import numpy as np

from vitattn.store.layout import FLOAT16_MAX

FEATURE_DTYPES = ("float16", "int8")
INT8_MAX = 127


def quantize_int8(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[N, D]`` float tokens -> ``(int8 [N, D], float32 scale [N])`` with ``tokens ~ q * scale[:, None]``."""
    x = np.asarray(tokens, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"tokens must be [N, D], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("tokens hold NaN or infinite values: they cannot be quantized")
    scale = (np.abs(x).max(axis=1) / INT8_MAX).astype(np.float32) if x.shape[1] else np.zeros(len(x), np.float32)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32)  # [N] a zero token stays zero
    q = np.clip(np.rint(x / safe[:, None]), -INT8_MAX, INT8_MAX).astype(np.int8)  # [N, D]
    return q, scale


def dequantize_int8(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``int8 [N, D]`` and ``scale [N]`` -> float32 ``[N, D]``."""
    return np.asarray(q, dtype=np.float32) * np.asarray(scale, dtype=np.float32)[:, None]


def to_float16(values: np.ndarray, what: str) -> np.ndarray:
    """``values`` as float16, clipped to its finite range (a warning says how many values were clipped)."""
    values = np.asarray(values, dtype=np.float32)
    over = int(np.count_nonzero(np.abs(values) > FLOAT16_MAX))
    if over:
        warnings.warn(f"{what}: {over} value(s) beyond the float16 range were clipped to +-{FLOAT16_MAX}", stacklevel=3)
    return np.clip(values, -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)


def round_trip(tokens: np.ndarray, dtype: str) -> np.ndarray:
    """``tokens`` as the store gives them back after storing them as ``dtype`` (float32)."""
    if dtype == "float16":
        return to_float16(tokens, "features").astype(np.float32)
    if dtype == "int8":
        return dequantize_int8(*quantize_int8(tokens))
    raise ValueError(f"feature dtype {dtype!r}: expected one of {', '.join(FEATURE_DTYPES)}")
