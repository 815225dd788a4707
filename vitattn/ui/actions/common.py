"""What the Heads, Variants and Features tabs share: every stored model (variants included), checked integers,
layer names, the random-weights label, and the link to the Attention tab.

The app's ``Explorer`` serves the models this vitattn registers (``vitattn.MODELS``); a store can also hold
fine-tuned variants (``clip@lora``), which these tabs read from the store directly (``ModelInfo.from_manifest``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vitattn.specs import get_spec
from vitattn.ui.data.catalog import FUSED, ModelInfo
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer

RANDOM_WEIGHTS = "random weights: not a result"


def integer(value: object, what: str) -> int:
    """``value`` as an int (a float that is a whole number is accepted), else a one-line ``gr.Error``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise fail(f"{what} must be a whole number, got {brief(value)}")
    if not math.isfinite(float(value)) or float(value) != int(value):
        raise fail(f"{what} must be a whole number, got {brief(value)}")
    return int(value)


def all_models(ex: Explorer) -> list[str]:
    """The app's models, then the store's fine-tuned variants (``base@label``) whose base the app serves."""
    names = ex.models()
    if ex.store is None:
        return names
    extra = [m for m in ex.store.models() if "@" in m and m.split("@", 1)[0] in names and m not in names]
    return names + sorted(extra)


def info(ex: Explorer, model: str) -> ModelInfo:
    """``ex.info(model)``, or for a stored variant its manifest entry."""
    if model in ex.models():
        return ex.info(model)
    if ex.store is not None and model in all_models(ex):
        key = ("more", "info", model)
        return ex.memo(key, lambda: ModelInfo.from_manifest(model, ex.store.manifest["models"][model]))
    raise fail(f"unknown model {brief(model)}; valid models: {', '.join(all_models(ex))}")


def family(model_info: ModelInfo) -> str:
    """``"resnet"`` for ResNet stages, else ``"vit"`` (from the model's spec)."""
    from vitattn.specs import get_spec

    return get_spec(model_info.name).family


def layer_name(model_info: ModelInfo, layer: int) -> str:
    """ "layer 7" for a ViT block, "stage 3 (layer3)" for a ResNet stage."""
    return f"stage {layer + 1} (layer{layer + 1})" if family(model_info) == "resnet" else f"layer {layer}"


def check_layer(model_info: ModelInfo, method: str, layer: object) -> int:
    """A layer of ``method`` (-1: its last), as an int; a one-line error naming the valid ones otherwise."""
    valid = model_info.layers[model_info.check_method(method)]
    value = integer(layer, "layer")
    if value == -1:
        return valid[-1]
    if value not in valid:
        raise fail(f"layer {value} out of range for {model_info.name}/{method}: valid layers {valid[0]}..{valid[-1]}")
    return value


def check_head(model_info: ModelInfo, method: str, head: object) -> int | None:
    """None for all heads fused (-1 or None), else a head the method has."""
    if head is None:
        return None
    value = integer(head, "head")
    if value == FUSED:
        return None
    n = model_info.heads[model_info.check_method(method)]
    if n == 0:
        raise fail(f"method {method!r} of {model_info.name} fuses all heads by definition; use head -1")
    if not 0 <= value < n:
        raise fail(f"head {value} out of range for {model_info.name}/{method}: valid heads 0..{n - 1}, or -1 fused")
    return value


def warning(ex: Explorer, model: str) -> str:
    """The red label of pictures made from random-weight maps, else empty."""
    stored = ex.store is not None and model in ex.store.manifest.get("models", {})
    return RANDOM_WEIGHTS if ex.random_weights("store" if stored else "live", model) else ""


@dataclass(frozen=True)
class Link:
    """Where a click in these tabs leads: the Attention view of one image, model, method, layer and head."""

    image_id: str | None  # None: keep the current image
    model: str
    method: str
    layer: int
    head: int  # -1: all heads fused


def attention_link(ex: Explorer, image_id: str | None, model: str, method: str, layer: int, head: int) -> Link:
    """A checked link to the Attention tab (the model must be one the app serves)."""
    if model not in ex.models():
        raise fail(f"the Attention tab does not serve {brief(model)}; it serves {', '.join(ex.models())}")
    model_info = ex.info(model)
    layer = check_layer(model_info, method, layer)
    fused = check_head(model_info, method, head)
    if image_id is not None:
        ex.item(image_id)
    return Link(image_id, model, method, layer, FUSED if fused is None else fused)


def deepest(ex: Explorer, models: list[str]) -> int:
    """The deepest layer of any of ``models`` (at least 1): one slider range for all of them."""
    if ex.store is None:  # live: the specs (reading a live model's layout would load its network)
        return max([1, *(get_spec(m).num_layers - 1 for m in models)])
    return max([1, *(info(ex, m).num_layers - 1 for m in models)])


def nearest(valid: tuple[int, ...] | list[int], value, default: int) -> int:
    """The layer of ``valid`` nearest to ``value`` (a slider's float), or ``default`` without a value."""
    if value is None:
        return default
    return min(valid, key=lambda v: (abs(v - float(value)), v))
