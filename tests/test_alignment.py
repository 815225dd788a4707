"""Maps line up with normalized boxes on a non-square image: no crop, no transpose, no stray prefix token.

The weights are set by hand so the answer is known: the patch embedding writes each patch's mean brightness
(minus a threshold) into channel 0, every block is made the identity (zero attention projection and MLP), and for
the attention test each head's query is a constant and its key reads channel 0, so every query attends to bright
patches. An image of 300 x 200 pixels, black with white boxes, must light up exactly the cells under the boxes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from small_models import small_overrides

import vitattn

BOXES = [(0.25, 0.5, 0.5, 0.75), (0.75, 0.0, 1.0, 0.25)]  # on a 4x4 grid: cells (row 2, col 1) and (0, 3)
EXPECTED = {(2, 1), (0, 3)}


def boxed_image(width: int = 300, height: int = 200) -> Image.Image:
    image = Image.new("RGB", (width, height), "black")
    draw = ImageDraw.Draw(image)
    for x0, y0, x1, y1 in BOXES:
        draw.rectangle([x0 * width, y0 * height, x1 * width - 1, y1 * height - 1], fill="white")
    return image


def brightness_model(name: str, *, attend: bool) -> vitattn.Model:
    torch.manual_seed(0)
    model = vitattn.load_model(name, pretrained=False, device="cpu", **small_overrides(name))
    vit = model.module
    with torch.no_grad():
        for p in vit.parameters():
            p.zero_()
        for m in vit.modules():  # norms back to the identity affine map
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.fill_(1.0)
        proj = vit.patch_embed.proj  # Conv2d(3, D, p, p)
        proj.weight[0].fill_(1.0 / proj.weight[0].numel())  # channel 0 = mean of the normalized patch
        black = model.transform(Image.new("RGB", (8, 8), "black"))
        white = model.transform(Image.new("RGB", (8, 8), "white"))
        threshold = (black.mean() + white.mean()) / 2  # bright patches positive, dark negative
        if proj.bias is not None:
            proj.bias[0] = -threshold
        else:  # CLIP's patch embedding has no bias: shift the patch positions' embedding instead
            vit.pos_embed[0, -a_grid_cells(model) :, 0] = -threshold
        if attend:
            for blk in vit.blocks:
                at = blk.attn
                d, hd = at.qkv.in_features, at.head_dim
                for h in range(at.num_heads):
                    at.qkv.bias[h * hd] = 4.0  # query: constant
                    at.qkv.weight[d + h * hd, 0] = 1.0  # key: the sign of the brightness (after LayerNorm)
    return model


def a_grid_cells(model: vitattn.Model) -> int:
    return model.spec.grid[0] * model.spec.grid[1]


def lit_cells(values: np.ndarray) -> set[tuple[int, int]]:
    mid = (values.max() + values.min()) / 2
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(values > mid), strict=True)}


@pytest.mark.parametrize("name", [n for n, s in vitattn.MODELS.items() if s.family == "vit" and s.patch_size < 32])
def test_features_line_up_with_boxes(name):
    model = brightness_model(name, attend=False)
    a = model.analyze(boxed_image())
    assert a.grid == (4, 4)
    brightness = a.features(0)[:, 0].reshape(a.grid)
    assert lit_cells(brightness) == EXPECTED


@pytest.mark.parametrize("name", ["dinov2", "vit", "clip"])
def test_attention_maps_line_up_with_boxes(name):
    model = brightness_model(name, attend=True)
    a = model.analyze(boxed_image())
    for method in ("cls", "mean", "rollout"):
        assert lit_cells(a.map(method, layer=0)) == EXPECTED, method
    assert lit_cells(a.map("cls", layer=1, head=3)) == EXPECTED


def test_a_transposed_image_transposes_the_map():
    model = brightness_model("dinov2", attend=True)
    a = model.analyze(boxed_image())
    t = model.analyze(boxed_image().transpose(Image.Transpose.TRANSPOSE))
    np.testing.assert_allclose(t.map("cls", 0), a.map("cls", 0).T, rtol=1e-4, atol=1e-6)
