"""Map methods: each a function ``Trace -> {layer: Maps}``. One place names them all."""

from __future__ import annotations

from collections.abc import Callable

from ..trace import Maps, Trace
from .agcam import agcam
from .attention import cls_attention, mean_attention, pool_attention
from .flow import flow
from .gae import gae, relevance_matrices
from .gradcam import gradcam
from .rollout import rollout, rollout_matrices

METHODS: dict[str, Callable[[Trace], dict[int, Maps]]] = {
    "cls": cls_attention,
    "mean": mean_attention,
    "rollout": rollout,
    "pool": pool_attention,
    "gradcam": gradcam,
    "agcam": agcam,
    "gae": gae,
    "flow": flow,  # on request only (vitattn.specs.ON_REQUEST_METHODS): one max-flow per patch and layer
}

DESCRIPTIONS = {
    "cls": "CLS attention: where the CLS token looks",
    "mean": "Mean attention: attention each patch receives, averaged over all queries",
    "rollout": "Attention rollout (Abnar & Zuidema 2020) up to this layer",
    "pool": "Attention-pooling head: what the MAP probe pools",
    "gradcam": "Grad-CAM (Selvaraju et al. 2017) for the target class",
    "agcam": "Attention-Guided CAM (Leem & Seo 2024), summed over heads and layers up to this one",
    "gae": "Gradient-weighted attention relevance (Chefer et al. 2021) accumulated up to this layer",
    "flow": "Attention flow (Abnar & Zuidema 2020): max flow from each patch to the CLS token after this layer",
}

__all__ = [
    "METHODS",
    "DESCRIPTIONS",
    "rollout_matrices",
    "relevance_matrices",
    "agcam",
    "gae",
    "flow",
    "cls_attention",
    "mean_attention",
    "gradcam",
]
