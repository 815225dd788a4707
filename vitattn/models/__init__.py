"""Model loading: a spec, timm weights (pretrained or random), one adapter per family."""

from __future__ import annotations

import dataclasses

import torch

from ..specs import ModelSpec, get_spec
from .model import Model
from .resnet import ResnetAdapter
from .transform import Transform
from .vit import VitAdapter

ADAPTERS = {"vit": VitAdapter, "resnet": ResnetAdapter}


def load_model(name: str, pretrained: bool = True, device: str | torch.device | None = None, **overrides) -> Model:
    """Loads a model by name (see `vitattn.MODELS`).

    Args:
        name: a key of `vitattn.MODELS`.
        pretrained: load the public weights (downloaded by timm from the Hub); False builds the same
            architecture with random weights and needs no network.
        device: "cuda", "cpu", ...; default: CUDA when available.
        **overrides: keyword arguments for ``timm.create_model`` (``depth``, ``embed_dim``, ``num_heads``,
            ``img_size``, ``layers``...), to build smaller variants for tests. The returned spec reflects them.
    """
    import timm

    spec = get_spec(name)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    kwargs = {"img_size": spec.img_size} if spec.family == "vit" else {}
    kwargs.update({k: v for k, v in overrides.items() if spec.family == "vit" or k != "img_size"})
    try:
        module = timm.create_model(spec.timm_id, pretrained=pretrained, **kwargs)
    except Exception as e:
        if not pretrained:
            raise
        raise RuntimeError(
            f"could not load pretrained weights for {name} ({spec.timm_id}): {e}. "
            "Check the network or the Hub cache; pretrained=False builds the architecture with random weights."
        ) from e
    module = module.eval().to(device)
    for p in module.parameters():
        p.requires_grad_(False)  # gradient methods need gradients of activations only
    adapter = ADAPTERS[spec.family](module)
    actual = _actual_spec(spec, module, adapter, overrides)
    cfg = module.pretrained_cfg
    transform = Transform(actual.img_size, cfg["mean"], cfg["std"], cfg.get("interpolation", "bicubic"))
    return Model(actual, module, adapter, transform, device)


def _actual_spec(spec: ModelSpec, module, adapter, overrides: dict) -> ModelSpec:
    """The spec as the built module has it (token layout read from the model); must match unless overridden."""
    if spec.family == "vit":
        size = int(module.patch_embed.img_size[0])
        patch = int(module.patch_embed.patch_size[0])
    else:
        size = int(overrides.get("img_size", spec.img_size))
        patch = spec.patch_size
    actual = dataclasses.replace(
        spec,
        img_size=size,
        patch_size=patch,
        num_layers=adapter.num_layers,
        num_heads=adapter.num_heads,
        num_prefix_tokens=adapter.num_prefix,
    )
    if not overrides and actual != spec:
        raise RuntimeError(f"model {spec.name} does not match its spec: built {actual}, spec {spec}")
    return actual


__all__ = ["load_model", "Model", "ADAPTERS"]
