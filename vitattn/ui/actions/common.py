"""What the Heads, Variants and Features tabs share: every stored model (variants included), checked integers,
layer names, the random-weights label, and the link to the Attention tab.

The app's ``Explorer`` serves the models this vitattn registers (``vitattn.MODELS``); a store can also hold
fine-tuned variants (``clip@lora``), which these tabs read from the store directly (``ModelInfo.from_manifest``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vitattn.metrics import LOWER_IS_BETTER, METRIC_NAMES
from vitattn.specs import get_spec
from vitattn.ui.data.catalog import FUSED, ModelInfo, integer
from vitattn.ui.data.errors import brief, fail
from vitattn.ui.data.explorer import Explorer

RANDOM_WEIGHTS = "random weights: not a result"


def metric_deltas(a: Mapping[str, float], b: Mapping[str, float]) -> list[dict]:
    """Every metric (``METRIC_NAMES``) both scores ``a`` and ``b`` hold: rows ``metric, better`` (which way: mse, kl
    and emd lower), ``A, B, B - A`` and ``B is`` ("better", "worse", or "same" within 1e-9)."""
    rows = []
    for metric in METRIC_NAMES:
        if metric not in a or metric not in b:
            continue
        va, vb = float(a[metric]), float(b[metric])
        lower = metric in LOWER_IS_BETTER
        verdict = "same" if np.isclose(va, vb, rtol=0, atol=1e-9) else ("better" if (vb < va) == lower else "worse")
        better = "lower" if lower else "higher"
        rows.append({"metric": metric, "better": better, "A": va, "B": vb, "B - A": vb - va, "B is": verdict})
    return rows


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
    fused = model_info.check_head(method, head)
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
