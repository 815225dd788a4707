"""The vitattn-boxes json format and the bundled examples written in it (``vitattn/examples/``).

    {"format": "vitattn-boxes/1",
     "images": [{"id": "coffee", "file": "coffee.jpg", "width": 600, "height": 400, "meta": {"license": "CC0"},
                 "boxes": [{"label": "cup", "group": "", "box": [0.285, 0.04, 0.685, 0.765]}]}]}

``box`` is already the vitattn convention; ``file`` (relative to the json's folder), ``width``, ``height``, ``meta``
and ``group`` are optional. An image's ``meta["source"]`` is its own when given, else ``"vitattn-boxes"`` (never the
json's path: stores made from it are pushed, and moving the json must not change what they hold).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vitattn.boxes import LabeledBox, check_box
from vitattn.datasets._common import find_image, get, read_json, safe_relative, sorted_unique
from vitattn.datasets.record import AnnotatedImage, check_id

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLES_JSON = EXAMPLES_DIR / "annotations.json"

BOXES_FORMAT = "vitattn-boxes/1"


def load_boxes_json(path: str | Path, image_dir: str | Path | None = None) -> list[AnnotatedImage]:
    """Loads a ``vitattn-boxes/1`` json (the format of the bundled examples; see ``vitattn/examples/SOURCES.md``).

    Args:
        path: the json file.
        image_dir: where the image files are; by default the json's folder.
    """
    path = Path(path)
    return from_json_boxes(read_json(path), path, Path(image_dir) if image_dir is not None else path.parent)


def from_json_boxes(doc: Any, path: Path, image_dir: Path) -> list[AnnotatedImage]:
    """``load_boxes_json`` on an already parsed file."""
    records = []
    for i, entry in enumerate(get(doc, "images", list, path.name)):
        image_id = check_id(get(entry, "id", str, f"{path.name}: image {i}"), f"{path.name}: image {i}")
        where = f"{path.name}: image {image_id!r}"
        boxes = tuple(_plain_box(b, f"{where}, box {j}") for j, b in enumerate(get(entry, "boxes", list, where)))
        width, height = (get(entry, k, int, where, default=None) for k in ("width", "height"))
        meta = {"source": "vitattn-boxes", **get(entry, "meta", dict, where, default={})}
        records.append(
            AnnotatedImage(image_id, boxes, meta, _entry_file(entry, image_id, image_dir, where), None, width, height)
        )
    return sorted_unique(records, path.name)


def _entry_file(entry: dict, image_id: str, image_dir: Path, where: str) -> Path:
    if "file" not in entry:
        return find_image(image_dir, image_id, image_id)
    name = safe_relative(get(entry, "file", str, where), where)
    if not (image_dir / name).is_file():
        raise FileNotFoundError(f"image '{image_id}': {name} not found in {image_dir}")
    return image_dir / name


def _plain_box(entry: Any, where: str) -> LabeledBox:
    box = check_box(get(entry, "box", list, where), what=where)
    return LabeledBox(box, get(entry, "label", str, where, default=""), get(entry, "group", str, where, default=""))


def load_examples() -> list[AnnotatedImage]:
    """The bundled example images with hand-drawn boxes (``vitattn/examples/``, all CC0 or public domain)."""
    return load_boxes_json(EXAMPLES_JSON)
