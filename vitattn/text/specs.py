"""What the text package knows without torch: which models have a text tower and where it comes from, and the
names of the text methods (so `vitattn.analysis`, the store and the job's configuration stay torch-free)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DENSE_METHODS = ("maskclip", "sclip", "clearclip", "naclip")  # vitattn/methods/text_dense.py
GRADIENT_TEXT_METHODS = ("legrad", "gae")  # vitattn/methods/legrad.py, vitattn/methods/gae.py
TEXT_METHODS = DENSE_METHODS + GRADIENT_TEXT_METHODS


@dataclass(frozen=True)
class TowerSpec:
    """Where a model's text tower comes from."""

    open_clip_name: str  # open_clip model config
    pretrained_tag: str  # open_clip pretrained tag (the checkpoint shared with the timm image tower)
    hf_hub: str  # the Hub repo open_clip reads the weights (and a SentencePiece tokenizer) from


TOWERS: dict[str, TowerSpec] = {
    "clip": TowerSpec("ViT-B-16-quickgelu", "openai", "timm/vit_base_patch16_clip_224.openai"),
    "siglip": TowerSpec("ViT-B-16-SigLIP", "webli", "timm/ViT-B-16-SigLIP"),
    "siglip2": TowerSpec("ViT-B-16-SigLIP2", "webli", "timm/ViT-B-16-SigLIP2"),
}


def has_text(name: str) -> bool:
    """Whether model ``name`` has a text tower (variants do not: a fine-tuned image tower left the joint space)."""
    return name in TOWERS


def check_text(name: str) -> TowerSpec:
    """The tower spec of model ``name``; a one-line ValueError naming the models with one."""
    if name not in TOWERS:
        raise ValueError(f"model {name!r} has no text tower; models with one: {', '.join(TOWERS)}")
    return TOWERS[name]


def check_prompts(prompts: str | Sequence[str]) -> list[str]:
    """A list of non-empty prompt strings (a single string is one prompt); a one-line ValueError otherwise."""
    prompts = [prompts] if isinstance(prompts, str) else list(prompts) if prompts is not None else []
    if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ValueError(f"prompts must be one or more non-empty strings, got {prompts!r}")
    return prompts
