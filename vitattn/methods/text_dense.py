"""Dense, training-free text maps of CLIP-like ViTs: the last block re-run with another attention, every patch token
brought into the joint image-text space, the map the cosine of each patch with a prompt's embedding.

Each method changes the last block only (the blocks before it run as trained):

* ``maskclip`` (Zhou, Loy & Dai, "Extract Free Dense Labels from CLIP", ECCV 2022, sec. 3.2): identity attention
  (each token takes its own value), the output projection, no residual, no MLP.
* ``sclip`` (Wang, Mei & Yuille, "SCLIP: Rethinking Self-Attention for Dense Vision-Language Inference", ECCV 2024,
  sec. 3.2, correlative self-attention): ``softmax(q q^T s) + softmax(k k^T s)``, residual and MLP kept.
* ``clearclip`` (Lan et al., "ClearCLIP: Decomposing CLIP Representations for Dense Vision-Language Inference",
  ECCV 2024, sec. 4): ``softmax(q q^T s)``, no residual, no MLP.
* ``naclip`` (Hajimiri, Ben Ayed & Dolz, "Pay Attention to Your Neighbours: Training-Free Open-Vocabulary Semantic
  Segmentation", WACV 2025, sec. 3): ``softmax(k k^T s + Omega)``, ``Omega`` an unnormalised 2-D Gaussian over the
  patch grid (standard deviation 5 patches, 1 at the patch itself) and 0 for prefix tokens, no residual, no MLP.
  The paper's reported numbers add a post-hoc refinement (PAMR) that is not part of the map here.

``s`` is the block's own scale ``1 / sqrt(head_dim)``. The tokens then go through the model's final norm and its
projection into the joint space:

* CLIP (a CLS model with a projection head): final LayerNorm (OpenAI's ``ln_post``), then the projection.
* SigLIP (no CLS; the image embedding is an attention-pooling head's output): final LayerNorm, then the pooling head
  as if its attention put all its weight on that one patch: the value projection, the output projection and the
  head's MLP residual (``y = proj(v(x_i))``, ``e_i = y + mlp(norm(y))``). This is how MaskCLIP itself treats an
  attention-pooling head (its ResNet CLIP: the pool's value and output projections as 1x1 convolutions, sec. 3.2);
  SigLIP's head also has an MLP, which is applied per token like the final norm.
"""

from __future__ import annotations

import torch
from torch import nn

from ..text.specs import DENSE_METHODS
from ..tokens import patch_tokens

NACLIP_STD = 5.0  # patches (NACLIP, sec. 4.1 "we set the standard deviation to 5")


def _qkv(attn: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """timm ``Attention``'s q, k, v of ``x`` ``(B, T, D)``, each ``(B, H, T, hd)`` (after q_norm / k_norm)."""
    if type(attn).__name__ != "Attention" or getattr(attn, "gate", None) is not None:
        raise ValueError(f"dense text methods need timm's plain Attention, not {type(attn).__name__}")
    b, t, _ = x.shape
    qkv = attn.qkv(x).reshape(b, t, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, T, hd)
    q, k, v = qkv.unbind(0)
    return attn.q_norm(q), attn.k_norm(k), v


def _attend(attn: nn.Module, weights: torch.Tensor | None, v: torch.Tensor) -> torch.Tensor:
    """``proj(weights @ v)`` with the heads concatenated, ``(B, T, D)``; ``weights`` None is the identity."""
    b, h, t, hd = v.shape
    y = v if weights is None else weights @ v  # (B, H, T, hd)
    y = y.transpose(1, 2).reshape(b, t, h * hd)  # (B, T, D)
    return attn.proj(attn.norm(y))


def gaussian_bias(grid: tuple[int, int], num_prefix: int, std: float = NACLIP_STD) -> torch.Tensor:
    """NACLIP's neighbourhood term ``Omega`` ``(T, T)``: ``exp(-|p_i - p_j|^2 / (2 std^2))`` between patches at grid
    positions ``p``, 0 in the rows and columns of prefix tokens."""
    gh, gw = grid
    rows, cols = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    pos = torch.stack([rows.reshape(-1), cols.reshape(-1)], 1).double()  # (N, 2) raster order
    omega = torch.exp(-(torch.cdist(pos, pos) ** 2) / (2 * std**2))  # (N, N)
    out = torch.zeros(num_prefix + gh * gw, num_prefix + gh * gw, dtype=torch.float64)
    out[num_prefix:, num_prefix:] = omega
    return out


def last_block(block: nn.Module, x: torch.Tensor, method: str, grid: tuple[int, int], num_prefix: int) -> torch.Tensor:
    """The tokens ``(B, T, D)`` the last block gives for its input ``x`` under a dense method's attention."""
    attn = block.attn
    q, k, v = _qkv(attn, block.norm1(x))
    s = attn.scale
    if method == "maskclip":
        return _attend(attn, None, v)
    if method == "clearclip":
        return _attend(attn, ((q @ q.transpose(-2, -1)) * s).softmax(-1), v)
    if method == "naclip":
        omega = gaussian_bias(grid, num_prefix).to(k.dtype).to(k.device)  # (T, T)
        return _attend(attn, ((k @ k.transpose(-2, -1)) * s + omega).softmax(-1), v)
    if method == "sclip":
        weights = ((q @ q.transpose(-2, -1)) * s).softmax(-1) + ((k @ k.transpose(-2, -1)) * s).softmax(-1)
        y = x + block.ls1(_attend(attn, weights, v))
        return y + block.ls2(block.mlp(block.norm2(y)))
    raise ValueError(f"unknown dense text method {method!r}; valid: {', '.join(DENSE_METHODS)}")


def to_joint(module: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Tokens ``(B, N, D)`` (patches, no prefix) after the final norm and the projection into the joint space,
    ``(B, N, D_joint)``, each token on its own (see the module docstring)."""
    x = module.norm(tokens)
    pool = getattr(module, "attn_pool", None)
    if pool is not None:
        if getattr(pool, "pos_embed", None) is not None:
            x = x + pool.pos_embed.unsqueeze(0).to(x.dtype)
        d = x.shape[-1]
        y = pool.proj(pool.kv(x)[..., d:])  # (B, N, D): one-hot pooling attention takes the token's own value
        x = y + pool.mlp(pool.norm(y)) if pool.mlp is not None else y
    elif getattr(module, "global_pool", "token") != "token":
        raise ValueError(
            "dense text methods need a CLS-token model with a projection head or an attention-pooling head"
        )
    return module.head(module.fc_norm(x))


def patch_embeddings(
    module: nn.Module, x_last: torch.Tensor, method: str, grid: tuple[int, int], num_prefix: int
) -> torch.Tensor:
    """Joint-space patch embeddings ``(B, gh * gw, D_joint)`` (not normalised) of a dense method.

    Args:
        module: the timm ViT.
        x_last: the input of its last block, ``(B, T, D)``.
        method: one of `DENSE_METHODS`.
        grid: ``(gh, gw)``.
        num_prefix: CLS + register tokens.
    """
    tokens = last_block(module.blocks[-1], x_last, method, grid, num_prefix)  # (B, T, D)
    return to_joint(module, patch_tokens(tokens, num_prefix, grid))
