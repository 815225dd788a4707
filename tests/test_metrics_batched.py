"""The batched torch scorer against the numpy reference (``score_batch``): every model kind and method, ties,
flat maps, odd grids, negative values, several boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score
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


def test_host_upsample_is_raster_upsample_bit_for_bit() -> None:
    from vitattn.metrics.batched_host import host_upsample
    from vitattn.metrics.raster import upsample

    rng = np.random.default_rng(0)
    for shape, side in [((3, 14, 14), 224), ((2, 7, 7), 31), ((2, 3, 5), 64), ((2, 16, 16), 16), ((2, 1, 1), 8)]:
        maps = (rng.random(shape) - 0.3).astype(np.float32)
        maps[0, : shape[1] // 2] = 0.0  # flat: b - a is 0 (or -0.0) at every pixel
        expected, got = upsample(maps, side), host_upsample(maps, side)
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got.view(np.int32), expected.view(np.int32))


def test_the_torch_path_on_the_cpu_equals_the_reference(monkeypatch) -> None:
    """The accelerator path (``_chunk_scores``) run on the CPU, so it stays checked without a GPU."""
    import vitattn.metrics.batched as batched

    monkeypatch.setattr(batched, "CPU_PATH", "torch")
    assert_same(hard_maps((14, 14), 0), BOXES)
    assert_same(hard_maps((7, 7), 1), BOXES, 31, box_percentile=75)


LEFT_HALF = (0.0, 0.0, 0.5, 1.0)


def test_ties_worked_on_paper() -> None:
    # R = 4: the 4 x 4 map is its own upsampling. Columns hold 2, 1, 1, 0; the box is the left half: K = 8.
    # Four 2s (in), eight 1s (four in, four out: the tie group starts with outside pixels), four 0s (out).
    maps = np.tile(np.array([2.0, 1.0, 1.0, 0.0], dtype=np.float32), (1, 4, 1))
    got = score_maps(maps, [LEFT_HALF], 4).metrics
    assert got["pxap"][0] == pytest.approx(0.5 + 0.5 * 8 / 12, abs=1e-12)  # (1, 4/4) at 2, (1/2 more, 8/12) at 1
    assert got["relevance_rank"][0] == pytest.approx(6 / 8, abs=1e-12)  # 4 + 4 places shared by 8 ties, half in
    assert got["relevance_mass"][0] == pytest.approx(12 / 16, abs=1e-12)
    assert got["iou_50"][0] == pytest.approx(6 / (8 + 8 - 6), abs=1e-12)  # k = 8 as well
    assert_same(maps, [LEFT_HALF], 4)
    # The lowest value shared inside and out, at place 0: ReLU zeros on both sides of the box edge.
    zeros = np.zeros((1, 4, 4), dtype=np.float32)
    zeros[0, :2, 0] = 1.0  # two inside pixels above the zeros
    got = score_maps(zeros, [LEFT_HALF], 4).metrics
    labels = np.tile([1, 1, 0, 0], 4)
    assert got["pxap"][0] == pytest.approx(average_precision_score(labels, zeros.reshape(-1)), abs=1e-12)
    assert got["pxap"][0] == pytest.approx(2 / 8 * 1 + 6 / 8 * 8 / 16, abs=1e-12)
    assert_same(zeros, [LEFT_HALF], 4)


def test_map_equal_to_the_mask_and_a_uniform_map() -> None:
    from vitattn.metrics import union_mask

    mask = union_mask(BOXES, 16).astype(np.float32)[None]  # at R = 16 its own upsampling
    got = score_maps(mask, BOXES, 16).metrics
    for name in ("pxap", "relevance_rank", "relevance_mass", "pointing", "pointing_15"):
        assert got[name][0] == 1.0, name
    assert_same(mask, BOXES, 16)
    area = union_mask(BOXES, 32).mean()
    got = score_maps(np.full((2, 7, 7), 0.3, dtype=np.float32), BOXES, 32).metrics
    for name in ("pxap", "relevance_rank", "coverage"):
        np.testing.assert_allclose(got[name], area, rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("seed", range(4))
def test_pxap_equals_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    maps = rng.random((10, 7, 9)).astype(np.float32)
    maps[seed % 2 :: 2] = np.round(maps[seed % 2 :: 2] * 4) / 4  # many ties, inside and out
    maps[0, :, :4] = 0.0  # a flat region across the box edge, at the lowest value
    x0, x1 = np.sort(rng.random(2))
    boxes = [(float(x0), 0.1, float(x1), 0.7), (0.6, 0.5, 0.9, 0.95)]
    got = score_maps(maps, boxes, 48).metrics["pxap"]
    labels = union_mask_flat(boxes, 48)
    expected = [average_precision_score(labels, up) for up in upsample_flat(maps, 48)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def union_mask_flat(boxes, side: int) -> np.ndarray:
    from vitattn.metrics import union_mask

    return union_mask(boxes, side).reshape(-1)


def upsample_flat(maps: np.ndarray, side: int) -> np.ndarray:
    from vitattn.metrics.raster import upsample

    return upsample(maps, side).reshape(len(maps), -1)


def test_threads_give_the_numbers_of_one_thread(monkeypatch) -> None:
    """Blocks scored on a thread pool (``_host_parts``) give the bits of one thread, in the maps' order."""
    import vitattn.metrics.batched as batched

    maps = np.concatenate([hard_maps((14, 14), 0), hard_maps((14, 14), 1)])  # 24 maps
    monkeypatch.setattr(batched, "HOST_CHUNK", 5)
    monkeypatch.setattr(batched, "host_threads", lambda: 1)
    one = score_maps(maps, BOXES)
    monkeypatch.setattr(batched, "host_threads", lambda: 3)
    several = score_maps(maps, BOXES)
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(several.metrics[name], one.metrics[name], err_msg=name)
    np.testing.assert_array_equal(several.box_iou, one.box_iou)
    assert_same(maps, BOXES)


def test_sort_key_widths() -> None:
    """uint32 keys for non-negative maps (offset 0) and for maps of both signs within ``SPAN``, int64 beyond it;
    each kind against the reference, alone and beside the others in one block; -0.0 and +0.0 one value."""
    from vitattn.metrics.batched_ranks import Buffers, host_keys

    rng = np.random.default_rng(3)
    positive = rng.random((1, 6, 6)).astype(np.float32)
    signed = positive - 0.5
    wide = (positive - 0.5) * np.float32(2000)  # about -1000 to 1000: ordered bits span more than 2^31
    bit = np.zeros(36, dtype=np.uint8)
    for maps, dtype in [(positive, np.uint32), (signed, np.uint32), (wide, np.int64)]:
        keys, _, offset = host_keys(maps.reshape(1, -1), bit, Buffers())
        assert keys.dtype == dtype
        assert (offset == 0).all() == (maps.min() >= 0)
        assert_same(maps, BOXES, 6)
    assert_same(np.concatenate([positive, signed, wide, positive]), BOXES, 6)  # one block: the widest keys
    # -0.0 ties +0.0. At R = 4 (its own upsampling) columns 1, +0.0, -1, -1, and one -0.0 above a -1 beside a -1
    # (so its lerps keep it -0.0); the box the left half (K = 8). The top 8: the four 1s and four of the five zeros
    # (four +0.0 inside, the -0.0 outside), 4 + 4 * 4 / 5 hits.
    zeros = np.tile(np.array([1.0, 0.0, -1.0, -1.0], dtype=np.float32), (1, 4, 1))
    zeros[0, 0, 2] = -0.0
    got = score_maps(zeros, [LEFT_HALF], 4).metrics["iou_50"][0]
    assert got == pytest.approx(7.2 / (8 + 8 - 7.2), abs=1e-12)
    assert_same(zeros, [LEFT_HALF], 4)


def test_ties_across_maps_of_one_block() -> None:
    """Constant and few-level maps side by side in one block: tie groups never run from one map into the next."""
    rng = np.random.default_rng(5)
    maps = np.round(rng.random((8, 7, 9)) * 3).astype(np.float32) / 3  # four levels
    maps[0] = maps[1] = 0.5  # equal constant maps, one after the other
    maps[4, :, :5] = 1.0  # the top level across the box edge
    boxes = [(0.2, 0.1, 0.6, 0.7), (0.5, 0.5, 0.9, 0.95)]
    got = score_maps(maps, boxes, 48).metrics["pxap"]
    labels = union_mask_flat(boxes, 48)
    expected = [average_precision_score(labels, up) for up in upsample_flat(maps, 48)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert_same(maps, boxes, 48)


def test_buffers_reused_across_shapes() -> None:
    """One set of ``Buffers`` through blocks of other sizes, box lists and resolutions gives fresh buffers' bits."""
    from vitattn.metrics.batched_host import host_scores, host_targets
    from vitattn.metrics.batched_ranks import Buffers

    shared = Buffers()
    for maps, boxes, side in [
        (hard_maps((14, 14), 0), BOXES, 224),
        (hard_maps((7, 7), 1)[:3], [LEFT_HALF], 31),
        (hard_maps((14, 14), 1)[:5], [(0.0, 0.0, 1.0, 1.0)], 64),
        (hard_maps((14, 14), 0), BOXES, 224),
    ]:
        h = host_targets(tuple(boxes), side, 90.0)
        fresh, reused = host_scores(maps, h, 7), host_scores(maps, h, 7, shared)
        for name in fresh:
            np.testing.assert_array_equal(reused[name], fresh[name], err_msg=name)
