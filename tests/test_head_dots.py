"""The Features tab's mean attention distance plot as a picture: where its dots are, that they are drawn there, and
which dot a click picks (``render.head_dots``, ``head_dots_layout``, ``dot_at``). Pure functions, no store."""

from __future__ import annotations

import numpy as np
import pytest

from vitattn import render as rx

WARN = "random weights: not a result"


def _points() -> list[tuple[str, int, int, float]]:
    """Two models: "a" with 2 layers of 2 heads, "b" with 3 layers of 1 head; values 10 .. 80."""
    return [
        ("a", 0, 0, 10.0),
        ("a", 0, 1, 30.0),
        ("a", 1, 0, 50.0),
        ("a", 1, 1, 80.0),
        ("b", 0, 0, 20.0),
        ("b", 1, 0, 40.0),
        ("b", 2, 0, 60.0),
    ]


def test_nice_ticks():
    assert rx.nice_ticks(0, 80) == [0, 20, 40, 60, 80]
    assert rx.nice_ticks(0, 127) == [0, 50, 100, 150]
    assert rx.nice_ticks(0, 0.93) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert rx.nice_ticks(0, 0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]  # nothing to span: [0, 1]


@pytest.mark.parametrize("warning", ["", WARN])
def test_dots_sit_where_the_layout_says_worked_out_by_hand(warning):
    dots, frame = rx.head_dots_layout(_points(), warning=warning)
    # y: ticks 0..80 over PLOT_HEIGHT (300) pixels; the plot's bottom under the bands above it
    band = rx.text_band(frame["width"], WARN, rx.WARNING_RED).height if warning else 0
    bottom = band + rx.TITLE_HEIGHT + rx.LEGEND_HEIGHT + rx.PANEL_TITLE_HEIGHT + 300
    assert frame["ticks"] == [0, 20, 40, 60, 80] and frame["bottom"] == bottom
    # x: model a (2 layers) has cells of 64 px (clipped from 360 // 2), its 2 heads 8.8 px apart (2.2 radii);
    # model b (3 layers) has cells of 64 px too (360 // 3 = 120, clipped), 1 head: in the cell's middle
    a0 = rx.Y_AXIS_WIDTH
    b0 = a0 + 2 * rx.PANEL_PAD + 2 * 64 + rx.PANEL_GAP
    assert frame["panels"] == [a0, b0]
    want = {
        ("a", 0, 0): (a0 + 8 + 32 - 4.4, bottom - 10 / 80 * 300),
        ("a", 0, 1): (a0 + 8 + 32 + 4.4, bottom - 30 / 80 * 300),
        ("a", 1, 0): (a0 + 8 + 96 - 4.4, bottom - 50 / 80 * 300),
        ("a", 1, 1): (a0 + 8 + 96 + 4.4, bottom - 80 / 80 * 300),
        ("b", 0, 0): (b0 + 8 + 32, bottom - 20 / 80 * 300),
        ("b", 1, 0): (b0 + 8 + 96, bottom - 40 / 80 * 300),
        ("b", 2, 0): (b0 + 8 + 160, bottom - 60 / 80 * 300),
    }
    assert len(dots) == 7
    for d in dots:
        assert (d.x, d.y) == pytest.approx(want[(d.model, d.layer, d.head)], abs=0.01), d


@pytest.mark.parametrize("warning", ["", WARN])
def test_the_picture_draws_each_dot_at_its_place_in_its_models_colour(warning):
    picture, dots = rx.head_dots(_points(), y_title="mean attention distance (px)", title="t", warning=warning)
    _, frame = rx.head_dots_layout(_points(), warning=warning)
    assert picture.size == (frame["width"], frame["height"])
    pixels = np.asarray(picture)
    colours = {"a": rx.hex_rgb(rx.MODEL_COLORS[0]), "b": rx.hex_rgb(rx.MODEL_COLORS[1])}
    for d in dots:
        assert tuple(pixels[round(d.y), round(d.x)]) == colours[d.model], d
    if warning:  # the red label on top, as on the other random-weight pictures
        top = pixels[: rx.text_band(frame["width"], WARN).height]
        assert (np.abs(top.astype(int) - rx.WARNING_RED).sum(axis=2) < 60).any()


def test_a_click_picks_the_nearest_dot_within_a_few_pixels_and_nothing_elsewhere():
    dots, _ = rx.head_dots_layout(_points(), warning=WARN)
    for d in dots:
        assert rx.dot_at(dots, d.x, d.y) == d
        assert rx.dot_at(dots, d.x + 3, d.y - 3) == d  # a few pixels off: still that dot
        assert rx.dot_at(dots, d.x, d.y + rx.CLICK_RADIUS + 1) != d  # further: not that dot
    a00, a01 = dots[0], dots[1]  # the two heads of model a's layer 0, 8.8 px apart in x
    mid = (a00.x + a01.x) / 2
    assert rx.dot_at(dots, mid - 0.5, a00.y) == a00 and rx.dot_at(dots, mid + 0.5, a01.y) == a01
    assert rx.dot_at(dots, 5, 5) is None  # the title, far from every dot
    assert rx.dot_at(dots, a00.x + 20, a00.y + 20) is None
    assert rx.dot_at([], 10, 10) is None


def test_many_heads_and_layers_stay_inside_their_panels():
    points = [("vit-b", layer, h, float(layer * 10 + h)) for layer in range(12) for h in range(12)]
    picture, dots = rx.head_dots(points, y_title="y")
    _, frame = rx.head_dots_layout(points)
    left, right = frame["panels"][0], frame["panels"][0] + 2 * rx.PANEL_PAD + 12 * 30
    assert all(left < d.x < right and frame["top"] <= d.y <= frame["bottom"] for d in dots)
    assert len({(d.x, d.y) for d in dots}) == 144  # every head its own place
    with pytest.raises(ValueError, match="no heads"):
        rx.head_dots([], y_title="y")
