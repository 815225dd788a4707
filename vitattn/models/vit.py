"""Adapter for timm Vision Transformers (VisionTransformer and Eva: DINOv2, DINOv3, CLIP, MAE, SigLIP, ViT).

Attention weights are captured at each block's ``attn.attn_drop`` (the softmax output the module itself computes),
so fused/SDPA attention, which returns no weights, is switched off on every module that has it. SigLIP's
attention-pooling head is read from its own ``q_norm``/``k_norm`` outputs, and so are the pre-softmax scores that
AG-CAM needs.

Gradient targets: a classifier's class score (top-1 by default); a model without a class head explains its own
image embedding ``e`` through ``e . stopgrad(e)``, whose gradient is ``e^T de``: "what builds this embedding".
"""

from __future__ import annotations

import torch
from torch import nn

from ..capture import Capture
from ..tokens import patch_tokens
from ..trace import Trace


class VitAdapter:
    """Runs a timm ViT and fills a `Trace` with attention, patch tokens and (optionally) attention gradients."""

    def __init__(self, module: nn.Module):
        blocks = getattr(module, "blocks", None)
        if not blocks:
            raise ValueError(f"{type(module).__name__} has no transformer blocks")
        self.module = module
        self.blocks = list(blocks)
        for b in self.blocks:
            if not isinstance(getattr(getattr(b, "attn", None), "attn_drop", None), nn.Module):
                raise ValueError(f"block {type(b).__name__} has no attn.attn_drop to capture attention weights at")
        switched = 0
        for m in module.modules():
            if hasattr(m, "fused_attn"):
                m.fused_attn = False  # eager attention computes the weights we capture
                switched += 1
        if switched == 0:
            raise ValueError("no attention module with a fused_attn switch found")
        self.num_prefix = int(module.num_prefix_tokens)
        self.has_cls = getattr(module, "cls_token", None) is not None
        self.grid = tuple(int(g) for g in module.patch_embed.grid_size)
        self.num_heads = int(self.blocks[0].attn.num_heads)
        self.pool = getattr(module, "attn_pool", None)

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def trace(
        self, x: torch.Tensor, *, grads: bool = False, relevance: bool = False, targets: torch.Tensor | None = None
    ) -> Trace:
        """One forward pass of ``x`` ``(B, 3, S, S)``, plus the backward passes the gradient methods need.

        Args:
            x: normalized images.
            grads: AG-CAM's attention gradients and scores (attention inputs detached, see `_pass`).
            relevance: the gradient of the target with respect to every attention through the whole network (GAE).
            targets: ``(B,)`` classes to explain (classifiers only; default: top-1).

        Both gradient paths share the forward values but not the graph, so asking for both runs two passes.
        """
        main = self._pass(x, "full" if relevance else "cut" if grads else "none", targets)
        cut = self._pass(x, "cut", main["targets"]) if grads and relevance else main
        cap = main["capture"]
        layers = range(self.num_layers)
        return Trace(
            grids=tuple(self.grid for _ in layers),
            num_prefix=self.num_prefix,
            has_cls=self.has_cls,
            features=[patch_tokens(cap.outputs[f"out{i}"], self.num_prefix, self.grid) for i in layers],
            attentions=[cap.outputs[f"attn{i}"] for i in layers],
            pool=self._pool_attention(cap) if self.pool is not None else None,
            scores=[self._scores(i, cut["capture"]) for i in layers] if grads else None,
            attention_grads=[cut["capture"].grads[f"attn{i}"] for i in layers] if grads else None,
            relevance_grads=[cap.grads[f"attn{i}"] for i in layers] if relevance else None,
            logits=main["logits"],
            targets=main["targets"],
        )

    def _pass(self, x: torch.Tensor, mode: str, targets: torch.Tensor | None) -> dict:
        """One forward, and for ``mode`` "cut" or "full" one backward of the target.

        "full": plain autograd through the whole network, as Chefer et al.'s reference code does (their ViT
        registers a hook on the softmax output and backpropagates the class score).

        "cut": gradients for AG-CAM follow Leem & Seo's reference code (Methods/AGCAM/ViT_for_AGCAM/models/
        vision_transformer.py, `Attention.forward` starts with `x = x.detach()`): the attention block's input is
        detached, so the gradient reaching layer k's attention flows to the class score only along the skip
        connections and MLPs of later blocks, never through their q, k, v ("dE_1^(k+1)/dE_2^k = I", paper
        Fig. 2). The softmax output is then made a leaf that requires grad, so its gradient exists.
        """
        backward = mode != "none"
        with Capture() as cap:
            for i, block in enumerate(self.blocks):
                if mode == "cut":
                    cap.cut_input(block.attn)
                    cap.leaf_output(block.attn.attn_drop)
                cap.watch(f"attn{i}", block.attn.attn_drop, grad=backward)
                cap.watch(f"out{i}", block)
                if mode == "cut":
                    cap.watch(f"q{i}", block.attn.q_norm)
                    cap.watch(f"k{i}", block.attn.k_norm)
            if self.pool is not None:
                cap.watch("pool_q", self.pool.q_norm)
                cap.watch("pool_k", self.pool.k_norm)
            with torch.set_grad_enabled(backward):
                tokens = self.module.forward_features(x.detach().requires_grad_(backward))  # (B, T, D)
                out = self.module.forward_head(tokens)  # (B, num_classes) or (B, D)
                logits = out if self._is_classifier else None
                if logits is not None and backward:
                    targets = logits.argmax(-1) if targets is None else targets.to(logits.device)  # (B,)
                    logits.gather(1, targets[:, None]).sum().backward()
                elif backward:
                    embedding = self._embedding(out, tokens)  # (B, D)
                    (embedding * embedding.detach()).sum().backward()
            cap.require(grads=backward)
        return {
            "capture": cap,
            "logits": None if logits is None else logits.detach(),
            "targets": targets if logits is not None and backward else None,
        }

    @property
    def _is_classifier(self) -> bool:
        return getattr(self.module, "num_classes", 0) == 1000

    def _embedding(self, out: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The image embedding a model without a class head explains, ``(B, D)``.

        The model's own output where timm pools by the CLS token or an attention-pooling head (DINOv2, MAE, CLIP's
        projected embedding, SigLIP's MAP output); otherwise (timm pools DINOv3 by the patch mean) the final
        normalized CLS token, the global descriptor these models are trained with.
        """
        if getattr(self.module, "global_pool", "token") in ("token", "map") or not self.has_cls:
            return out
        return tokens[:, 0]

    def _scores(self, i: int, cap: Capture) -> torch.Tensor:
        """Pre-softmax scores ``(q * scale) @ k^T`` of block ``i``, ``(B, H, T, T)``, as the module computes them."""
        attn = self.blocks[i].attn
        if type(attn).__name__ != "Attention":  # rotary attention rotates q and k after q_norm/k_norm
            raise ValueError(f"attention scores are only read from timm's plain Attention, not {type(attn).__name__}")
        return (cap.outputs[f"q{i}"] * attn.scale) @ cap.outputs[f"k{i}"].transpose(-2, -1)

    def _pool_attention(self, cap: Capture) -> torch.Tensor:
        """The MAP probe's softmax attention over the final tokens, ``(B, H, T)``.

        With several latents, timm's ``AttentionPoolLatent`` keeps latent 0 (``pool='token'``) or averages them
        (``pool='avg'``); we read the attention the same way.
        """
        q, k = cap.outputs["pool_q"], cap.outputs["pool_k"]  # (B, H, Lq, hd), (B, H, T, hd)
        attn = ((q * self.pool.scale) @ k.transpose(-2, -1)).softmax(-1)  # (B, H, Lq, T)
        return attn[:, :, 0] if getattr(self.pool, "pool", "token") == "token" else attn.mean(2)
