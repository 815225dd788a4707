"""`Analysis`: every map and feature of one image under one model, as read-only numpy arrays."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .text.maps import TextMaps, no_text_error
from .text.specs import TEXT_METHODS


@dataclass(frozen=True)
class LayerMaps:
    """One method's maps at one layer of one image."""

    fused: np.ndarray  # (gh, gw) float32
    heads: np.ndarray | None  # (H, gh, gw) float32, or None where the method fuses heads by definition


@dataclass(frozen=True, eq=False)
class Analysis:
    """Maps of every method, layer and head, the patch features of every layer, and predictions, for one image.

    Layers are 0-based. ``head=None`` means all heads fused (see each method for how it fuses).
    """

    model: str
    grid: tuple[int, int]  # (gh, gw) of the last layer
    num_heads: int
    image_size: tuple[int, int]  # (width, height) of the original image
    maps: Mapping[str, Mapping[int, LayerMaps]]
    feats: Mapping[int, np.ndarray]  # layer -> (gh * gw, D) float32
    predictions: tuple[tuple[str, float], ...] | None = None  # top-5 (ImageNet label, probability)
    target: int | None = None  # class index explained by gradient methods
    head_stats: Mapping[str, np.ndarray] | None = None  # "distance_px", "entropy", "prefix_share" -> (L, H) float32
    text: TextMaps | None = None  # text-prompted maps (`Model.analyze(..., prompts=[...])`)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.maps)

    def layers(self, method: str) -> tuple[int, ...]:
        """The layers at which ``method`` has maps."""
        return tuple(self._method(method))

    def has_heads(self, method: str) -> bool:
        return next(iter(self._method(method).values())).heads is not None

    def map(
        self, method: str, layer: int | None = None, head: int | None = None, *, prompt: str | None = None
    ) -> np.ndarray:
        """The ``(gh, gw)`` float32 map of ``method`` at ``layer`` (default: the last) for ``head`` (None = fused).

        With ``prompt``, the map of a text method (`vitattn.text.TEXT_METHODS`) for that prompt; ``gae`` is both an
        image method (no prompt) and a text method (a prompt as its target).

        Raises:
            ValueError: naming the valid methods, layers, heads or prompts.
        """
        if prompt is not None or (method in TEXT_METHODS and method not in self.maps):
            return self._text_map(method, layer, head, prompt)
        per_layer = self._method(method)
        layer = self._layer(method, per_layer, layer)
        maps = per_layer[layer]
        if head is None:
            return maps.fused
        if maps.heads is None:
            raise ValueError(f"method {method!r} fuses all heads by definition; use head=None")
        if isinstance(head, bool) or not isinstance(head, (int, np.integer)) or not 0 <= head < maps.heads.shape[0]:
            raise ValueError(f"head {head!r} out of range for {self.model}: valid heads 0..{maps.heads.shape[0] - 1}")
        return maps.heads[head]

    def patch_embeddings(self, method: str) -> np.ndarray:
        """Joint-space patch embeddings ``(gh * gw, D)`` float32 of a dense text method (not normalised); the
        method's map for a prompt is their cosine with ``Model.encode_text(prompt)``."""
        if self.text is None:
            raise no_text_error(method)
        return self.text.patch_embeddings(method)

    def _text_map(self, method: str, layer: int | None, head: int | None, prompt: str | None) -> np.ndarray:
        if method not in TEXT_METHODS:
            raise ValueError(f"method {method!r} takes no prompt; text methods: {', '.join(TEXT_METHODS)}")
        if self.text is None:
            raise no_text_error(method)
        if prompt is None:
            raise ValueError(f"text method {method!r} needs a prompt: one of {list(self.text.prompts)}")
        if head is not None:
            raise ValueError(f"text method {method!r} fuses all heads; use head=None")
        return self.text.map(method, layer, prompt)

    def heads(self, method: str, layer: int | None = None) -> np.ndarray:
        """All heads of a layer, ``(H, gh, gw)``."""
        per_layer = self._method(method)
        maps = per_layer[self._layer(method, per_layer, layer)]
        if maps.heads is None:
            raise ValueError(f"method {method!r} fuses all heads by definition; it has no per-head maps")
        return maps.heads

    def features(self, layer: int | None = None) -> np.ndarray:
        """Patch features ``(gh * gw, D)`` of ``layer`` (default: the last)."""
        if not self.feats:
            raise ValueError("this analysis was computed without features")
        valid = sorted(self.feats)
        layer = valid[-1] if layer is None else layer
        if layer not in self.feats:
            raise ValueError(f"layer {layer!r} out of range for {self.model}: valid layers {_span(valid)}")
        return self.feats[layer]

    def feature_grid(self, layer: int | None = None) -> tuple[int, int]:
        """The grid of the features at ``layer`` (differs per stage for a CNN)."""
        n = self.features(layer).shape[0]
        gh, gw = self.grid
        side = int(round((n / (gh * gw)) ** 0.5))
        return (gh * side, gw * side)

    def _method(self, method: str) -> Mapping[int, LayerMaps]:
        if method not in self.maps:
            raise ValueError(f"model {self.model!r} has no method {method!r}; valid methods: {', '.join(self.maps)}")
        return self.maps[method]

    def _layer(self, method: str, per_layer: Mapping[int, LayerMaps], layer: int | None) -> int:
        valid = sorted(per_layer)
        if layer is None:
            return valid[-1]
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or layer not in per_layer:
            raise ValueError(f"layer {layer!r} out of range for {self.model}/{method}: valid layers {_span(valid)}")
        return int(layer)


def _span(values: list[int]) -> str:
    if len(values) > 1 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}"
    return ", ".join(map(str, values))


def readonly(array: np.ndarray) -> np.ndarray:
    """A contiguous float32 copy that cannot be written to (an Analysis is a value)."""
    out = np.ascontiguousarray(array, dtype=np.float32).copy()
    out.flags.writeable = False
    return out
