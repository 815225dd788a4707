"""Feature similarity: how alike every patch is to the patches inside a region. Numpy only.

Features are ``[gh * gw, D]`` patch tokens in raster order on a grid covering the whole image, so cell ``(r, c)``
covers the normalized rectangle ``[c / gw, (c + 1) / gw) x [r / gh, (r + 1) / gh)``. A region is a normalized
``(x0, y0, x1, y1)`` with ``x0 <= x1`` and ``y0 <= y1``; ``x0 == x1`` and ``y0 == y1`` is a point.

Which cells a region selects (``region_cells``), per axis: the cells whose open interval overlaps the region's open
interval, ``x0 < (c + 1) / gw`` and ``c / gw < x1``; where the region has no width along that axis, the one cell
containing it, ``c = min(floor(x0 * gw), gw - 1)``. So a region always selects at least one cell, a point selects
the cell it falls in (the right or lower one on a shared edge), and a region touching a cell only along an edge
does not select it.

    from vitattn.similarity import similarity_map
    sim, cells = similarity_map(features, grid=(16, 16), region=(0.2, 0.3, 0.4, 0.5))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vitattn.boxes import check_box

Region = tuple[float, float, float, float]


def check_region(region: Sequence[float]) -> Region:
    """Validates a normalized region (a box, or a point when ``x0 == x1`` and ``y0 == y1``); returns floats.

    Raises:
        ValueError: not four finite numbers in [0, 1] with ``x0 <= x1`` and ``y0 <= y1``.
    """
    return check_box(region, what="region", allow_empty=True)


def _axis_cells(lo: float, hi: float, n: int) -> np.ndarray:
    """``[n]`` bool: cells ``[i / n, (i + 1) / n)`` overlapping ``(lo, hi)``, or the one holding ``lo`` if empty."""
    i = np.arange(n)
    if hi > lo:
        return (lo * n < i + 1) & (i < hi * n)
    return i == min(math.floor(lo * n), n - 1)


def region_cells(region: Sequence[float], grid: tuple[int, int]) -> np.ndarray:
    """The cells of a ``(gh, gw)`` grid a region selects (rule in the module docstring): ``[gh, gw]`` bool."""
    x0, y0, x1, y1 = check_region(region)
    gh, gw = check_grid(grid)
    return _axis_cells(y0, y1, gh)[:, None] & _axis_cells(x0, x1, gw)[None, :]  # [gh, gw]


def check_grid(grid: Sequence[int]) -> tuple[int, int]:
    if len(grid) != 2 or not all(isinstance(g, int | np.integer) and not isinstance(g, bool) and g > 0 for g in grid):
        raise ValueError(f"grid must be two positive integers (gh, gw), got {grid!r}")
    return int(grid[0]), int(grid[1])


def feature_grid(num_tokens: int, grid: tuple[int, int]) -> tuple[int, int]:
    """The grid of ``num_tokens`` patch features, a whole multiple ``s`` of ``grid`` per side: ``(s gh, s gw)``.

    A ViT's features share its map grid; a CNN stage ``k`` steps before the last has ``s = 2^k``.
    """
    gh, gw = check_grid(grid)
    side = math.isqrt(num_tokens // (gh * gw)) if num_tokens >= gh * gw else 0
    if side < 1 or side * side * gh * gw != num_tokens:
        raise ValueError(f"{num_tokens} features do not tile a multiple of the {gh}x{gw} grid")
    return gh * side, gw * side


def cosine_to_mean(features: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of ``features`` ``[N, D]`` to the mean of the ``selected`` rows ``[N]`` bool.

    A zero vector (a row or the mean) has similarity 0. Returns ``[N]`` float32.
    """
    f = np.asarray(features, dtype=np.float64)  # [N, D]
    sel = np.asarray(selected, dtype=bool).reshape(-1)  # [N]
    if f.ndim != 2 or sel.shape[0] != f.shape[0]:
        raise ValueError(f"features [N, D] and selected [N] disagree: {f.shape} and {sel.shape}")
    if not sel.any():
        raise ValueError("no feature is selected")
    if not np.isfinite(f).all():
        raise ValueError("features have non-finite values")
    query = f[sel].mean(axis=0)  # [D]
    norms = np.linalg.norm(f, axis=1) * np.linalg.norm(query)  # [N]
    dots = f @ query  # [N]
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0).astype(np.float32)


def similarity_map(
    features: np.ndarray, grid: tuple[int, int], region: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of every patch to the mean feature of the patches a region selects.

    Args:
        features: ``[N, D]`` patch features in raster order; ``N`` is ``grid`` or a whole multiple of it per side
            (see ``feature_grid``).
        grid: ``(gh, gw)`` of the model's maps.
        region: normalized ``(x0, y0, x1, y1)``, a point when ``x0 == x1`` and ``y0 == y1``.

    Returns:
        ``sim [fh, fw]`` float32 in [-1, 1] and the selected ``cells [fh, fw]`` bool, on the features' grid.
    """
    f = np.asarray(features)
    if f.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {f.shape}")
    fgrid = feature_grid(f.shape[0], grid)
    cells = region_cells(region, fgrid)  # [fh, fw]
    return cosine_to_mean(f, cells.reshape(-1)).reshape(fgrid), cells
