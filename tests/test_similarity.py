"""Similarity on hand-made features whose answers are worked out on paper."""

import numpy as np
import pytest

from vitattn.similarity import (
    check_region,
    cosine_to_mean,
    feature_grid,
    region_cells,
    similarity_map,
)


def cells_at(mask: np.ndarray) -> list[tuple[int, int]]:
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(mask), strict=True)]


def test_a_box_selects_the_cells_it_overlaps():
    # 4x4 grid, cells 0.25 wide: x in (0.3, 0.6) overlaps columns 1 and 2, y in (0.0, 0.2) row 0 only
    assert cells_at(region_cells((0.3, 0.0, 0.6, 0.2), (4, 4))) == [(0, 1), (0, 2)]


def test_a_box_touching_a_cell_only_along_an_edge_does_not_select_it():
    # x in (0.25, 0.5) is exactly column 1; columns 0 and 2 only share an edge with it
    assert cells_at(region_cells((0.25, 0.25, 0.5, 0.5), (4, 4))) == [(1, 1)]


def test_the_whole_image_selects_every_cell():
    assert region_cells((0, 0, 1, 1), (3, 5)).all()


def test_a_point_selects_the_cell_it_falls_in():
    assert cells_at(region_cells((0.1, 0.9, 0.1, 0.9), (4, 4))) == [(3, 0)]
    assert cells_at(region_cells((0.5, 0.5, 0.5, 0.5), (4, 4))) == [(2, 2)]  # shared corner: right, lower cell
    assert cells_at(region_cells((1.0, 1.0, 1.0, 1.0), (4, 4))) == [(3, 3)]  # the far edge belongs to the last cell


def test_a_tiny_box_selects_one_cell_like_the_point_at_its_corner():
    assert cells_at(region_cells((0.5, 0.5, 0.5001, 0.5001), (4, 4))) == [(2, 2)]


def test_a_line_selects_a_row_of_cells():
    assert cells_at(region_cells((0.0, 0.6, 1.0, 0.6), (4, 2))) == [(2, 0), (2, 1)]


def test_non_square_grids_use_each_axis():
    assert cells_at(region_cells((0.0, 0.0, 0.5, 0.5), (2, 4))) == [(0, 0), (0, 1)]


@pytest.mark.parametrize(
    "region, message",
    [
        ((0.1, 0.2, 0.3), "four numbers"),
        ("abcd", "four numbers"),
        ((0.1, 0.2, float("nan"), 0.4), "non-finite"),
        ((-0.1, 0.2, 0.3, 0.4), "outside"),
        ((0.1, 0.2, 0.3, 1.5), "outside"),
        ((0.5, 0.2, 0.3, 0.4), "inverted"),
    ],
)
def test_bad_regions_are_refused_with_a_reason(region, message):
    with pytest.raises(ValueError, match=message):
        check_region(region)


def test_feature_grid_is_the_map_grid_or_a_whole_multiple():
    assert feature_grid(16, (4, 4)) == (4, 4)
    assert feature_grid(64, (4, 4)) == (8, 8)  # a CNN stage one step earlier
    assert feature_grid(32, (2, 4)) == (4, 8)
    with pytest.raises(ValueError, match="do not tile"):
        feature_grid(20, (4, 4))
    with pytest.raises(ValueError, match="do not tile"):
        feature_grid(4, (4, 4))


def test_cosine_to_mean_on_paper():
    f = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-2.0, 0.0], [0.0, 0.0]])
    sim = cosine_to_mean(f, np.array([True, True, False, False, False]))  # mean (0.5, 0.5)
    s = np.sqrt(0.5)
    np.testing.assert_allclose(sim, [s, s, 1.0, -s, 0.0], atol=1e-6)
    assert sim.dtype == np.float32


def test_similarity_map_selects_and_compares_on_the_feature_grid():
    grid = (2, 2)
    f = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [-1.0, 0.0]])  # raster order: (0,0) (0,1) (1,0) (1,1)
    before = f.copy()
    sim, cells = similarity_map(f, grid, (0.1, 0.1, 0.1, 0.1))  # a point in cell (0, 0)
    assert cells_at(cells) == [(0, 0)]
    assert sim.shape == (2, 2)
    assert sim[0, 0] == pytest.approx(1.0)
    assert sim[1, 0] == pytest.approx(0.0)
    assert sim[1, 1] == pytest.approx(-1.0)
    np.testing.assert_array_equal(f, before)  # inputs are not mutated


def test_similarity_map_on_a_finer_cnn_stage():
    f = np.random.default_rng(0).normal(size=(64, 3))
    sim, cells = similarity_map(f, (4, 4), (0.0, 0.0, 0.25, 0.25))
    assert sim.shape == cells.shape == (8, 8)
    assert cells_at(cells) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_similarity_map_refuses_nan_features():
    f = np.ones((4, 2))
    f[2, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        similarity_map(f, (2, 2), (0, 0, 1, 1))
