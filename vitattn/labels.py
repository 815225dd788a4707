"""ImageNet-1k class names, offline (timm ships the synset list and descriptions inside its package)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class descriptions in index order, e.g. ``labels[281] == "tabby, tabby cat"``."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    return tuple(info.index_to_description(i) for i in range(info.num_classes()))
