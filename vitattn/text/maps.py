"""`TextMaps`: the text-prompted maps of one image, as read-only numpy arrays (held by `Analysis.text`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class TextMaps:
    """Maps of every text method, layer and prompt of one image; patch embeddings of the dense methods."""

    prompts: tuple[str, ...]
    templates: str | tuple[str, ...] | None  # None: prompts as given; "imagenet80"; or the templates themselves
    text_embeddings: np.ndarray  # (P, D) float32, L2-normalised
    maps: Mapping[str, Mapping[int, np.ndarray]]  # method -> layer -> (P, gh, gw) float32
    embeddings: Mapping[str, np.ndarray]  # dense method -> (gh * gw, D) float32, joint space, not normalised

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.maps)

    def layers(self, method: str) -> tuple[int, ...]:
        return tuple(sorted(self._method(method)))

    def map(self, method: str, layer: int | None, prompt: str) -> np.ndarray:
        """The ``(gh, gw)`` float32 map of ``method`` for ``prompt`` at ``layer`` (default: the last)."""
        per_layer = self._method(method)
        valid = sorted(per_layer)
        if layer is None:
            layer = valid[-1]
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or layer not in per_layer:
            raise ValueError(f"layer {layer!r} out of range for text method {method!r}: valid layers {valid}")
        if prompt not in self.prompts:
            raise ValueError(f"prompt {prompt!r} was not analysed; analysed prompts: {list(self.prompts)}")
        return per_layer[int(layer)][self.prompts.index(prompt)]

    def patch_embeddings(self, method: str) -> np.ndarray:
        if method not in self.embeddings:
            valid = ", ".join(self.embeddings) or "none (analysed without a dense method)"
            raise ValueError(f"patch embeddings exist for dense text methods only; valid: {valid}")
        return self.embeddings[method]

    def _method(self, method: str) -> Mapping[int, np.ndarray]:
        if method not in self.maps:
            raise ValueError(f"no text method {method!r} in this analysis; valid text methods: {', '.join(self.maps)}")
        return self.maps[method]


def no_text_error(method: str) -> ValueError:
    """The error for a text method asked of an analysis without prompts."""
    from .specs import TOWERS

    return ValueError(
        f"{method!r} with a prompt needs an analysis with prompts: model.analyze(image, prompts=[...]) "
        f"on a model with a text tower ({', '.join(TOWERS)})"
    )
