"""Raw attention maps: what the CLS token attends to, and what every patch receives on average."""

from __future__ import annotations

from ..tokens import patch_values
from ..trace import Maps, Trace


def cls_attention(trace: Trace) -> dict[int, Maps]:
    """Attention from the CLS token (query 0) to every patch, per layer and head; fused = mean over heads."""
    if not trace.has_cls or trace.attentions is None:
        raise ValueError("cls attention needs a model with a CLS token")
    out = {}
    for layer, attn in enumerate(trace.attentions):  # attn: (B, H, T, T)
        heads = patch_values(attn[:, :, 0, :], trace.num_prefix, trace.grids[layer])  # (B, H, gh, gw)
        out[layer] = Maps(heads, heads.mean(1))
    return out


def mean_attention(trace: Trace) -> dict[int, Maps]:
    """Attention each patch receives, averaged over all query tokens (prefix tokens included); fused = head mean."""
    if trace.attentions is None:
        raise ValueError("mean attention needs attention weights")
    out = {}
    for layer, attn in enumerate(trace.attentions):  # attn: (B, H, T, T)
        received = attn.mean(2)  # (B, H, T): column means = attention received from the average query
        heads = patch_values(received, trace.num_prefix, trace.grids[layer])  # (B, H, gh, gw)
        out[layer] = Maps(heads, heads.mean(1))
    return out


def pool_attention(trace: Trace) -> dict[int, Maps]:
    """SigLIP's attention-pooling (MAP) head: the probe's attention over the final tokens; fused = head mean.

    This is what SigLIP actually pools into its image embedding (Zhai et al. 2023, sec. 2; the MAP head of
    Lee et al. 2019, "Set Transformer"), so it is the model's own answer to "where does the embedding come from".
    It belongs to the last layer.
    """
    if trace.pool is None:
        raise ValueError("pool attention needs a model with an attention-pooling head")
    last = trace.num_layers - 1
    heads = patch_values(trace.pool, trace.num_prefix, trace.grids[last])  # (B, H, gh, gw)
    return {last: Maps(heads, heads.mean(1))}
