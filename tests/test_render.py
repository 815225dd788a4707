"""Rendering on tiny hand-made maps and images: values, colours and box positions checked by hand."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vitattn import LabeledBox, render
from vitattn.metrics import upsample
from vitattn.render import overlays


def gray(w=40, h=20, value=128) -> Image.Image:
    return Image.new("RGB", (w, h), (value, value, value))


def test_resize_bilinear_matches_the_metrics_upsampling_on_squares():
    m = np.random.default_rng(0).random((3, 5)).astype(np.float32)
    np.testing.assert_allclose(render.resize_bilinear(m, (7, 7)), upsample(m, 7), atol=1e-6)


def test_resize_bilinear_half_pixel_centres_on_paper():
    m = np.array([[0.0, 1.0]])  # one row, two cells
    out = render.resize_bilinear(m, (1, 4))
    # output pixel i samples (i + 0.5) * 2 / 4 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped 0, 0.25, 0.75, 1
    np.testing.assert_allclose(out, [[0.0, 0.25, 0.75, 1.0]])


def test_normalize_uses_the_maps_own_range_and_a_flat_map_is_zero():
    np.testing.assert_allclose(render.normalize(np.array([[2.0, 4.0], [3.0, 4.0]])), [[0, 1], [0.5, 1]])
    assert not render.normalize(np.full((2, 2), 7.0)).any()
    np.testing.assert_allclose(render.normalize(np.array([[0.0, 10.0]]), 0.0, 5.0), [[0.0, 1.0]])


def test_colorize_ends_are_the_colormap_ends():
    c = render.colorize(np.array([[0.0, 1.0]]))
    assert tuple(c[0, 0]) == (0, 0, 4)  # inferno's darkest
    assert tuple(c[0, 1]) == (252, 255, 164)  # and brightest


def test_overlay_opacity_zero_is_the_image_and_one_is_the_map():
    img = gray()
    m = np.array([[0.0, 1.0]])
    assert np.array_equal(np.asarray(render.overlay(img, m, 0.0)), np.asarray(img))
    full = np.asarray(render.overlay(img, m, 1.0))
    assert full.shape == (20, 40, 3)
    assert tuple(full[10, 0]) == (0, 0, 4)  # left edge: the low cell
    assert tuple(full[10, 39]) == (252, 255, 164)  # right edge: the high cell
    with pytest.raises(ValueError, match="opacity"):
        render.overlay(img, m, 1.5)


def test_overlay_does_not_mutate_its_inputs():
    img, m = gray(), np.array([[0.0, 1.0]], dtype=np.float32)
    before_img, before_m = np.asarray(img).copy(), m.copy()
    render.map_view(img, m, boxes=[LabeledBox((0.1, 0.1, 0.5, 0.5), "a")], title="t", cells=np.ones((1, 2), bool))
    assert np.array_equal(np.asarray(img), before_img)
    assert np.array_equal(m, before_m)


def test_boxes_are_outlined_where_they_are():
    img = gray(100, 50, 255)
    out = np.asarray(render.draw_boxes(img, [(0.2, 0.4, 0.6, 0.8)], labels=False))
    # the box spans x 20..59, y 20..39 in pixels; its outline changes those pixels, the centre stays white
    assert (out[30, 20] != 255).any() and (out[30, 59] != 255).any()
    assert (out[20, 40] != 255).any() and (out[39, 40] != 255).any()
    assert (out[30, 40] == 255).all()
    assert (out[5, 5] == 255).all() and (out[45, 90] == 255).all()


def test_selected_cells_are_outlined_along_their_border_only():
    img = gray(80, 80, 255)
    cells = np.zeros((4, 4), bool)
    cells[1, 1] = cells[1, 2] = True  # two neighbours: x 20..60, y 20..40
    out = np.asarray(render.outline_cells(img, cells))
    assert (out[20, 30] != 255).any()  # top edge
    assert (out[30, 20] != 255).any()  # left edge
    assert (out[30, 40] == 255).all()  # the shared edge between the two cells is not drawn
    assert (out[70, 70] == 255).all()


def test_map_view_adds_a_title_band_and_a_colour_bar():
    img = gray(200, 100)
    view = render.map_view(img, np.eye(3), title="cls", warning="random weights")
    assert view.width == 200 and view.height > 100 + 24 + render.BAR_HEIGHT


def test_tiles_lays_out_one_tile_per_map_with_a_colour_bar():
    maps = np.random.default_rng(0).random((5, 2, 2))
    out = render.tiles(gray(64, 32), maps, [f"layer {i}" for i in range(5)], columns=3, side=32)
    bar = render.colorbar(out.width, 0, 1, "each tile scaled to its own range (given under its title)").height
    assert out.width == 3 * (32 + 6)
    assert out.height == 2 * (16 + 6 + 2 * 16) + bar  # two rows of tiles (title, range, picture), then the bar
    shared = render.tiles(gray(64, 32), maps, [f"layer {i}" for i in range(5)], columns=3, side=32, shared=True)
    assert shared.height == 2 * (16 + 6 + 16) + render.colorbar(shared.width, 0, 1, "one scale for every tile").height
    with pytest.raises(ValueError, match="one title each"):
        render.tiles(gray(), maps, ["a"])


def test_tiles_take_maps_on_different_grids_and_a_shared_scale_uses_all_of_them():
    maps = [np.zeros((4, 4)), np.full((2, 2), 2.0), np.array([[0.0, 4.0]])]  # ResNet stages: grids differ
    out = render.tiles(gray(40, 40), maps, ["a", "b", "c"], side=40, shared=True, opacity=1.0)
    px = np.asarray(out)
    # with one scale 0..4: map a (all 0) is the darkest colour, map b (all 2) the middle one
    assert tuple(px[16 + 6 + 20, 3 + 20]) == tuple(render.LUT[0])
    assert tuple(px[16 + 6 + 20, 3 + 46 + 20]) == tuple(render.LUT[128])


def test_box_labels_do_not_overlap():
    boxes = [LabeledBox((0.40, 0.40, 0.60, 0.60), "name tag"), LabeledBox((0.40, 0.42, 0.60, 0.62), "helmet")]
    taken: list = []
    layer = Image.new("RGBA", (400, 400))
    draw = ImageDraw.Draw(layer)
    for i, b in enumerate(boxes):
        rect = tuple(v * 400 for v in b.box)
        overlays._label(draw, f"{i}: {b.label}", rect, (255, 0, 0, 255), render.font(14), (400, 400), taken)
    assert not overlays._overlaps(taken[0], taken[1])


def test_marks_and_the_top_mask():
    marked = np.asarray(render.draw_marks(gray(100, 100, 0), [(0.5, 0.5)]))
    assert tuple(marked[50, 50 - 10]) != (0, 0, 0) and tuple(marked[0, 0]) == (0, 0, 0)
    m = np.zeros((2, 2))
    m[0, 0] = 1.0
    mask = render.top_mask(m, 75, resolution=8)  # top 25% of 64 pixels: 16, the top-left quarter's brightest
    assert mask.sum() == 16 and mask[0, 0] and not mask[7, 7]


def test_heat_table_size_and_nan_cells():
    v = np.array([[0.1, np.nan], [0.3, 0.4]])
    out = render.heat_table(v, ["0", "1"], ["h0", "h1"], cell=40, title="a long title that must not be cut off here")
    title = ImageDraw.Draw(out).textlength("a long title that must not be cut off here", font=render.font(14))
    assert out.width >= title + 4  # the title fits
    assert out.height == 48 + 2 * 22 + 4 + render.colorbar(out.width, 0.1, 0.4).height  # the legend below
    with pytest.raises(ValueError, match="labels"):
        render.heat_table(v, ["0"], ["a", "b"])


def test_fit_scales_the_long_side_into_bounds():
    img = gray(100, 50)
    assert render.fit(img, 768) is img
    assert render.fit(gray(2000, 1000), 768).size == (768, 384)
    assert render.fit(img, 768, 448).size == (448, 224)


def test_banner_and_colour_bar_make_room_on_narrow_pictures():
    assert render.banner(600, "short", "RANDOM WEIGHTS").height == 24
    assert render.banner(200, "a much longer title for a narrow picture", "RANDOM WEIGHTS").height == 44
    assert render.colorbar(600, 0.0, 1.0, "cls").height < render.colorbar(120, 0.0, 1.0, "a long label here").height


def test_colour_bar_ends_have_3_significant_digits():
    assert render._numbers(0.003830, 0.003834) == ("0.00383", "0.00383 + 4e-06")  # not 0.00383 to 0.003834
    assert render._numbers(0.0, 1.0) == ("0", "1")
    assert render._numbers(0.123456, 12345.6) == ("0.123", "1.23e+04")
    assert render._numbers(0.5, 0.5) == ("0.5", "0.5 (flat map)")


def test_value_range_refuses_a_map_without_finite_values():
    with pytest.raises(ValueError, match="finite"):
        render.value_range(np.full((2, 2), np.nan))


def _colour_boxes(picture: Image.Image, colours) -> list[tuple[int, int, int, int]]:
    """The bounding box (x0, y0, x1, y1) of the pixels of each colour, found by scanning the picture."""
    a = np.asarray(picture.convert("RGB")).astype(int)
    out = []
    for c in colours:
        ys, xs = np.nonzero((np.abs(a - np.asarray(c)) <= 1).all(-1))
        out.append((xs.min(), ys.min(), xs.max(), ys.max()))
    return out


@pytest.mark.parametrize("n, warning, shared", [(12, "random weights", True), (4, "", True), (7, "", False)])
def test_tile_at_finds_the_tile_that_was_drawn_under_a_click(n, warning, shared):
    """The thumbnails are found by scanning the rendered picture (opacity 0: each is a block of the image's own
    green), in reading order, not by the layout arithmetic under test."""
    from scipy import ndimage

    image = Image.new("RGB", (90, 60), (0, 200, 0))
    maps = [np.random.default_rng(i).random((2, 3)) for i in range(n)]
    picture = render.tiles(image, maps, [f"t{i}" for i in range(n)], opacity=0.0, shared=shared, warning=warning)
    green = (np.abs(np.asarray(picture).astype(int) - (0, 200, 0)) <= 2).all(-1)
    labels, count = ndimage.label(green)
    blocks = sorted(ndimage.find_objects(labels), key=lambda sl: (sl[0].start, sl[1].start))
    assert count == n
    for i, (rows, cols) in enumerate(blocks):
        centre = ((cols.start + cols.stop) / 2, (rows.start + rows.stop) / 2)
        assert render.tile_at(image.size, n, centre, shared=shared, warning=bool(warning)) == i
    assert render.tile_at(image.size, n, (5, picture.height - 3), shared=shared, warning=bool(warning)) is None
    assert render.tile_at(image.size, n, (-1, 30), shared=shared, warning=bool(warning)) is None


def test_table_cell_at_finds_the_cell_that_was_drawn_under_a_click():
    values = np.arange(12, dtype=float).reshape(3, 4)
    rows = ["layer 0", "layer 1 long name", "l2"]
    picture = render.heat_table(values, rows, ["a", "b", "c", "d"], title="a title")
    shades = render.colorize(render.normalize(values))
    above_bar = picture.crop((0, 0, picture.width, picture.height - render.colorbar(picture.width, 0, 1).height))
    for r in range(3):
        for c in range(4):
            (x0, y0, x1, y1) = _colour_boxes(above_bar, [shades[r, c]])[0]
            assert render.table_cell_at(rows, 4, ((x0 + x1) / 2, (y0 + y1) / 2), title="a title") == (r, c)
    assert render.table_cell_at(rows, 4, (2, 60), title="a title") is None  # on a row label
