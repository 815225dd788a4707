"""Per-map metrics: hand-computed tiny cases, conventions, edge cases and invariances."""

from __future__ import annotations

import numpy as np
import pytest

from vitattn import metrics
from vitattn.boxes import LabeledBox

QUADRANT = (0.0, 0.0, 0.5, 0.5)
OPPOSITE = (0.5, 0.5, 1.0, 1.0)

# A 2x2 map with one hot cell, upsampled to R = 8. Along each axis, output pixel i samples the source at
# s = (i + 0.5) * 2 / 8 - 0.5, clamped to [0, 1]: s = 0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1, so the hot cell's
# weight is a = 1 - s below. The upsampled map is outer(a, a).
HOT = np.array([[1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
A = np.array([1.0, 1.0, 0.875, 0.625, 0.375, 0.125, 0.0, 0.0])


def random_map(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def test_upsample_matches_hand_formula() -> None:
    np.testing.assert_array_equal(metrics.upsample(HOT, 8), np.outer(A, A).astype(np.float32))


def test_upsample_at_grid_resolution_is_identity() -> None:
    m = random_map((5, 5))
    np.testing.assert_array_equal(metrics.upsample(m, 5), m)


@pytest.mark.parametrize(("grid", "resolution"), [((14, 14), 224), ((7, 10), 32), ((3, 5), 4), ((16, 16), 7)])
def test_upsample_matches_torch(grid: tuple[int, int], resolution: int) -> None:
    torch = pytest.importorskip("torch")
    m = np.random.default_rng(1).standard_normal(grid).astype(np.float32)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(m)[None, None], size=(resolution, resolution), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    np.testing.assert_allclose(metrics.upsample(m, resolution), ref, atol=1e-5)


def test_upsample_keeps_constant_maps_exactly_constant() -> None:
    up = metrics.upsample(np.full((14, 14), 0.1, dtype=np.float32), 224)
    assert (up == np.float32(0.1)).all()


@pytest.mark.parametrize("resolution", [2, 4, 8, 224])
def test_full_box_covers_all_and_half_box_covers_half(resolution: int) -> None:
    assert metrics.union_mask([(0.0, 0.0, 1.0, 1.0)], resolution).all()
    half = metrics.union_mask([(0.0, 0.5, 1.0, 1.0)], resolution)  # bottom half
    assert half.sum() == resolution * resolution // 2
    assert half[resolution // 2 :].all()


def test_tiling_boxes_cover_each_pixel_once() -> None:
    thirds = [(0.0, 0.0, 1 / 3, 1.0), (1 / 3, 0.0, 2 / 3, 1.0), (2 / 3, 0.0, 1.0, 1.0)]
    np.testing.assert_array_equal(metrics.box_masks(thirds, 10).sum(axis=0), np.ones((10, 10)))


def test_box_smaller_than_a_pixel_takes_the_pixel_holding_its_center() -> None:
    # R = 4: pixel centres at 0.125, 0.375, 0.625, 0.875. The box below holds none of them; its centre
    # (0.55, 0.3) lies in column floor(0.55 * 4) = 2, row floor(0.3 * 4) = 1.
    mask = metrics.union_mask([(0.5, 0.28, 0.6, 0.32)], 4)
    expected = np.zeros((4, 4), dtype=bool)
    expected[1, 2] = True
    np.testing.assert_array_equal(mask, expected)


def test_thin_box_keeps_its_extent_along_the_long_axis() -> None:
    mask = metrics.union_mask([(0.0, 0.3, 1.0, 0.31)], 4)  # a horizontal line through row floor(0.305 * 4) = 1
    assert mask[1].all() and mask.sum() == 4


def test_top_k_count() -> None:
    assert metrics.top_k_count(64, 90) == 6  # 6.4
    assert metrics.top_k_count(16, 90) == 2  # 1.6
    assert metrics.top_k_count(10, 85) == 2  # 1.5 rounds half up
    assert metrics.top_k_count(4, 99) == 1  # never empty
    assert metrics.top_k_count(224 * 224, 90) == 5018  # 5017.6


def test_descending_order_is_a_stable_sort_on_minus_value() -> None:
    rng = np.random.default_rng(0)
    x = np.round(rng.standard_normal((4, 500)) * 2).astype(np.float32)  # many ties, negatives
    x[0, :50] = -0.0  # -0.0 and 0.0 are equal, so they tie in raster order
    np.testing.assert_array_equal(metrics.descending_order(x), np.argsort(-x, axis=1, kind="stable"))


def test_hand_computed_metrics_of_one_hot_cell() -> None:
    # n = 64 pixels; the quadrant box holds rows/columns 0..3: 16 pixels, values a_i * a_j >= 0.625^2.
    # iou_90: k = 6 -> the four 1.0 pixels and two 0.875 pixels, all in the box: 6 / (6 + 16 - 6) = 0.375.
    # iou_75: k = 16 -> exactly the box (outside, the largest value is 0.375 < 0.625^2): 1.0.
    # iou_70: k = 19 -> the box plus three 0.375 pixels outside: 16 / 19.
    # iou_50: k = 32 -> 16 / 32.
    # coverage: mass (sum a)^2 = 16, inside (1 + 1 + 0.875 + 0.625)^2 = 12.25 -> 0.765625.
    scores = metrics.all_metrics(HOT, [QUADRANT], resolution=8)
    assert list(scores) == list(metrics.METRIC_NAMES)
    assert scores["iou_90"] == pytest.approx(6 / 16)
    assert scores["iou_75"] == pytest.approx(1.0)
    assert scores["iou_70"] == pytest.approx(16 / 19)
    assert scores["iou_50"] == pytest.approx(0.5)
    assert scores["coverage"] == pytest.approx(12.25 / 16)
    assert scores["pointing"] == 1.0
    assert scores["pointing_15"] == 1.0  # tolerance 15 * 8 / 224 px: the peak is inside the box anyway
    assert scores["iou_auc"] == pytest.approx(np.mean([scores[f"iou_{p}"] for p in metrics.PERCENTILES]))
    assert metrics.iou(HOT, [QUADRANT], 90, resolution=8) == pytest.approx(0.375)
    assert metrics.iou_auc(HOT, [QUADRANT], resolution=8) == pytest.approx(scores["iou_auc"])
    assert metrics.coverage(HOT, [QUADRANT], resolution=8) == pytest.approx(0.765625)


def test_ties_at_the_threshold_get_their_expected_share() -> None:
    # [[1, 1], [0, 0]] at R = 4: rows take 1, 0.75, 0.25, 0, so row 0 holds four tied maxima. At p = 90,
    # k = round(1.6) = 2: the 2 places go to 2 of the 4 tied pixels at random, so a box holding 2 of them
    # expects 0 + 2 * 2 / 4 = 1 hit: IoU = 1 / (2 + 2 - 1). The whole row expects 2 hits: 2 / (2 + 4 - 2).
    m = np.array([[1.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    assert metrics.iou(m, [(0.0, 0.0, 0.5, 0.25)], 90, resolution=4) == pytest.approx(1 / 3)
    assert metrics.iou(m, [(0.5, 0.0, 1.0, 0.25)], 90, resolution=4) == pytest.approx(1 / 3)
    assert metrics.iou(m, [(0.0, 0.0, 1.0, 0.25)], 90, resolution=4) == pytest.approx(2 / 4)
    np.testing.assert_allclose(
        metrics.per_box_iou(m, [(0.0, 0.0, 0.5, 0.25), (0.5, 0.0, 1.0, 0.25)], 90, 4), [1 / 3, 1 / 3]
    )


def test_constant_map() -> None:
    flat = np.full((3, 3), 7.0, dtype=np.float32)
    # R = 4, p = 75: k = 4 of n = 16, all tied, so each pixel is kept with chance 4 / 16. A row (area 4) expects
    # 4 * 4 / 16 = 1 hit: IoU = 1 / (4 + 4 - 1) = 1 / 7, wherever the row is.
    for row in range(4):
        assert metrics.iou(flat, [(0.0, row / 4, 1.0, (row + 1) / 4)], 75, resolution=4) == pytest.approx(1 / 7)
    # In general (k * area / n) / (k + area - k * area / n): R = 10, p = 90 (k = 10), a 3 x 5 box (area 15).
    hits = 10 * 15 / 100
    assert metrics.iou(flat, [(0.2, 0.3, 0.7, 0.6)], 90, resolution=10) == pytest.approx(hits / (10 + 15 - hits))
    assert metrics.coverage(flat, [(0.0, 0.0, 0.5, 0.25)], resolution=8) == pytest.approx(8 / 64)  # the area fraction
    # Every pixel is a peak, so a hit needs the boxes to hold them all.
    assert not metrics.pointing_game(flat, [(0.0, 0.0, 0.5, 1.0)], resolution=8)
    assert metrics.pointing_game(flat, [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)], resolution=8)


def test_symmetric_map_scores_the_same_against_mirrored_boxes() -> None:
    # A 2 x 2 blob at the centre of a 14 x 14 grid, zeros elsewhere: at R = 224 most pixels tie at 0. Breaking
    # ties in raster order gave iou_auc 0.475 against the top half and 0.032 against the bottom half.
    m = np.zeros((14, 14), dtype=np.float32)
    m[6:8, 6:8] = 1.0
    halves = {
        "top": (0.0, 0.0, 1.0, 0.5),
        "bottom": (0.0, 0.5, 1.0, 1.0),
        "left": (0.0, 0.0, 0.5, 1.0),
        "right": (0.5, 0.0, 1.0, 1.0),
    }
    scores = {name: metrics.all_metrics(m, [box], resolution=224) for name, box in halves.items()}
    for a, b in [("top", "bottom"), ("left", "right"), ("top", "left")]:
        assert scores[a] == pytest.approx(scores[b], abs=1e-12)
    # The map is symmetric about the midline, so each half holds half of every level set (the pixels above the
    # threshold and those tied at it): k / 2 expected hits at every percentile, IoU = (k / 2) / (k + n / 2 - k / 2).
    n = 224 * 224
    for p in metrics.PERCENTILES:
        k = metrics.top_k_count(n, p)
        assert scores["top"][f"iou_{p}"] == pytest.approx((k / 2) / (k / 2 + n / 2))
    boxes = list(halves.values())
    np.testing.assert_allclose(
        metrics.per_box_iou(m, boxes, 90, 224), np.full(4, metrics.per_box_iou(m, boxes, 90, 224)[0])
    )
    quadrants = [(0.0, 0.0, 0.5, 0.5), (0.5, 0.0, 1.0, 0.5), (0.0, 0.5, 0.5, 1.0), (0.5, 0.5, 1.0, 1.0)]
    batch = metrics.score_batch(m[None], quadrants, resolution=224).box_iou[0]
    np.testing.assert_allclose(batch, np.full(4, batch[0]), rtol=0, atol=1e-12)


def test_expected_hits_match_a_sort_based_reference() -> None:
    # Heavy ties (values rounded to a few levels): the expectation over random tie-breaks equals
    # hits among the n_above pixels + (k - n_above) * (tied pixels in mask) / (tied pixels).
    rng = np.random.default_rng(7)
    x = np.round(rng.random((5, 203)) * 4).astype(np.float32)  # 5 levels, n not a multiple of 8
    masks = rng.random((3, 203)) < 0.4
    ks = np.array([1, 20, 57, 101, 150, 203, 20])
    hits = metrics.expected_top_k_hits(x, masks, ks)
    assert hits.shape == (5, 7, 3)
    for i in range(5):
        for j, k in enumerate(ks):
            t = np.sort(x[i])[::-1][k - 1]
            above, tied = x[i] > t, x[i] == t
            for m in range(3):
                expected = (above & masks[m]).sum() + (k - above.sum()) * (tied & masks[m]).sum() / tied.sum()
                assert hits[i, j, m] == pytest.approx(expected)
    # A tie-break at random, averaged over many draws, converges to the same expectation.
    draws = np.mean([masks[0][np.argsort(-x[0] + rng.random(203) * 1e-3)[:57]].sum() for _ in range(4000)])
    assert draws == pytest.approx(hits[0, 2, 0], abs=0.15)
    # Masks that tile the image share out exactly k; without ties the counts are whole numbers.
    tiles = np.stack([np.arange(203) % 3 == r for r in range(3)])
    np.testing.assert_allclose(metrics.expected_top_k_hits(x, tiles, ks).sum(axis=2), np.broadcast_to(ks, (5, 7)))
    distinct = rng.permutation(203).astype(np.float32)[None]
    got = metrics.expected_top_k_hits(distinct, masks, ks)[0]
    top = np.argsort(-distinct[0])
    np.testing.assert_array_equal(got, [[masks[m][top[:k]].sum() for m in range(3)] for k in ks])


def test_box_covering_the_whole_image() -> None:
    # The union is every pixel, so IoU = k / n whatever the map: k = 10 of n = 100 at p = 90.
    scores = metrics.all_metrics(random_map((4, 6)), [(0.0, 0.0, 1.0, 1.0)], resolution=10)
    assert scores["iou_90"] == pytest.approx(0.1)
    assert scores["iou_50"] == pytest.approx(0.5)
    assert scores["coverage"] == pytest.approx(1.0)
    assert scores["pointing"] == scores["pointing_15"] == 1.0


def test_coverage_of_a_map_uniform_inside_the_box() -> None:
    m = np.zeros((4, 4), dtype=np.float32)
    m[1:3, 1:3] = 2.5  # at R = 4 upsampling is the identity, so no mass bleeds out
    box = [(0.25, 0.25, 0.75, 0.75)]
    assert metrics.coverage(m, box, resolution=4) == pytest.approx(1.0)
    assert metrics.coverage(m - 3.0, box, resolution=4) == pytest.approx(1.0)  # the minimum is subtracted first
    assert metrics.iou(m, box, 75, resolution=4) == pytest.approx(1.0)  # k = 4: the four hot pixels


def test_pointing_game_with_tolerance() -> None:
    # The peak of HOT at R = 8 is the 2x2 plateau of 1.0 at rows/columns 0..1. The opposite box starts at
    # pixel (4, 4): distances sqrt(2 * 3^2) = 4.24 from (1, 1) and sqrt(2 * 4^2) = 5.66 from (0, 0).
    assert metrics.pointing_game(HOT, [QUADRANT], resolution=8)
    assert not metrics.pointing_game(HOT, [OPPOSITE], resolution=8)
    assert not metrics.pointing_game(HOT, [OPPOSITE], resolution=8, tolerance=5)  # (0, 0) still too far
    assert metrics.pointing_game(HOT, [OPPOSITE], resolution=8, tolerance=6)


def test_pointing_15_uses_the_15_pixel_tolerance_at_224() -> None:
    # One hot corner cell of a 14 x 14 grid: at R = 224 the maximum is the 8 x 8 plateau at rows/columns 0..7
    # (edge clamping), at R = 448 the 16 x 16 plateau at 0..15. A box from x = 15 / 224 holds columns >= 15 at
    # R = 224: the farthest tied peak, column 0, is 15 px away (a hit); from x = 16 / 224, 16 px (a miss).
    # At R = 448 the tolerance scales to 30 px and the same boxes give the same answers.
    m = np.zeros((14, 14), dtype=np.float32)
    m[0, 0] = 1.0
    assert metrics.literature_tolerance(224) == 15.0 and metrics.literature_tolerance(448) == 30.0
    assert metrics.literature_tolerance(112) == 7.5
    for resolution in (224, 448):
        near = metrics.all_metrics(m, [(15 / 224, 0.0, 1.0, 1.0)], resolution=resolution)
        far = metrics.all_metrics(m, [(16 / 224, 0.0, 1.0, 1.0)], resolution=resolution)
        assert (near["pointing"], near["pointing_15"]) == (0.0, 1.0)
        assert (far["pointing"], far["pointing_15"]) == (0.0, 0.0)
        box = [(15 / 224, 0.0, 1.0, 1.0)]
        assert near["pointing_15"] == metrics.pointing_game(
            m, box, resolution, tolerance=metrics.literature_tolerance(resolution)
        )
        assert not metrics.pointing_game(m, box, resolution)  # tolerance 0 stays the default
    # All tied maxima must be within tolerance: with a second, equal peak in the top-right corner, the box near
    # the top-left plateau alone misses; adding a box near the other plateau (mirrored) makes it a hit.
    two = m.copy()
    two[0, 13] = 1.0
    left, right = (15 / 224, 0.0, 0.5, 1.0), (0.5, 0.0, 209 / 224, 1.0)
    assert metrics.all_metrics(two, [left], resolution=224)["pointing_15"] == 0.0
    assert metrics.all_metrics(two, [left, right], resolution=224)["pointing_15"] == 1.0


def test_per_box_iou() -> None:
    np.testing.assert_allclose(metrics.per_box_iou(HOT, [QUADRANT, OPPOSITE], resolution=8), [0.375, 0.0])
    boxes = [(0.1, 0.1, 0.4, 0.3), (0.5, 0.2, 0.9, 0.9)]
    m = random_map((6, 6))
    for box, value in zip(boxes, metrics.per_box_iou(m, boxes, 80, resolution=32), strict=True):
        assert value == pytest.approx(metrics.iou(m, [box], 80, resolution=32))


def test_labeled_boxes_are_accepted() -> None:
    assert metrics.iou(HOT, [LabeledBox(QUADRANT, label="portal")], resolution=8) == pytest.approx(0.375)


def test_batch_matches_single_maps() -> None:
    maps = np.random.default_rng(3).random((5, 7, 9)).astype(np.float32)
    boxes = [(0.1, 0.2, 0.5, 0.6), (0.55, 0.05, 0.95, 0.4)]
    batch = metrics.score_batch(maps, boxes, resolution=48)
    assert batch.box_iou.shape == (5, 2)
    for i, m in enumerate(maps):
        single = metrics.all_metrics(m, boxes, resolution=48)
        assert {k: float(v[i]) for k, v in batch.metrics.items()} == pytest.approx(single)
        np.testing.assert_allclose(batch.box_iou[i], metrics.per_box_iou(m, boxes, resolution=48))
    assert metrics.all_metrics_batch(maps, boxes, 48).keys() == batch.metrics.keys()


def test_inputs_are_not_mutated() -> None:
    m = random_map((5, 5)) - 0.5
    boxes = [[0.1, 0.1, 0.6, 0.7]]
    m_copy, boxes_copy = m.copy(), [list(b) for b in boxes]
    metrics.all_metrics(m, boxes, resolution=16)
    metrics.per_box_iou(m, boxes, resolution=16)
    metrics.pointing_game(m, boxes, resolution=16, tolerance=2)
    np.testing.assert_array_equal(m, m_copy)
    assert boxes == boxes_copy


# Invariances. Box edges on multiples of 1/16 fall on pixel borders at R = 32, never on pixel centres, so the
# half-open rasterization is symmetric under flips.
BOXES = [(0.125, 0.25, 0.5, 0.5625), (0.625, 0.0625, 0.875, 0.9375)]


def _transpose(box: tuple[float, ...]) -> tuple[float, ...]:
    x0, y0, x1, y1 = box
    return (y0, x0, y1, x1)


def _flip_x(box: tuple[float, ...]) -> tuple[float, ...]:
    x0, y0, x1, y1 = box
    return (1.0 - x1, y0, 1.0 - x0, y1)


def _flip_y(box: tuple[float, ...]) -> tuple[float, ...]:
    x0, y0, x1, y1 = box
    return (x0, 1.0 - y1, x1, 1.0 - y0)


@pytest.mark.parametrize(
    ("map_fn", "box_fn"),
    [
        (lambda m: m.T, _transpose),
        (lambda m: m[:, ::-1], _flip_x),
        (lambda m: m[::-1, :], _flip_y),
        (lambda m: m * 3.0, lambda b: b),
        (lambda m: m + 10.0, lambda b: b),
    ],
    ids=["transpose", "flip_x", "flip_y", "scale", "shift"],
)
def test_invariances(map_fn, box_fn) -> None:
    m = random_map((6, 6), seed=5)
    expected = metrics.all_metrics(m, BOXES, resolution=32)
    got = metrics.all_metrics(np.ascontiguousarray(map_fn(m)), [box_fn(b) for b in BOXES], resolution=32)
    if map_fn(np.ones((1, 1)))[0, 0] == 11.0:  # shift: relevance mass reads the positive mass, which a shift changes
        assert got.pop("relevance_mass") != pytest.approx(expected.pop("relevance_mass"), abs=1e-3)
    assert got == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("heatmap", "boxes", "match"),
    [
        (np.zeros(4), [QUADRANT], "2-D"),
        (np.zeros((1, 2, 2)), [QUADRANT], "2-D"),
        (np.zeros((0, 3)), [QUADRANT], "empty"),
        (np.array([[0.0, np.nan], [0.0, 0.0]]), [QUADRANT], "non-finite"),
        (np.array([[0.0, np.inf], [0.0, 0.0]]), [QUADRANT], "non-finite"),
        (np.array([[0.0, 1e300], [0.0, 0.0]]), [QUADRANT], "non-finite"),
        (np.array([["a", "b"], ["c", "d"]]), [QUADRANT], "real numbers"),
        (HOT, [], "empty"),
        (HOT, QUADRANT, "single box"),
        (HOT, [(0.0, 0.0, 1.2, 0.5)], "outside"),
        (HOT, [QUADRANT, (-0.1, 0.0, 0.5, 0.5)], "box 1"),
        (HOT, [(0.2, 0.2, 0.2, 0.5)], "zero area"),
        (HOT, [(0.5, 0.2, 0.1, 0.5)], "inverted"),
    ],
)
def test_invalid_maps_and_boxes_raise(heatmap: np.ndarray, boxes: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        metrics.all_metrics(heatmap, boxes, resolution=8)


@pytest.mark.parametrize("percentile", [0, 100, -5, 120, "high", None])
def test_invalid_percentile_raises(percentile: object) -> None:
    with pytest.raises(ValueError, match="percentile"):
        metrics.iou(HOT, [QUADRANT], percentile, resolution=8)
    with pytest.raises(ValueError, match="percentile"):
        metrics.per_box_iou(HOT, [QUADRANT], percentile, resolution=8)


@pytest.mark.parametrize("resolution", [0, -4, 2.5, True, 10**5, "224"])
def test_invalid_resolution_raises(resolution: object) -> None:
    with pytest.raises(ValueError, match="resolution"):
        metrics.all_metrics(HOT, [QUADRANT], resolution=resolution)


@pytest.mark.parametrize("tolerance", [-1, float("nan"), float("inf"), None, "2"])
def test_invalid_tolerance_raises(tolerance: object) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        metrics.pointing_game(HOT, [QUADRANT], resolution=8, tolerance=tolerance)


def test_batch_needs_a_stack_of_maps() -> None:
    with pytest.raises(ValueError, match="3-D"):
        metrics.score_batch(HOT, [QUADRANT], resolution=8)
