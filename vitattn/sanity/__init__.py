"""Sanity checks of map methods: do the maps depend on what the model learned, and on the class?

``model_randomization`` (Adebayo et al. 2018) re-initialises the model's stages and compares each map with the
intact model's; ``random_logit`` (Sixt et al. 2020) compares the map of the predicted class with that of a random
other class. See docs/trust.md.
"""

from vitattn.sanity.randomization import ORDERS, is_class_specific, model_randomization, random_logit, stage_seed
from vitattn.sanity.similarity import SIMILARITY_NAMES, hog_similarity, similarities, spearman, ssim
from vitattn.sanity.stages import model_stages, reinitialize, restored

__all__ = [
    "ORDERS",
    "SIMILARITY_NAMES",
    "hog_similarity",
    "is_class_specific",
    "model_randomization",
    "model_stages",
    "random_logit",
    "reinitialize",
    "restored",
    "similarities",
    "spearman",
    "ssim",
    "stage_seed",
]
