"""Relevance mass, relevance rank and pixel AP: cases worked on paper, and pixel AP against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from vitattn.metrics import METRIC_NAMES, all_metrics, pxap, relevance_mass, relevance_rank, union_mask, upsample

LEFT_HALF = (0.0, 0.0, 0.5, 1.0)
BOXES = [(0.1, 0.2, 0.45, 0.8), (0.55, 0.1, 0.9, 0.5)]


def test_columns_of_the_metrics_table() -> None:
    assert {"relevance_mass", "relevance_rank", "pxap"} <= set(METRIC_NAMES)


def test_map_equal_to_the_box_mask_scores_one() -> None:
    # At R = 16 a 16 x 16 map is its own upsampling (source coordinate s = i), so the map is the mask itself.
    mask = union_mask(BOXES, 16).astype(np.float32)  # [16, 16]
    assert relevance_mass(mask, BOXES, 16) == 1.0
    assert relevance_rank(mask, BOXES, 16) == 1.0
    assert pxap(mask, BOXES, 16) == 1.0


def test_uniform_map_scores_the_area_fraction() -> None:
    # Every pixel ties: all mass is spread evenly, the K places go to the inside pixels with chance K / n, and the
    # single threshold keeps every pixel (precision K / n at recall 1).
    area = union_mask(BOXES, 32).mean()
    flat = np.full((7, 7), 0.3, dtype=np.float32)
    assert relevance_mass(flat, BOXES, 32) == pytest.approx(area)
    assert relevance_rank(flat, BOXES, 32) == pytest.approx(area)
    assert pxap(flat, BOXES, 32) == pytest.approx(area)


def test_ties_worked_on_paper() -> None:
    # R = 4: the 4 x 4 map is its own upsampling. Columns hold 2, 1, 1, 0; the box is the left half (columns 0-1):
    # K = 8 pixels inside. Values: four 2s (in), eight 1s (four in, four out), four 0s (out).
    heatmap = np.tile(np.array([2.0, 1.0, 1.0, 0.0], dtype=np.float32), (4, 1))
    # mass: inside 4 * 2 + 4 * 1 = 12 of 4 * 2 + 8 * 1 = 16.
    assert relevance_mass(heatmap, [LEFT_HALF], 4) == pytest.approx(12 / 16)
    # rank: the four 2s, then 4 places shared by eight tied 1s, half of them inside: 4 + 4 * 4 / 8 = 6 of 8.
    assert relevance_rank(heatmap, [LEFT_HALF], 4) == pytest.approx(6 / 8)
    # AP: at t = 2, precision 4/4 and recall 4/8; at t = 1, precision 8/12 and recall 1: 0.5 * 1 + 0.5 * 2/3.
    assert pxap(heatmap, [LEFT_HALF], 4) == pytest.approx(0.5 + 0.5 * 8 / 12)
    labels = union_mask([LEFT_HALF], 4).reshape(-1)
    assert pxap(heatmap, [LEFT_HALF], 4) == pytest.approx(average_precision_score(labels, heatmap.reshape(-1)))


def test_negative_values_carry_no_mass() -> None:
    heatmap = np.array([[-1.0, -1.0], [-1.0, -1.0]], dtype=np.float32)
    assert relevance_mass(heatmap, [LEFT_HALF], 4) == 0.0  # no positive mass at all
    heatmap[0, 0] = -5.0  # still none; rank and AP only read the order
    assert relevance_mass(heatmap, [LEFT_HALF], 4) == 0.0
    signed = np.array([[3.0, -3.0], [1.0, -1.0]], dtype=np.float32)  # at R = 2, its own upsampling
    assert relevance_mass(signed, [LEFT_HALF], 2) == 1.0  # the negatives, all outside, are clipped to 0


@pytest.mark.parametrize("seed", range(6))
def test_pxap_equals_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    heatmap = rng.random((7, 9)).astype(np.float32)
    if seed % 2:
        heatmap = np.round(heatmap * 4) / 4  # many ties: flat regions in the upsampled map too
    x0, x1 = np.sort(rng.random(2))
    boxes = [(float(x0), 0.1, float(x1), 0.7)]
    up = upsample(heatmap, 48).reshape(-1)
    labels = union_mask(boxes, 48).reshape(-1)
    assert pxap(heatmap, boxes, 48) == pytest.approx(average_precision_score(labels, up), abs=1e-12)


def test_relevance_rank_against_a_plain_count_without_ties() -> None:
    rng = np.random.default_rng(3)
    heatmap = rng.random((40, 40)).astype(np.float32)  # at R = 40, its own upsampling
    up = upsample(heatmap, 40).reshape(-1)
    labels = union_mask(BOXES, 40).reshape(-1)
    k = int(labels.sum())
    assert np.unique(up).size == up.size  # no ties: the top K are unambiguous
    expected = labels[np.argsort(-up)[:k]].mean()
    assert relevance_rank(heatmap, BOXES, 40) == pytest.approx(expected)


def test_all_metrics_has_them() -> None:
    heatmap = np.tile(np.array([2.0, 1.0, 1.0, 0.0], dtype=np.float32), (4, 1))
    scores = all_metrics(heatmap, [LEFT_HALF], 4)
    assert scores["relevance_mass"] == pytest.approx(0.75)
    assert scores["relevance_rank"] == pytest.approx(0.75)
    assert scores["pxap"] == pytest.approx(0.5 + 0.5 * 8 / 12)
