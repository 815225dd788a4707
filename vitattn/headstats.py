"""Per-head attention statistics: how far each head looks, how spread and where its image-level attention goes.

For every layer and head of a ViT (`head_stats`, computed inside ``Model.analyze(..., stats=True)``):

- ``distance_px``: mean attention distance (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", Fig. 7 and
  appendix D.7): for each patch query, the attention-weighted mean Euclidean distance to the attended patches,
  between patch centres in pixels of the model input (224 x 224; the image is resized to it without cropping);
  averaged over the patch queries. Prefix tokens (CLS, registers) have no position: they are dropped as queries
  and as keys, and each query's attention over the patches is renormalized to sum to 1, so the distance says
  where a head looks *among patches*, whatever share it gives to the prefix (that share is ``prefix_share``).
- ``entropy``: entropy in nats (natural log) of the CLS token's attention over all ``T`` tokens (prefix included);
  at most ``ln T``. SigLIP has no CLS token: its image-level attention is the pooling head's, which exists only
  after the last layer, so its row is at the last layer and the other layers are NaN.
- ``prefix_share``: the share of that same attention row on the prefix tokens (CLS + registers; the "registers
  absorb attention" effect of Darcet et al. 2024, "Vision Transformers Need Registers"); 0 without prefix tokens,
  NaN where there is no such row (SigLIP before the last layer).

`head_diversity` (numpy) summarizes a layer's heads: the mean pairwise total-variation distance between the
heads' CLS maps.
"""

from __future__ import annotations

import numpy as np
import torch

from .trace import Trace

STAT_NAMES = ("distance_px", "entropy", "prefix_share")


def patch_centers(grid: tuple[int, int], patch_size: int) -> torch.Tensor:
    """``(gh * gw, 2)`` centres ``(y, x)`` of the patches in input pixels, raster order (row 0 at the top)."""
    gh, gw = grid
    rows, cols = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")  # (gh, gw) each
    return (torch.stack([rows, cols], -1).reshape(-1, 2).double() + 0.5) * patch_size  # (P, 2)


def attention_distance(attn: torch.Tensor, num_prefix: int, grid: tuple[int, int], patch_size: int) -> torch.Tensor:
    """Mean attention distance in pixels per head, prefix tokens excluded and rows renormalized (module docstring).

    Args:
        attn: ``(B, H, T, T)`` softmax attention of one layer, rows = queries, ``T = num_prefix + gh * gw``.
        num_prefix: CLS + register tokens at the front.
        grid: ``(gh, gw)``.
        patch_size: pixels per patch side.

    Returns:
        ``(B, H)`` float32.
    """
    gh, gw = grid
    if attn.shape[-1] != num_prefix + gh * gw or attn.shape[-2] != attn.shape[-1]:
        raise ValueError(f"expected (B, H, T, T) attention with T = {num_prefix} + {gh}x{gw}, got {tuple(attn.shape)}")
    centers = patch_centers(grid, patch_size).to(attn.device)  # (P, 2)
    dist = torch.cdist(centers, centers).to(attn.dtype)  # (P, P) pixels
    patches = attn[:, :, num_prefix:, num_prefix:]  # (B, H, P, P) patch queries -> patch keys
    mass = patches.sum(-1, keepdim=True)  # (B, H, P, 1)
    per_query = (patches * dist).sum(-1, keepdim=True) / mass.clamp_min(torch.finfo(attn.dtype).tiny)  # (B, H, P, 1)
    return per_query[..., 0].mean(-1).float()  # (B, H)


def row_entropy(rows: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of attention rows ``(..., T)`` (0 log 0 = 0) -> ``(...)``."""
    return -torch.special.xlogy(rows, rows).sum(-1)


def image_attention_rows(trace: Trace) -> list[torch.Tensor | None]:
    """Per layer the ``(B, H, T)`` attention of the token that stands for the image: the CLS row, or for SigLIP
    the pooling head's attention at the last layer (None at the other layers)."""
    if trace.attentions is None:
        raise ValueError("head statistics need attention weights")
    if trace.has_cls:
        return [a[:, :, 0, :] for a in trace.attentions]  # (B, H, T) each
    rows: list[torch.Tensor | None] = [None] * trace.num_layers
    if trace.pool is not None:
        if trace.pool.shape[1] != trace.attentions[-1].shape[1]:
            raise ValueError(
                f"pooling head has {trace.pool.shape[1]} heads, the blocks {trace.attentions[-1].shape[1]}"
            )
        rows[-1] = trace.pool  # (B, H, T)
    return rows


def head_stats(trace: Trace, patch_size: int) -> dict[str, torch.Tensor]:
    """Every statistic of `STAT_NAMES` for every image, layer and head.

    Args:
        trace: a ViT's trace (attention of every layer).
        patch_size: pixels per patch side of the model input.

    Returns:
        ``{"distance_px", "entropy", "prefix_share"}`` -> ``(B, L, H)`` float32 tensors (NaN where undefined).
    """
    if trace.attentions is None:
        raise ValueError("head statistics need a transformer's attention; this model has none")
    distance = torch.stack(
        [
            attention_distance(a, trace.num_prefix, g, patch_size)
            for a, g in zip(trace.attentions, trace.grids, strict=True)
        ],
        1,
    )  # (B, L, H)
    nan = torch.full_like(distance[:, 0], float("nan"))  # (B, H)
    rows = image_attention_rows(trace)
    entropy = torch.stack([nan if r is None else row_entropy(r).float() for r in rows], 1)  # (B, L, H)
    share = torch.stack([nan if r is None else r[..., : trace.num_prefix].sum(-1).float() for r in rows], 1)
    return {"distance_px": distance, "entropy": entropy, "prefix_share": share}


def head_diversity(head_maps: np.ndarray) -> float:
    """Mean pairwise distance between the heads' maps of one layer, in [0, 1].

    Each map is normalized to sum to 1 (a distribution over patches); the distance between two heads is the total
    variation distance ``0.5 * sum |p - q|`` (0: the same map, 1: disjoint supports); the result is the mean over
    the ``H (H - 1) / 2`` pairs.

    Args:
        head_maps: ``(H, gh, gw)`` non-negative maps, e.g. ``Analysis.heads("cls", layer)``; ``H >= 2``.
    """
    maps = np.asarray(head_maps, dtype=np.float64)
    if maps.ndim != 3 or maps.shape[0] < 2:
        raise ValueError(f"head_diversity needs (H, gh, gw) maps of at least 2 heads, got shape {maps.shape}")
    if not np.isfinite(maps).all() or (maps < 0).any():
        raise ValueError("head_diversity needs finite, non-negative maps")
    flat = maps.reshape(maps.shape[0], -1)  # (H, P)
    sums = flat.sum(1, keepdims=True)  # (H, 1)
    if (sums <= 0).any():
        raise ValueError("head_diversity: a head's map sums to 0 and cannot be normalized")
    p = flat / sums  # (H, P)
    tv = 0.5 * np.abs(p[:, None, :] - p[None, :, :]).sum(-1)  # (H, H)
    i, j = np.triu_indices(p.shape[0], k=1)
    return float(tv[i, j].mean())
