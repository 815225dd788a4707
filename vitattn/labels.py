"""ImageNet-1k class names, offline (timm ships the synset list and descriptions inside its package)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

NUM_CLASSES = 1000


def _timm_info(name: str) -> str:
    """A label file of timm's package, read without importing timm: ``import timm`` brings torchvision and much of
    torch along (about 2 s on a CPU), which a store-only app has not needed until its first prediction table."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the ImageNet class names come with timm, which is not installed: pip install timm")
    return (Path(spec.submodule_search_locations[0]) / "data" / "_info" / name).read_text()


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class descriptions in index order, e.g. ``labels[281] == "tabby, tabby cat"``: what
    ``timm.data.ImageNetInfo("imagenet-1k").index_to_description`` gives (the synsets in index order, each with its
    lemmas)."""
    lemmas = dict(line.split("\t", 1) for line in _timm_info("imagenet_synset_to_lemma.txt").splitlines() if line)
    return tuple(lemmas[synset] for synset in _timm_info("imagenet_synsets.txt").split())


@lru_cache(maxsize=1)
def _indexes() -> dict[str, tuple[int, ...]]:
    out: dict[str, list[int]] = {}
    for i, label in enumerate(imagenet_labels()):
        out.setdefault(label, []).append(i)
    return {label: tuple(v) for label, v in out.items()}


def label_indexes(label: str) -> tuple[int, ...]:
    """The class indexes whose description is ``label``: one, none (not an ImageNet label), or two for the one
    description ImageNet-1k gives twice ("crane": the bird 134 and the machine 517)."""
    return _indexes().get(label, ())


def short_label(label: str) -> str:
    """The first name of a description: ``"tabby, tabby cat"`` -> ``"tabby"``."""
    return label.split(",")[0].strip()


@lru_cache(maxsize=1)
def alphabetical() -> tuple[tuple[str, int], ...]:
    """Every ``(description, index)``, sorted by description (case-insensitively), then index."""
    return tuple(sorted(((label, i) for i, label in enumerate(imagenet_labels())), key=lambda p: (p[0].lower(), p[1])))
