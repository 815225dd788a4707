"""ImageNet-1k class names, offline (timm ships the synset list and descriptions inside its package)."""

from __future__ import annotations

from functools import lru_cache

NUM_CLASSES = 1000


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class descriptions in index order, e.g. ``labels[281] == "tabby, tabby cat"``."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    return tuple(info.index_to_description(i) for i in range(info.num_classes()))


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
