"""The classes a classifier's gradient maps explain: the top-1, another class asked for, and its score (a part of
``Explorer``, as a mixin: it reads the Explorer's store, caches and live models)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vitattn.labels import NUM_CLASSES, imagenet_labels, label_indexes
from vitattn.specs import GRADIENT_METHODS
from vitattn.ui.data.catalog import Item
from vitattn.ui.data.errors import brief, fail

Table = dict[str, np.ndarray]


@dataclass(frozen=True)
class ClassScore:
    """The ImageNet class a gradient map explains and the classifier's score for it on the image."""

    index: int  # 0..999
    label: str  # the class description, e.g. "tabby, tabby cat"
    prob: float  # softmax probability
    logit: float | None  # the raw class score; None when only the store's probability is at hand
    top1: bool  # the classifier's top-1 class (what the stored maps explain)


class ClassScores:
    """The Explorer's class scores (mixin)."""

    def explains_class(self, model: str, method: str) -> bool:
        """Whether ``method``'s maps under ``model`` explain a chosen ImageNet class: a gradient method of a
        classifier (elsewhere there is no class to choose: attention maps do not depend on one, and a model without
        an ImageNet head explains its own embedding or top class)."""
        info = self.info(model)
        return info.classifier and method in GRADIENT_METHODS and method in info.methods

    def top_class(self, item: Item, model: str) -> int:
        """The classifier's top-1 class index on the image: the class its stored maps (and ``target`` None) explain.

        From a cached live analysis or logits when there is one, else the store's top-1 prediction (its label names
        one class, except ImageNet's twice-used "crane"), else the live logits.
        """
        if not self.info(model).classifier:
            raise fail(f"model {brief(model)} is not an ImageNet classifier; it has no top-1 class")

        def find() -> int:
            analysis = self.live.cached(item.key, model)
            if analysis is not None and analysis.target is not None:
                return int(analysis.target)
            logits = self.live.cached_logits(item.key, model)
            if logits is None:
                top = self._stored_top5(item, model)
                if top and len(label_indexes(top[0][0])) == 1:
                    return label_indexes(top[0][0])[0]
                logits = self.logits(item, model)
            return int(np.argmax(logits))

        return self._top.get_or_make((item.key, model), find)

    def _stored_top5(self, item: Item, model: str) -> tuple[tuple[str, float], ...] | None:
        if not (self._stored(item, model, "predictions") and hasattr(self.store, "predictions")):
            return None
        try:
            stored = self.store.predictions(item.id, model)
        except Exception as e:
            self._store_failed(item, model, "predictions", e)
            return None
        return tuple((str(label), float(p)) for label, p in stored) if stored else None

    def live_target(self, item: Item, model: str, method: str, target: int | None) -> int | None:
        """The class whose maps must be computed live: None when the top-1 maps (stored or cached) serve, i.e. for
        ``target`` None, the top-1 class itself, or a method whose maps do not depend on the class."""
        if target is None or not self.explains_class(model, method):
            return None
        target = int(target)
        if not 0 <= target < NUM_CLASSES:
            raise fail(f"target {target} out of range: ImageNet classes are 0..{NUM_CLASSES - 1} (-1: the top-1 class)")
        return None if target == self.top_class(item, model) else target

    def class_score(self, item: Item, model: str, target: int | None = None) -> ClassScore:
        """The explained class (``target``, default the top-1) with its softmax probability and logit.

        The store's top-1 probability serves the top-1 class when no live logits are at hand (the store keeps no
        logits): then ``logit`` is None and no network is loaded.
        """
        top = self.top_class(item, model)
        index = top if target is None else int(target)
        if not 0 <= index < NUM_CLASSES:
            raise fail(f"target {index} out of range: ImageNet classes are 0..{NUM_CLASSES - 1} (-1: the top-1 class)")
        label = imagenet_labels()[index]
        logits = self.live.cached_logits(item.key, model)
        if logits is None and index == top:
            stored = self._stored_top5(item, model)
            if stored and stored[0][0] == label:
                return ClassScore(index, label, stored[0][1], None, True)
        if logits is None:
            logits = self.logits(item, model)
        return ClassScore(index, label, float(_softmax(logits)[index]), float(logits[index]), index == top)

    def top5(self, item: Item, model: str) -> list[tuple[int, str, float]]:
        """The classifier's five best classes, best first: ``(index, label, probability)``."""
        logits = self.live.cached_logits(item.key, model)
        if logits is None:
            top = self.predictions(item, model) or ()
            indexes = [label_indexes(label) for label, _ in top]
            if top and all(len(i) == 1 for i in indexes):
                return [(i[0], label, p) for i, (label, p) in zip(indexes, top, strict=True)]
            logits = self.logits(item, model)  # a label naming two classes ("crane"): the logits say which
        probs = _softmax(logits)
        best = np.argsort(-probs, kind="stable")[:5]
        return [(int(i), imagenet_labels()[i], float(probs[i])) for i in best]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()
