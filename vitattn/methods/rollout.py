"""Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers", sec. 3)."""

from __future__ import annotations

import torch

from ..tokens import patch_values
from ..trace import Maps, Trace


def residual_attention(attn: torch.Tensor) -> torch.Tensor:
    """``(B, H, T, T)`` attention -> ``(B, T, T)``: heads fused by mean, ``(A + I) / 2``, rows renormalized."""
    a = attn.mean(1)  # (B, T, T) heads fused
    a = (a + torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)) / 2  # residual
    return a / a.sum(-1, keepdim=True)  # rows sum to 1


def rollout_matrices(attentions: list[torch.Tensor]) -> list[torch.Tensor]:
    """Rolled-out attention from the first layer up to and including each layer.

    Per layer: heads fused by mean, the residual connection added as ``(A + I) / 2``, rows renormalized, and the
    matrices multiplied: ``R_l = A'_l @ R_{l-1}``, ``R_0 = A'_0``.

    Args:
        attentions: per layer ``(B, H, T, T)`` softmax attention (rows = queries).

    Returns:
        Per layer ``(B, T, T)``.
    """
    out: list[torch.Tensor] = []
    rolled = None
    for attn in attentions:
        a = residual_attention(attn)  # (B, T, T)
        rolled = a if rolled is None else a @ rolled  # (B, T, T)
        out.append(rolled)
    return out


def rollout(trace: Trace) -> dict[int, Maps]:
    """Rollout read out at the CLS row; heads are fused by definition, so there are no per-head maps.

    Models without a CLS token (SigLIP) have no query that stands for the image, so we read out the mean row of
    the rolled-out matrix: the flow from every token to each patch averaged over all tokens, the same readout as
    the `mean` method, which is what a uniformly pooled token would see.
    """
    if trace.attentions is None:
        raise ValueError("rollout needs attention weights")
    out = {}
    for layer, rolled in enumerate(rollout_matrices(trace.attentions)):
        row = rolled[:, 0, :] if trace.has_cls else rolled.mean(1)  # (B, T)
        out[layer] = Maps(None, patch_values(row, trace.num_prefix, trace.grids[layer]))
    return out
