"""Gradient-weighted attention relevance (Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability for
Interpreting Bi-Modal and Encoder-Decoder Transformers", ICCV, arXiv 2103.15679, sec. 3, eqs. 5-6).

Per layer: ``A_bar = E_h[ReLU(grad(A) * A)]`` (eq. 5: the attention weighted by the gradient of the target with
respect to it, positive part, mean over heads), and the relevance of tokens to tokens accumulates from the first
layer up as ``R = R + A_bar @ R`` from ``R = I`` (eq. 6, the self-attention rule), exactly as the authors'
reference code does (Transformer_MM_explainability_ViT.ipynb: ``avg_heads``, ``apply_self_attention_rules``,
``generate_relevance``).

In vitattn: the map at layer ``l`` is the readout row of ``R`` after layer ``l`` with the prefix tokens removed, so
the last layer gives the paper's map. The readout row is the CLS row (token 0). SigLIP has no CLS token; its image
embedding is what its attention-pooling (MAP) head pools, so the readout row is the pooling head's attention
(mean over heads) applied to ``R``: ``r = a_pool @ R``, the relevance that flows into the pooled embedding.
The heads are fused by definition (eq. 5), so there are no per-head maps.
"""

from __future__ import annotations

import torch

from ..tokens import patch_values
from ..trace import Maps, Trace


def relevance_matrices(attentions: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """Token-to-token relevance after each layer.

    Args:
        attentions: per layer ``(B, H, T, T)`` softmax attention (rows = queries).
        grads: per layer ``(B, H, T, T)`` gradient of the target with respect to that attention.

    Returns:
        Per layer ``(B, T, T)``: ``R_l = R_{l-1} + A_bar_l @ R_{l-1}``, ``R_{-1} = I``.
    """
    out: list[torch.Tensor] = []
    b, _, t, _ = attentions[0].shape
    rel = torch.eye(t, dtype=attentions[0].dtype, device=attentions[0].device).expand(b, t, t)  # (B, T, T)
    for attn, grad in zip(attentions, grads, strict=True):
        a_bar = torch.relu(grad * attn).mean(1)  # (B, T, T) eq. 5
        rel = rel + a_bar @ rel  # (B, T, T) eq. 6
        out.append(rel)
    return out


def gae(trace: Trace) -> dict[int, Maps]:
    """Relevance read out at the CLS row (SigLIP: the pooling head's attention row), per layer; heads fused."""
    if trace.attentions is None or trace.relevance_grads is None:
        raise ValueError("gae needs attention weights and their gradients through the whole network")
    if not trace.has_cls and trace.pool is None:
        raise ValueError("gae needs a CLS token or an attention-pooling head to read the relevance out at")
    out = {}
    for layer, rel in enumerate(relevance_matrices(trace.attentions, trace.relevance_grads)):
        pool = None if trace.has_cls else trace.pool.mean(1)[:, None, :]  # (B, 1, T) pooling attention, heads fused
        row = rel[:, 0, :] if pool is None else (pool @ rel)[:, 0, :]  # (B, T)
        out[layer] = Maps(None, patch_values(row, trace.num_prefix, trace.grids[layer]))
    return out
