"""COCO instances files: pixel ``bbox [x, y, w, h]`` per annotation, image sizes and file names in ``images[]``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from vitattn.boxes import LabeledBox, from_pixels_xywh
from vitattn.datasets._common import get, is_number, number, read_json, safe_relative, sorted_unique
from vitattn.datasets.record import AnnotatedImage, make_safe_id


def load_coco(instances_json: str | Path, image_dir: str | Path) -> list[AnnotatedImage]:
    """Loads a COCO instances file: pixel ``bbox [x, y, w, h]`` per annotation, ``images[]`` with size and file name.

    Labels are category names, groups their ``supercategory``. Crowd annotations are kept and marked with
    ``extra["iscrowd"] = True`` (every box carries ``iscrowd``, ``category_id`` and ``annotation_id`` in ``extra``).
    Images without any annotation are skipped. Ids are the file names' stems, made safe.
    """
    path = Path(instances_json)
    return from_json_coco(read_json(path), path, Path(image_dir))


def from_json_coco(doc: Any, path: Path, image_dir: Path) -> list[AnnotatedImage]:
    """``load_coco`` on an already parsed file."""
    file = path.name
    for key in ("images", "annotations", "categories"):
        get(doc, key, list, file)
    categories = _by_id(doc["categories"], _coco_category, f"{file}: category")
    images = _by_id(doc["images"], _coco_image, f"{file}: image")
    boxes: dict[Any, list[LabeledBox]] = {}
    for i, ann in enumerate(doc["annotations"]):
        where = f"{file}: annotation {i}" + (f" (id {ann['id']})" if isinstance(ann, dict) and "id" in ann else "")
        image_key = get(ann, "image_id", object, where)
        if image_key not in images:
            raise ValueError(f"{where}: image_id {image_key!r} is not in 'images'")
        boxes.setdefault(image_key, []).append(_coco_box(ann, images[image_key], categories, where))
    records = [_coco_record(images[k], tuple(b), image_dir, file) for k, b in boxes.items()]
    return sorted_unique(records, file)


def _by_id(items: list, check: Callable[[Any, str], dict], where: str) -> dict[Any, dict]:
    """``{item["id"]: item}`` after checking each item (``check`` raises naming ``<where> <index>``)."""
    return {check(item, f"{where} {i}")["id"]: item for i, item in enumerate(items)}


def _coco_category(category: Any, where: str) -> dict:
    get(category, "id", object, where)
    get(category, "name", str, where)
    return category


def _coco_image(image: Any, where: str) -> dict:
    get(image, "id", object, where)
    safe_relative(get(image, "file_name", str, where), where)
    for key in ("width", "height"):
        if number(image, key, where) <= 0:
            raise ValueError(f"{where}: {key} must be positive, got {image[key]}")
    return image


def _coco_box(ann: dict, image: dict, categories: dict, where: str) -> LabeledBox:
    bbox = get(ann, "bbox", list, where)
    if len(bbox) != 4 or not all(is_number(v) for v in bbox):
        raise ValueError(f"{where}: bbox must be four numbers [x, y, w, h], got {bbox!r}")
    if bbox[2] < 0 or bbox[3] < 0:
        raise ValueError(f"{where}: bbox {bbox!r} has a negative width or height")
    box = from_pixels_xywh(*bbox, image["width"], image["height"], what=where)
    category_id = get(ann, "category_id", object, where)
    if category_id not in categories:
        raise ValueError(f"{where}: category_id {category_id!r} is not in 'categories'")
    category = categories[category_id]
    extra = {"iscrowd": bool(ann.get("iscrowd", 0)), "category_id": category_id, "annotation_id": ann.get("id")}
    return LabeledBox(box, category["name"], str(category.get("supercategory", "")), extra)


def _coco_record(image: dict, boxes: tuple[LabeledBox, ...], image_dir: Path, file: str) -> AnnotatedImage:
    name = image["file_name"]
    image_id = make_safe_id(PurePosixPath(name).stem, f"{file}: image {image['id']!r}")
    path = image_dir / name
    if not path.is_file():
        raise FileNotFoundError(f"image '{image_id}': {name} not found in {image_dir}")
    meta = {"source": "coco", "coco_id": image["id"], "file_name": name}
    return AnnotatedImage(image_id, boxes, meta, path, width=int(image["width"]), height=int(image["height"]))
