"""The full-size architecture of each family, random weights: the spec matches the built model."""

from __future__ import annotations

import numpy as np
import pytest
from small_models import noise_image

import vitattn


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dinov2", "dinov3", "siglip", "vit", "resnet50"])
def test_full_size_model_matches_its_spec(name):
    spec = vitattn.MODELS[name]
    model = vitattn.load_model(name, pretrained=False, device="cpu")  # raises if the module disagrees with spec
    assert model.spec == spec
    a = model.analyze(noise_image(320, 240, seed=3), features=True)
    for method in spec.methods:
        layers = a.layers(method)
        assert a.map(method, layers[-1]).shape == (spec.grid if spec.family == "vit" else (7, 7))
        if a.has_heads(method):
            assert a.heads(method, layers[-1]).shape[0] == spec.num_heads
    assert len(a.feats) == spec.num_layers
    if spec.family == "vit":
        assert a.features(spec.num_layers - 1).shape == (spec.grid[0] * spec.grid[1], 768)
        assert np.isfinite(a.features()).all()
