"""Every model x method on small random-weight variants: shapes, values, heads, errors."""

from __future__ import annotations

import numpy as np
import pytest
from small_models import noise_image, small_model

import vitattn
from vitattn.specs import GRADIENT_METHODS

MODEL_METHODS = [(n, m) for n, s in vitattn.MODELS.items() for m in s.methods]


@pytest.fixture(scope="module")
def analyses():
    images = [noise_image(120, 80, seed=1), noise_image(64, 100, seed=2)]
    return {name: small_model(name).analyze(images) for name in vitattn.MODELS}


@pytest.mark.parametrize("name,method", MODEL_METHODS)
def test_every_map_has_the_grid_shape_and_finite_values(analyses, name, method):
    spec = small_model(name).spec
    a = analyses[name][0]
    assert a.methods == spec.methods
    layers = a.layers(method)
    expected_layers = (spec.num_layers - 1,) if method == "pool" else tuple(range(spec.num_layers))
    assert layers == expected_layers
    for layer in layers:
        fused = a.map(method, layer=layer)
        assert fused.dtype == np.float32 and np.isfinite(fused).all()
        if spec.family == "vit":
            assert fused.shape == spec.grid
        if a.has_heads(method):
            heads = a.heads(method, layer)
            assert heads.shape == (spec.num_heads, *fused.shape)
            for h in range(spec.num_heads):
                np.testing.assert_array_equal(a.map(method, layer=layer, head=h), heads[h])
    assert not a.map(method).flags.writeable


@pytest.mark.parametrize("name,method", [(n, m) for n, m in MODEL_METHODS if m in ("cls", "mean", "pool")])
def test_fused_is_the_mean_of_the_heads(analyses, name, method):
    a = analyses[name][0]
    for layer in a.layers(method):
        np.testing.assert_allclose(a.map(method, layer), a.heads(method, layer).mean(0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,method", [(n, m) for n, m in MODEL_METHODS if m in ("cls", "mean", "pool", "agcam")])
def test_heads_differ(analyses, name, method):
    heads = analyses[name][0].heads(method)
    assert not np.allclose(heads[0], heads[1])


@pytest.mark.parametrize("name,method", [(n, m) for n, m in MODEL_METHODS if m in ("cls", "pool")])
def test_attention_distributions_sum_to_at_most_one(analyses, name, method):
    """A softmax row over all tokens: the patch part sums to 1 without prefix tokens, less with them."""
    a = analyses[name][0]
    total = a.heads(method).sum(axis=(1, 2))
    assert (total <= 1 + 1e-5).all() and (total > 0).all()
    if small_model(name).spec.num_prefix_tokens == 0:
        np.testing.assert_allclose(total, 1, rtol=1e-5)


def test_images_of_a_batch_get_their_own_maps(analyses):
    first, second = analyses["dinov2"]
    assert first.image_size == (120, 80) and second.image_size == (64, 100)
    assert not np.allclose(first.map("cls"), second.map("cls"))


def test_a_batch_equals_single_images():
    model = small_model("clip")
    images = [noise_image(90, 60, seed=s) for s in range(3)]
    batched = model.analyze(images, batch_size=2)
    for image, b in zip(images, batched, strict=True):
        single = model.analyze(image)
        for method in model.spec.methods:
            np.testing.assert_allclose(b.map(method, 1), single.map(method, 1), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(b.features(0), single.features(0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(vitattn.MODELS))
def test_features_every_layer(analyses, name):
    spec = small_model(name).spec
    a = analyses[name][0]
    for layer in range(spec.num_layers):
        f = a.features(layer)
        gh, gw = a.feature_grid(layer)
        assert f.ndim == 2 and f.shape[0] == gh * gw and f.dtype == np.float32 and np.isfinite(f).all()
    if spec.family == "vit":
        assert a.features().shape == (spec.grid[0] * spec.grid[1], 64)


@pytest.mark.parametrize("name", [n for n, s in vitattn.MODELS.items() if s.classifier])
def test_classifiers_give_top5_imagenet_labels(analyses, name):
    preds = analyses[name][0].predictions
    assert len(preds) == 5 and all(isinstance(label, str) and label for label, _ in preds)
    probs = [p for _, p in preds]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert analyses[name][0].target is not None


@pytest.mark.parametrize("name", [n for n, s in vitattn.MODELS.items() if not s.classifier])
def test_non_classifiers_have_no_predictions(analyses, name):
    assert analyses[name][0].predictions is None


def test_gradient_methods_follow_the_target():
    model = small_model("resnet50")
    image = noise_image()
    a, b = model.analyze(image, target=3), model.analyze(image, target=7)
    assert a.target == 3 and b.target == 7
    assert not np.allclose(a.map("gradcam", 3), b.map("gradcam", 3))
    top1 = model.analyze(image)
    assert top1.target == vitattn.labels.imagenet_labels().index(top1.predictions[0][0])


def test_errors_name_what_is_valid(analyses):
    a = analyses["dinov2"][0]
    with pytest.raises(ValueError, match="valid methods: cls, mean, rollout"):
        a.map("pool")
    with pytest.raises(ValueError, match=r"valid layers 0\.\.1"):
        a.map("cls", layer=2)
    with pytest.raises(ValueError, match=r"valid heads 0\.\.3"):
        a.map("cls", layer=0, head=4)
    with pytest.raises(ValueError, match="fuses all heads"):
        a.map("rollout", head=0)
    with pytest.raises(ValueError, match="valid layers"):
        a.features(5)
    with pytest.raises(ValueError, match="unknown model 'nope'; valid models: dinov2"):
        vitattn.load_model("nope", pretrained=False)
    with pytest.raises(ValueError, match="has no method"):
        small_model("siglip").analyze(noise_image(), methods=["cls"])
    with pytest.raises(ValueError, match="not a classifier"):
        small_model("clip").analyze(noise_image(), target=3)
    with pytest.raises(ValueError, match="class index"):
        small_model("vit").analyze(noise_image(), target=1000)


def test_attention_methods_need_no_backward():
    a = small_model("vit").analyze(noise_image(), methods=["cls", "rollout"], features=False)
    assert a.methods == ("cls", "rollout") and a.target is None and not a.feats
    with pytest.raises(ValueError, match="without features"):
        a.features()


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "I", "F", "1"])
def test_any_image_mode_is_analyzed(mode):
    image = noise_image(70, 50, mode="RGB")
    if mode == "I;16":
        image = vitattn_image_16bit()
    elif mode in ("I", "F"):
        image = image.convert("L").convert(mode)
    else:
        image = image.convert(mode)
    a = small_model("vit32").analyze(image)
    assert np.isfinite(a.map("cls")).all() and a.image_size == image.size


def vitattn_image_16bit():
    from PIL import Image

    values = (np.arange(50 * 70).reshape(50, 70) * 18).astype(np.uint16)
    return Image.fromarray(values, mode="I;16")


@pytest.mark.parametrize("name", [n for n, s in vitattn.MODELS.items() if s.family == "vit"])
def test_fused_attention_is_switched_off(name):
    model = small_model(name)
    flags = [m.fused_attn for m in model.module.modules() if hasattr(m, "fused_attn")]
    assert flags and not any(flags)


def test_gradient_methods_list():
    assert set(GRADIENT_METHODS) == {"gradcam", "agcam", "gae"}
