"""Text maps of images for prompts: one forward pass per batch, the dense methods from its last block's input, the
gradient methods (LeGrad, GAE) from its attention maps, one backward per prompt and layer they need."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..analysis import readonly
from ..methods.gae import relevance_matrices
from ..methods.legrad import EMPTY_PROMPT, legrad_clip, legrad_siglip, pool_with_attention
from ..methods.text_dense import patch_embeddings
from ..tokens import patch_values
from . import forward
from .maps import TextMaps
from .specs import DENSE_METHODS, TEXT_METHODS
from .templates import resolve


def check_methods(methods: Sequence[str] | None) -> tuple[str, ...]:
    if methods is None:
        return TEXT_METHODS
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    bad = [m for m in methods if m not in TEXT_METHODS]
    if bad or not methods:
        raise ValueError(f"no text method {bad or methods}; valid text methods: {', '.join(TEXT_METHODS)}")
    return methods


def text_maps(model, x: torch.Tensor, prompts: list[str], templates, methods: tuple[str, ...]) -> list[TextMaps]:
    """`TextMaps` of each image of ``x`` ``(B, 3, S, S)`` (already transformed) for ``prompts``."""
    module, adapter = model.module, model.adapter
    text = model.text_tower.encode(prompts, templates).to(model.device)  # (P, Dj)
    grads = any(m not in DENSE_METHODS for m in methods)
    tp = forward.run(module, x, grads=grads)
    if tp.embedding.shape[-1] != text.shape[-1]:
        raise RuntimeError(f"image embedding has {tp.embedding.shape[-1]} dims, text embedding {text.shape[-1]}")
    grid, prefix, last = adapter.grid, adapter.num_prefix, adapter.num_layers - 1
    per_method: dict[str, dict[int, torch.Tensor]] = {}  # method -> layer -> (B, P, gh, gw)
    embeddings: dict[str, torch.Tensor] = {}  # method -> (B, N, Dj)
    for m in methods:
        if m in DENSE_METHODS:
            with torch.no_grad():
                emb = patch_embeddings(module, tp.last_input.detach(), m, grid, prefix)  # (B, N, Dj)
            embeddings[m] = emb
            cos = F.normalize(emb, dim=-1) @ text.to(emb.dtype).T  # (B, N, P)
            per_method[m] = {last: cos.transpose(1, 2).reshape(cos.shape[0], -1, *grid)}
        elif m == "legrad":
            per_method[m] = _legrad(model, tp, text)
        else:
            per_method[m] = _gae(model, tp, text)
    texts = readonly(text.cpu().numpy())
    kept = tuple(resolve(templates)) if templates is not None and not isinstance(templates, str) else templates
    return [
        TextMaps(
            prompts=tuple(prompts),
            templates=kept,
            text_embeddings=texts,
            maps={m: {layer: readonly(_host(v[b])) for layer, v in maps.items()} for m, maps in per_method.items()},
            embeddings={m: readonly(_host(e[b])) for m, e in embeddings.items()},
        )
        for b in range(x.shape[0])
    ]


def _host(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def _legrad(model, tp: forward.TextPass, text: torch.Tensor) -> dict[int, torch.Tensor]:
    adapter = model.adapter
    if adapter.has_cls:
        return legrad_clip(model.module, tp.outputs, tp.attentions, text, adapter.num_prefix, adapter.grid)
    if adapter.pool is None:
        raise ValueError(f"legrad needs a CLS token or an attention-pooling head; {model.spec.name} has neither")
    empty = model.text_tower.encode([EMPTY_PROMPT]).to(text.device)  # (1, Dj)
    return legrad_siglip(model.module, tp.outputs, text, empty, adapter.grid)


def _gae(model, tp: forward.TextPass, text: torch.Tensor) -> dict[int, torch.Tensor]:
    """Chefer et al.'s relevance (`vitattn.methods.gae`) with the cosine of the image embedding and a prompt's
    embedding as the target (their CLIP notebook differentiates ``logit_scale * cos``: the same map up to scale)."""
    adapter, module = model.adapter, model.module
    sims = F.normalize(tp.embedding, dim=-1) @ text.to(tp.embedding.dtype).T  # (B, P)
    attentions = [a.detach() for a in tp.attentions]
    if adapter.has_cls:
        readout = None
    else:
        tokens = tp.tokens.detach()[:, adapter.num_prefix :] if adapter.num_prefix else tp.tokens.detach()
        with torch.no_grad():
            readout = pool_with_attention(module.attn_pool, tokens)[1].mean(1)  # (B, 1, T) heads fused
    per_prompt = []  # P x {layer: (B, gh, gw)}
    for p in range(text.shape[0]):
        grads = torch.autograd.grad(sims[:, p].sum(), tp.attentions, retain_graph=True)
        rows = []
        for rel in relevance_matrices(attentions, [g.detach() for g in grads]):
            row = rel[:, 0, :] if readout is None else (readout @ rel)[:, 0, :]  # (B, T)
            rows.append(patch_values(row, adapter.num_prefix, adapter.grid))
        per_prompt.append(rows)
    return {layer: torch.stack([rows[layer] for rows in per_prompt], 1) for layer in range(adapter.num_layers)}
