"""Small random-weight variants of every model architecture, shared by the tests (no network needed)."""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

import vitattn

VIT_SMALL = {"depth": 2, "embed_dim": 64, "num_heads": 4}
RESNET_SMALL = {"layers": (1, 1, 1, 1)}


def small_overrides(name: str) -> dict:
    """Two blocks, 64 channels, 4 heads and a 4x4 patch grid (3x3 for ViT-B/32 and ResNet-50)."""
    spec = vitattn.MODELS[name]
    if spec.family == "resnet":
        return {**RESNET_SMALL, "img_size": 96}
    return {**VIT_SMALL, "img_size": 96 if spec.patch_size == 32 else 4 * spec.patch_size}


@cache
def small_model(name: str) -> vitattn.Model:
    import torch

    torch.manual_seed(0)
    return vitattn.load_model(name, pretrained=False, device="cpu", **small_overrides(name))


def noise_image(width: int = 120, height: int = 80, seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)
