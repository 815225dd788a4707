"""Deletion / insertion curves on models whose answer is known by construction, and on every small model."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tests.small_models import noise_image, small_model
from vitattn.faithfulness import Faithfulness, cell_index, evaluate, evaluate_batch, step_counts
from vitattn.models.model import Model
from vitattn.models.transform import Transform
from vitattn.specs import get_spec

SIDE, PATCH = 64, 16  # a 4 x 4 grid of 16 px cells
KEY = (1, 2)  # the one cell the hand-built models look at
# Map values: the key cell is the 5th most important, so it goes at the first step that removes 5 of 16 cells:
# round(i * 16 / 20) >= 5 first at i = 6 (4.8 -> 5; i = 5 gives 4).
MAP = np.arange(16, dtype=np.float32)[::-1].reshape(4, 4).copy()  # cell k has value 15 - k: raster order
MAP[KEY], MAP[1, 0] = MAP[1, 0], MAP[KEY]  # key cell (index 6) swaps with index 4: now 5th
KEY_STEP = 6


def _patch(x: torch.Tensor) -> torch.Tensor:
    r, c = KEY
    return x[:, :, r * PATCH : (r + 1) * PATCH, c * PATCH : (c + 1) * PATCH]  # (B, 3, 16, 16)


class OnePatchClassifier(nn.Module):
    """Ten classes; class 0's logit is 20x the spatial std of the key cell (mean over channels), the others are 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 10)  # (B, 10)
        logits[:, 0] = 20 * _patch(x).flatten(2).std(dim=2).mean(dim=1)  # spatial std, averaged over channels
        return logits


class OnePatchEmbedder(nn.Module):
    """No class head; the pooled embedding is the key cell's pixels plus 1."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x  # (B, 3, S, S)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        assert pre_logits
        return _patch(x).flatten(1) + 1.0  # (B, 768)


def _model(module: nn.Module, classifier: bool) -> Model:
    spec = replace(get_spec("vit"), img_size=SIDE, patch_size=PATCH, classifier=classifier)
    return Model(spec, module, None, Transform(SIDE, (0.5,) * 3, (0.5,) * 3), torch.device("cpu"))


def _image() -> Image.Image:
    return noise_image(SIDE, SIDE, seed=3)


def test_step_counts_and_cells():
    assert step_counts(16, 20).tolist() == [0, 1, 2, 2, 3, 4, 5, 6, 6, 7, 8, 9, 10, 10, 11, 12, 13, 14, 14, 15, 16]
    cells = cell_index((4, 4), 64)
    for r in range(4):
        for c in range(4):
            assert (cells[r * 16 : (r + 1) * 16, c * 16 : (c + 1) * 16] == r * 4 + c).all()
    # 3 cells over 64 px, cell edges 21.33 and 42.67: centres j + 0.5 give j = 0..20, 21..42, 43..63
    assert np.bincount(cell_index((3, 3), 64)[0]).tolist() == [21, 22, 21]


@pytest.mark.parametrize("mode", ["mean", "blur"])
def test_deletion_drops_exactly_at_the_key_cells_step(mode):
    model = _model(OnePatchClassifier(), classifier=True)
    f = evaluate(model, _image(), MAP, mode=mode)
    assert isinstance(f, Faithfulness) and f.score == "probability" and f.target == 0 and f.mode == mode
    intact, canvas = f.deletion[0], f.deletion[-1]
    assert intact > 0.99 and canvas < intact - 0.05
    np.testing.assert_array_equal(f.deletion[:KEY_STEP], intact)  # the key cell is untouched before its step
    np.testing.assert_array_equal(f.deletion[KEY_STEP:], canvas)  # and gone from then on
    np.testing.assert_array_equal(f.insertion[:KEY_STEP], canvas)
    np.testing.assert_array_equal(f.insertion[KEY_STEP:], intact)
    if mode == "mean":
        assert canvas == pytest.approx(0.1)  # a flat cell: every logit 0, ten classes
    fractions = step_counts(16, 20) / 16
    np.testing.assert_allclose(f.fractions, fractions)
    auc = sum((fractions[i + 1] - fractions[i]) * (f.deletion[i] + f.deletion[i + 1]) / 2 for i in range(20))
    assert f.auc_deletion == pytest.approx(auc)
    assert f.abpc == pytest.approx(f.auc_insertion - f.auc_deletion) and f.abpc > 0
    row = f.as_dict()
    assert row["deletion"] == f.deletion.tolist() and row["abpc"] == f.abpc and row["target"] == 0
    assert list(row) == [field.name for field in dataclasses.fields(Faithfulness)]


def test_cosine_score_of_a_model_without_class_head():
    model = _model(OnePatchEmbedder(), classifier=False)
    f = evaluate(model, _image(), MAP, mode="mean")
    assert f.score == "cosine" and f.target is None
    assert f.deletion[0] == pytest.approx(1.0) and f.insertion[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(f.deletion[:KEY_STEP], 1.0, rtol=1e-6)
    assert (f.deletion[KEY_STEP:] < 0.99).all() and np.ptp(f.deletion[KEY_STEP:]) < 1e-6
    with pytest.raises(ValueError, match="not a classifier"):
        evaluate(model, _image(), MAP, target=3)


def test_random_baseline_is_seeded_and_a_flat_map_scores_as_random():
    model = _model(OnePatchClassifier(), classifier=True)
    a, b = evaluate(model, _image(), MAP, seed=1), evaluate(model, _image(), MAP, seed=1)
    np.testing.assert_array_equal(a.random_deletion, b.random_deletion)
    # the random order removes the key cell at the step where its random position is first covered
    flat = evaluate(model, _image(), np.zeros((4, 4)), seed=1)
    np.testing.assert_array_equal(flat.deletion, flat.random_deletion)
    np.testing.assert_array_equal(flat.insertion, a.random_insertion)
    position = int(np.flatnonzero(np.random.default_rng(1).permutation(16) == KEY[0] * 4 + KEY[1])[0])
    drop = int(np.argmax(step_counts(16, 20) > position))
    assert (a.random_deletion[:drop] == a.deletion[0]).all() and (a.random_deletion[drop:] < a.deletion[0]).all()


def test_batch_shares_passes_and_matches_single_calls():
    model = _model(OnePatchClassifier(), classifier=True)
    image = _image()
    other = np.random.default_rng(0).random((4, 4))
    batch = evaluate_batch(model, [image, image], [MAP, other], batch_size=7)
    for f, m in zip(batch, [MAP, other], strict=True):
        single = evaluate(model, image, m)
        np.testing.assert_allclose(f.deletion, single.deletion, rtol=1e-6)
        np.testing.assert_allclose(f.random_insertion, single.random_insertion, rtol=1e-6)


def test_bad_input():
    model = _model(OnePatchClassifier(), classifier=True)
    with pytest.raises(ValueError, match="2-D"):
        evaluate(model, _image(), np.zeros(16))
    with pytest.raises(ValueError, match="NaN"):
        evaluate(model, _image(), np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="mode"):
        evaluate(model, _image(), MAP, mode="zero")
    with pytest.raises(ValueError, match="steps"):
        evaluate(model, _image(), MAP, steps=0)
    with pytest.raises(ValueError, match="not a class"):
        evaluate(model, _image(), MAP, target=12)
    with pytest.raises(ValueError, match="saliency maps"):
        evaluate_batch(model, [_image()], [MAP, MAP])


@pytest.mark.parametrize(
    ("name", "method", "score"),
    [
        ("vit", "cls", "probability"),
        ("dinov2", "cls", "cosine"),
        ("siglip", "pool", "cosine"),
        ("resnet50", "gradcam", "probability"),
    ],
)
def test_every_family_on_its_own_maps(name, method, score):
    model = small_model(name)
    image = noise_image(100, 70, seed=1)
    saliency = model.analyze(image, methods=[method], features=False).map(method)
    f = evaluate(model, image, saliency, steps=5)
    assert f.score == score and len(f.deletion) == len(f.insertion) == len(f.random_deletion) == 6
    assert np.isfinite([f.auc_deletion, f.auc_insertion, f.abpc, f.auc_random_deletion]).all()
    assert f.deletion[0] == f.insertion[-1] == f.random_deletion[0]  # the intact input
    assert f.deletion[-1] == f.insertion[0] == f.random_insertion[0]  # the canvas
    if score == "cosine":
        assert f.deletion[0] == pytest.approx(1.0, abs=1e-5)


def test_blur_is_the_truncated_gaussian_of_rise():
    """Sigma 5 px and radius 5 at 224 px (RISE's gkern(11, 5)), normalised, mirror padding: scipy's filter."""
    from scipy import ndimage

    from vitattn.faithfulness import blur

    x = torch.from_numpy(np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32))
    expected = np.stack([ndimage.gaussian_filter(c, sigma=5.0, mode="mirror", truncate=1.0) for c in x[0].numpy()])
    np.testing.assert_allclose(blur(x)[0].numpy(), expected, atol=1e-5)
