"""Per-head attention statistics on hand-built attention, and through `Model.analyze(stats=True)`."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from small_models import noise_image, small_model

from vitattn.headstats import STAT_NAMES, attention_distance, head_diversity, head_stats
from vitattn.trace import Trace


def mean_pairwise_patch_distance(grid: tuple[int, int], patch: int) -> float:
    """By hand: every ordered pair of patch centres (self-pairs included), Euclidean distance in pixels."""
    centres = [((r + 0.5) * patch, (c + 0.5) * patch) for r in range(grid[0]) for c in range(grid[1])]
    return float(np.mean([math.dist(p, q) for p, q in itertools.product(centres, centres)]))


def test_attention_on_self_has_distance_zero():
    grid, prefix = (3, 4), 2
    t = prefix + 12
    attn = torch.eye(t).expand(1, 2, t, t)  # (1, 2, T, T) every token attends to itself
    np.testing.assert_array_equal(attention_distance(attn, prefix, grid, 16).numpy(), 0)


def test_uniform_attention_has_the_mean_pairwise_patch_distance():
    """Uniform over all T tokens, prefix included: renormalized over the patches it is uniform over the patches."""
    grid, prefix, patch = (3, 4), 1, 14
    t = prefix + 12
    attn = torch.full((2, 3, t, t), 1.0 / t)
    expected = mean_pairwise_patch_distance(grid, patch)
    np.testing.assert_allclose(attention_distance(attn, prefix, grid, patch).numpy(), expected, rtol=1e-6)


def test_attention_to_the_right_neighbour_is_one_patch_away():
    """Each patch attends to its right neighbour (the last column to its left one): every distance is one patch;
    mass put on the prefix does not change it (rows are renormalized over the patches)."""
    gh, gw, patch = 2, 3, 16
    p = gh * gw
    attn = torch.zeros(1, 1, p + 1, p + 1)
    attn[..., 0] = 0.5  # half of every row on the CLS token
    for i in range(p):
        j = i + 1 if i % gw < gw - 1 else i - 1
        attn[0, 0, 1 + i, 1 + j] = 0.5
    np.testing.assert_allclose(attention_distance(attn, 1, (gh, gw), patch).numpy(), [[16.0]])


def test_attention_distance_checks_the_token_count():
    with pytest.raises(ValueError, match="expected"):
        attention_distance(torch.ones(1, 1, 5, 5), 1, (2, 3), 16)


def cls_trace(rows: torch.Tensor, num_prefix: int, grid) -> Trace:
    """A trace whose CLS rows are ``rows`` (B, H, T) and whose other rows attend to themselves."""
    b, h, t = rows.shape
    attn = torch.eye(t).repeat(b, h, 1, 1)
    attn[:, :, 0, :] = rows
    return Trace(grids=(grid,), num_prefix=num_prefix, has_cls=True, features=[], attentions=[attn])


def test_entropy_and_prefix_share_of_hand_set_cls_rows():
    """CLS + 1 register + 4 patches. Head 0 uniform over the 6 tokens: entropy ln 6, prefix share 2/6.
    Head 1 all on the register: entropy 0, share 1. Head 2 half CLS, half one patch: entropy ln 2, share 1/2."""
    rows = torch.tensor([[[1 / 6] * 6, [0, 1, 0, 0, 0, 0], [0.5, 0, 0, 0.5, 0, 0]]], dtype=torch.float32)  # (1, 3, 6)
    stats = head_stats(cls_trace(rows, 2, (2, 2)), patch_size=16)
    assert set(stats) == set(STAT_NAMES)
    np.testing.assert_allclose(stats["entropy"][0, 0].numpy(), [math.log(6), 0, math.log(2)], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(stats["prefix_share"][0, 0].numpy(), [2 / 6, 1, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(stats["distance_px"][0, 0].numpy(), 0)  # the patches attend to themselves


def test_siglip_has_its_pooling_row_at_the_last_layer_only():
    model = small_model("siglip")
    trace = model.adapter.trace(model.transform(noise_image())[None])
    stats = head_stats(trace, model.spec.patch_size)
    ent, share = stats["entropy"][0].numpy(), stats["prefix_share"][0].numpy()  # (L, H)
    assert np.isnan(ent[:-1]).all() and np.isnan(share[:-1]).all()
    expected = -(trace.pool * trace.pool.log()).sum(-1)[0].numpy()  # (H,)
    np.testing.assert_allclose(ent[-1], expected, rtol=1e-5)
    np.testing.assert_array_equal(share[-1], 0)  # no prefix tokens
    assert np.isfinite(stats["distance_px"].numpy()).all()


@pytest.mark.parametrize("name", ["vit", "dinov2", "dinov3", "siglip"])
def test_analyze_gives_layer_by_head_tables(name):
    model, image = small_model(name), noise_image(seed=2)
    spec = model.spec
    a = model.analyze(image, stats=True)
    assert set(a.head_stats) == set(STAT_NAMES)
    for key, table in a.head_stats.items():
        assert table.shape == (spec.num_layers, spec.num_heads) and table.dtype == np.float32, key
        assert not table.flags.writeable
    distance = a.head_stats["distance_px"]
    side = spec.grid[0] * spec.patch_size
    assert ((distance > 0) & (distance < side * math.sqrt(2))).all()
    if "cls" in spec.methods:  # the share on the prefix is what the CLS map (patches only) leaves out
        for layer in range(spec.num_layers):
            cls_mass = a.heads("cls", layer).sum(axis=(1, 2))  # (H,)
            np.testing.assert_allclose(a.head_stats["prefix_share"][layer], 1 - cls_mass, rtol=1e-4, atol=1e-6)
        t = spec.num_prefix_tokens + spec.grid[0] * spec.grid[1]
        assert (a.head_stats["entropy"] <= math.log(t) + 1e-5).all()
    assert model.analyze(image).head_stats is None


def test_analyze_stats_of_a_batch_equal_single_images():
    model = small_model("dinov2")
    images = [noise_image(seed=s) for s in range(2)]
    batched = model.analyze(images, stats=True, methods=["cls"])
    for image, b in zip(images, batched, strict=True):
        single = model.analyze(image, stats=True, methods=["cls"])
        for key in STAT_NAMES:
            np.testing.assert_allclose(b.head_stats[key], single.head_stats[key], rtol=1e-4, atol=1e-6)


def test_resnet_has_no_head_statistics():
    with pytest.raises(ValueError, match="no attention heads"):
        small_model("resnet50").analyze(noise_image(), stats=True)


def test_head_diversity_on_paper():
    same = np.ones((3, 2, 2))
    assert head_diversity(same) == 0.0
    disjoint = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # (2, 1, 2)
    assert head_diversity(disjoint) == 1.0
    # p = [.5, .5, 0], q = [0, .5, .5]: TV = 0.5 * (.5 + 0 + .5) = .5; scale does not matter (normalized)
    assert head_diversity(np.array([[[1.0, 1.0, 0.0]], [[0.0, 3.0, 3.0]]])) == pytest.approx(0.5)
    # three heads: pairs (p, q) .5, (p, r) 1, (q, r) .5 with r = [0, 0, 1] -> mean 2/3
    three = np.array([[[1.0, 1.0, 0.0]], [[0.0, 1.0, 1.0]], [[0.0, 0.0, 1.0]]])
    assert head_diversity(three) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "maps,match",
    [(np.ones((1, 2, 2)), "at least 2"), (-np.ones((2, 2, 2)), "non-negative"), (np.zeros((2, 2, 2)), "sums to 0")],
)
def test_head_diversity_rejects_bad_maps(maps, match):
    with pytest.raises(ValueError, match=match):
        head_diversity(maps)


def test_head_diversity_of_real_cls_maps_is_in_range():
    a = small_model("vit").analyze(noise_image(seed=7), methods=["cls"])
    d = head_diversity(a.heads("cls", 1))
    assert 0 < d < 1
