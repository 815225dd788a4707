"""vitattn: where does a vision model look, and does it look where experts do?

import vitattn
m = vitattn.load_model("dinov2", pretrained=True)
a = m.analyze(image)
a.map("cls", layer=11, head=None)
"""

from .analysis import Analysis, LayerMaps
from .boxes import Box, LabeledBox
from .specs import MODELS, ModelSpec, get_spec

__version__ = "0.1.0"


def __getattr__(name: str):
    """torch loads only when a model is asked for: metrics, boxes, datasets and the store stay torch-free."""
    if name in ("load_model", "Model"):
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'vitattn' has no attribute {name!r}")


__all__ = ["MODELS", "ModelSpec", "get_spec", "load_model", "Model", "Analysis", "LayerMaps", "Box", "LabeledBox"]
