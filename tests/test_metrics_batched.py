"""The batched torch scorer against the numpy reference (``score_batch``): every model kind and method, ties,
flat maps, odd grids, negative values, several boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from small_models import noise_image, small_model

import vitattn
from vitattn.boxes import LabeledBox
from vitattn.metrics import METRIC_NAMES, score_batch
from vitattn.metrics.batched import score_maps
from vitattn.store.writer import map_rows

BOXES = [(0.1, 0.2, 0.45, 0.8), (0.55, 0.1, 0.9, 0.5), (0.3, 0.6, 0.7, 0.95)]
TOLERANCE = 1e-5


def assert_same(maps: np.ndarray, boxes, resolution: int = 224, device: str = "cpu", box_percentile=90) -> None:
    expected = score_batch(maps, boxes, resolution, box_percentile=box_percentile)
    got = score_maps(maps, boxes, resolution, box_percentile=box_percentile, device=device)
    assert set(got.metrics) == set(METRIC_NAMES)
    for name in METRIC_NAMES:
        np.testing.assert_allclose(got.metrics[name], expected.metrics[name], rtol=0, atol=TOLERANCE, err_msg=name)
    np.testing.assert_allclose(got.box_iou, expected.box_iou, rtol=0, atol=TOLERANCE)


def hard_maps(grid: tuple[int, int] = (14, 14), seed: int = 0) -> np.ndarray:
    """Random maps and the hard cases: constant, ReLU zeros, few levels (ties), negatives, one hot cell, float16."""
    rng = np.random.default_rng(seed)
    maps = rng.random((12, *grid)).astype(np.float32)
    maps[0] = 0.3  # constant
    maps[1, : grid[0] // 2] = 0.0  # a flat half
    maps[2] = np.round(maps[2] * 3)  # three levels: ties at every threshold
    maps[3] -= 0.5  # negative values
    maps[4] = -1.0  # no positive mass
    maps[5] = 0.0
    maps[5, 1, 1] = 1.0  # one hot cell
    maps[6] *= 1e-30  # tiny values
    maps[7] = maps[7] + 1e4  # large offset
    return maps.astype(np.float16).astype(np.float32) if seed % 2 else maps


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("grid", [(14, 14), (7, 7), (3, 5), (16, 16)])
def test_equal_to_the_numpy_reference(grid, seed) -> None:
    assert_same(hard_maps(grid, seed), BOXES)


@pytest.mark.parametrize("resolution", [8, 31, 64])
def test_other_resolutions_and_box_percentiles(resolution) -> None:
    maps = hard_maps((6, 6), 1)
    assert_same(maps, BOXES, resolution, box_percentile=75)
    assert_same(maps, [(0.0, 0.0, 1.0, 1.0)], resolution)  # a box over the whole image
    assert_same(maps, [(0.5, 0.5, 0.501, 0.501)], resolution)  # a box thinner than a pixel


def test_labeled_boxes_and_torch_input() -> None:
    maps = hard_maps((14, 14), 0)
    boxes = [LabeledBox(box=b, label=f"b{i}") for i, b in enumerate(BOXES)]
    expected = score_batch(maps, BOXES)
    got = score_maps(torch.from_numpy(maps), boxes)
    for name in METRIC_NAMES:
        np.testing.assert_allclose(got.metrics[name], expected.metrics[name], rtol=0, atol=TOLERANCE, err_msg=name)


def test_bad_input_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="3-D"):
        score_maps(np.zeros((4, 4), dtype=np.float32), BOXES)
    with pytest.raises(ValueError, match="non-finite"):
        score_maps(np.full((1, 4, 4), np.nan, dtype=np.float32), BOXES)
    with pytest.raises(ValueError, match="boxes is empty"):
        score_maps(np.zeros((1, 4, 4), dtype=np.float32), [])


@pytest.mark.parametrize("name", list(vitattn.MODELS))
def test_every_model_kind_and_method(name) -> None:
    """Every map a small model of each kind computes (every method, layer and head), as the store holds them."""
    model = small_model(name)
    analysis = model.analyze(noise_image(), methods=list(model.spec.methods))
    rows = map_rows(analysis)
    assert len({r[0] for r in rows}) == len(model.spec.methods)
    for shape in {r[3].shape for r in rows}:  # ResNet's stages have grids of their own
        assert_same(np.stack([r[3] for r in rows if r[3].shape == shape]).astype(np.float32), BOXES)  # as stored


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_equal_on_cuda() -> None:
    assert_same(hard_maps((14, 14), 0), BOXES, device="cuda")
    assert_same(hard_maps((7, 7), 1), BOXES, device="cuda")
