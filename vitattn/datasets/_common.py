"""Checks shared by the loaders: typed json access with errors naming the entry, image-file lookup, ordering."""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePosixPath
from typing import Any

from vitattn.datasets.record import AnnotatedImage

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path.name}: not valid JSON: {e}") from e


def get(obj: Any, key: str, kind: type, where: str, **default: Any) -> Any:
    """``obj[key]`` checked to be a ``kind``; ``default=...`` makes the key optional."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        if "default" in default:
            return default["default"]
        raise ValueError(f"{where}: missing {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        raise ValueError(f"{where}: {key!r} must be a {kind.__name__}, got {value!r}")
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def number(obj: Any, key: str, where: str) -> float:
    value = get(obj, key, object, where)
    if not is_number(value):
        raise ValueError(f"{where}: {key!r} must be a finite number, got {value!r}")
    return float(value)


def strip_image_extension(name: str) -> str:
    suffix = PurePosixPath(name).suffix
    return name[: -len(suffix)] if suffix.lower() in IMAGE_EXTENSIONS else name


def safe_relative(name: str, where: str) -> str:
    """Refuses file names that would leave the image folder (absolute, or with '..')."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        raise ValueError(f"{where}: file name {name!r} must be a relative path inside the image folder")
    return name


def find_image(folder: Path, image_id: str, name: str) -> Path:
    """The file for an image: ``name`` itself when it has an image extension, else ``<id>.<ext>`` for common ones."""
    candidates = [folder / name] if name != image_id else []
    candidates += [folder / f"{image_id}{ext}" for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"image '{image_id}': no file {image_id}.<jpg|png|...> in {folder}")


def sorted_unique(records: list[AnnotatedImage], source: str) -> list[AnnotatedImage]:
    records = sorted(records, key=lambda r: r.id)
    for a, b in zip(records, records[1:], strict=False):
        if a.id == b.id:
            raise ValueError(f"{source}: two images have the id {a.id!r} ({a.path or 'bytes'}, {b.path or 'bytes'})")
    return records
