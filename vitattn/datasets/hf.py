"""Object-detection datasets in the Hugging Face ``datasets`` layout: an image column and ``objects`` with boxes.

``datasets`` is imported inside the functions, so the rest of ``vitattn.datasets`` does not need it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image

from vitattn.boxes import Box, LabeledBox, check_box, from_pixels_xywh, from_pixels_xyxy, from_xywh
from vitattn.datasets._common import get, is_number, sorted_unique
from vitattn.datasets.record import AnnotatedImage, make_safe_id

# Box formats of load_hf_detection: (box, width, height, what) -> the convention.
BBOX_FORMATS: dict[str, Callable[[Sequence[float], int, int, str], Box]] = {
    "coco": lambda b, w, h, what: from_pixels_xywh(*b, w, h, what=what),  # pixel [x, y, w, h] (HF default)
    "xyxy": lambda b, w, h, what: from_pixels_xyxy(*b, w, h, what=what),  # pixel [x0, y0, x1, y1] (Pascal VOC)
    "xywh_norm": lambda b, w, h, what: from_xywh(*b, what=what),  # normalized [x, y, w, h]
    "xyxy_norm": lambda b, w, h, what: check_box(b, what=what),  # normalized [x0, y0, x1, y1], the convention
    "yolo": lambda b, w, h, what: from_xywh(b[0] - b[2] / 2, b[1] - b[3] / 2, b[2], b[3], what=what),  # center
}

CATEGORY_KEYS = ("category", "categories", "label")


def load_hf_detection(
    name_or_path: str | Path,
    split: str = "train",
    *,
    image_column: str = "image",
    objects_column: str = "objects",
    bbox_format: str = "coco",
    revision: str | None = None,
    cache_dir: str | Path | None = None,
) -> list[AnnotatedImage]:
    """Loads an object-detection dataset in the ``datasets`` layout, from the Hub or a local folder.

    Rows hold an image column and an objects column with ``bbox`` and ``category`` lists (a dict of lists or a list
    of dicts); integer categories are named through their ``ClassLabel`` feature when there is one. Image sizes come
    from ``width``/``height`` columns or the image header (upright, after EXIF orientation, as ``datasets`` decodes
    them). Ids come from an ``image_id`` column, made safe, else from the zero-padded row index. The encoded image
    bytes are kept in memory (``AnnotatedImage.data``) unless the dataset only stores paths.

    Args:
        name_or_path: a Hub dataset (``namespace/name``), a folder written by ``save_to_disk``, or a local folder
            that ``datasets.load_dataset`` reads (parquet, imagefolder, ...).
        split: the split to load.
        image_column: the column holding the images (an ``Image`` feature).
        objects_column: the column holding ``bbox`` and ``category``.
        bbox_format: one of ``BBOX_FORMATS``; ``coco`` (pixel ``[x, y, w, h]``) is the Hugging Face convention.
        revision: a Hub branch, tag or commit.
        cache_dir: where ``datasets`` caches what it prepares (its default cache when None).
    """
    import datasets

    if bbox_format not in BBOX_FORMATS:
        raise ValueError(f"bbox_format {bbox_format!r} is not one of {sorted(BBOX_FORMATS)}")
    source = str(name_or_path)
    ds = _open_hf(source, split, revision, cache_dir)
    for column in (image_column, objects_column):
        if column not in ds.column_names:
            raise ValueError(f"{source} [{split}]: no column {column!r}; columns are {ds.column_names}")
    if not isinstance(ds.features[image_column], datasets.Image):
        raise ValueError(f"{source} [{split}]: column {image_column!r} is not an Image feature")
    names = _category_names(ds.features[objects_column])
    origin = Path(source).name if Path(source).is_dir() else source  # a local folder by its name only, not its path
    ds = ds.cast_column(image_column, datasets.Image(decode=False))
    digits = len(str(max(len(ds) - 1, 0)))
    records = []
    for i, row in enumerate(ds):
        where = f"{source} [{split}]: row {i}"
        image_id = make_safe_id(row["image_id"], where) if "image_id" in row else str(i).zfill(digits)
        meta = {"source": f"hf:{origin}", "split": split, "row": i}
        image, objects = row.pop(image_column), row.pop(objects_column)
        width, height, data, path = _hf_image(image, row, image_id, where)
        boxes = tuple(
            _hf_box(o, names, width, height, bbox_format, f"{where}, object {j}")
            for j, o in enumerate(_objects(objects, where))
        )
        records.append(AnnotatedImage(image_id, boxes, meta, path, data, width, height))
    return sorted_unique(records, f"{source} [{split}]")


def _open_hf(source: str, split: str, revision: str | None, cache_dir: str | Path | None) -> Any:
    import datasets

    folder = Path(source)
    if folder.is_dir() and ((folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()):
        ds = datasets.load_from_disk(str(folder))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise ValueError(f"{source}: no split {split!r}; splits are {sorted(ds)}")
            ds = ds[split]
        return ds
    cache = str(cache_dir) if cache_dir is not None else None
    return datasets.load_dataset(source, split=split, revision=revision, cache_dir=cache)


def _category_names(objects_feature: Any) -> list[str] | None:
    """The ClassLabel names of the objects' category, looking through List/Sequence wrappers; None if there is none."""
    feature = _unwrap(objects_feature)
    for key in CATEGORY_KEYS if isinstance(feature, dict) else ():
        if key in feature:
            category = _unwrap(feature[key])
            return list(category.names) if hasattr(category, "names") else None
    return None


def _unwrap(feature: Any) -> Any:
    while hasattr(feature, "feature"):  # datasets.List / Sequence / LargeList
        feature = feature.feature
    return feature


def _hf_image(image: dict | None, row: dict, image_id: str, where: str) -> tuple[int, int, bytes | None, Path | None]:
    """(width, height, bytes, path) of a row's undecoded image; the size from width/height columns or the header."""
    data, path = (image or {}).get("bytes"), (image or {}).get("path")
    if data is None and not (path and Path(path).is_file()):
        raise FileNotFoundError(f"image '{image_id}' ({where}): no image bytes and no file at {path!r}")
    if isinstance(row.get("width"), int) and isinstance(row.get("height"), int):
        width, height = row["width"], row["height"]
    else:
        width, height = _upright_size(io.BytesIO(data) if data is not None else Path(path), where)
    return width, height, data, None if data is not None else Path(path)


def _hf_box(obj: dict, names: list[str] | None, width: int, height: int, fmt: str, where: str) -> LabeledBox:
    bbox = get(obj, "bbox", list, where)
    if len(bbox) != 4 or not all(is_number(v) for v in bbox):
        raise ValueError(f"{where}: bbox must be four numbers, got {bbox!r}")
    category = next((obj[k] for k in CATEGORY_KEYS if k in obj), None)
    if names is not None and isinstance(category, int):
        if not 0 <= category < len(names):
            raise ValueError(f"{where}: category {category} is outside the {len(names)} class names")
        category = names[category]
    extra = {k: v for k, v in obj.items() if k != "bbox"}
    return LabeledBox(
        BBOX_FORMATS[fmt](bbox, width, height, where), "" if category is None else str(category), "", extra
    )


def _objects(value: Any, where: str) -> list[dict]:
    """A row's objects as a list of dicts, from either a dict of equal-length lists or a list of dicts."""
    if isinstance(value, dict):
        if len({len(v) for v in value.values() if isinstance(v, list)}) > 1:
            raise ValueError(
                f"{where}: the objects' lists have different lengths: { {k: len(v) for k, v in value.items()} }"
            )
        return [dict(zip(value, items, strict=True)) for items in zip(*value.values(), strict=True)]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    raise ValueError(f"{where}: objects must be a dict of lists or a list of dicts, got {type(value).__name__}")


def _upright_size(source: Path | io.BytesIO, where: str) -> tuple[int, int]:
    """Width and height after EXIF orientation, read from the header only."""
    try:
        with Image.open(source) as image:
            width, height = image.size
            rotated = image.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"{where}: the image cannot be read: {e}") from e
    return (height, width) if rotated else (width, height)
