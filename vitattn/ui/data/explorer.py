"""The app's data: maps, features and scores from the store when it has them, from live inference otherwise.

Where maps come from, per request:

- a stored image under a stored model: the store (``store.map`` / ``store.features`` / ``store.metrics``), cached
  here in small LRUs so moving a slider back and forth reads nothing twice;
- an uploaded or bundled example image, or a stored part that cannot be read: live inference
  (``LiveModels``), cached by image content and model, so only the first view of an image under a model waits.

Gradient methods (gradcam, agcam, gae) of an ImageNet classifier explain one class: the store holds the maps of the
top-1 class, and so does the cached live analysis. The maps of another class (``target``) come from live inference
(``LiveModels.explain``: the gradient methods only, cached by image content, model and class); the attention methods
do not depend on the class and ignore ``target``.

A stored part that fails (a damaged file, the Hub unreachable) is recorded (``problems``, shown on the page), the
view falls back to live inference with a notice, and the part is not asked for again for ``STORE_RETRY_SECONDS``
(the Hub may come back; a damaged file fails again at once, from the store's own record). Opening the store reads
its manifest and image list only; a model whose manifest entry cannot be used is left out and reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

import gradio as gr
import numpy as np

from vitattn.analysis import Analysis
from vitattn.boxes import LabeledBox
from vitattn.cache import LRU
from vitattn.datasets import load_examples
from vitattn.specs import MODELS, ON_REQUEST_METHODS
from vitattn.ui.data.catalog import Item, ModelInfo, display, read_upload, upload_item
from vitattn.ui.data.classes import ClassScores
from vitattn.ui.data.config import AppConfig
from vitattn.ui.data.errors import brief, fail, redact, warn
from vitattn.ui.data.live import LiveModels, Variant, content_key
from vitattn.ui.data.tables import StoredTables, Table, _known
from vitattn.ui.data.text import TextSource

log = logging.getLogger(__name__)
UPLOAD_PREFIX = "upload-"
STORE_RETRY_SECONDS = 60.0  # a stored part that failed is read live for this long before the store is tried again


class Explorer(ClassScores, StoredTables):
    """Everything the handlers read: the image list, models, maps, features, scores and the page status."""

    def __init__(
        self,
        config: AppConfig,
        *,
        store=None,
        problems: Sequence[str] = (),
        examples: Sequence | None = None,
        live: LiveModels | None = None,
    ):
        self.config = config
        self.store = store
        self._lock = threading.Lock()
        self._infos: dict[str, ModelInfo] = {}
        variants = {m: Variant.of_manifest(e) for m, e in store.manifest["models"].items()} if store else {}
        self.live = live or LiveModels(
            config.weights,
            variants=variants,
            device=config.device,
            keep=config.models_kept,
            analyses=config.analyses,
            workers=config.live_workers,
        )
        self._problems = list(problems)
        self._examples = {r.id: r for r in (examples or ())}
        self._ids = list(store.image_ids()) if store is not None else sorted(self._examples)
        self._id_set = set(self._ids)
        self._models = self._store_models() if store is not None else list(MODELS)
        self._items: LRU[str, Item] = LRU(256)
        self._uploads: LRU[str, Item] = LRU(config.uploads)
        self._maps: LRU[tuple, np.ndarray] = LRU(4096)
        self._features: LRU[tuple, np.ndarray] = LRU(64)
        self._scores: LRU[tuple, dict] = LRU(4096)
        self._baselines: LRU[tuple, dict] = LRU(512)
        self._indexes: LRU[tuple, tuple[Table, dict]] = LRU(32)
        self._tables: dict[str, object] = {}
        self._memo: LRU[tuple, object] = LRU(256)
        self._failed: dict[tuple[str, str], float] = {}  # (image, "model/part") -> when it failed (monotonic)
        self._top: LRU[tuple[str, str], int] = LRU(4096)  # (content key, model) -> top-1 class index
        self.text = TextSource(self)  # text maps of prompts (the Text tab)

    @classmethod
    def open(cls, config: AppConfig, live: LiveModels | None = None) -> Explorer:
        """The explorer of ``config``'s store; without one, or when it cannot be opened, of the bundled examples."""
        store, problems = None, []
        if config.store:
            try:
                from vitattn.store import open_store

                store = open_store(config.store)
                if not store.image_ids() or not store.models():
                    problems.append(f"the store {config.store} holds no images or no models")
                    store = None
            except Exception as e:  # unreachable Hub, missing folder, damaged manifest: the app must still start
                log.warning("store %s cannot be opened: %s", config.store, e)
                problems.append(f"the store {config.store} cannot be opened ({e})")
                store = None
            if store is None:
                problems[-1] += "; showing the bundled example images with live inference instead"
        return cls(config, store=store, problems=problems, examples=None if store else load_examples(), live=live)

    # -- what there is ---------------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """``"store"`` or ``"live"`` (bundled examples, live inference)."""
        return "store" if self.store is not None else "live"

    @property
    def problems(self) -> list[str]:
        stored = list(getattr(self.store, "problems", []) or []) if self.store is not None else []
        with self._lock:
            return [redact(p) for p in dict.fromkeys(stored + self._problems)]

    def image_ids(self) -> list[str]:
        return list(self._ids)

    def models(self) -> list[str]:
        return list(self._models)

    def info(self, model: str) -> ModelInfo:
        """The model's methods, layers and heads (from the manifest when stored, else its spec)."""
        if model not in self._models:
            raise fail(f"unknown model {brief(model)}; valid models: {', '.join(self._models)}")
        if model not in self._infos:
            if self.store is not None:
                self._infos[model] = ModelInfo.from_manifest(model, self.store.manifest["models"][model])
            else:
                self._infos[model] = ModelInfo.from_spec(self.live.spec(model))
        return self._infos[model]

    def extent(self) -> tuple[int, tuple[str, ...], int]:
        """The most layers, every method and the most heads over all models, without loading any network."""
        if self.store is not None:
            entries = [self.store.manifest["models"][m] for m in self._models]
            layers = max(int(e["num_layers"]) for e in entries)
            methods = {m for e in entries for m in e["methods"]}
            heads = max(max(map(int, e["heads"].values()), default=0) for e in entries)
        else:
            specs = [MODELS[m] for m in self._models]
            layers = max(s.num_layers for s in specs)
            methods = {m for s in specs for m in s.methods}
            heads = max(s.num_heads for s in specs)
        return layers, tuple(sorted(methods)), heads

    def random_weights(self, origin: str, model: str | None = None) -> bool:
        """Whether maps of ``origin`` ("store" or "live") under ``model`` (default: any) come from random weights."""
        if origin == "store":
            if self.store is None:
                return False
            if model is None:
                return bool(self.store.random_weights)
            return bool(self.store.manifest["models"].get(model, {}).get("random_weights", False))
        return self.live.random_weights(model)

    def _store_models(self) -> list[str]:
        """The stored models this vitattn knows and whose manifest entry it can use (the others are reported)."""
        names = list(self.store.models())
        unknown = [n for n in names if not _known(n)]
        if unknown:
            self._problem(f"the store holds models this vitattn does not know: {', '.join(unknown)} (skipped)")
        usable = []
        for name in (n for n in names if _known(n)):
            try:
                self._infos[name] = ModelInfo.from_manifest(name, self.store.manifest["models"][name])
                usable.append(name)
            except (KeyError, TypeError, ValueError, IndexError) as e:
                self._problem(f"the store's manifest entry of {name} cannot be used ({type(e).__name__}: {e}); skipped")
        return usable

    def _problem(self, message: str) -> None:
        log.warning(message)
        with self._lock:
            if message not in self._problems:
                self._problems.append(message)

    # -- images ----------------------------------------------------------------------------------------------

    def item(self, image_id: str) -> Item:
        """A stored, bundled or uploaded image by id."""
        if not isinstance(image_id, str) or not image_id:
            raise fail(f"image id must be a non-empty string, got {brief(image_id)}")
        if image_id.startswith(UPLOAD_PREFIX) and image_id not in self._id_set:
            item = self._uploads.get(image_id)
            if item is None:
                raise fail(f"upload {brief(image_id)} is unknown or expired; upload the image again")
            return item
        if image_id not in self._id_set:
            sample = ", ".join(self._ids[:8]) + (", ..." if len(self._ids) > 8 else "")
            raise fail(f"unknown image id {brief(image_id)}; this app has {len(self._ids)} images: {sample}")
        return self._items.get_or_make(image_id, lambda: self._load_item(image_id))

    def _load_item(self, image_id: str) -> Item:
        if self.store is None:
            record = self._examples[image_id]
            full = record.load()
            return Item(image_id, "examples", display(full), record.boxes, dict(record.meta), f"examples:{image_id}")
        try:
            stored = self.store.image(image_id)
            picture = display(stored.image)
        except Exception as e:
            self._problem(f"image {image_id} cannot be read from the store: {e}")
            raise fail(f"image {brief(image_id)} cannot be read from the store: {e}") from None
        return Item(
            image_id,
            "store",
            picture,
            tuple(stored.boxes),
            dict(stored.meta),
            f"store:{image_id}",
            full=lambda: self.store.image(image_id).image,
        )

    def upload(self, data: bytes) -> Item:
        """Registers uploaded image bytes under ``upload-<hash>`` (the same bytes give the same id)."""
        if not data:
            raise fail("the upload is empty")
        key = content_key(data)
        image_id = UPLOAD_PREFIX + key[:16]
        return self._uploads.get_or_make(image_id, lambda: upload_item(image_id, key, read_upload(data)))

    def use_boxes(self, image_id: str, boxes: Sequence[LabeledBox]) -> bool:
        """Your boxes become an upload's boxes (an upload has no expert boxes), so every tab (Attention, Compare,
        Query, ...) scores and draws them; True for an upload. A stored or bundled image keeps its expert boxes."""
        item = self.item(image_id)
        if item.origin != "upload":
            return False
        self._uploads.put(image_id, replace(item, boxes=tuple(boxes)))
        return True

    # -- maps, features, predictions -------------------------------------------------------------------------

    def _stored(self, item: Item, model: str, part: str) -> bool:
        if item.origin != "store":
            return False
        with self._lock:
            failed = self._failed.get((item.id, f"{model}/{part}"))
        return failed is None or time.monotonic() - failed > STORE_RETRY_SECONDS

    def _store_failed(self, item: Item, model: str, part: str, error: Exception) -> None:
        with self._lock:
            self._failed[(item.id, f"{model}/{part}")] = time.monotonic()
        message = f"{part} of {model} for image {item.id} cannot be read from the store ({error}); computed live"
        self._problem(message)
        warn(message)

    def analysis(self, item: Item, model: str) -> Analysis:
        """The live analysis of an image under a model (cached by content and model)."""
        cached = self.live.cached(item.key, model)
        if cached is not None:
            return cached
        return self._inference(model, lambda: self.live.analysis(item.key, item.image, model))

    def explained(self, item: Item, model: str, target: int) -> Analysis:
        """The live maps of the gradient methods for ImageNet class ``target`` (cached by content, model and class)."""
        cached = self.live.cached(item.key, model, target)
        if cached is not None:
            return cached
        return self._inference(model, lambda: self.live.explain(item.key, item.image, model, target))

    def logits(self, item: Item, model: str) -> np.ndarray:
        """The ``(1000,)`` ImageNet logits of a classifier for the image (live, cached by content and model)."""
        cached = self.live.cached_logits(item.key, model)
        if cached is not None:
            return cached
        return self._inference(model, lambda: self.live.logits(item.key, item.image, model))

    def _inference(self, model: str, run: Callable):
        try:
            return run()
        except gr.Error:
            raise
        except Exception as e:  # no network for the weights, out of memory...: say so on the page
            log.exception("live inference failed")
            self._problem(f"live inference with {model} failed: {e}")
            raise fail(f"live inference with {model} failed: {e}") from None

    # -- the class a gradient map explains -------------------------------------------------------------------

    def is_cached(self, item: Item, model: str) -> bool:
        """Whether a view needs no inference (stored maps, or a cached analysis)."""
        return (
            self._stored(item, model, "maps") and model in self._models or self.live.cached(item.key, model) is not None
        )

    def map(
        self, item: Item, model: str, method: str, layer: int, head: int | None, target: int | None = None
    ) -> tuple[np.ndarray, str]:
        """A checked view's ``[gh, gw]`` map and where it came from (``"store"`` or ``"live"``); a gradient method
        explains class ``target`` (None: the top-1; see ``live_target``)."""
        chosen = self.live_target(item, model, method, target)
        if chosen is not None:
            return self._live(lambda a: a.map(method, layer, head), item, model, chosen), "live"
        if self._stored(item, model, "maps"):
            key = (item.id, model, method, layer, head)
            try:
                read = lambda: _readonly(self.store.map(item.id, model, method, layer, head))  # noqa: E731
                return self._maps.get_or_make(key, read), "store"
            except Exception as e:
                self._store_failed(item, model, "maps", e)
        if method in ON_REQUEST_METHODS:
            return self._on_request(item, model, method, layer), "live"
        return self._live(lambda a: a.map(method, layer, head), item, model), "live"

    def _on_request(self, item: Item, model: str, method: str, layer: int) -> np.ndarray:
        """A method the live analysis leaves out (``flow``: a max-flow per patch), at one layer, live and cached."""

        def make() -> np.ndarray:
            fn = partial(_on_request_map, method=method, layer=layer)
            return _readonly(self._inference(model, lambda: self.live.run(model, fn, item.image)))

        return self._maps.get_or_make(("live", item.key, model, method, layer), make)

    def heads(
        self, item: Item, model: str, method: str, layer: int, target: int | None = None
    ) -> tuple[np.ndarray, str]:
        """All heads of a layer, ``[H, gh, gw]`` (a gradient method: for class ``target``, None: the top-1)."""
        chosen = self.live_target(item, model, method, target)
        if chosen is not None:
            return self._live(lambda a: a.heads(method, layer), item, model, chosen), "live"
        n = self.info(model).heads[method]
        if self._stored(item, model, "maps"):
            maps = [self.map(item, model, method, layer, h) for h in range(n)]
            if all(origin == "store" for _, origin in maps):
                return np.stack([m for m, _ in maps]), "store"
        return self._live(lambda a: a.heads(method, layer), item, model), "live"

    def features(self, item: Item, model: str, layer: int) -> tuple[np.ndarray, str]:
        """Patch features ``[N, D]`` of a layer and where they came from."""
        if self._stored(item, model, "features") and layer in self.info(model).feature_layers:
            key = (item.id, model, layer)
            try:
                read = lambda: _readonly(self.store.features(item.id, model, layer))  # noqa: E731
                return self._features.get_or_make(key, read), "store"
            except Exception as e:
                self._store_failed(item, model, "features", e)
        return self._live(lambda a: a.features(layer), item, model), "live"

    def _live(self, pick, item: Item, model: str, target: int | None = None) -> np.ndarray:
        analysis = self.analysis(item, model) if target is None else self.explained(item, model, target)
        try:
            return pick(analysis)
        except ValueError as e:  # the live network's layout differs from the store's (e.g. other weights)
            raise fail(f"live inference with {model} cannot give this view: {e}") from None

    # -- scores ----------------------------------------------------------------------------------------------

    # -- whole tables (IoU tab) ------------------------------------------------------------------------------

    def memo(self, key: tuple, make):
        """A value derived from the stored tables, computed once per key (the tables do not change)."""
        return self._memo.get_or_make(key, make)


def _on_request_map(network, image, method: str, layer: int) -> np.ndarray:
    """The ``[gh, gw]`` map of an on-request method at one layer (module level: picklable for a ZeroGPU call)."""
    return network.analyze(image, methods=[method], flow_layers=(layer,), features=False).map(method, layer, None)


def _readonly(array) -> np.ndarray:
    out = np.array(array, dtype=np.float32, copy=True)  # our own copy: the store's arrays are not ours to freeze
    out.flags.writeable = False
    return out
