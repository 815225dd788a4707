"""Sanity checks (vitattn.sanity): the exact invariants of model-parameter randomisation on random-weight models,
weights restored, seeds reproducible, random logit, and the similarity measures against scipy / by hand."""

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
import torch
from small_models import noise_image, small_model

import vitattn
from vitattn.sanity import (
    SIMILARITY_NAMES,
    hog_similarity,
    model_randomization,
    model_stages,
    random_logit,
    similarities,
    spearman,
    ssim,
)
from vitattn.sanity.similarity import normalized_image

CLS_VITS = [n for n, s in vitattn.MODELS.items() if "cls" in s.methods]
IMAGE = noise_image(64, 48, seed=3)


def _state(model):
    return {k: v.detach().clone() for k, v in model.module.state_dict().items()}


def _unchanged(model, before) -> bool:
    """Whether ``model``'s weights and buffers (BatchNorm statistics too) equal ``before`` (a ``_state``)."""
    after = _state(model)
    return after.keys() == before.keys() and all(torch.equal(v, after[k]) for k, v in before.items())


def _by_stage(rows):
    return {r["stage"]: r for r in rows}


def test_vit_and_resnet_stages_run_from_the_output_down():
    names = [s for s, *_ in model_stages(small_model("vit").module)]
    assert names == ["head", "norm", "blocks.1", "blocks.0", "patch_embed"]
    names = [s for s, *_ in model_stages(small_model("siglip").module)]
    assert names == ["head", "norm", "blocks.1", "blocks.0", "patch_embed"]  # head: the attention-pooling head
    assert [s for s, *_ in model_stages(small_model("dinov2").module)][0] == "norm"  # no class head: no head stage
    names = [s for s, *_ in model_stages(small_model("resnet50").module)]
    assert names == ["fc", "layer4", "layer3", "layer2", "layer1", "stem"]


@pytest.mark.parametrize("name", CLS_VITS)
def test_cls_attention_at_layer_l_is_untouched_until_block_l_is_randomised(name):
    model = small_model(name)
    before = _state(model)
    for layer in (0, 1):
        rows = model_randomization(model, IMAGE, "cls", layer)
        original = rows[0]["map"]
        for row in rows[1:]:
            above = all(s in ("head", "norm") or (s.startswith("blocks.") and int(s[7:]) > layer)
                        for s in row["randomized"])  # fmt: skip
            if above:
                assert np.array_equal(row["map"], original)
                assert row["spearman"] == 1.0 and row["spearman_abs"] == 1.0
                assert row["ssim"] == pytest.approx(1.0) and row["hog_similarity"] == pytest.approx(1.0)
            else:
                assert not np.array_equal(row["map"], original)
                assert row["spearman"] < 1.0
        assert _by_stage(rows)[f"blocks.{layer}"]["spearman"] < 1.0  # changed as soon as block l is
    assert _unchanged(model, before)  # the weights are restored


@pytest.mark.parametrize("name,method", [("vit", "agcam"), ("vit", "gae"), ("vit32", "gae"), ("resnet50", "gradcam")])
def test_gradient_methods_change_as_soon_as_the_head_is_randomised(name, method):
    model = small_model(name)
    before = _state(model)
    for layer in range(model.spec.num_layers):
        rows = model_randomization(model, IMAGE, method, layer)
        first = rows[1]
        assert first["stage"] in ("head", "fc")
        assert not np.array_equal(first["map"], rows[0]["map"])
        assert first["spearman"] < 1.0
    assert _unchanged(model, before)


def test_orders_and_seeds():
    model = small_model("vit")
    top = model_randomization(model, IMAGE, "cls", 0, order="top-down", seed=1)
    again = model_randomization(model, IMAGE, "cls", 0, order="top-down", seed=1)
    other = model_randomization(model, IMAGE, "cls", 0, order="top-down", seed=2)
    assert all(np.array_equal(a["map"], b["map"]) for a, b in zip(top, again, strict=True))  # reproducible
    assert not np.array_equal(top[-1]["map"], other[-1]["map"])  # another seed, other weights
    ind = _by_stage(model_randomization(model, IMAGE, "cls", 0, order="independent", seed=1))
    # one stage at a time: only block 0 and the embedding reach layer 0's attention
    assert [s for s, r in ind.items() if r["spearman"] < 1] == ["blocks.0", "patch_embed"]
    assert np.array_equal(ind["blocks.0"]["map"], _by_stage(top)["blocks.0"]["map"])  # the same weights for a stage
    assert ind["blocks.0"]["randomized"] == ("blocks.0",)
    up = model_randomization(model, IMAGE, "cls", 1, order="bottom-up", seed=1)
    assert [r["stage"] for r in up] == ["none", "patch_embed", "blocks.0", "blocks.1", "norm", "head"]
    assert up[-1]["randomized"] == ("patch_embed", "blocks.0", "blocks.1", "norm", "head")
    top1 = model_randomization(model, IMAGE, "cls", 1, order="top-down", seed=1)
    assert np.array_equal(up[-1]["map"], top1[-1]["map"])  # all random: the same weights whichever the order
    assert all(r["spearman"] < 1 for r in up[1:])  # the embedding is random from the first step on
    assert top[0]["stage"] == "none" and set(SIMILARITY_NAMES) <= set(top[0])
    with pytest.raises(ValueError, match="order"):
        model_randomization(model, IMAGE, "cls", 0, order="sideways")


def test_weights_are_restored_after_an_error():
    model = small_model("vit")
    before = _state(model)
    with pytest.raises(ValueError, match="head"):
        model_randomization(model, IMAGE, "cls", 1, head=99)
    with pytest.raises(ValueError, match="layer"):
        model_randomization(model, IMAGE, "cls", 7)
    assert _unchanged(model, before)


def test_random_logit():
    model = small_model("vit")
    row = random_logit(model, IMAGE, "cls")
    assert not row["class_specific"] and all(row[k] == 1.0 for k in SIMILARITY_NAMES)
    a, b = model.analyze([IMAGE, IMAGE], methods=["cls", "agcam"], target=[1, 2], features=False)
    assert np.array_equal(a.map("cls", 1), b.map("cls", 1))  # why 1 by construction: the class never enters
    row = random_logit(model, IMAGE, "agcam", seed=4)
    assert row["class_specific"] and row["other"] != row["target"]
    assert row["target"] == model.analyze(IMAGE, methods=["agcam"], features=False).target
    top, rand = row["maps"]
    assert row["spearman"] == pytest.approx(spearman(top, rand)) and row["spearman"] < 1
    assert random_logit(small_model("resnet50"), IMAGE, "gradcam")["class_specific"]
    assert not random_logit(small_model("dinov2"), IMAGE, "gae")["class_specific"]  # explains the embedding


def _ssim_reference(x, y, sigma=1.5, truncate=3.5):
    """Wang et al. 2004, eq. 13, with Gaussian-weighted local statistics (population covariance), averaged over
    the pixels whose whole 11 x 11 window lies inside the image."""
    g = lambda v: scipy.ndimage.gaussian_filter(v, sigma, truncate=truncate, mode="reflect")  # noqa: E731
    c1, c2 = 0.01**2, 0.03**2
    mx, my = g(x), g(y)
    vx, vy, cxy = g(x * x) - mx * mx, g(y * y) - my * my, g(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    pad = int(truncate * sigma + 0.5)
    return s[pad:-pad, pad:-pad].mean()


def test_similarities_against_scipy_and_by_hand():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 7)), rng.normal(size=(7, 7))
    b[0, :3] = b[0, 3]  # ties
    assert spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a.ravel(), b.ravel()).statistic)
    assert spearman(a, -a) == -1.0 and spearman(a, a) == 1.0 and spearman(a, 2 * a + 1) == 1.0
    assert np.isnan(spearman(a, np.zeros_like(a)))
    same = similarities(a, a)
    assert same["spearman"] == 1.0 and same["ssim"] == pytest.approx(1.0) and same["hog_similarity"] == 1.0
    assert ssim(a, 3 * a + 2) == pytest.approx(1.0)  # min-max normalised: affine changes vanish
    assert hog_similarity(a, 3 * a + 2) == pytest.approx(1.0)
    assert ssim(a, b) == pytest.approx(_ssim_reference(normalized_image(a), normalized_image(b)), abs=1e-9)
    assert ssim(a, -a) < ssim(a, b) < 1
    with pytest.raises(ValueError, match="shape"):
        similarities(a, a[:3])


def test_flow_at_layer_l_is_untouched_until_block_l_is_randomised():
    rows = _by_stage(model_randomization(small_model("dinov2"), IMAGE, "flow", 0))
    assert all(rows[s]["spearman"] == 1.0 for s in ("norm", "blocks.1"))
    assert rows["blocks.0"]["spearman"] < 1.0


@pytest.mark.slow
def test_full_size_vit32_and_resnet50_keep_the_invariants():
    torch.manual_seed(0)
    vit = vitattn.load_model("vit32", pretrained=False, device="cpu")
    rows = _by_stage(model_randomization(vit, IMAGE, "cls", 10))
    changed = [s for s, r in rows.items() if r["spearman"] < 1]
    assert changed == [f"blocks.{i}" for i in range(10, -1, -1)] + ["patch_embed"]
    torch.manual_seed(0)
    resnet = vitattn.load_model("resnet50", pretrained=False, device="cpu")
    before = _state(resnet)
    rows = model_randomization(resnet, IMAGE, "gradcam", 3)
    assert [r["stage"] for r in rows] == ["none", "fc", "layer4", "layer3", "layer2", "layer1", "stem"]
    assert rows[1]["spearman"] < 1  # Grad-CAM changes as soon as the fc layer is re-initialised
    assert not any(np.array_equal(r["map"], rows[0]["map"]) for r in rows[1:])  # (later all 0 here: Spearman NaN)
    assert _unchanged(resnet, before)
