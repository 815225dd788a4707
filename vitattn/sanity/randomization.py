"""Model-parameter randomisation and random-logit tests of a map method on one image.

* `model_randomization`: Adebayo et al. 2018, "Sanity Checks for Saliency Maps" (NeurIPS), sec. 3.1, cascading
  randomisation from the output down ("top-down"), the one-stage-at-a-time variant ("independent", their
  sec. 3.1 "independent randomization") and the cascade from the input up ("bottom-up", which Hedström et al.
  2023, "The Meta-Evaluation Problem in Explainable AI", TMLR, recommend so that later randomised layers do not mask
  earlier ones).
* `random_logit`: Sixt, Granz & Landgraf 2020, "When Explanations Lie: Why Many Modified BP Attributions Fail"
  (ICML), sec. 5.2: the map for the predicted class against the map for a random other class.

A map that passes depends on the weights (it changes a lot as they are randomised) and on the class (it changes
with the logit). Rows carry `SIMILARITY_NAMES` (`vitattn.sanity.similarity`) and the randomised map itself.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from vitattn.specs import GRADIENT_METHODS, ON_REQUEST_METHODS

from .similarity import SIMILARITY_NAMES, similarities
from .stages import model_stages, reinitialize, restored

ORDERS = ("top-down", "bottom-up", "independent")
CLASS_AGNOSTIC_NOTE = "class-agnostic: the map does not depend on the class, so it scores 1 by construction"


def stage_seed(seed: int, index: int) -> int:
    """The seed of the stage at ``index`` (top-down position): the same weights for a stage in every order."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _map(model, image: Image.Image, method: str, layer: int | None, head: int | None, target) -> np.ndarray:
    """The ``(gh, gw)`` map of one method at one layer and head (``target``: the class gradient methods explain)."""
    kwargs = {"target": target} if target is not None else {}
    if method in ON_REQUEST_METHODS:
        kwargs["flow_layers"] = None if layer is None else (layer,)
    analysis = model.analyze(image, methods=[method], features=False, **kwargs)
    return np.array(analysis.map(method, layer, head), dtype=np.float32), analysis.target


def model_randomization(
    model,
    image: Image.Image,
    method: str,
    layer: int | None = None,
    head: int | None = None,
    order: str = "top-down",
    seed: int = 0,
) -> list[dict]:
    """The map of ``method`` as the model's stages are re-initialised, compared with the original map.

    Stages run from the output down (`vitattn.sanity.stages.model_stages`): ``head``, ``norm``, ``blocks.{L-1}`` ...
    ``blocks.0``, ``patch_embed`` for a ViT; ``fc``, ``layer4`` ... ``layer1``, ``stem`` for a ResNet. Row ``k``
    (after the first) names the stage randomised at step ``k``; what else is random then depends on ``order``:

    * ``"top-down"``: that stage and every stage above it (Adebayo et al.'s cascade);
    * ``"bottom-up"``: that stage and every stage below it (steps run from ``patch_embed`` / ``stem`` up);
    * ``"independent"``: that stage only.

    Each stage is re-initialised with the same seeded weights in every order. Gradient methods explain the class the
    intact model explains (its top-1, or its embedding), so only the weights change. The model's parameters and
    buffers are restored afterwards, also when an error stops the test.

    Args:
        model: a `vitattn.Model` (timm ViT or ResNet).
        image: a PIL image.
        method: one of the model's methods (``model.spec.methods``, or ``flow`` on a ViT).
        layer: the layer of the map (default: the last).
        head: a head (None: all heads fused).
        order: ``"top-down"``, ``"bottom-up"`` or ``"independent"``.
        seed: seeds the re-initialisation.

    Returns:
        One dict per step, the first with ``stage="none"`` (the intact model): ``stage``, ``step``, ``order``,
        ``randomized`` (the stages random at that step), the four similarities, and ``map`` ``(gh, gw)`` float32.

    Raises:
        ValueError: an unknown order, or a method, layer or head the model does not have.
    """
    if order not in ORDERS:
        raise ValueError(f"order {order!r}: expected one of {', '.join(ORDERS)}")
    stages = model_stages(model.module)
    seeds = {name: stage_seed(seed, i) for i, (name, *_) in enumerate(stages)}
    steps = stages if order != "bottom-up" else stages[::-1]
    original, target = _map(model, image, method, layer, head, None)
    rows = [_row("none", 0, order, (), original, original)]
    with restored(model.module) as module:
        pristine = {k: v.detach().clone() for k, v in module.state_dict().items()} if order == "independent" else {}
        done: list[str] = []
        for k, (name, modules, loose) in enumerate(steps, start=1):
            if order == "independent" and done:
                module.load_state_dict(pristine)
                done = []
            reinitialize(modules, loose, seeds[name])
            done.append(name)
            changed, _ = _map(model, image, method, layer, head, target)
            rows.append(_row(name, k, order, tuple(done), original, changed))
    return rows


def _row(stage: str, step: int, order: str, randomized: tuple[str, ...], original, changed) -> dict:
    return {
        "stage": stage,
        "step": step,
        "order": order,
        "randomized": randomized,
        **similarities(original, changed),
        "map": changed,
    }


def is_class_specific(model, method: str) -> bool:
    """Whether ``method``'s map depends on a class: a gradient method on a model with an ImageNet head."""
    return method in GRADIENT_METHODS and bool(model.spec.classifier)


def random_logit(
    model, image: Image.Image, method: str, layer: int | None = None, head: int | None = None, seed: int = 0
) -> dict:
    """The map for the predicted class against the map for a random other class (Sixt et al. 2020).

    Class-agnostic methods (``cls``, ``mean``, ``rollout``, ``pool``, ``flow``, and gradient methods of a model
    without a class head, which explain the image embedding) take no class at all: both maps are the same map and
    every similarity is 1 by construction; the row says so in ``note`` and computes nothing.

    Returns:
        ``target`` (top-1), ``other`` (the random class, None when class-agnostic), ``class_specific``, the four
        similarities, ``note``, and ``maps`` (the two maps; None when class-agnostic).
    """
    if not is_class_specific(model, method):
        if method not in model.spec.methods + ON_REQUEST_METHODS:
            raise ValueError(f"model {model.spec.name!r} has no method {method!r}; valid: {model.spec.methods}")
        ones = dict.fromkeys(SIMILARITY_NAMES, 1.0)
        return {"target": None, "other": None, "class_specific": False, **ones, "note": CLASS_AGNOSTIC_NOTE,
                "maps": None}  # fmt: skip
    top, target = _map(model, image, method, layer, head, None)
    classes = [c for c in range(1000) if c != target]
    other = int(np.random.default_rng(seed).choice(classes))
    rand, _ = _map(model, image, method, layer, head, other)
    return {"target": int(target), "other": other, "class_specific": True, **similarities(top, rand), "note": "",
            "maps": (top, rand)}  # fmt: skip
