"""Token layout: the one place where token sequences become patch grids.

A ViT sequence is ``[prefix tokens (CLS, registers), patch tokens in raster order]``; patch ``i`` sits at row
``i // gw`` and column ``i % gw`` of the grid, row 0 at the top. The prefix count and grid are read from the model.
"""

from __future__ import annotations

import torch


def patch_values(values: torch.Tensor, num_prefix: int, grid: tuple[int, int]) -> torch.Tensor:
    """Drops the prefix along the last (token) axis and lays the patches out on the grid.

    Args:
        values: ``[..., T]`` with ``T = num_prefix + gh * gw``.
        num_prefix: CLS + register tokens at the front of the sequence.
        grid: ``(gh, gw)``.

    Returns:
        ``[..., gh, gw]``.
    """
    gh, gw = grid
    if values.shape[-1] != num_prefix + gh * gw:
        raise ValueError(f"expected {num_prefix} + {gh}x{gw} tokens, got {values.shape[-1]}")
    return values[..., num_prefix:].reshape(*values.shape[:-1], gh, gw)


def patch_tokens(tokens: torch.Tensor, num_prefix: int, grid: tuple[int, int]) -> torch.Tensor:
    """``[B, T, D]`` token sequence -> ``[B, gh * gw, D]`` patch tokens in raster order."""
    gh, gw = grid
    if tokens.shape[1] != num_prefix + gh * gw:
        raise ValueError(f"expected {num_prefix} + {gh}x{gw} tokens, got {tokens.shape[1]}")
    return tokens[:, num_prefix:, :]


def feature_map_tokens(fmap: torch.Tensor) -> torch.Tensor:
    """A CNN feature map ``[B, C, h, w]`` -> ``[B, h * w, C]`` in the same raster order as ViT patches."""
    b, c, h, w = fmap.shape
    return fmap.reshape(b, c, h * w).transpose(1, 2)


def register_to_cells(maps: torch.Tensor, center: float) -> torch.Tensor:
    """Resamples CNN maps so that value ``(r, c)`` belongs to the centre of grid cell ``(r, c)``.

    Everything downstream assumes cell ``i`` of an ``n``-cell axis covers ``[i / n, (i + 1) / n)`` of the image,
    centred at ``i + 0.5`` cells. A ViT patch does; a CNN unit ``j`` of stride ``S`` is centred where its receptive
    field is, ``j + center`` cells (``center = c0 / S`` for a first unit centred at pixel ``c0``; symmetric padding
    puts ResNet's units at ``c0 = 0.5``, half a cell up-left of the cell centre). Each value is read at the cell
    centre by linear interpolation between neighbouring units, clamped at the edges.

    Args:
        maps: ``(B, h, w)``.
        center: centre of unit 0 in cells along both axes.
    """
    out = maps
    for axis in (1, 2):
        n = maps.shape[axis]
        u = (torch.arange(n, dtype=maps.dtype, device=maps.device) + 0.5 - center).clamp(0, n - 1)  # unit coords
        lo = u.floor().long()
        hi = (lo + 1).clamp(max=n - 1)
        w = (u - lo.to(maps.dtype)).view([-1 if d == axis else 1 for d in range(3)])
        out = out.index_select(axis, lo) * (1 - w) + out.index_select(axis, hi) * w
    return out
