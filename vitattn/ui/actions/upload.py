"""The "Your image" tab's actions: an upload read safely and analysed live, and a map scored against your own boxes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gradio as gr
import pandas as pd
from PIL import Image

from vitattn import render
from vitattn.ui.actions.views import (
    METRIC_COLUMNS,
    OPACITY,
    _check_opacity,
    _describe,
    _view,
    _warning,
    attention,
    metrics_frame,
)
from vitattn.ui.data.catalog import FUSED, ModelInfo, parse_boxes
from vitattn.ui.data.config import MAX_UPLOAD_BYTES
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer


def upload_file(value: str | Path | dict | None) -> tuple[Path, bool]:
    """The path of an uploaded file and whether it is the server's own copy (Gradio's upload folder).

    ``value`` is a path (a plain call), or Gradio's file payload ``{"path": ...}`` when the event runs without
    Gradio's image preprocessing (which would decode the image before any check of ours).
    """
    if isinstance(value, dict):
        path = value.get("path")
        if not isinstance(path, str) or not path:
            raise fail("no image: upload one first")
        return Path(path), _in_upload_folder(Path(path))
    if not value:
        raise fail("no image: upload one first")
    if not isinstance(value, str | Path):
        raise fail(f"the image must be an uploaded file, got {brief(value)}")
    return Path(value), False


def _in_upload_folder(path: Path) -> bool:
    """Whether ``path`` lies in Gradio's upload folder (Gradio accepts no other path from a client)."""
    try:
        return path.resolve().is_relative_to(Path(gr.utils.get_upload_folder()).resolve())
    except (OSError, ValueError):
        return False


def read_file(path: Path, max_bytes: int = MAX_UPLOAD_BYTES) -> bytes:
    """The bytes of an uploaded file of at most ``max_bytes``."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise fail(f"the upload is {size / 2**20:.1f} MiB, over the limit of {max_bytes / 2**20:.0f} MiB")
        return path.read_bytes()
    except OSError as e:
        raise fail(f"the upload cannot be read ({type(e).__name__}); upload the image again") from None


def analyze(ex: Explorer, file: str | Path | dict | None, model: str, progress=None) -> tuple[str, Image.Image, dict]:
    """Registers an uploaded image file, analyses it live with ``model`` and returns its id and last-layer map.

    An upload that is refused (not an image, too large) is deleted at once when it is the server's own copy.
    """
    info = ex.info(model)
    path, ours = upload_file(file)
    try:
        item = ex.upload(read_file(path))
    except gr.Error:
        if ours:
            path.unlink(missing_ok=True)  # refused: nothing in it is kept
        raise
    if progress is not None and not ex.is_cached(item, model):
        progress(0.1, desc=f"Loading {model}")
        ex.live.load(model)
        progress(0.5, desc=f"Analysing with {model}")
    ex.analysis(item, model)
    method = info.methods[0]
    layer = info.layers[method][-1]
    picture, _, data = attention(ex, item.id, model, method, layer, FUSED, 0.6)
    return item.id, picture, data


def _user_title(info: ModelInfo, item, method: str, layer: int, head: int | None, count: int) -> str:
    return _describe(info, item.id, method, layer, head) + f" · your {count} box{'es' if count != 1 else ''}"


def user_metrics(
    ex: Explorer,
    image_id: str,
    model: str,
    method: str,
    layer: int,
    head: int | None = FUSED,
    boxes: str = "",
    opacity: float = OPACITY,
    *,
    corner: Sequence[float] | None = None,
) -> tuple[Image.Image, pd.DataFrame]:
    """Your own boxes (one per line: x0 y0 x1 y1 [label], normalized) over the map, and the map's metrics against
    them beside the baselines'.

    Args:
        corner: (the page's, not the endpoint's) the first corner of a box being drawn (normalized x, y), marked.
    """
    item = ex.item(image_id)
    info, layer, head = _view(ex, model, method, layer, head)
    opacity = _check_opacity(opacity)
    mine = parse_boxes(boxes)
    heatmap, origin = ex.map(item, model, method, layer, head)
    picture = render.map_view(
        item.picture,
        heatmap,
        opacity=opacity,
        boxes=mine,
        title=_user_title(info, item, method, layer, head, len(mine)),
        warning=_warning(ex, origin, model),
        bar_label=f"{method} (scaled to its own range)",
        marks=[tuple(corner)] if corner else (),
    )
    table = metrics_frame(ex, item, info, method, layer, head, mine) if mine else pd.DataFrame(columns=METRIC_COLUMNS)
    return picture, table


def user_banner(ex: Explorer, image_id: str, model: str, method: str, layer: float, head, boxes: str) -> int:
    """The height of the title band of ``user_metrics``'s picture (a click on the picture lies that much lower)."""
    item = ex.item(image_id)
    info, layer, head = _view(ex, model, method, layer, head)
    try:
        count = len(parse_boxes(boxes))
    except gr.Error:
        count = 0
    _, origin = ex.map(item, model, method, layer, head)
    title = _user_title(info, item, method, layer, head, count)
    return render.banner(item.picture.width, title, _warning(ex, origin, model)).height
