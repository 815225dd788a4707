"""Training images with labels: the three kinds of source, the held-out exclusion and the validation split.

- a folder of class sub-folders (``<dir>/<class>/<image>``), the label being the sub-folder's name;
- a `datasets` dataset with an image and a label column: a local folder (``save_to_disk`` or files) or
  ``hf://datasets/<ns>/<name>[@<revision>][::<split>]`` (split ``train`` by default);
- an annotated source that `vitattn.datasets.load_annotated` reads (a ``building_parts.json``, ``examples``, a COCO
  or vitattn-boxes json), the label being a metadata field (a list counts when it holds exactly one value).

Images are compared with a store by content: the sha256 of the decoded upright RGB pixels and the size
(`pixel_hash`), so a re-encoded copy with the same pixels (or other EXIF metadata) is still found.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vitattn.datasets import load_annotated
from vitattn.datasets._common import IMAGE_EXTENSIONS
from vitattn.hub import HUB_DATASET
from vitattn.images import open_image


@dataclass(frozen=True)
class Example:
    """One training image: where its bytes are and its label (a class name)."""

    id: str
    source: Path | bytes
    label: str

    def load(self) -> Image.Image:
        return open_image(self.source, name=f"image {self.id!r}")


@dataclass(frozen=True)
class Loaded:
    """The examples of a source, their class names (sorted) and how many images had no usable label."""

    examples: list[Example]
    labels: list[str]
    unlabelled: int


def load_examples(source: str, label: str = "label", image_column: str = "image") -> Loaded:
    """The labelled images of a source (the kinds are in the module docstring).

    Raises:
        FileNotFoundError: a local source that does not exist.
        ValueError: no usable images, fewer than two classes, or a missing column or field (named).
    """
    head = source.partition("::")[0]
    path = Path(head)
    if head == "examples" or path.is_file() or (path / "building_parts.json").is_file():
        examples, unlabelled = _annotated(source, label)
    elif head.startswith("hf://") or (path.is_dir() and not _class_folders(path)):
        examples, unlabelled = _hf(source, label, image_column)
    elif path.is_dir():
        examples, unlabelled = _folders(path), 0
    else:
        raise FileNotFoundError(f"dataset {source!r}: no such folder or file (and not hf://datasets/...)")
    labels = sorted({e.label for e in examples})
    if len(labels) < 2:
        raise ValueError(f"dataset {source!r}: {len(examples)} labelled images in {len(labels)} class(es); need >= 2")
    return Loaded(examples, labels, unlabelled)


def _class_folders(path: Path) -> list[Path]:
    """Sub-folders holding image files (a `datasets` folder has data files at its top or under ``data/``)."""
    return sorted(d for d in path.iterdir() if d.is_dir() and any(_is_image(f) for f in d.iterdir()))


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _folders(path: Path) -> list[Example]:
    return [
        Example(f"{d.name}/{f.name}", f, d.name)
        for d in _class_folders(path)
        for f in sorted(d.iterdir())
        if _is_image(f)
    ]


def _annotated(source: str, field: str) -> tuple[list[Example], int]:
    records = load_annotated(source)
    if records and not any(field in r.meta for r in records):
        known = sorted({k for r in records for k in r.meta})
        raise ValueError(f"dataset {source!r}: no metadata field {field!r}; fields are {known}")
    examples, unlabelled = [], 0
    for r in records:
        value = r.meta.get(field)
        if isinstance(value, list | tuple):
            value = value[0] if len(value) == 1 else None  # none or several: no single label
        if value is None or value == "":
            unlabelled += 1
            continue
        examples.append(Example(r.id, r.path if r.path is not None else r.data, str(value)))
    return examples, unlabelled


def _hf(source: str, label: str, image_column: str) -> tuple[list[Example], int]:
    import datasets

    from vitattn.datasets.hf import _open_hf

    head, _, split = source.partition("::")
    revision = None
    if head.startswith("hf://"):
        match = HUB_DATASET.fullmatch(head)
        if match is None:
            raise ValueError(f"dataset {source!r}: expected hf://datasets/<namespace>/<name>[@<revision>][::<split>]")
        head, revision = match[1], match[2]
    ds = _open_hf(head, split or "train", revision, None)
    for column in (image_column, label):
        if column not in ds.column_names:
            raise ValueError(f"dataset {source!r}: no column {column!r}; columns are {ds.column_names}")
    names = getattr(ds.features[label], "names", None)
    ds = ds.cast_column(image_column, datasets.Image(decode=False))
    examples, unlabelled = [], 0
    for i, row in enumerate(ds):
        value, image = row[label], row[image_column] or {}
        if value is None or value == "" or (names is not None and value < 0):
            unlabelled += 1
            continue
        data = image.get("bytes") or Path(image.get("path") or "")
        examples.append(Example(str(i), data, names[value] if names is not None else str(value)))
    return examples, unlabelled


def pixel_hash(image: Image.Image) -> str:
    """sha256 of an upright RGB image's size and pixels: the content identity used by ``--exclude``."""
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))  # [H, W, 3]
    return hashlib.sha256(f"{rgb.shape[1]}x{rgb.shape[0]}:".encode() + rgb.tobytes()).hexdigest()


def store_hashes(location: str) -> set[str]:
    """The pixel hashes of every image in a store (its images table), local or on the Hub."""
    from vitattn.store import open_store

    with open_store(location) as store:
        return {pixel_hash(store.image(i).image) for i in store.image_ids()}


def exclude(examples: list[Example], hashes: set[str], progress: bool = False) -> tuple[list[Example], int]:
    """The examples whose pixels are not among ``hashes``, and how many were dropped."""
    from tqdm.auto import tqdm

    kept = [
        e
        for e in tqdm(examples, desc="--exclude", unit="img", disable=not progress)
        if pixel_hash(e.load()) not in hashes
    ]
    return kept, len(examples) - len(kept)


def split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, validation): per class, a seeded ``round(n * fraction)`` images (at least one of classes with two or
    more) go to validation, so every class is in both when it can be."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for name in sorted({e.label for e in examples}):
        members = [e for e in examples if e.label == name]
        order = rng.permutation(len(members))
        k = min(len(members) - 1, max(1, round(len(members) * fraction))) if len(members) > 1 else 0
        val += [members[i] for i in order[:k]]
        train += [members[i] for i in order[k:]]
    return train, val


PERMUTE_STREAM = 0x5045524D  # "PERM": the label permutation's own random stream, apart from the split's


def permute_labels(examples: list[Example], seed: int) -> list[Example]:
    """The same images with their labels randomly permuted among them (seeded, reproducible).

    The data randomisation test of Adebayo et al. 2018 ("Sanity Checks for Saliency Maps", sec. 4; the
    randomisation test of Zhang et al. 2017, "Understanding deep learning requires rethinking generalization"): a
    model trained on labels that carry no information about the images can only memorise, so maps that still look
    the same as the properly trained model's do not depend on what the labels taught. A permutation keeps every
    class's count.
    """
    order = np.random.default_rng([seed, PERMUTE_STREAM]).permutation(len(examples))
    return [Example(e.id, e.source, examples[j].label) for e, j in zip(examples, order, strict=True)]


def class_counts(examples: list[Example]) -> dict[str, int]:
    return dict(sorted(Counter(e.label for e in examples).items()))
