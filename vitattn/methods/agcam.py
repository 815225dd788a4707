"""Attention-Guided CAM (Leem & Seo 2024, "Attention Guided CAM: Visual Explanations of Vision Transformer
Guided by Self-Attention", AAAI, arXiv 2402.04563, sec. 3, eqs. 5-9).

Per layer ``l`` and head ``h``: the gradient of the class score with respect to the softmax attention, positive
part only (eq. 7, alpha), times the sigmoid of the pre-softmax attention scores (eq. 5, the feature map F), both
taken at the CLS row, the only one wired directly to the classifier head. The paper sums over heads and layers
(eqs. 8-9; its reference code uses ``sum`` for both fusions).

In vitattn: a single head at layer ``l`` is that head's term at layer ``l``; the fused map at layer ``l`` sums all
heads and layers ``0..l``, so the fused map at the last layer is the paper's AG-CAM.
"""

from __future__ import annotations

import torch

from ..tokens import patch_values
from ..trace import Maps, Trace


def agcam_terms(scores: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """``ReLU(dy/dA) * sigmoid(S)`` at the CLS row.

    Args:
        scores: ``(B, H, T, T)`` pre-softmax attention scores of one layer.
        grads: ``(B, H, T, T)`` gradients of the class score with respect to that layer's softmax attention.

    Returns:
        ``(B, H, T)``.
    """
    return torch.relu(grads[:, :, 0, :]) * torch.sigmoid(scores[:, :, 0, :])


def agcam(trace: Trace) -> dict[int, Maps]:
    if trace.scores is None or trace.attention_grads is None or not trace.has_cls:
        raise ValueError("agcam needs a ViT classifier with a CLS token, its attention scores and gradients")
    out = {}
    total = None
    for layer, (scores, grads) in enumerate(zip(trace.scores, trace.attention_grads, strict=True)):
        heads = patch_values(agcam_terms(scores, grads), trace.num_prefix, trace.grids[layer])  # (B, H, gh, gw)
        total = heads.sum(1) if total is None else total + heads.sum(1)  # (B, gh, gw)
        out[layer] = Maps(heads, total.clone())
    return out
