"""LeGrad and GAE with a prompt as target, against the authors' algorithms re-implemented here in float64 from the
weights (LeGrad: github.com/WalBouss/LeGrad legrad/wrapper.py 1.1, compute_legrad_clip / compute_legrad_siglip;
GAE: Chefer et al.'s CLIP notebook, ``interpret``), and text specificity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from small_models import noise_image, small_model
from text_support import _f64, block_forward, first_block_input, layer_norm, linear, mlp, serve_tokenizers

from vitattn.methods.legrad import pool_with_attention

PROMPTS = ["a photo of a church", "rose window"]


@pytest.fixture
def text_hub(hub):
    serve_tokenizers(hub)
    return hub


def forward64(model, image):
    """Every block's output and softmax attention in one float64 graph (input requiring grad)."""
    x = first_block_input(model, image).requires_grad_(True)
    outs, attns = [], []
    for block in model.module.blocks:
        x, a = block_forward(x, block)
        outs.append(x)
        attns.append(a)
    return outs, attns


def pool64(pool, x):
    """timm's AttentionPoolLatent written out (one latent, no position embedding): (embedding, attention)."""
    b, n, d = x.shape
    h = pool.num_heads
    q = linear(_f64(pool.latent), pool.q).reshape(1, 1, h, d // h).transpose(1, 2)  # (1, H, 1, hd)
    kv = linear(x, pool.kv).reshape(b, n, 2, h, d // h).permute(2, 0, 3, 1, 4)
    a = ((q @ kv[0].transpose(-2, -1)) / (d // h) ** 0.5).softmax(-1)  # (B, H, 1, N)
    y = linear((a @ kv[1]).transpose(1, 2).reshape(b, 1, d), pool.proj)
    return (y + mlp(layer_norm(y, pool.norm), pool.mlp))[:, 0], a


def authors_legrad_clip(model, image, text: np.ndarray) -> np.ndarray:
    """compute_legrad_clip: for the last two layers, ln_post(mean of all tokens) @ proj, normalised, cosine with the
    text; gradient w.r.t. that layer's attention, clamp >= 0, mean over heads and rows, CLS column dropped; summed."""
    module = model.module
    outs, attns = forward64(model, image)
    t = torch.tensor(text, dtype=torch.float64)
    total = 0
    for layer in range(len(outs) - 2, len(outs)):
        feat = F.normalize(linear(layer_norm(outs[layer].mean(1), module.norm), module.head), dim=-1)
        sim = (t @ feat.T).sum()
        grad = torch.autograd.grad(sim, [attns[layer]], retain_graph=True)[0].clamp(min=0)
        total = total + grad.mean(1).mean(1)[0, 1:]
    return total.reshape(model.spec.grid).numpy()


def authors_legrad_siglip(model, image, text: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """compute_legrad_siglip: the pooling head on each of the last two blocks' outputs (no final norm), gradient of
    the cosine w.r.t. the pool's attention, clamp >= 0, mean over heads; the correction zeroes the patches where the
    min-max normalised map of "a photo of a" exceeds 0.8."""
    outs, _ = forward64(model, image)

    def summed(vec):
        total = 0
        for layer in range(len(outs) - 2, len(outs)):
            pooled, a = pool64(model.module.attn_pool, outs[layer])
            sim = (torch.tensor(vec, dtype=torch.float64) @ F.normalize(pooled, dim=-1).T).sum()
            total = total + torch.autograd.grad(sim, [a], retain_graph=True)[0].clamp(min=0).mean(1)[0, 0]
        return total

    m, e = summed(text), summed(empty)
    e = (e - e.min()) / (e.max() - e.min())
    return torch.where(e > 0.8, torch.zeros_like(m), m).reshape(model.spec.grid).numpy()


def authors_gae(model, image, text: np.ndarray) -> np.ndarray:
    """Chefer et al.'s interpret(): R = I; per layer R += mean_h(clamp(grad * A)) @ R, with the gradient of the
    image-text cosine; the readout is the CLS row (SigLIP: the pooling head's attention, heads averaged)."""
    module, prefix = model.module, model.spec.num_prefix_tokens
    outs, attns = forward64(model, image)
    tokens = layer_norm(outs[-1], module.norm)
    if module.attn_pool is None:
        emb = linear(tokens[:, 0], module.head)
    else:
        emb, pool_attn = pool64(module.attn_pool, tokens)
    sim = (torch.tensor(text, dtype=torch.float64) @ F.normalize(emb, dim=-1).T).sum()
    grads = torch.autograd.grad(sim, attns)
    t = attns[0].shape[-1]
    r = torch.eye(t, dtype=torch.float64)
    for a, g in zip(attns, grads, strict=True):
        r = r + (g * a).clamp(min=0).mean(1)[0] @ r
    row = r[0] if module.attn_pool is None else pool_attn.mean(1)[0, 0].detach() @ r
    return row[prefix:].detach().reshape(model.spec.grid).numpy()


@pytest.mark.parametrize("name", ["clip", "siglip", "siglip2"])
def test_legrad_and_gae_match_the_authors_algorithms(name, text_hub):
    model, image = small_model(name), noise_image(seed=1)
    a = model.analyze(image, prompts=PROMPTS, methods=(), text_methods=("legrad", "gae"))
    text = model.encode_text(PROMPTS)
    empty = model.encode_text(["a photo of a"])
    refs = {"legrad": [], "gae": []}
    for p, prompt in enumerate(PROMPTS):
        if model.module.attn_pool is None:
            refs["legrad"].append(authors_legrad_clip(model, image, text[p : p + 1]))
        else:
            refs["legrad"].append(authors_legrad_siglip(model, image, text[p : p + 1], empty))
        refs["gae"].append(authors_gae(model, image, text[p : p + 1]))
        for method in refs:
            got, want = a.map(method, prompt=prompt), refs[method][p]
            assert got.dtype == np.float32 and got.shape == model.spec.grid
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6 * np.abs(want).max())
    for method, (one, two) in refs.items():  # text specificity: the prompts' maps differ as the references do
        diff = a.map(method, prompt=PROMPTS[0]) - a.map(method, prompt=PROMPTS[1])
        assert np.abs(one - two).max() > 1e-4 * np.abs(one).max()
        np.testing.assert_allclose(diff, one - two, atol=0.02 * np.abs(one - two).max())


def test_legrad_layers_sum_from_the_start_layer():
    """Layer l's map is the sum from the start layer (two before the end) to l: with two layers, layer 0's map and
    the last layer's difference are each a non-negative gradient map."""
    model = small_model("clip")
    a = model.analyze(noise_image(), prompts=PROMPTS[:1], methods=(), text_methods=("legrad",))
    assert a.text.layers("legrad") == (0, 1)
    first, last = a.map("legrad", 0, prompt=PROMPTS[0]), a.map("legrad", 1, prompt=PROMPTS[0])
    assert (first >= 0).all() and (last - first >= -1e-7).all()


def test_pool_with_attention_is_timms_pooling_head():
    pool = small_model("siglip").module.attn_pool
    x = torch.randn(2, 16, pool.kv.in_features, generator=torch.Generator().manual_seed(0))
    y, attn = pool_with_attention(pool, x)
    torch.testing.assert_close(y, pool(x))
    assert attn.shape == (2, pool.num_heads, 1, 16)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, pool.num_heads, 1))


def test_image_gae_is_unchanged_beside_text_gae():
    model, image = small_model("clip"), noise_image()
    plain = model.analyze(image, methods=("gae",))
    both = model.analyze(image, methods=("gae",), prompts=PROMPTS[:1], text_methods=("gae",))
    np.testing.assert_array_equal(plain.map("gae"), both.map("gae"))
    assert not np.allclose(both.map("gae"), both.map("gae", prompt=PROMPTS[0]))
