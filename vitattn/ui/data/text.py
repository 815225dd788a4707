"""The Text tab's data: the text maps of prompts on an image and their scores against a label's boxes.

A map comes from the store when the image is stored, the prompt is one of its box labels, the method is one the
store computed (its manifest's ``text.methods``) and the templates are the store's; every other map (a typed
prompt, another text method, an upload, other templates) from live inference (``Model.analyze(image,
prompts=...)``, cached by image content, model, prompts, templates and methods). Maps are shown at the last layer:
the dense methods have no other, and it is LeGrad's and GAE's map of the whole network.

Scores are ``vitattn.metrics.all_metrics`` of the shown map against the boxes given (a label's boxes), cached; the
baselines are the Explorer's (``baseline_metrics`` on the model's grid, against the same boxes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from vitattn.boxes import LabeledBox
from vitattn.cache import LRU
from vitattn.metrics import all_metrics
from vitattn.text.specs import TEXT_METHODS, TOWERS, has_text
from vitattn.text.templates import TEMPLATE_SETS
from vitattn.ui.data.catalog import Item
from vitattn.ui.data.errors import brief, fail

TEMPLATES = (*TEMPLATE_SETS, "none")  # "none": each prompt as given
DEFAULT_TEMPLATES = "imagenet80"  # the app's default (the library's is none)


@dataclass(frozen=True)
class TextView:
    """One text map as the tab shows it."""

    prompt: str
    method: str
    layer: int
    values: np.ndarray  # [gh, gw] float32
    origin: str  # "store" or "live"


def _text_analysis(prompts: tuple[str, ...], templates: str, methods: tuple[str, ...], model, image):
    """The text maps of ``prompts`` (module level: ``LiveModels.run`` may send it to a ZeroGPU device)."""
    chosen = None if templates == "none" else templates
    return model.analyze(
        image, methods=(), features=False, prompts=list(prompts), templates=chosen, text_methods=methods
    )


class TextSource:
    """The Explorer's text maps (``explorer.text``): stored where the store has them, live otherwise."""

    def __init__(self, explorer, analyses: int = 16) -> None:
        self.ex = explorer
        self._live: LRU[tuple, object] = LRU(analyses)
        self._stored_maps: LRU[tuple, np.ndarray] = LRU(1024)
        self._scores: LRU[tuple, dict] = LRU(1024)

    # -- what there is ---------------------------------------------------------------------------------------

    def models(self) -> list[str]:
        """The app's models with a text tower."""
        return [m for m in self.ex.models() if has_text(m)]

    def check_model(self, model: str) -> None:
        """A one-line error for a model without a text tower, naming the ones with one."""
        self.ex.info(model)
        if not has_text(model):
            here = ", ".join(self.models()) or "none in this app"
            raise fail(f"{model} has no text tower; models with one: {', '.join(TOWERS)} (here: {here})")

    def methods(self, model: str) -> tuple[str, ...]:
        """The text methods of a model: every one (CLIP, SigLIP and SigLIP 2 have them all)."""
        self.check_model(model)
        return TEXT_METHODS

    def _entry(self, model: str) -> dict:
        store = self.ex.store
        return store.manifest["models"].get(model, {}) if store is not None else {}

    def stored_methods(self, model: str) -> tuple[str, ...]:
        """The text methods the store computed for the labels of its images (none without a store)."""
        entry = self._entry(model)
        return tuple(entry.get("text", {}).get("methods", ())) if entry.get("textmaps") else ()

    def templates(self, model: str) -> str:
        """The templates the store used for ``model``'s labels, else the app's default."""
        return str(self._entry(model).get("text", {}).get("templates") or DEFAULT_TEMPLATES)

    def layer(self, model: str) -> int:
        return self.ex.info(model).num_layers - 1

    # -- maps ------------------------------------------------------------------------------------------------

    def maps(
        self, item: Item, model: str, prompts: Sequence[str], methods: Sequence[str], templates: str
    ) -> list[TextView]:
        """The map of every (prompt, method), prompt by prompt, from the store where it has it, else live."""
        self.check_model(model)
        if templates not in TEMPLATES:
            raise fail(f"templates must be one of {', '.join(TEMPLATES)}, got {brief(templates)}")
        layer = self.layer(model)
        found = {(p, m): self._stored(item, model, m, layer, p, templates) for p in prompts for m in methods}
        missing = [key for key, values in found.items() if values is None]
        if missing:
            live_prompts = tuple(dict.fromkeys(p for p, _ in missing))
            live_methods = tuple(m for m in methods if any((p, m) in missing for p in live_prompts))
            analysis = self._analysis(item, model, live_prompts, templates, live_methods)
            for p, m in missing:
                try:
                    found[(p, m)] = analysis.map(m, layer, prompt=p)
                except ValueError as e:  # the live network's layout differs from the store's
                    raise fail(f"live inference with {model} cannot give this view: {e}") from None
        return [
            TextView(p, m, layer, found[(p, m)], "live" if (p, m) in missing else "store")
            for p in prompts
            for m in methods
        ]

    def _stored(self, item: Item, model: str, method: str, layer: int, prompt: str, templates: str):
        if (
            method not in self.stored_methods(model)
            or templates != self.templates(model)
            or prompt not in {b.label for b in item.boxes}
            or not self.ex._stored(item, model, "textmaps")
        ):
            return None
        key = (item.id, model, method, layer, prompt)
        try:
            return self._stored_maps.get_or_make(key, lambda: _readonly(self.ex.store.text_map(*key)))
        except Exception as e:  # a damaged file, the Hub unreachable: live, with a notice
            self.ex._store_failed(item, model, "textmaps", e)
            return None

    def _analysis(self, item: Item, model: str, prompts: tuple, templates: str, methods: tuple):
        key = (item.key, model, prompts, templates, methods)
        run = partial(_text_analysis, prompts, templates, methods)
        make = lambda: self.ex._inference(model, lambda: self.ex.live.run(model, run, item.image))  # noqa: E731
        return self._live.get_or_make(key, make)

    # -- scores ----------------------------------------------------------------------------------------------

    def scores(self, item: Item, model: str, view: TextView, templates: str, boxes: Sequence[LabeledBox]) -> dict:
        """Every metric of the map against ``boxes`` (``vitattn.metrics.all_metrics``), cached."""
        key = (item.key, model, view.method, view.layer, view.prompt, templates, view.origin, _boxes_key(boxes))
        return self._scores.get_or_make(key, lambda: all_metrics(view.values, list(boxes)))


def _boxes_key(boxes: Sequence[LabeledBox]) -> tuple:
    return tuple((tuple(b.box), b.label) for b in boxes)


def _readonly(values: np.ndarray) -> np.ndarray:
    out = np.array(values, dtype=np.float32, copy=True)
    out.flags.writeable = False
    return out
