"""Playback, clicks that open a view, and export, as plain handler calls on the tests' store (the browser side is in
tests/test_app_navigate.py)."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import numpy as np
import pandas as pd
from app_support import store_dir

from vitattn import render
from vitattn.store import open_store
from vitattn.ui.actions import page
from vitattn.ui.data.catalog import FUSED


def test_step_layer_stops_at_the_ends(handlers):
    layers = (0, 1, 2, 3)
    assert [page.step_layer(layers, 2, how) for how in handlers.STEPS] == [0, 1, 3, 3]
    assert page.step_layer(layers, 3, "next") == 3 and page.step_layer(layers, 0, "previous") == 0
    assert page.step_layer((11,), 11, "next") == 11  # one layer (pool)
    assert page.step_layer(layers, 7, "previous") == 2  # a stale value counts as the last layer


def test_playback_restarts_at_the_first_layer_and_stops_at_the_last(handlers, explorer):
    last = explorer.info("dinov2").layers["cls"][-1]
    playing, timer, button, start = handlers.on_play("dinov2", "cls", last, False)
    assert playing is True and timer.active is True and button["value"] == handlers.PAUSE and start["value"] == 0
    layer, playing, timer, button = handlers.on_tick("dinov2", "cls", 0, True)
    assert layer["value"] == 1 == last and playing is False and timer.active is False
    assert button["value"] == handlers.PLAY
    paused = handlers.on_play("dinov2", "siglip" and "cls", 0, True)
    assert paused[0] is False and paused[1].active is False
    one_layer = handlers.on_play("siglip", "pool", 1, False)  # nothing to play
    assert one_layer[0] is False


def test_the_layer_slider_names_resnet_stages(handlers):
    _, slider, _, explain = handlers.on_model("resnet50", "gradcam", 0, FUSED)
    assert explain["visible"] is True  # gradcam of a classifier: a class can be chosen
    assert slider["label"] == "Stage: 0 = stage 1 (layer1) ... 3 = stage 4 (layer4)"
    _, slider, _, explain = handlers.on_model("dinov2", "cls", 0, FUSED)
    assert slider["label"] == "Layer" and explain["visible"] is False


def test_strip_and_grid_clicks_read_the_layout_the_renderer_returned(handlers, explorer):
    """A click on a strip or grid tile reads the layout kept with the picture (``render.tiles``: info["tiles"]),
    which is where ``render.tile_boxes`` (the geometry alone) puts the tiles."""
    item = explorer.item(explorer.image_ids()[0])
    layers = explorer.info("resnet50").layers["gradcam"]
    strip, _, layout, _ = handlers.page_strip(item.id, "resnet50", "gradcam", FUSED, 0.6, "per map", -1)
    top = strip["value"].height - render.tile_boxes(item.picture.size, len(layers), warning=True)[-1][3]
    assert layout["values"] == list(layers)
    boxes = render.tile_boxes(item.picture.size, len(layers), warning=True)
    assert [b[:2] for b in layout["boxes"]] == [list(b[:2]) for b in boxes] and top > 0  # the colour bar below
    for b, layer in zip(layout["boxes"], layers, strict=True):
        click = SimpleNamespace(index=[(b[0] + b[2]) / 2, b[3] - 5])
        assert handlers.on_strip_click(layout, click)["value"] == layer
    assert handlers.on_strip_click(layout, SimpleNamespace(index=[1, strip["value"].height - 2])) == gr.skip()
    grid, _, grid_layout = handlers.page_heads(item.id, "vit", "cls", 1, 0.6, "shared", -1)
    heads = render.tile_boxes(item.picture.size, 4, shared=True, warning=True)
    assert handlers.on_grid_click(grid_layout, SimpleNamespace(index=heads[3][:2]))["value"] == 3
    assert handlers.page_heads(item.id, "resnet50", "gradcam", 1, 0.6, "shared", -1)[2] is None  # no heads


def test_a_table_cell_opens_its_layer_and_head(handlers, explorer):
    info = explorer.info("dinov2")
    picture, _ = handlers.layer_head("dinov2", "cls", 90)
    names = [info.layer_name(v) for v in info.layers["cls"]]
    cells = [(x, y) for y in range(0, picture.height, 3) for x in range(0, picture.width, 3)]
    found = {page.table_view(info, "cls", (x, y)) for x, y in cells} - {None}
    assert found == {(layer, head) for layer in (0, 1) for head in (0, 1, 2, 3, FUSED)}, names


def test_a_leaderboard_row_opens_its_model_method_and_layer(handlers):
    board = handlers.leaderboard(90, "best")

    class Row:  # what Gradio passes as the select event
        index = (0, 1)

    tab, model, method, layer, head, _ = handlers.on_board_click(board, Row())
    top = board.iloc[0]
    assert (model["value"], method["value"], layer["value"], head["value"]) == (
        top["model"],
        top["method"],
        int(top["layer"]),
        FUSED,
    )
    Row.index = (len(board) - 1, 1)  # a baseline row
    skipped = handlers.on_board_click(board, Row())
    assert all(u == {"__type__": "update"} for u in skipped), skipped


def test_export_writes_the_stored_map_and_the_tables_shown(handlers, explorer, tmp_path):
    image_id = explorer.image_ids()[0]
    files = handlers.export_view(image_id, "dinov2", "cls", 1, 2, 0.6, 90, False, -1, -1)
    by_kind = {f.rsplit(".", 1)[-1]: f for f in files}
    assert sorted(f.rsplit(".", 1)[-1] for f in files) == ["csv", "csv", "npy", "png"]
    expected = open_store(store_dir()).map(image_id, "dinov2", "cls", 1, 2)  # read without the app
    np.testing.assert_array_equal(np.load(by_kind["npy"]), expected)
    metrics = pd.read_csv(next(f for f in files if f.endswith("_metrics.csv")))
    _, shown, _ = handlers.attention(image_id, "dinov2", "cls", 1, 2, 0.6, 0, -1)
    assert list(metrics.columns) == list(shown.columns) and len(metrics) == len(shown)
    iou_files = handlers.export_iou(90, "best", "dinov2", "cls", "best", -1, "label", "dinov2", "vit")
    board = pd.read_csv(next(f for f in iou_files if f.endswith("_leaderboard.csv")))
    assert board["model"].tolist() == handlers.leaderboard(90, "best")["model"].tolist()
    assert len(iou_files) == 5


def test_a_model_pick_keeps_the_layers_relative_depth(handlers, explorer):
    """Issue 20, problem 8: the layer index used to be kept (vit's last block 1 -> resnet50's stage 2 of 4); the
    relative depth (layer + 1) / layers is kept instead, and the model shown is recorded."""
    vit_last = explorer.info("vit").layers["cls"][-1]
    resnet = explorer.info("resnet50")
    method, layer, head, explain, shown = handlers.on_model_pick("resnet50", "cls", vit_last, -1, "vit")
    assert layer["value"] == resnet.layers[method["value"]][-1] == resnet.num_layers - 1 and shown == "resnet50"
    _, layer, _, _, _ = handlers.on_model_pick("vit", "gradcam", 1, -1, "resnet50")  # stage 2 of 4: depth 1/2
    assert layer["value"] == round(0.5 * explorer.info("vit").num_layers) - 1
    _, layer, _, _, _ = handlers.on_model_pick("vit", "cls", 0, -1, "vit")  # the same model: the layer stays
    assert layer["value"] == 0
