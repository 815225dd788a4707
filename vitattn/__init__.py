"""vitattn: where does a vision model look, and does it look where experts do?

    import vitattn
    m = vitattn.load_model("dinov2", pretrained=True)
    a = m.analyze(image)
    a.map("cls", layer=11, head=None)
"""

from .analysis import Analysis, LayerMaps
from .boxes import Box, LabeledBox
from .models import Model, load_model
from .specs import MODELS, ModelSpec, get_spec

__version__ = "0.1.0"

__all__ = ["MODELS", "ModelSpec", "get_spec", "load_model", "Model", "Analysis", "LayerMaps", "Box", "LabeledBox"]
