"""Text-prompted maps for language-supervised models (CLIP, SigLIP, SigLIP 2): their text towers, prompt
templates, and the text methods (`TEXT_METHODS`) that `Model.analyze(image, prompts=[...])` computes.

Importing this package does not import torch (`vitattn.text.tower` and `vitattn.text.compute` do)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .maps import TextMaps
from .specs import DENSE_METHODS, GRADIENT_TEXT_METHODS, TEXT_METHODS, TOWERS, has_text
from .templates import TEMPLATE_SETS, imagenet80

DESCRIPTIONS = {
    "maskclip": "MaskCLIP (Zhou et al. 2022): last block's values, cosine with the prompt",
    "sclip": "SCLIP (Wang et al. 2024): correlative self-attention in the last block, cosine with the prompt",
    "clearclip": "ClearCLIP (Lan et al. 2024): q-q attention, no residual or MLP in the last block",
    "naclip": "NACLIP (Hajimiri et al. 2025): k-k attention with a Gaussian neighbourhood in the last block",
    "legrad": "LeGrad (Bousselham et al. 2024): gradient of the image-text similarity w.r.t. attention",
    "gae": "GAE (Chefer et al. 2021) relevance with the prompt's similarity as target",
}


def caption_ranks(model, images: Sequence, captions: Sequence[str], templates=None) -> np.ndarray:
    """For image ``i``, the rank (0 = first) of caption ``i`` among all captions by cosine with the image embedding.

    With pretrained weights, all zeros on a few images and their own captions shows that the timm image tower and
    the open_clip text tower share one joint space (run once; the weights cannot be downloaded in CI).
    """
    if len(images) != len(captions) or len(images) < 2:
        raise ValueError("caption_ranks needs as many captions as images, at least two")
    img = model.image_embeddings(list(images))  # (N, D) normalised
    txt = model.encode_text(list(captions), templates=templates)  # (N, D)
    sims = img @ txt.T  # (N, N)
    return (sims > np.diag(sims)[:, None]).sum(1)


__all__ = [
    "TEXT_METHODS",
    "GRADIENT_TEXT_METHODS",
    "DESCRIPTIONS",
    "TOWERS",
    "TEMPLATE_SETS",
    "DENSE_METHODS",
    "TextMaps",
    "caption_ranks",
    "has_text",
    "imagenet80",
]
