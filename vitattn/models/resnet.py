"""Adapter for timm ResNets: stage activations and their gradients for Grad-CAM, stage features."""

from __future__ import annotations

import torch
from torch import nn

from ..capture import Capture
from ..tokens import feature_map_tokens
from ..trace import Trace

STAGES = ("layer1", "layer2", "layer3", "layer4")


class ResnetAdapter:
    """Runs a timm ResNet; layers 0..3 are the stages ``layer1``..``layer4``."""

    num_prefix = 0
    num_heads = 0

    def __init__(self, module: nn.Module):
        missing = [s for s in STAGES if not isinstance(getattr(module, s, None), nn.Module)]
        if missing:
            raise ValueError(f"{type(module).__name__} lacks ResNet stages {missing}")
        self.module = module
        self.stages = [getattr(module, s) for s in STAGES]

    @property
    def num_layers(self) -> int:
        return len(self.stages)

    def trace(self, x: torch.Tensor, *, grads: bool = True, targets: torch.Tensor | None = None) -> Trace:
        """One forward and (with ``grads``) one backward of the target class scores (default: top-1)."""
        with Capture() as cap:
            for i, stage in enumerate(self.stages):
                cap.watch(f"stage{i}", stage, grad=grads)
            with torch.set_grad_enabled(grads):
                logits = self.module(x.requires_grad_(grads))  # (B, 1000)
                targets = logits.argmax(-1) if targets is None else targets.to(logits.device)
                if grads:
                    logits.gather(1, targets[:, None]).sum().backward()
            cap.require(grads=grads)
        acts = [cap.outputs[f"stage{i}"] for i in range(self.num_layers)]  # (B, C, h, w) each
        return Trace(
            grids=tuple((a.shape[2], a.shape[3]) for a in acts),
            num_prefix=0,
            has_cls=False,
            features=[feature_map_tokens(a) for a in acts],
            activations=acts,
            activation_grads=[cap.grads[f"stage{i}"] for i in range(self.num_layers)] if grads else None,
            logits=logits.detach(),
            targets=targets,
        )
