"""LeGrad (Bousselham, Boggust, Chaybouti, Strobelt & Kuehne, "LeGrad: An Explainability Method for Vision
Transformers via Feature Formation Sensitivity", 2024, arXiv 2404.03214, sec. 3), as the authors' code computes it
(github.com/WalBouss/LeGrad, ``legrad/wrapper.py`` of release 1.1: ``compute_legrad_clip``,
``compute_legrad_siglip``).

For every layer ``l`` from a start layer up, the tokens after block ``l`` are turned into an image embedding the way
the model turns its last tokens into one, the embedding's cosine with the prompt is differentiated with respect to an
attention map, the gradient's positive part is averaged into one value per patch, and the maps are summed over the
layers:

* CLIP: embedding ``normalize(proj(ln_post(mean over all tokens of block l's output))))``; gradient with respect to
  block ``l``'s own attention ``(H, T, T)``, mean over heads and over query rows, prefix columns dropped.
* SigLIP: embedding ``normalize(attn_pool(block l's output))`` (the authors' code pools the block output without
  the final norm); gradient with respect to the pooling head's attention ``(H, 1, T)``, mean over heads. The authors'
  default correction then zeroes the patches where the same map for the prompt "a photo of a", min-max normalised, is
  above 0.8.

The authors min-max normalise the summed map and upsample it to pixels; vitattn keeps the patch grid and the raw sum
(min-max is an increasing affine rescaling per map). The map at layer ``l`` is the sum from the start layer to ``l``,
so the last layer gives the paper's map. The start layer is the authors' default, ``layer_index=-2``: the last two
layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..tokens import patch_values

START_FROM_END = 2  # LeWrapper(model, layer_index=-2)
EMPTY_PROMPT = "a photo of a"  # LeWrapper._init_empty_embedding
CORRECTION_THRESHOLD = 0.8  # compute_legrad_siglip(correction_threshold=0.8)


def start_layer(num_layers: int) -> int:
    return max(num_layers - START_FROM_END, 0)


def pool_with_attention(pool: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """timm ``AttentionPoolLatent`` on ``x`` ``(B, N, D)``, step by step as timm computes it, also returning its
    softmax attention ``(B, H, latent_len, N)`` (the authors' ``hooked_attentional_pooler_timm_forward``)."""
    b, n, c = x.shape
    if pool.pos_embed is not None:
        x = x + pool.pos_embed.unsqueeze(0).to(x.dtype)
    q = pool.q(pool.latent.expand(b, -1, -1)).reshape(b, pool.latent_len, pool.num_heads, pool.head_dim).transpose(1, 2)
    k, v = pool.kv(x).reshape(b, n, 2, pool.num_heads, pool.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = pool.q_norm(q), pool.k_norm(k)
    attn = ((q * pool.scale) @ k.transpose(-2, -1)).softmax(-1)  # (B, H, Lq, N)
    y = pool.proj((attn @ v).transpose(1, 2).reshape(b, pool.latent_len, c))  # (B, Lq, D)
    if pool.mlp is not None:
        y = y + pool.mlp(pool.norm(y))
    y = y[:, 0] if pool.pool == "token" else y.mean(1) if pool.pool == "avg" else y
    return y, attn


def _grad(score: torch.Tensor, wrt: torch.Tensor) -> torch.Tensor:
    return torch.autograd.grad(score, [wrt], retain_graph=True)[0]


def legrad_clip(
    module: nn.Module,
    outputs: list[torch.Tensor],
    attentions: list[torch.Tensor],
    text: torch.Tensor,
    num_prefix: int,
    grid: tuple[int, int],
) -> dict[int, torch.Tensor]:
    """LeGrad of a CLS model with a projection head, per layer from the start layer: ``{layer: (B, P, gh, gw)}``.

    Args:
        module: the timm ViT (``norm`` is ``ln_post``, ``head`` the projection).
        outputs: per block its output tokens ``(B, T, D)``, in the autograd graph of ``attentions``.
        attentions: per block its softmax attention ``(B, H, T, T)``.
        text: ``(P, D_joint)`` L2-normalised prompt embeddings.
    """
    out, acc = {}, 0
    for layer in range(start_layer(len(outputs)), len(outputs)):
        emb = F.normalize(module.head(module.fc_norm(module.norm(outputs[layer].mean(1)))), dim=-1)  # (B, Dj)
        sims = emb @ text.to(emb.dtype).T  # (B, P)
        per_prompt = []
        for p in range(text.shape[0]):
            grad = _grad(sims[:, p].sum(), attentions[layer]).clamp(min=0)  # (B, H, T, T)
            per_prompt.append(patch_values(grad.mean(1).mean(1), num_prefix, grid))  # (B, gh, gw)
        acc = acc + torch.stack(per_prompt, 1)  # (B, P, gh, gw)
        out[layer] = acc
    return out


def _pool_relevance(pool: nn.Module, outputs: list[torch.Tensor], text: torch.Tensor, grid) -> dict[int, torch.Tensor]:
    out, acc = {}, 0
    for layer in range(start_layer(len(outputs)), len(outputs)):
        pooled, attn = pool_with_attention(pool, outputs[layer])  # (B, Dj), (B, H, 1, N)
        sims = F.normalize(pooled, dim=-1) @ text.to(pooled.dtype).T  # (B, P)
        per_prompt = [_grad(sims[:, p].sum(), attn).clamp(min=0).mean(1)[:, 0] for p in range(text.shape[0])]
        acc = acc + patch_values(torch.stack(per_prompt, 1), 0, grid)  # (B, P, gh, gw)
        out[layer] = acc
    return out


def min_max(maps: torch.Tensor) -> torch.Tensor:
    """Each map ``(..., gh, gw)`` rescaled to [0, 1] (the authors' ``min_max``)."""
    flat = maps.flatten(-2)
    lo, hi = flat.min(-1, keepdim=True)[0], flat.max(-1, keepdim=True)[0]
    return ((flat - lo) / (hi - lo)).reshape(maps.shape)


def legrad_siglip(
    module: nn.Module, outputs: list[torch.Tensor], text: torch.Tensor, empty: torch.Tensor | None, grid
) -> dict[int, torch.Tensor]:
    """LeGrad of an attention-pooling model, ``{layer: (B, P, gh, gw)}``; ``empty`` ``(1, D_joint)``: the embedding
    of `EMPTY_PROMPT` for the authors' correction (None: no correction)."""
    pool = module.attn_pool
    if getattr(module, "num_prefix_tokens", 0) and not getattr(module, "pool_include_prefix", False):
        outputs = [o[:, module.num_prefix_tokens :] for o in outputs]
    maps = _pool_relevance(pool, outputs, text, grid)
    if empty is None:
        return maps
    background = _pool_relevance(pool, outputs, empty, grid)
    return {layer: m.masked_fill(min_max(background[layer]) > CORRECTION_THRESHOLD, 0) for layer, m in maps.items()}
