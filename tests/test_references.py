"""Each method against an independent reference on the same random weights.

- cls / mean / pool: timm's `AttentionExtract` (torch.fx graph of the eager softmax nodes), indexed by hand.
- rollout: a direct NumPy implementation of Abnar & Zuidema's formula.
- gradcam: pytorch-grad-cam on the same ResNet-50.
- agcam: a hand-written re-forward of the ViT with autograd, following Leem & Seo's reference code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from small_models import noise_image, small_model, small_overrides
from timm.utils import AttentionExtract

import vitattn

VITS = [n for n, s in vitattn.MODELS.items() if s.family == "vit"]


def reference_attention(model: vitattn.Model, image) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Per layer (H, T, T) softmax attention and the pool probe's (H, T), via torch.fx, not our hooks."""
    names = ["*attn.softmax"] + (["attn_pool.softmax"] if model.adapter.pool is not None else [])
    extract = AttentionExtract(model.module, names=names)
    with torch.no_grad():
        out = extract(model.transform(image)[None])
    layers = [out[f"blocks.{i}.attn.softmax"][0].numpy() for i in range(model.spec.num_layers)]
    pool = out["attn_pool.softmax"][0].mean(1).numpy() if "attn_pool.softmax" in out else None
    return layers, pool


def grid_of(row: np.ndarray, prefix: int, grid: tuple[int, int]) -> np.ndarray:
    """By hand: drop the prefix tokens, reshape patches in raster order."""
    return row[..., prefix:].reshape(*row.shape[:-1], *grid)


@pytest.mark.parametrize("name", VITS)
def test_cls_mean_pool_match_timm_attention_extract(name):
    model, image = small_model(name), noise_image(110, 70, seed=5)
    spec, a = model.spec, model.analyze(image)
    attn, pool = reference_attention(model, image)
    for layer, A in enumerate(attn):  # A: (H, T, T)
        if "cls" in spec.methods:
            expected = grid_of(A[:, 0, :], spec.num_prefix_tokens, spec.grid)  # (H, gh, gw)
            np.testing.assert_allclose(a.heads("cls", layer), expected, rtol=1e-5, atol=1e-7)
        expected = grid_of(A.mean(1), spec.num_prefix_tokens, spec.grid)
        np.testing.assert_allclose(a.heads("mean", layer), expected, rtol=1e-5, atol=1e-7)
    if "pool" in spec.methods:
        np.testing.assert_allclose(a.heads("pool"), grid_of(pool, spec.num_prefix_tokens, spec.grid), rtol=1e-5)


def numpy_rollout(attn: list[np.ndarray]) -> list[np.ndarray]:
    """Abnar & Zuidema (2020): mean over heads, (A + I) / 2, rows renormalized, product from the first layer."""
    out, rolled = [], None
    for A in attn:
        a = A.astype(np.float64).mean(0)
        a = (a + np.eye(a.shape[0])) / 2
        a = a / a.sum(1, keepdims=True)
        rolled = a if rolled is None else a @ rolled
        out.append(rolled)
    return out


@pytest.mark.parametrize("name", VITS)
def test_rollout_matches_numpy_formula(name):
    model, image = small_model(name), noise_image(90, 130, seed=6)
    spec, a = model.spec, model.analyze(image, methods=["rollout"])
    attn, _ = reference_attention(model, image)
    for layer, R in enumerate(numpy_rollout(attn)):
        row = R[0] if spec.num_prefix_tokens else R.mean(0)  # CLS row; mean row without CLS (SigLIP)
        np.testing.assert_allclose(a.map("rollout", layer), grid_of(row, spec.num_prefix_tokens, spec.grid), rtol=1e-4)


def test_rollout_worked_on_paper():
    """Two tokens, one head. A1 = [[1, 0], [0, 1]] -> (A1 + I)/2 = I. A2 = [[0, 1], [1, 0]] -> [[.5, .5], [.5, .5]]."""
    from vitattn.methods import rollout_matrices

    a1 = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    a2 = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    r1, r2 = rollout_matrices([a1, a2])
    np.testing.assert_allclose(r1[0].numpy(), np.eye(2))
    np.testing.assert_allclose(r2[0].numpy(), np.full((2, 2), 0.5))


def test_gradcam_matches_pytorch_grad_cam():
    """Full-size ResNet-50 with random weights; every stage, top-1 target, correlation >= 0.999."""
    from pytorch_grad_cam import GradCAM

    from vitattn.methods.gradcam import gradcam_map

    torch.manual_seed(0)
    model = vitattn.load_model("resnet50", pretrained=False, device="cpu")
    image = noise_image(200, 150, seed=7)
    x = model.transform(image)[None]
    trace = model.adapter.trace(x.clone(), grads=True)  # our maps before registration to the cell grid
    raw = [gradcam_map(a, g)[0].numpy() for a, g in zip(trace.activations, trace.activation_grads, strict=True)]
    model.module.requires_grad_(True)  # pytorch-grad-cam backpropagates into the weights; the forward is unchanged
    for layer, stage in enumerate([model.module.layer1, model.module.layer2, model.module.layer3, model.module.layer4]):
        with GradCAM(model=model.module, target_layers=[stage]) as cam:
            reference = cam(input_tensor=x, targets=None)[0]  # (224, 224), min-max scaled, top-1 target
        ours = torch.nn.functional.interpolate(
            torch.from_numpy(raw[layer])[None, None], size=reference.shape, mode="bilinear"
        )[0, 0].numpy()
        ours = (ours - ours.min()) / (ours.max() - ours.min() + 1e-7)
        corr = np.corrcoef(ours.ravel(), reference.ravel())[0, 1]
        assert corr >= 0.999, f"stage {layer}: correlation {corr}"


def manual_agcam(model: vitattn.Model, image, target: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """AG-CAM by a hand-written forward of timm's ViT (no hooks), as in Leem & Seo's reference code: the attention
    input is detached (`x = x.detach()`), scores S, softmax A as a leaf with a gradient, then ReLU(dA) * sigmoid(S)
    at the CLS row, per layer and head (Leem & Seo 2024, eqs. 5-9)."""
    vit = model.module
    x = vit.norm_pre(vit._pos_embed(vit.patch_embed(model.transform(image)[None])))
    scores, probs = [], []
    for blk in vit.blocks:
        at = blk.attn
        h = blk.norm1(x).detach()
        b, n, c = h.shape
        q, k, v = at.qkv(h).reshape(b, n, 3, at.num_heads, at.head_dim).permute(2, 0, 3, 1, 4)
        s = (q * at.scale) @ k.transpose(-2, -1)  # (1, H, T, T)
        p = s.softmax(-1).requires_grad_()
        scores.append(s)
        probs.append(p)
        o = at.proj((p @ v).transpose(1, 2).reshape(b, n, c))
        x = x + blk.ls1(o)
        x = x + blk.ls2(blk.mlp(blk.norm2(x)))
    logits = vit.forward_head(vit.norm(x))
    target = int(logits.argmax()) if target is None else target
    logits[0, target].backward()
    terms = np.stack(
        [
            (torch.relu(p.grad[0, :, 0, 1:]) * torch.sigmoid(s[0, :, 0, 1:])).detach().numpy()
            for s, p in zip(scores, probs, strict=True)
        ]
    )  # (L, H, P)
    return terms, logits.detach().numpy(), target


@pytest.mark.parametrize("name", ["vit", "vit32"])
def test_agcam_matches_manual_autograd(name):
    model, image = small_model(name), noise_image(100, 75, seed=8)
    with torch.enable_grad():
        model.module.requires_grad_(False)
        terms, _, target = manual_agcam(model, image)
    a = model.analyze(image, methods=["agcam"])
    assert a.target == target
    assert np.isfinite(a.map("agcam")).all()
    gh, gw = model.spec.grid
    for layer in range(model.spec.num_layers):
        np.testing.assert_allclose(a.heads("agcam", layer), terms[layer].reshape(-1, gh, gw), rtol=1e-4, atol=1e-8)
        expected = terms[: layer + 1].sum(axis=(0, 1)).reshape(gh, gw)  # heads and layers 0..l summed
        np.testing.assert_allclose(a.map("agcam", layer), expected, rtol=1e-4, atol=1e-8)


def test_agcam_follows_an_explicit_target():
    model, image = small_model("vit"), noise_image(100, 75, seed=9)
    with torch.enable_grad():
        terms, _, _ = manual_agcam(model, image, target=5)
    a = model.analyze(image, methods=["agcam"], target=5)
    assert a.target == 5
    np.testing.assert_allclose(a.heads("agcam", 1), terms[1].reshape(-1, *model.spec.grid), rtol=1e-4, atol=1e-8)


def test_resnet_unit_centres_match_their_receptive_fields():
    """The centroid of d(unit)/d(input) on a full-size random ResNet-50 sits where `stage_unit_centers` says."""
    from vitattn.models.resnet import STAGES, stage_unit_centers

    torch.manual_seed(0)
    model = vitattn.load_model("resnet50", pretrained=False, device="cpu")
    centers = stage_unit_centers(model.module)
    assert centers == (0.125, 0.0625, 0.03125, 0.015625)  # pixel 0.5 over strides 4, 8, 16, 32
    x = torch.randn(1, 3, 224, 224, requires_grad=True)
    feats = {}
    hooks = [
        getattr(model.module, s).register_forward_hook(lambda m, i, o, s=s: feats.__setitem__(s, o)) for s in STAGES
    ]
    model.module(x)
    for h in hooks:
        h.remove()
    for stage, center in zip(STAGES[2:], centers[2:], strict=True):
        f = feats[stage]
        stride, j = 224 // f.shape[-1], f.shape[-1] // 2
        (grad,) = torch.autograd.grad(f[0, :, j, j].sum(), x, retain_graph=True)
        weight = grad.abs().sum((0, 1))  # (224, 224)
        coords = torch.arange(224, dtype=torch.float32) + 0.5
        cy = float((weight.sum(1) * coords).sum() / weight.sum())
        cx = float((weight.sum(0) * coords).sum() / weight.sum())
        expected = (j + center) * stride  # pixels
        assert abs(cy - expected) < stride / 8 and abs(cx - expected) < stride / 8, (stage, cy, cx, expected)


def test_register_to_cells_on_paper():
    """Units centred at 0 and 1 cells (center=0.0); cell centres 0.5 and 1.5 read halfway, then clamped."""
    from vitattn.tokens import register_to_cells

    m = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])  # (1, 2, 2)
    out = register_to_cells(m, 0.0)[0]
    # rows: r0 = (row0 + row1) / 2 = [1, 2], r1 = row1 clamped = [2, 3]; then columns the same way
    np.testing.assert_allclose(out.numpy(), [[1.5, 2.0], [2.5, 3.0]])
    np.testing.assert_allclose(register_to_cells(m, 0.5)[0].numpy(), m[0].numpy())  # already centred


def manual_gae(model: vitattn.Model, image, target: int | None = None) -> tuple[np.ndarray, int | None]:
    """GAE by a hand-written forward of timm's ViT (no hooks of ours), following Chefer et al.'s reference code
    (Transformer_MM_explainability_ViT.ipynb, `generate_relevance`): the softmax output keeps its gradient
    (`attn.register_hook(save_attn_gradients)`), the target is backpropagated through the whole network, then per
    layer `cam = (grad * cam).clamp(min=0).mean(heads)` and `R += cam @ R` from `R = eye`. Classifiers explain the
    class score; other models `e . e.detach()` of their embedding. The readout is R's CLS row; without a CLS token
    (SigLIP) the pooling head's attention (mean over heads) times R, the head re-computed here by hand.

    Returns the (L, P) readout after each layer (prefix dropped) and the explained class."""
    vit = model.module
    x = vit.norm_pre(vit._pos_embed(vit.patch_embed(model.transform(image)[None]))).detach().requires_grad_()
    cams, grads = [], {}
    for i, blk in enumerate(vit.blocks):
        at = blk.attn
        h = blk.norm1(x)
        b, n, c = h.shape
        q, k, v = at.qkv(h).reshape(b, n, 3, at.num_heads, at.head_dim).permute(2, 0, 3, 1, 4)
        q, k = at.q_norm(q), at.k_norm(k)
        cam = ((q * at.scale) @ k.transpose(-2, -1)).softmax(-1)  # (1, H, T, T)
        cam.register_hook(lambda g, i=i: grads.__setitem__(i, g))
        cams.append(cam)
        x = x + blk.ls1(at.proj(at.norm((cam @ v).transpose(1, 2).reshape(b, n, c))))
        x = x + blk.ls2(blk.mlp(blk.norm2(x)))
    tokens = vit.norm(x)  # (1, T, D)
    output = vit.forward_head(tokens)
    if model.spec.classifier:
        target = int(output.argmax()) if target is None else target
        one_hot = torch.zeros_like(output)
        one_hot[0, target] = 1
        (one_hot * output).sum().backward()
    else:
        (output * output.detach()).sum().backward()
    num_tokens = cams[0].shape[-1]
    rel = torch.eye(num_tokens)
    readout = []
    for i, cam in enumerate(cams):
        cam = (grads[i][0] * cam[0].detach()).clamp(min=0).mean(dim=0)  # avg_heads, rule 5
        rel = rel + cam @ rel  # apply_self_attention_rules, rule 6
        readout.append(rel[0] if model.spec.num_prefix_tokens else manual_pool_attention(vit.attn_pool, tokens) @ rel)
    return np.stack([r[model.spec.num_prefix_tokens :].detach().numpy() for r in readout]), target


def manual_pool_attention(pool, tokens: torch.Tensor) -> torch.Tensor:
    """timm's AttentionPoolLatent by hand: latent 0's softmax attention over the tokens, mean over heads, (T,)."""
    b, n, _ = tokens.shape
    q = pool.q(pool.latent.expand(b, -1, -1)).reshape(b, pool.latent_len, pool.num_heads, pool.head_dim)
    k = pool.kv(tokens).reshape(b, n, 2, pool.num_heads, pool.head_dim)[:, :, 0]  # (1, T, H, hd)
    q, k = pool.q_norm(q.transpose(1, 2)), pool.k_norm(k.transpose(1, 2))
    return ((q * pool.scale) @ k.transpose(-2, -1)).softmax(-1)[0, :, 0].mean(0).detach()  # (T,)


@pytest.mark.parametrize("name", ["vit", "dinov2", "siglip", "clip"])
def test_gae_matches_the_authors_recipe(name):
    """A classifier ViT, a ViT with registers (embedding target), SigLIP (pooling-head readout), CLIP (projection)."""
    model, image = small_model(name), noise_image(100, 75, seed=10)
    if name == "dinov2":  # LayerScale starts at 1e-5: raise it (on a copy) so later blocks matter
        torch.manual_seed(0)
        model = vitattn.load_model(name, pretrained=False, device="cpu", **small_overrides(name))
        for blk in model.module.blocks:
            blk.ls1.gamma.data.fill_(0.5), blk.ls2.gamma.data.fill_(0.5)
    with torch.enable_grad():
        expected, target = manual_gae(model, image)
    a = model.analyze(image, methods=["gae", *(["pool"] if "pool" in model.spec.methods else [])])
    assert a.target == target
    for layer in range(model.spec.num_layers):
        ours = a.map("gae", layer)
        assert np.abs(ours).max() > 0
        np.testing.assert_allclose(ours, expected[layer].reshape(model.spec.grid), rtol=1e-4, atol=1e-7)
        if "pool" in model.spec.methods:  # without CLS, a_pool @ R = a_pool + a_pool @ (R - I): check the second term
            pool = a.map("pool")
            # The second term is a difference of float32 values of the pool's size: it is exact to a few of their ulps.
            ulps = 16 * np.finfo(np.float32).eps * np.abs(pool).max()
            np.testing.assert_allclose(ours - pool, expected[layer].reshape(pool.shape) - pool, rtol=1e-3, atol=ulps)


def test_gae_follows_an_explicit_target():
    model, image = small_model("vit32"), noise_image(100, 75, seed=11)
    with torch.enable_grad():
        expected, _ = manual_gae(model, image, target=7)
    a = model.analyze(image, methods=["gae"], target=7)
    assert a.target == 7
    np.testing.assert_allclose(a.map("gae"), expected[-1].reshape(model.spec.grid), rtol=1e-4, atol=1e-7)
