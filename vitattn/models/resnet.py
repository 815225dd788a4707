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
        self.unit_centers = stage_unit_centers(module)

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
            unit_centers=self.unit_centers,
            logits=logits.detach(),
            targets=targets,
        )


def _geometry(m: nn.Module) -> tuple[int, int, int] | None:
    """(kernel, stride, padding) along one axis of a square conv or max pool; None for other modules."""
    if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
        k, s, p = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride, m.padding))
        return k, s, p
    return None


def stage_unit_centers(module: nn.Module) -> tuple[float, ...]:
    """Where unit 0 of each stage is centred, in cells of that stage (0.5 would be the cell centre).

    Walks the main path (stem, then each block's convolutions in order): a layer of kernel k, stride s and
    padding p moves the centre of unit 0 by ``S * ((k - 1) / 2 - p)`` input pixels, where S is the stride so far;
    pixel j is centred at j + 0.5. The shortcut's 1x1 stride-s convolutions centre their units at the same place.
    """
    stride, center = 1, 0.5

    def walk(layers) -> None:
        nonlocal stride, center
        for geometry in filter(None, map(_geometry, layers)):
            k, s, p = geometry
            center += stride * ((k - 1) / 2 - p)
            stride *= s

    walk([*module.conv1.modules(), *getattr(module, "maxpool", nn.Identity()).modules()])
    out = []
    for name in STAGES:
        for block in getattr(module, name):
            walk(m for n in ("conv1", "conv2", "conv3") if hasattr(block, n) for m in getattr(block, n).modules())
        out.append(center / stride)
    return tuple(out)
