"""Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks", eqs. 1-2)."""

from __future__ import annotations

import torch

from ..tokens import register_to_cells
from ..trace import Maps, Trace


def gradcam_map(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """``ReLU(sum_k alpha_k A^k)`` with ``alpha_k`` the spatial mean of ``d y_c / d A^k``.

    Args:
        activations: ``(B, C, h, w)`` feature maps of one stage.
        grads: ``(B, C, h, w)`` gradients of the target class score with respect to them.

    Returns:
        ``(B, h, w)``.
    """
    alpha = grads.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    return torch.relu((alpha * activations).sum(1))  # (B, h, w)


def gradcam(trace: Trace) -> dict[int, Maps]:
    """Grad-CAM at every stage (layer 0..3 = ResNet stages layer1..layer4); a CNN has no heads.

    Each map is registered to the patch-grid convention (`register_to_cells`): a ResNet unit sits half a cell
    up-left of its cell's centre (at ``layer4``, 15.5 of 224 pixels), which would otherwise shift the map
    against the boxes. pytorch-grad-cam upsamples the unregistered map.
    """
    if trace.activations is None or trace.activation_grads is None:
        raise ValueError("gradcam needs a CNN's stage activations and their gradients")
    centers = trace.unit_centers or (0.5,) * len(trace.activations)
    return {
        layer: Maps(None, register_to_cells(gradcam_map(acts, grads), centers[layer]))
        for layer, (acts, grads) in enumerate(zip(trace.activations, trace.activation_grads, strict=True))
    }
