"""Model specs: one frozen entry per model. Adding a model is adding an entry here.

A spec names the public checkpoint and what the model offers (methods, layers, heads). The numbers in a spec are
those of the full-size architecture; `load_model` reads the actual token layout from the built module and checks
it against the spec, so a spec can never silently disagree with the weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

ATTENTION_METHODS = ("cls", "mean", "rollout", "pool")
GRADIENT_METHODS = ("gradcam", "agcam", "gae")
ALL_METHODS = ATTENTION_METHODS + GRADIENT_METHODS
# Every ViT offers these too, but they are computed only when asked by name (expensive; not in spec.methods):
# analyze(methods=["flow"], flow_layers=...), precompute --flow-layers.
ON_REQUEST_METHODS = ("flow",)


@dataclass(frozen=True)
class ModelSpec:
    """What a model is and what vitattn can compute on it."""

    name: str  # short name used everywhere (store, app, API)
    title: str  # human-readable name
    family: str  # adapter: "vit" (timm VisionTransformer and Eva) or "resnet"
    timm_id: str  # timm checkpoint id, loaded with timm.create_model(..., pretrained=True)
    hf_id: str | None  # the same weights on the Hugging Face Hub under their original id, for reference
    img_size: int  # square input side; images are resized to it without cropping
    patch_size: int  # pixels per patch side (for resnet50: the stride of the last stage)
    num_layers: int  # transformer blocks (resnet50: 4 stages)
    num_heads: int  # attention heads per block (0 for a CNN)
    num_prefix_tokens: int  # CLS + register tokens before the patch tokens
    methods: tuple[str, ...]  # map methods this model supports
    classifier: bool = False  # has an ImageNet-1k head: top-5 predictions and gradient methods
    training: str = ""  # "self-supervised", "language-supervised", "supervised"
    base: str | None = None  # a variant's base model (its architecture); name is "<base>@<variant>"; None: a base
    strategy: str | None = None  # a variant's fine-tuning ("linear", "lora", "full"); None: unknown or a base
    checkpoint: str | None = None  # a variant's weights: a fine-tune folder, a state-dict file or "hf-hub:ns/name"

    @property
    def grid(self) -> tuple[int, int]:
        """The patch grid of the last layer at the spec's input size."""
        side = self.img_size // self.patch_size
        return (side, side)

    @property
    def is_variant(self) -> bool:
        """A fine-tuned (or otherwise re-weighted) variant of a base model."""
        return self.base is not None

    def describe(self) -> str:
        return f"{self.title} ({self.checkpoint or self.timm_id})"


def _vit(
    name, title, timm_id, hf_id, *, patch=16, prefix=1, methods=("cls", "mean", "rollout", "gae"), **kw
) -> ModelSpec:
    return ModelSpec(
        name=name,
        title=title,
        family="vit",
        timm_id=timm_id,
        hf_id=hf_id,
        img_size=224,
        patch_size=patch,
        num_layers=12,
        num_heads=12,
        num_prefix_tokens=prefix,
        methods=methods,
        **kw,
    )


def _siglip(name, title, timm_id, hf_id) -> ModelSpec:
    """A SigLIP tower: no CLS token (no prefix), so no ``cls`` map but its attention-pooling head's (``pool``)."""
    return _vit(name, title, timm_id, hf_id, prefix=0, methods=SIGLIP_METHODS, training="language-supervised")


def _imagenet(name, title, timm_id, *, patch=16) -> ModelSpec:
    """A supervised ImageNet classifier ViT: its class gradients add ``agcam``."""
    methods = CLASSIFIER_METHODS
    return _vit(name, title, timm_id, None, patch=patch, methods=methods, classifier=True, training="supervised")


SIGLIP_METHODS = ("mean", "rollout", "pool", "gae")
CLASSIFIER_METHODS = ("cls", "mean", "rollout", "agcam", "gae")

MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        _vit(
            "dinov2",
            "DINOv2 ViT-B/14 with registers",
            "vit_base_patch14_reg4_dinov2.lvd142m",
            "facebook/dinov2-with-registers-base",
            patch=14,
            prefix=5,
            training="self-supervised",
        ),
        _vit(
            "dinov3",
            "DINOv3 ViT-B/16",
            "vit_base_patch16_dinov3.lvd1689m",
            "facebook/dinov3-vitb16-pretrain-lvd1689m",
            prefix=5,
            training="self-supervised",
        ),
        _vit(
            "clip",
            "CLIP ViT-B/16 (OpenAI)",
            "vit_base_patch16_clip_quickgelu_224.openai",
            "openai/clip-vit-base-patch16",
            training="language-supervised",
        ),
        _vit("mae", "MAE ViT-B/16", "vit_base_patch16_224.mae", "facebook/vit-mae-base", training="self-supervised"),
        _siglip("siglip", "SigLIP B/16", "vit_base_patch16_siglip_224.webli", "google/siglip-base-patch16-224"),
        _siglip("siglip2", "SigLIP 2 B/16", "vit_base_patch16_siglip_224.v2_webli", "google/siglip2-base-patch16-224"),
        _imagenet("vit", "ViT-B/16 (supervised, ImageNet)", "vit_base_patch16_224.augreg2_in21k_ft_in1k"),
        _imagenet("vit32", "ViT-B/32 (supervised, ImageNet)", "vit_base_patch32_224.augreg_in21k_ft_in1k", patch=32),
        ModelSpec(
            name="resnet50",
            title="ResNet-50 (supervised, ImageNet)",
            family="resnet",
            timm_id="resnet50.tv2_in1k",
            hf_id=None,
            img_size=224,
            patch_size=32,
            num_layers=4,
            num_heads=0,
            num_prefix_tokens=0,
            methods=("gradcam",),
            classifier=True,
            training="supervised",
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    """The spec of a model by name; ``base@variant`` gives the base's spec as a variant (`variant_of`).

    A ValueError names the valid models.
    """
    if isinstance(name, str) and VARIANT_SEPARATOR in name:
        base, variant = split_variant(name)
        return variant_of(get_spec(base), variant, strategy=variant if variant in STRATEGIES else None)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[name]


# Variants: the same architecture with other weights (fine-tuned by `python -m vitattn.finetune` or elsewhere).
VARIANT_SEPARATOR = "@"
STRATEGIES = ("linear", "lora", "full")  # what fine-tuning trained: a new head only, LoRA adapters + head, all
VARIANT_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}(?:@[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$")


def split_variant(name: str) -> tuple[str, str | None]:
    """``"clip@lora"`` -> ``("clip", "lora")``; ``"clip"`` -> ``("clip", None)``. A ValueError for a bad label."""
    base, sep, variant = name.partition(VARIANT_SEPARATOR)
    if not sep:
        return name, None
    if not VARIANT_LABEL.match(variant):
        raise ValueError(
            f"model {name!r}: the variant after '@' must be 1-64 letters, digits, '.', '_' or '-' (e.g. clip@lora)"
        )
    return base, variant


def variant_of(
    spec: ModelSpec, variant: str, *, strategy: str | None = None, checkpoint: str | None = None, imagenet_head=False
) -> ModelSpec:
    """The spec of a variant of ``spec``: same architecture, other weights, named ``<base>@<variant>``.

    A fine-tuned head is not an ImageNet head, so a variant is no ``classifier`` (no ImageNet top-5) unless
    ``imagenet_head``. The ViT adapter explains an ImageNet class or, without one, the image embedding
    (vitattn/models/vit.py); a fine-tuned head's logits are neither, so a ViT variant without an ImageNet head has no
    gradient methods. Attention methods do not depend on the head. ResNet Grad-CAM explains the variant's top class.
    """
    if spec.is_variant:
        raise ValueError(f"{spec.name!r} is already a variant; variants are made of base models")
    if not VARIANT_LABEL.match(variant):
        raise ValueError(f"variant label {variant!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if strategy is not None and strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    classifier = spec.classifier and imagenet_head
    gradients = classifier or spec.family != "vit"
    methods = spec.methods if gradients else tuple(m for m in spec.methods if m not in GRADIENT_METHODS)
    return replace(
        spec,
        name=f"{spec.name}{VARIANT_SEPARATOR}{variant}",
        title=f"{spec.title}, {strategy or variant} fine-tuned",
        methods=methods,
        classifier=classifier,
        base=spec.name,
        strategy=strategy,
        checkpoint=checkpoint,
    )
