"""Model loading: a spec, timm weights (pretrained, random or a checkpoint), one adapter per family."""

from __future__ import annotations

import dataclasses

import torch

from ..hub import check_weights_reachable
from ..specs import STRATEGIES, ModelSpec, get_spec, split_variant, variant_of
from .model import Model
from .resnet import ResnetAdapter
from .transform import Transform
from .vit import VitAdapter

ADAPTERS = {"vit": VitAdapter, "resnet": ResnetAdapter}


def load_model(
    name: str,
    pretrained: bool = True,
    device: str | torch.device | None = None,
    *,
    checkpoint: str | None = None,
    **overrides,
) -> Model:
    """Loads a model by name (see `vitattn.MODELS`), or a variant of one with other weights.

    Args:
        name: a key of `vitattn.MODELS`, or ``base@variant`` (e.g. ``clip@lora``) together with ``checkpoint``.
        pretrained: load the public weights (downloaded by timm from the Hub); False builds the same
            architecture with random weights and needs no network. Ignored with ``checkpoint``: a fine-tune folder
            says which base it was trained from (pretrained, or seeded random), a state dict holds every weight.
        device: "cuda", "cpu", ...; default: CUDA when available.
        checkpoint: other weights for the same architecture: a folder written by ``python -m vitattn.finetune``
            (a LoRA adapter is merged into the weights), a ``.safetensors``/``.pth`` state dict, or
            ``hf-hub:ns/name``. The result is named ``<base>@<variant>`` (variant: the label after ``@`` in
            ``name``, else the fine-tune strategy, else ``ft``) and its spec records base, strategy and checkpoint.
            The model keeps the head it was fine-tuned with (see `vitattn.finetune.checkpoint`).
        **overrides: keyword arguments for ``timm.create_model`` (``depth``, ``embed_dim``, ``num_heads``,
            ``img_size``, ``layers``...), to build smaller variants for tests. The returned spec reflects them.

    Raises:
        ValueError: an unknown model, a variant name without a checkpoint, or checkpoint keys that do not match
            the architecture (named).
        vitattn.hub.WeightsUnreachable: pretrained weights neither cached nor downloadable (the Hub unreachable
            or ``HF_HUB_OFFLINE`` set): one line naming the model, the file and the way out, within ~3 s.
    """
    base_name, label = split_variant(name)
    spec = get_spec(base_name)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if checkpoint is None and label is not None:
        raise ValueError(
            f"model {name!r} is a variant: give its weights with checkpoint=FOLDER, FILE or hf-hub:ns/name"
        )
    if checkpoint is None:
        module = build_module(spec, pretrained, overrides)
    else:
        module, spec, overrides = _load_checkpoint(spec, label, checkpoint, overrides)
    module = module.eval().to(device)
    for p in module.parameters():
        p.requires_grad_(False)  # gradient methods need gradients of activations only
    adapter = ADAPTERS[spec.family](module)
    actual = _actual_spec(spec, module, adapter, overrides)
    cfg = module.pretrained_cfg
    transform = Transform(actual.img_size, cfg["mean"], cfg["std"], cfg.get("interpolation", "bicubic"))
    return Model(actual, module, adapter, transform, device, pretrained=pretrained, overrides=overrides)


def build_module(spec: ModelSpec, pretrained: bool, overrides: dict) -> torch.nn.Module:
    """The timm module of a base spec (``overrides`` as in `load_model`); the one place models are built, so the
    fine-tune job, precompute and checkpoints build the same seeded random weights."""
    import timm

    if pretrained:
        check_weights_reachable(spec.name)  # fails in ~3 s, in one line, instead of the Hub client's ~50 s of retries
    kwargs = {"img_size": spec.img_size} if spec.family == "vit" else {}
    kwargs.update({k: v for k, v in overrides.items() if spec.family == "vit" or k != "img_size"})
    try:
        return timm.create_model(spec.timm_id, pretrained=pretrained, **kwargs)
    except Exception as e:
        if not pretrained:
            raise
        raise RuntimeError(
            f"could not load pretrained weights for {spec.name} ({spec.timm_id}): {e}. "
            "Check the network or the Hub cache; pretrained=False builds the architecture with random weights."
        ) from e


def _load_checkpoint(spec: ModelSpec, label: str | None, checkpoint: str, overrides: dict):
    """(module with the checkpoint's weights, the variant's spec, the overrides it was built with)."""
    from ..finetune import checkpoint as ckpt

    path = ckpt.locate(checkpoint)
    info = ckpt.read_info(path)
    if info is None:  # a whole state dict: every weight comes from it
        module = build_module(spec, False, overrides)
        state = ckpt.read_state(path)
        ckpt.fit_head(module, state)
        ckpt.load_state(module, state, checkpoint)
        strategy = label if label in STRATEGIES else None
    else:
        if info["model"] != spec.name:
            raise ValueError(f"checkpoint {checkpoint!r} was fine-tuned from {info['model']!r}, not {spec.name!r}")
        saved = dict(info.get("overrides") or {})
        if overrides and dict(overrides) != saved:
            raise ValueError(f"checkpoint {checkpoint!r} was trained with overrides {saved}, not {dict(overrides)}")
        overrides = saved
        if info["random_weights"]:
            torch.manual_seed(int(info["seed"]))  # the seeded random base the job started from
        module = ckpt.apply_folder(build_module(spec, not info["random_weights"], overrides), path, info)
        strategy = info["strategy"]
    # the spec a variant name gives (get_spec("clip@lora")), whatever its head: no ImageNet top-5, and for a ViT no
    # gradient methods (see vitattn.specs.variant_of), so a store's tables never depend on a checkpoint's head
    variant = variant_of(spec, label or strategy or "ft", strategy=strategy, checkpoint=checkpoint)
    return module, variant, overrides


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


__all__ = ["load_model", "build_module", "Model", "ADAPTERS"]
