"""The record every loader returns: one image (on disk or as bytes) with its boxes, and the safe-id rule."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from vitattn.boxes import LabeledBox
from vitattn.images import open_image

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class AnnotatedImage:
    """One image with its boxes.

    Exactly one of ``path`` and ``data`` is set. ``width`` and ``height`` are the upright image's size in pixels when
    the annotation source states it (COCO, Hugging Face, vitattn-boxes), else ``None``; ``load()`` always knows it.
    """

    id: str  # safe identifier, see SAFE_ID; usable as a file name
    boxes: tuple[LabeledBox, ...]  # normalized (x0, y0, x1, y1) of the upright image
    meta: dict = field(compare=False)  # e.g. {"source": "wikichurches", "styles": ["Gothic"]}
    path: Path | None  # the image file, or None when the encoded bytes are in `data`
    data: bytes | None = field(default=None, repr=False)  # encoded image bytes (PNG, JPEG, ...)
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        check_id(self.id)
        if (self.path is None) == (self.data is None):
            raise ValueError(f"image '{self.id}': give exactly one of path and data")

    def load(self) -> Image.Image:
        """Opens the image, turns it upright by its EXIF orientation and returns it as RGB.

        Raises:
            FileNotFoundError: the file is gone.
            ValueError: the file or bytes cannot be read as an image.
        """
        return open_image(self.path if self.path is not None else self.data, name=f"image '{self.id}'")


def is_safe_id(image_id: object) -> bool:
    """Whether ``image_id`` is a safe identifier: a string that ``SAFE_ID`` matches."""
    return isinstance(image_id, str) and SAFE_ID.match(image_id) is not None


def check_id(image_id: object, where: str = "") -> str:
    """Returns ``image_id`` if it is a safe identifier (`is_safe_id`), else raises ``ValueError``."""
    if is_safe_id(image_id):
        return image_id
    prefix = f"{where}: " if where else ""
    raise ValueError(
        f"{prefix}image id {image_id!r} is not a safe identifier: use 1-128 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit"
    )


def make_safe_id(raw: object, where: str = "") -> str:
    """Turns a derived name (a file stem, a dataset's ``image_id``) into a safe id by replacing unsafe characters."""
    text = re.sub(r"[^A-Za-z0-9._-]", "_", str(raw)).lstrip("._-")[:128]
    return check_id(text, where)
