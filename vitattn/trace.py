"""The one result type every model adapter returns for a batch: what the forward (and backward) pass left behind.

Every map method is a function of a `Trace`, so adding a model family is writing one adapter that fills it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch


@dataclass
class Trace:
    """Captured intermediates of one batch, float32, on the model's device.

    Shapes: ``B`` images, ``L`` layers, ``H`` heads, ``T = num_prefix + gh * gw`` tokens, ``D`` channels.
    """

    grids: tuple[tuple[int, int], ...]  # patch grid (gh, gw) per layer; equal for a ViT, per stage for a CNN
    num_prefix: int  # CLS + register tokens before the patches (0 for a CNN or SigLIP)
    has_cls: bool  # whether token 0 is a CLS token
    features: list[torch.Tensor]  # per layer (B, gh * gw, D) patch tokens (block outputs, prefix removed)
    attentions: list[torch.Tensor] | None = None  # per layer (B, H, T, T) softmax attention, rows = queries
    pool: torch.Tensor | None = None  # (B, H, T) attention of a pooling probe (SigLIP MAP head) over final tokens
    scores: list[torch.Tensor] | None = None  # per layer (B, H, T, T) pre-softmax attention scores
    attention_grads: list[torch.Tensor] | None = None  # per layer (B, H, T, T) d(class score)/d(attention), AG-CAM
    relevance_grads: list[torch.Tensor] | None = None  # per layer (B, H, T, T) d(target)/d(attention), whole network
    activations: list[torch.Tensor] | None = None  # per stage (B, C, h, w) CNN feature maps
    activation_grads: list[torch.Tensor] | None = None  # per stage (B, C, h, w) d(target logit)/d(activation)
    unit_centers: tuple[float, ...] | None = None  # CNN: centre of unit 0 per stage, in cells (0.5 = cell centre)
    logits: torch.Tensor | None = None  # (B, num_classes) for classifiers
    targets: torch.Tensor | None = None  # (B,) class explained by gradient methods (None: the image's embedding)

    @property
    def num_layers(self) -> int:
        return len(self.grids)


class Maps(NamedTuple):
    """A method's maps at one layer for a batch."""

    heads: torch.Tensor | None  # (B, H, gh, gw), or None where the method fuses heads by definition
    fused: torch.Tensor  # (B, gh, gw)
