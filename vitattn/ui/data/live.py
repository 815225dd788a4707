"""Live inference: models loaded on first use, analyses cached by image content and model.

Which network a name means: by default the public checkpoint (``weights="pretrained"``); for tests without network,
``"random"`` (the full-size architecture, seeded random weights) or ``"small"`` (a tiny seeded random variant).
A store's models come with their own recipe (``Variant.of_manifest``: random or not, timm overrides), so live
inference on a stored model rebuilds the network the store was made with.

On a Hugging Face Space with ZeroGPU (``SPACES_ZERO_GPU`` set), the analysis runs under ``spaces.GPU``; everywhere
else the same code runs on a local GPU or the CPU. ZeroGPU runs the decorated function in a forked worker and
pickles its arguments, so it takes plain values and finds its `LiveModels` through a registry by name.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from vitattn import hub
from vitattn.analysis import Analysis, readonly
from vitattn.cache import LRU
from vitattn.specs import GRADIENT_METHODS, ModelSpec, get_spec

# Tiny random variants (weights="small"), as tests/small_models.py: two blocks, 64 channels, 4 heads.
SMALL_VIT = {"depth": 2, "embed_dim": 64, "num_heads": 4}
SMALL_RESNET = {"layers": (1, 1, 1, 1), "img_size": 96}
SEED = 0  # torch seed before building a random-weight network (as the precompute job's default)
GPU_SECONDS = 60
RETRY_SECONDS = 120.0  # a network that failed to load (no connection, say) is not tried again sooner


def small_overrides(name: str) -> dict:
    """``load_model`` keyword arguments of the tiny variant of a model."""
    spec = get_spec(name)
    if spec.family == "resnet":
        return dict(SMALL_RESNET)
    return {**SMALL_VIT, "img_size": 96 if spec.patch_size == 32 else 4 * spec.patch_size}


@dataclass(frozen=True)
class Variant:
    """How to build a model: public weights or seeded random ones, and timm overrides (tiny test variants)."""

    pretrained: bool = True
    overrides: Mapping = field(default_factory=dict)

    @classmethod
    def of_weights(cls, weights: str, name: str) -> Variant:
        if weights == "small":
            return cls(False, small_overrides(name))
        return cls(weights == "pretrained")

    @classmethod
    def of_manifest(cls, entry: Mapping) -> Variant:
        return cls(not entry.get("random_weights", False), dict(entry.get("overrides") or {}))


def on_gpu(fn: Callable) -> Callable:
    """``spaces.GPU(fn)`` on a ZeroGPU Space, else ``fn`` itself (the `spaces` package is optional)."""
    if not os.environ.get("SPACES_ZERO_GPU"):
        return fn
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=GPU_SECONDS)(fn)


def content_key(data: bytes) -> str:
    """The cache key of an image's content: the sha256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


APP_WAY_OUT = (
    "start the app with --random-weights (untrained networks, labelled), use a store made by `python -m precompute`, "
    "or run once with network access to cache the weights"
)


def check_weights_reachable(name: str) -> None:
    """`vitattn.hub.check_weights_reachable` with the app's way out: fails in ~3 s, in one line."""
    hub.check_weights_reachable(name, APP_WAY_OUT)


_REGISTRY: weakref.WeakValueDictionary[str, LiveModels] = weakref.WeakValueDictionary()  # GPU calls take names


@on_gpu
def _analyze_on_device(owner: str, model: str, image: Image.Image) -> Analysis:
    return _REGISTRY[owner].model(model).analyze(image)


@on_gpu
def _explain_on_device(owner: str, model: str, image: Image.Image, target: int) -> tuple[Analysis, np.ndarray]:
    """The gradient methods' maps of ``target`` (no attention maps, no features: those do not depend on the class)
    and the class logits, in one device call."""
    m = _REGISTRY[owner].model(model)
    methods = tuple(x for x in m.spec.methods if x in GRADIENT_METHODS)
    return m.analyze(image, methods=methods, target=target, features=False), class_logits(m, image)


@on_gpu
def _run_on_device(owner: str, model: str, fn: Callable, image: Image.Image):
    return fn(_REGISTRY[owner].model(model), image)


@on_gpu
def _logits_on_device(owner: str, model: str, image: Image.Image) -> np.ndarray:
    return class_logits(_REGISTRY[owner].model(model), image)


def class_logits(model, image: Image.Image) -> np.ndarray:
    """The ``(1000,)`` ImageNet logits of a classifier for one image: a plain forward of its module on the same input
    ``Model.analyze`` gives it (``model.transform``), without gradients."""
    import torch

    if not model.spec.classifier:
        raise ValueError(f"model {model.spec.name!r} is not an ImageNet classifier; it has no class logits")
    x = model.transform(image)[None].to(model.device)  # (1, 3, S, S)
    with torch.no_grad():
        out = model.module(x)  # (1, 1000)
    return readonly(out[0].float().cpu().numpy())


class LiveModels:
    """Networks loaded on demand (at most ``keep`` at a time) and their analyses (at most ``analyses``).

    Args:
        weights: "pretrained", "random" or "small", for models without a recipe in ``variants``.
        variants: name -> `Variant`, e.g. a store's models (``Variant.of_manifest``).
        device: torch device; None: CUDA when available.
        keep: loaded networks kept.
        analyses: analyses kept (LRU over image content x model, and x class for the maps of a chosen class).
        workers: analyses (with the network loads they need) running at once; other callers wait. This bounds
            the memory of live inference whatever asks for it: an upload, a classifier's predictions, or a view
            whose stored part is unavailable.
    """

    def __init__(
        self,
        weights: str = "pretrained",
        *,
        variants: Mapping[str, Variant] | None = None,
        device: str | None = None,
        keep: int = 3,
        analyses: int = 24,
        workers: int = 1,
    ):
        self.weights = weights
        self.variants = dict(variants or {})
        self.device = device
        self._models: LRU[str, object] = LRU(keep)
        self._analyses: LRU[tuple, Analysis] = LRU(analyses)  # (key, model), or (key, model, target)
        self._logits: LRU[tuple[str, str], np.ndarray] = LRU(max(256, analyses))  # 4 kB each
        self._specs: dict[str, ModelSpec] = {}
        self._failures: dict[str, tuple[float, Exception]] = {}
        self._lock = threading.Lock()
        self._running = threading.BoundedSemaphore(workers)
        self.name = f"live-{id(self)}"
        _REGISTRY[self.name] = self

    def variant(self, name: str) -> Variant:
        get_spec(name)
        return self.variants.get(name) or Variant.of_weights(self.weights, name)

    def random_weights(self, name: str | None = None) -> bool:
        """Whether ``name`` (default: any model without a recipe) runs with random weights."""
        return not (self.variant(name).pretrained if name else self.weights == "pretrained")

    def model(self, name: str):
        """The loaded `vitattn.Model` (loading it on first use: weights download from the Hub when pretrained).

        A failed load is raised again, without retrying, for ``RETRY_SECONDS`` (each offline retry takes a minute).
        """
        with self._lock:
            failed = self._failures.get(name)
        if failed is not None and time.monotonic() - failed[0] < RETRY_SECONDS:
            raise failed[1]
        try:
            return self._models.get_or_make(name, lambda: self._load(name))
        except Exception as e:
            with self._lock:
                self._failures[name] = (time.monotonic(), e)
            raise

    def load(self, name: str):
        """``model(name)``, waiting for a free worker first (loading a network takes memory, like an analysis)."""
        with self._running:
            return self.model(name)

    def _load(self, name: str):
        import torch

        import vitattn

        variant = self.variant(name)
        if not variant.pretrained:
            torch.manual_seed(SEED)  # the same random network on every load, as the store's
        elif not variant.overrides:
            check_weights_reachable(name)
        model = vitattn.load_model(name, pretrained=variant.pretrained, device=self.device, **variant.overrides)
        self._specs[name] = model.spec
        return model

    def run(self, model: str, fn: Callable, image: Callable[[], Image.Image]):
        """``fn(loaded model, image())`` for live work other than ``analysis`` (a query patch's attention rows):
        under the same bound on concurrent work, and on the GPU of a ZeroGPU Space (``fn`` must be picklable there:
        a module-level function). Not cached: the caller keeps what it needs."""
        get_spec(model)
        with self._running:
            self.model(model)  # load outside the GPU function: ZeroGPU time is for inference
            return _run_on_device(self.name, model, fn, image())

    def spec(self, name: str) -> ModelSpec:
        """The spec of the network as built: the registry's, or (with overrides) the loaded variant's."""
        if not self.variant(name).overrides:
            return get_spec(name)
        if name not in self._specs:
            self.model(name)
        return self._specs[name]

    def cached(self, key: str, model: str, target: int | None = None) -> Analysis | None:
        """The cached analysis of (content ``key``, model): every method for the top-1 class (``target`` None), or
        the gradient methods only for class ``target``."""
        return self._analyses.get((key, model) if target is None else (key, model, int(target)))

    def cached_logits(self, key: str, model: str) -> np.ndarray | None:
        return self._logits.get((key, model))

    def analysis(self, key: str, image: Callable[[], Image.Image], model: str) -> Analysis:
        """The analysis of an image under a model, computed once per (content ``key``, model).

        Args:
            key: identifies the image content (see ``content_key``).
            image: returns the image; called only when the analysis is not cached.
            model: a name of ``vitattn.MODELS``.
        """
        get_spec(model)

        def make() -> Analysis:
            with self._running:
                self.model(model)  # load outside the GPU function: ZeroGPU time is for inference
                return _analyze_on_device(self.name, model, image())

        return self._analyses.get_or_make((key, model), make)

    def explain(self, key: str, image: Callable[[], Image.Image], model: str, target: int) -> Analysis:
        """The gradient methods' maps of ImageNet class ``target`` (``Model.analyze(image, target=target)``), computed
        once per (content ``key``, model, target), with the same bound and workers as ``analysis``; the attention
        methods (cls, mean, rollout, pool) do not depend on the class and are not recomputed. The class logits come
        from the same device call (see ``logits``)."""
        spec = get_spec(model)
        if not spec.classifier:
            raise ValueError(f"model {model!r} is not an ImageNet classifier; it explains no chosen class")

        def make() -> Analysis:
            with self._running:
                self.model(model)
                analysis, logits = _explain_on_device(self.name, model, image(), int(target))
            self._logits.put((key, model), logits)
            return analysis

        return self._analyses.get_or_make((key, model, int(target)), make)

    def logits(self, key: str, image: Callable[[], Image.Image], model: str) -> np.ndarray:
        """The ``(1000,)`` ImageNet logits of a classifier for an image (``class_logits``), once per (key, model)."""
        get_spec(model)

        def make() -> np.ndarray:
            with self._running:
                self.model(model)
                return _logits_on_device(self.name, model, image())

        return self._logits.get_or_make((key, model), make)
