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
