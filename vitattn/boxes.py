"""The one box convention of vitattn.

A box is a tuple ``(x0, y0, x1, y1)`` of floats in [0, 1], normalized by the width and height of the original
image, with ``x0 < x1`` and ``y0 < y1`` (x to the right, y down). Every other format (COCO pixels ``[x, y, w, h]``,
WikiChurches ``left/top/width/height``) is converted here, at the edge, when loading. Numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class LabeledBox:
    """An expert box with its label (feature type) and an optional group label."""

    box: Box
    label: str = ""
    group: str = ""
    extra: dict = field(default_factory=dict, compare=False)


def check_box(box: Sequence[float], *, what: str = "box", allow_empty: bool = False) -> Box:
    """Validates a normalized box and returns it as a tuple of floats.

    Args:
        box: ``(x0, y0, x1, y1)``.
        what: how error messages name it.
        allow_empty: accept zero width or height (a point or a line, e.g. a click).

    Raises:
        ValueError: naming what is wrong: not four numbers, not finite, outside [0, 1], inverted or empty.
    """
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be four numbers (x0, y0, x1, y1), got {box!r}") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise ValueError(f"{what} has a non-finite coordinate: {box!r}")
    if min(x0, y0, x1, y1) < 0.0 or max(x0, y0, x1, y1) > 1.0:
        raise ValueError(f"{what} {box!r} lies outside [0, 1]; boxes are normalized (x0, y0, x1, y1) of the image")
    if x1 < x0 or y1 < y0:
        raise ValueError(f"{what} {box!r} is inverted: need x0 <= x1 and y0 <= y1")
    if not allow_empty and (x1 == x0 or y1 == y0):
        raise ValueError(f"{what} {box!r} has zero area")
    return (x0, y0, x1, y1)


def clamp_box(box: Sequence[float]) -> Box:
    """Clamps each coordinate to [0, 1] (annotations sometimes reach slightly past the image edge)."""
    x0, y0, x1, y1 = (min(1.0, max(0.0, float(v))) for v in box)
    return (x0, y0, x1, y1)


def from_xywh(left: float, top: float, width: float, height: float, *, clamp: bool = True, what: str = "box") -> Box:
    """Normalized left/top/width/height (WikiChurches) to the convention, clamped to the image by default."""
    box = (left, top, left + width, top + height)
    return check_box(clamp_box(box) if clamp else box, what=what)


def from_pixels_xywh(x: float, y: float, w: float, h: float, image_w: int, image_h: int, *, what: str = "box") -> Box:
    """Pixel ``[x, y, w, h]`` (COCO) of an ``image_w x image_h`` image to the convention, clamped to the image."""
    if image_w <= 0 or image_h <= 0:
        raise ValueError(f"{what}: image size must be positive, got {image_w}x{image_h}")
    return from_xywh(x / image_w, y / image_h, w / image_w, h / image_h, what=what)


def from_pixels_xyxy(
    x0: float, y0: float, x1: float, y1: float, image_w: int, image_h: int, *, what: str = "box"
) -> Box:
    """Pixel corners ``(x0, y0, x1, y1)`` to the convention, clamped to the image."""
    return from_pixels_xywh(x0, y0, x1 - x0, y1 - y0, image_w, image_h, what=what)


def to_pixels(box: Box, image_w: int, image_h: int) -> tuple[float, float, float, float]:
    """The convention to pixel corners of an ``image_w x image_h`` image (for drawing)."""
    x0, y0, x1, y1 = box
    return (x0 * image_w, y0 * image_h, x1 * image_w, y1 * image_h)


def boxes_of(items: Sequence[LabeledBox | Sequence[float]]) -> list[Box]:
    """Plain checked boxes from a mix of ``LabeledBox`` and 4-sequences."""
    return [check_box(b.box if isinstance(b, LabeledBox) else b, what=f"box {i}") for i, b in enumerate(items)]
