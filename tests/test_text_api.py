"""The text tower and the text API: embeddings, templates, seeding, lazy loading, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from small_models import noise_image, small_model, small_overrides

import vitattn
from vitattn.text import TEXT_METHODS, caption_ranks, imagenet80

PROMPTS = ["a photo of a church", "rose window"]


def fresh(name: str = "clip") -> vitattn.Model:
    torch.manual_seed(0)
    return vitattn.load_model(name, pretrained=False, device="cpu", **small_overrides(name))


def test_encode_text_is_unit_norm_float32_in_the_image_space():
    model = small_model("clip")
    emb = model.encode_text(PROMPTS)
    assert emb.dtype == np.float32 and emb.shape == (2, model.image_embeddings(noise_image()).shape[1])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.encode_text("rose window")[0], emb[1])  # a string is one prompt


def test_imagenet80_averages_the_templated_embeddings_and_renormalises():
    model = small_model("clip")
    templates = imagenet80()
    assert len(templates) == 80 and templates[0] == "a bad photo of a {}."
    assert all(t.count("{}") == 1 for t in templates)
    each = model.encode_text([t.replace("{}", "rose window") for t in templates]).astype(np.float64)  # (80, D)
    mean = each.mean(0)
    got = model.encode_text(["rose window"], templates="imagenet80")[0]
    np.testing.assert_allclose(got, mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-6)
    own = model.encode_text(["rose window"], templates=["a {}", "the {} of a church"])[0]
    pair = model.encode_text(["a rose window", "the rose window of a church"]).astype(np.float64).mean(0)
    np.testing.assert_allclose(own, pair / np.linalg.norm(pair), rtol=1e-5, atol=1e-6)


def test_random_text_tower_is_seeded_and_leaves_the_global_rng_alone():
    one, two = fresh(), fresh()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    emb = one.encode_text(PROMPTS)
    after = torch.rand(1)
    np.testing.assert_array_equal(emb, two.encode_text(PROMPTS))
    assert before == after


def test_analyze_without_prompts_loads_no_text_tower():
    model = fresh()
    a = model.analyze(noise_image(), methods=("cls",))
    assert model._text_tower is None and a.text is None


def test_a_batch_gives_the_maps_of_single_images():
    model = small_model("clip")
    images = [noise_image(seed=s) for s in range(3)]
    batch = model.analyze(images, prompts=PROMPTS, methods=(), batch_size=2)
    for image, a in zip(images, batch, strict=True):
        single = model.analyze(image, prompts=PROMPTS, methods=())
        for method in TEXT_METHODS:
            np.testing.assert_allclose(a.map(method, prompt=PROMPTS[1]), single.map(method, prompt=PROMPTS[1]),
                                       rtol=1e-4, atol=1e-6)  # fmt: skip


def test_image_embeddings_are_the_modules_own_output():
    model = small_model("clip")
    image = noise_image()
    with torch.no_grad():
        out = model.module(model.transform(image)[None])
    np.testing.assert_allclose(model.image_embeddings(image)[0], torch.nn.functional.normalize(out, dim=-1)[0],
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_caption_ranks_count_the_captions_ranked_above_ones_own():
    model = small_model("clip")
    images = [noise_image(seed=s) for s in range(3)]
    captions = ["a church", "a tower", "a portal"]
    sims = model.image_embeddings(images) @ model.encode_text(captions).T
    want = [int((sims[i] > sims[i, i]).sum()) for i in range(3)]
    assert caption_ranks(model, images, captions).tolist() == want


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, a: vitattn.load_model("dinov2", pretrained=False, device="cpu", **small_overrides("dinov2"))
         .analyze(noise_image(), prompts=["x"]), "has no text tower; models with one: clip, siglip, siglip2"),
        (lambda m, a: m.encode_text([]), "prompts must be one or more non-empty strings"),
        (lambda m, a: m.encode_text(["x"], templates="imagenet81"), "expected None, imagenet80"),
        (lambda m, a: m.encode_text(["x"], templates=["no slot"]), "exactly one {}"),
        (lambda m, a: m.analyze(noise_image(), prompts=["x"], text_methods=["cls"]), "valid text methods: maskclip"),
        (lambda m, a: a.map("naclip"), "needs a prompt: one of ['a photo of a church', 'rose window']"),
        (lambda m, a: a.map("naclip", prompt="portal"), "was not analysed; analysed prompts"),
        (lambda m, a: a.map("cls", prompt="rose window"), "takes no prompt; text methods: maskclip"),
        (lambda m, a: a.map("legrad", 0, 2, prompt="rose window"), "fuses all heads"),
        (lambda m, a: a.map("naclip", 0, prompt="rose window"), "valid layers [1]"),
        (lambda m, a: a.patch_embeddings("legrad"), "dense text methods only; valid: maskclip"),
        (lambda m, a: m.analyze(noise_image(), methods=("cls",)).map("naclip", prompt="x"), "needs an analysis with"),
    ],
)  # fmt: skip
def test_errors_are_one_line_and_name_what_is_valid(call, message):
    model = small_model("clip")
    a = model.analyze(noise_image(), prompts=PROMPTS, methods=("cls",))
    with pytest.raises(ValueError) as err:
        call(model, a)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_text_package_and_analysis_import_no_torch():
    import subprocess
    import sys

    code = "import sys, vitattn, vitattn.text, vitattn.analysis; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
