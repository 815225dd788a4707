"""WikiChurches expert boxes (Barz & Denzler, NeurIPS 2021 Datasets and Benchmarks; zenodo.org/records/5166987).

``building_parts.json``::

    {"meta": [{"name": "Portal", "parents": [...]}, ...],            # feature types; labels index this list
     "annotations": {"Q18785543_wd0.jpg": {"styles": ["Q46261"],
                                           "bbox_groups": [{"group_label": 3, "elements": [
                                               {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4, "label": 7}]}]}}}

The 139 annotated images sit in ``images/`` beside it as ``<id>.jpg``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vitattn.boxes import LabeledBox, from_xywh
from vitattn.datasets._common import find_image, get, number, read_json, sorted_unique, strip_image_extension
from vitattn.datasets.record import AnnotatedImage, check_id

# Wikidata ids of the four main WikiChurches styles; other ids are kept as they are.
STYLE_NAMES = {"Q46261": "Romanesque", "Q176483": "Gothic", "Q236122": "Renaissance", "Q840829": "Baroque"}


def load_wikichurches(annotations_json: str | Path, image_dir: str | Path | None = None) -> list[AnnotatedImage]:
    """Loads the WikiChurches expert boxes (Barz & Denzler, NeurIPS 2021 Datasets and Benchmarks).

    ``building_parts.json`` maps image names (``Q123_wd0`` or ``Q123_wd0.jpg``) to ``bbox_groups[].elements[]`` with
    normalized ``left/top/width/height`` and ``label``; ``group_label`` sits on the group (or on the element). Labels
    that are integers index the top-level ``meta`` list of feature types (``{"name": ...}``); strings are kept. Boxes
    reaching past the image are clamped. Per-image ``styles`` (Wikidata ids) become names in ``meta["styles"]``, the
    raw ids stay in ``meta["style_ids"]``. Images with no boxes are kept.

    Args:
        annotations_json: the ``building_parts.json`` file.
        image_dir: where the images are; by default ``images/`` beside the json if it exists, else the json's folder.
    """
    path = Path(annotations_json)
    return from_json_wikichurches(read_json(path), path, image_dir)


def from_json_wikichurches(doc: Any, path: Path, image_dir: str | Path | None) -> list[AnnotatedImage]:
    """``load_wikichurches`` on an already parsed file."""
    entries = doc.get("annotations") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise ValueError(f"{path.name}: expected an object whose 'annotations' maps image ids to their bbox_groups")
    names = _label_names(doc.get("meta"))
    folder = Path(image_dir) if image_dir is not None else _default_image_dir(path)
    return sorted_unique([_church(path.name, key, entry, names, folder) for key, entry in entries.items()], path.name)


def _church(file: str, key: str, entry: Any, names: list[str] | None, folder: Path) -> AnnotatedImage:
    where = f"{file}: image {key!r}"
    image_id = check_id(strip_image_extension(key), where)
    groups = get(entry, "bbox_groups", list, where, default=[])
    boxes = []
    for g, group in enumerate(groups):
        elements = get(group, "elements", list, f"{where}, group {g}", default=[])
        for e, element in enumerate(elements):
            boxes.append(_church_box(element, group, names, f"{where}, group {g}, element {e}"))
    styles = [str(s) for s in get(entry, "styles", list, where, default=[])]
    meta = {"source": "wikichurches", "styles": [STYLE_NAMES.get(s, s) for s in styles], "style_ids": styles}
    return AnnotatedImage(image_id, tuple(boxes), meta, find_image(folder, image_id, key))


def _church_box(element: Any, group: dict, names: list[str] | None, where: str) -> LabeledBox:
    left, top, width, height = (number(element, k, where) for k in ("left", "top", "width", "height"))
    for name, value in (("width", width), ("height", height)):
        if value < 0:
            raise ValueError(f"{where}: {name} is negative ({value})")
    box = from_xywh(left, top, width, height, what=where)
    raw_label, raw_group = element.get("label"), element.get("group_label", group.get("group_label"))
    extra = {"label_id": raw_label} if isinstance(raw_label, int) else {}
    return LabeledBox(box, _label(raw_label, names, where), _label(raw_group, names, f"{where}, group_label"), extra)


def _label_names(meta: Any) -> list[str] | None:
    """Feature-type names from the WikiChurches top-level ``meta`` list, or None when there is no such list."""
    if not isinstance(meta, list):
        return None
    return [str(m.get("name", i)) if isinstance(m, dict) else str(m) for i, m in enumerate(meta)]


def _label(value: Any, names: list[str] | None, where: str) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, int) and not isinstance(value, bool):
        if names is None:
            return str(value)
        if 0 <= value < len(names):
            return names[value]
        raise ValueError(f"{where}: label {value} is not an index into the file's 'meta' list of {len(names)} labels")
    raise ValueError(f"{where}: label must be a string or an integer, got {value!r}")


def _default_image_dir(annotations_json: Path) -> Path:
    images = annotations_json.parent / "images"
    return images if images.is_dir() else annotations_json.parent
