"""Dense text methods (MaskCLIP, SCLIP, ClearCLIP, NACLIP) against a float64 re-forward of the last block written
here from its weights, the cosine convention, NACLIP's neighbourhood term on paper, and text specificity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from small_models import noise_image, small_model
from text_support import (
    _f64,
    block_forward,
    first_block_input,
    heads_qkv,
    layer_norm,
    linear,
    merge,
    mlp,
    serve_tokenizers,
)

from vitattn.methods.text_dense import DENSE_METHODS, gaussian_bias

TEXT_MODELS = ("clip", "siglip", "siglip2")
PROMPTS = ["a photo of a church", "rose window"]


@pytest.fixture
def text_hub(hub):
    """SigLIP's and SigLIP 2's tokenizers come from the Hub: served by the local one."""
    serve_tokenizers(hub)
    return hub


def reference_patch_embeddings(model, image, method: str) -> np.ndarray:
    """The method's joint-space patch embeddings, ``(N, D)``, from the weights in float64."""
    module, prefix = model.module, model.spec.num_prefix_tokens
    gh, gw = model.spec.grid
    x = first_block_input(model, image)
    for block in module.blocks[:-1]:
        x, _ = block_forward(x, block)
    block = module.blocks[-1]
    q, k, v = heads_qkv(layer_norm(x, block.norm1), block.attn)
    s = q.shape[-1] ** -0.5
    if method == "maskclip":
        out = merge(v, block.attn)
    elif method == "clearclip":
        out = merge(((q @ q.transpose(-2, -1)) * s).softmax(-1) @ v, block.attn)
    elif method == "sclip":
        w = ((q @ q.transpose(-2, -1)) * s).softmax(-1) + ((k @ k.transpose(-2, -1)) * s).softmax(-1)
        y = x + merge(w @ v, block.attn)
        out = y + mlp(layer_norm(y, block.norm2), block.mlp)
    else:  # naclip: Gaussian of std 5 patches over grid distance, written out per pair
        t = prefix + gh * gw
        omega = torch.zeros(t, t, dtype=torch.float64)
        for i in range(gh * gw):
            for j in range(gh * gw):
                d2 = (i // gw - j // gw) ** 2 + (i % gw - j % gw) ** 2
                omega[prefix + i, prefix + j] = np.exp(-d2 / 50.0)
        out = merge(((k @ k.transpose(-2, -1)) * s + omega).softmax(-1) @ v, block.attn)
    tokens = layer_norm(out[0, prefix:], module.norm)  # (N, D) final norm
    if module.attn_pool is None:  # CLIP: projection head
        return linear(tokens, module.head).numpy()
    pool = module.attn_pool  # SigLIP: the pooling head with all its attention on the patch itself
    d = tokens.shape[-1]
    v_pool = tokens @ _f64(pool.kv.weight)[d:].T + _f64(pool.kv.bias)[d:]
    y = linear(v_pool, pool.proj)
    return (y + mlp(layer_norm(y, pool.norm), pool.mlp)).numpy()


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_patch_embeddings_match_a_float64_reforward(name, text_hub):
    model, image = small_model(name), noise_image()
    a = model.analyze(image, prompts=PROMPTS, methods=(), text_methods=DENSE_METHODS)
    for method in DENSE_METHODS:
        ours = a.patch_embeddings(method)
        assert ours.dtype == np.float32 and ours.shape[0] == model.spec.grid[0] * model.spec.grid[1]
        np.testing.assert_allclose(ours, reference_patch_embeddings(model, image, method), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_map_is_the_cosine_of_patch_embeddings_and_text(name, text_hub):
    model = small_model(name)
    a = model.analyze(noise_image(seed=3), prompts=PROMPTS, templates="imagenet80", methods=())
    text = model.encode_text(PROMPTS, templates="imagenet80")
    gh, gw = model.spec.grid
    for method in DENSE_METHODS:
        emb = a.patch_embeddings(method).astype(np.float64)
        cos = emb @ text.T / np.linalg.norm(emb, axis=1, keepdims=True)  # text is unit-norm
        for p, prompt in enumerate(PROMPTS):
            m = a.map(method, prompt=prompt)
            assert m.shape == (gh, gw) and m.dtype == np.float32
            np.testing.assert_allclose(m, cos[:, p].reshape(gh, gw), rtol=1e-5, atol=1e-6)
            assert not np.allclose(m, a.map(method, prompt=PROMPTS[1 - p]), atol=1e-4)  # text specificity
        assert a.text.layers(method) == (model.spec.num_layers - 1,)  # last block only


def test_naclip_neighbourhood_on_paper():
    """Grid 2x3 with one prefix token: patch 0 is at (0, 0) and patch 5 at (1, 2), squared distance 5,
    so Omega = exp(-5 / 50); a patch with itself gives 1; every prefix row and column is 0."""
    omega = gaussian_bias((2, 3), 1).numpy()
    assert omega.shape == (7, 7)
    assert omega[1, 6] == pytest.approx(np.exp(-0.1)) and omega[6, 1] == pytest.approx(np.exp(-0.1))
    np.testing.assert_allclose(np.diag(omega)[1:], 1.0)
    assert not omega[0].any() and not omega[:, 0].any()


def test_the_map_follows_the_image_rows():
    """Row 0 of the map is the top row of patches: patch_embeddings are in raster order (checked above against the
    re-forward), and the map's corners are the cosines of the first and last patch."""
    model = small_model("clip")
    a = model.analyze(noise_image(), prompts=PROMPTS, methods=(), text_methods=("maskclip",))
    emb = a.patch_embeddings("maskclip")
    text = model.encode_text(PROMPTS[:1])[0]
    gh, gw = model.spec.grid
    top_left, bottom_right = emb[0], emb[gh * gw - 1]
    m = a.map("maskclip", prompt=PROMPTS[0])
    assert m[0, 0] == pytest.approx(top_left @ text / np.linalg.norm(top_left), rel=1e-5)
    assert m[-1, -1] == pytest.approx(bottom_right @ text / np.linalg.norm(bottom_right), rel=1e-5)
