"""Annotated image sets: images with expert boxes, loaded into one record type.

Every loader returns ``list[AnnotatedImage]`` sorted by id, with boxes already converted to the one box convention of
``vitattn/boxes.py`` (normalized ``(x0, y0, x1, y1)`` of the upright image). Loaders check what they read and raise a
``ValueError`` naming the file and the entry that is wrong, and a ``FileNotFoundError`` naming the image id and the
place looked in when an image file is missing. Numpy-free and torch-free; ``datasets`` is imported only by the
Hugging Face loader.

    python -c "from vitattn.datasets import load_annotated; print(load_annotated('examples')[0])"

Source specs understood by ``load_annotated`` (``::`` separates the optional second part):

    examples                                          the bundled examples (vitattn/examples/)
    <file>.json[::<image dir>]                        WikiChurches, COCO or vitattn-boxes json, told apart by content
    <dir>[::<image dir>]                              a folder holding building_parts.json (WikiChurches)
    <dir>[::<split>]                                  any other folder: a Hugging Face dataset (save_to_disk or files)
    hf://datasets/<namespace>/<name>[@<revision>][::<split>]   a dataset on the Hugging Face Hub

``examples`` always means the bundled set (write ``./examples`` for a folder of that name); the split defaults to
``train``; a json's image folder defaults to WikiChurches' ``images/`` beside it, else the json's own folder.

Layout: ``record.py`` (the record and safe ids), one module per format (``wikichurches.py``, ``coco.py``, ``hf.py``,
``boxes_json.py`` for the bundled examples), ``_common.py`` (checked json access, image lookup), and the dispatcher
``load_annotated`` here.
"""

from __future__ import annotations

from pathlib import Path

from vitattn.datasets._common import read_json
from vitattn.datasets.boxes_json import BOXES_FORMAT, EXAMPLES_DIR, from_json_boxes, load_boxes_json, load_examples
from vitattn.datasets.coco import from_json_coco, load_coco
from vitattn.datasets.hf import BBOX_FORMATS, load_hf_detection
from vitattn.datasets.record import SAFE_ID, AnnotatedImage, check_id, is_safe_id, make_safe_id
from vitattn.datasets.wikichurches import STYLE_NAMES, from_json_wikichurches, load_wikichurches
from vitattn.hub import HUB_DATASET

__all__ = [
    "BBOX_FORMATS",
    "EXAMPLES_DIR",
    "SAFE_ID",
    "STYLE_NAMES",
    "AnnotatedImage",
    "check_id",
    "is_safe_id",
    "load_annotated",
    "load_boxes_json",
    "load_coco",
    "load_examples",
    "load_hf_detection",
    "load_wikichurches",
    "make_safe_id",
]


def load_annotated(source: str) -> list[AnnotatedImage]:
    """Loads an annotated image set from a spec string (grammar in the module docstring).

    ``examples`` is the bundled set. A json file is recognized by content: an ``annotations`` object is WikiChurches,
    ``images`` and ``annotations`` lists are COCO, a ``format`` of ``vitattn-boxes/1`` is the examples' format; the
    part after ``::`` is its image folder (by default WikiChurches' ``images/`` beside it or the json's folder). A
    folder holding ``building_parts.json`` is WikiChurches; any other folder is a Hugging Face dataset and the part
    after ``::`` its split (``train`` by default), as for ``hf://datasets/<namespace>/<name>[@<revision>]`` on the
    Hub. Paths containing ``::`` cannot be named.
    """
    head, _, second = source.partition("::")
    second = second or None
    if head == "examples" and second is None:
        return load_examples()
    if head.startswith("hf://"):
        match = HUB_DATASET.fullmatch(head)
        if match is None:
            raise ValueError(f"source {source!r}: expected hf://datasets/<namespace>/<name>[@<revision>][::<split>]")
        return load_hf_detection(match[1], second or "train", revision=match[2])
    path = Path(head)
    if path.is_dir():
        if (path / "building_parts.json").is_file():
            return load_wikichurches(path / "building_parts.json", second)
        return load_hf_detection(path, second or "train")
    if not path.is_file():
        raise FileNotFoundError(f"source {source!r}: no file or folder {head!r} (and it is not 'examples' or hf://...)")
    return _load_json_source(path, second)


def _load_json_source(path: Path, image_dir: str | None) -> list[AnnotatedImage]:
    doc = read_json(path)
    if isinstance(doc, dict) and doc.get("format") == BOXES_FORMAT:
        return from_json_boxes(doc, path, Path(image_dir) if image_dir else path.parent)
    if isinstance(doc, dict) and isinstance(doc.get("annotations"), dict):
        return from_json_wikichurches(doc, path, image_dir)
    if isinstance(doc, dict) and isinstance(doc.get("images"), list) and isinstance(doc.get("annotations"), list):
        return from_json_coco(doc, path, Path(image_dir) if image_dir else path.parent)
    raise ValueError(
        f"{path.name}: not a WikiChurches ('annotations' object), COCO ('images' and 'annotations' lists) "
        f"or {BOXES_FORMAT} ('format') file"
    )
