"""MaxBoxAccV2 (vitattn.metrics.boxacc, Choe et al. CVPR 2020) on cases worked out by hand and against an independent
implementation with scikit-image's labelling and plain pixel masks."""

import numpy as np
import pytest
from skimage.measure import label, regionprops

from vitattn.metrics.boxacc import THRESHOLDS, best_ious, box_acc, max_box_acc, normalized
from vitattn.metrics.raster import box_masks


def _grid(points: dict, size: int = 4) -> np.ndarray:
    m = np.zeros((size, size), dtype=np.float32)
    for (r, c), v in points.items():
        m[r, c] = v
    return m


def test_a_map_equal_to_the_box_mask_scores_one_and_a_uniform_map_zero():
    block = _grid({(1, 1): 1, (1, 2): 1, (2, 1): 1, (2, 2): 1})
    box = [(0.25, 0.25, 0.75, 0.75)]
    assert best_ious(block, box, resolution=4).tolist() == [1.0] * 100  # R = grid: no interpolation
    assert max_box_acc([block], [box], resolution=4) == 1.0
    assert max_box_acc([np.full((4, 4), 0.3)], [box], resolution=4) == 0.0  # constant: no region at any threshold
    # at 224 (the default) the upsampled 14 x 14 mask of a box still finds it
    mask = box_masks([(2 / 14, 3 / 14, 9 / 14, 12 / 14)], 14)[0].astype(np.float32)
    assert max_box_acc([mask], [[(2 / 14, 3 / 14, 9 / 14, 12 / 14)]]) == 1.0


def test_regions_are_eight_connected():
    diagonal = _grid({(0, 0): 1, (1, 1): 1})  # one region with 8-connectivity: box rows 0-1, cols 0-1
    quadrant = [(0, 0, 0.5, 0.5)]
    assert best_ious(diagonal, quadrant, resolution=4)[0] == 1.0  # 4-connectivity would give 0.25


def test_the_best_threshold_is_chosen_per_delta_over_the_set():
    # image 1: 1 at (0, 0), 0.5 at (0, 1); box = both pixels. IoU 1 for tau < 0.5, then 1/2.
    # image 2: 1 at (3, 3), 0.25 at (3, 2); box = (3, 3). IoU 1/2 for tau < 0.25, then 1.
    one = _grid({(0, 0): 1.0, (0, 1): 0.5})
    two = _grid({(3, 3): 1.0, (3, 2): 0.25})
    boxes = [[(0, 0, 0.5, 0.25)], [(0.75, 0.75, 1, 1)]]
    np.testing.assert_array_equal(best_ious(one, boxes[0], resolution=4), np.where(THRESHOLDS < 0.5, 1.0, 0.5))
    np.testing.assert_array_equal(best_ious(two, boxes[1], resolution=4), np.where(THRESHOLDS < 0.25, 0.5, 1.0))
    r = box_acc([one, two], boxes, resolution=4)
    assert r.per_delta == {0.3: 1.0, 0.5: 1.0, 0.7: 1.0} and r.max_box_acc == 1.0
    assert r.best_threshold[0.7] == 0.25  # only 0.25 <= tau < 0.5 finds both boxes at IoU >= 0.7
    assert r.curve[10, 2] == 0.5 and r.curve[60, 2] == 0.5 and r.curve[30, 2] == 1.0
    assert max_box_acc([one, two], boxes, deltas=(0.7,), resolution=4) == 1.0
    # without image 2's best thresholds (every image at one threshold) the set would score less: image 1 alone
    assert box_acc([one], boxes[:1], resolution=4).best_threshold == {0.3: 0.0, 0.5: 0.0, 0.7: 0.0}


def _reference_best_ious(heatmap, boxes, resolution):
    """Every threshold, every region (skimage, connectivity 2), IoU of pixel masks of the boxes, best pair."""
    norm = normalized(heatmap, resolution)
    experts = box_masks(boxes, resolution)
    out = []
    for tau in THRESHOLDS:
        best = 0.0
        for region in regionprops(label(norm > tau, connectivity=2)):
            r0, c0, r1, c1 = region.bbox
            rect = np.zeros_like(norm, dtype=bool)
            rect[r0:r1, c0:c1] = True
            for e in experts:
                best = max(best, (rect & e).sum() / (rect | e).sum())
        out.append(best)
    return np.array(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_an_independent_implementation(seed):
    rng = np.random.default_rng(seed)
    maps = [rng.random((7, 7)) ** 3 for _ in range(3)]
    boxes = [[(0.1, 0.2, 0.6, 0.7)], [(0.5, 0.5, 0.9, 1.0), (0.0, 0.0, 0.3, 0.3)], [(0.2, 0.0, 1.0, 0.5)]]
    refs = [_reference_best_ious(m, b, 32) for m, b in zip(maps, boxes, strict=True)]
    for m, b, ref in zip(maps, boxes, refs, strict=True):
        np.testing.assert_allclose(best_ious(m, b, resolution=32), ref, rtol=0, atol=1e-12)
    best = np.stack(refs)
    expected = np.mean([(best >= d).mean(0).max() for d in (0.3, 0.5, 0.7)])
    assert max_box_acc(maps, boxes, resolution=32) == pytest.approx(expected)


def test_bad_input_is_named():
    box = [(0, 0, 1, 1)]
    with pytest.raises(ValueError, match="one list of boxes per map"):
        max_box_acc([np.ones((2, 2))], [box, box])
    with pytest.raises(ValueError, match="deltas"):
        max_box_acc([np.ones((2, 2))], [box], deltas=(0, 0.5))
    with pytest.raises(ValueError, match="non-finite"):
        max_box_acc([np.full((2, 2), np.nan)], [box])
    with pytest.raises(ValueError, match="empty"):
        max_box_acc([np.ones((2, 2))], [[]])
