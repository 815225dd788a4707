"""Does a map explain the model? Deletion and insertion curves (Petsiuk et al., "RISE", BMVC 2018, sec. 3.2 / 4).

The map's cells are ranked, most important first, and removed from the model input in ``steps`` equal steps
(deletion) or added back onto a canvas (insertion); after each step the model scores the perturbed input.

- Cells: a map on a ``gh x gw`` grid (a ViT's patch grid, a ResNet stage's grid) covers the whole image, which the
  model sees resized to its ``S x S`` input without a crop (``models/transform.py``), so cell ``(r, c)`` is the
  set of input pixels whose centre lies in ``[c / gw, (c + 1) / gw) x [r / gh, (r + 1) / gh)`` (the
  ``metrics.raster`` convention): exactly a patch of a ViT whose side divides ``S``.
- Order: descending map value; cells of equal value follow a seeded random permutation, the one the random
  baseline uses, so a flat map scores as the random order.
- Step ``i`` (``0..steps``) has the first ``round(i * n / steps)`` of the ``n`` cells removed (``fractions`` is
  that count over ``n``). Removing replaces a cell's pixels by the canvas: ``mode="blur"``, the input blurred with
  a Gaussian (RISE's ``gkern(11, 5)``: kernel 11, sigma 5 px at 224 px, scaled with ``S``, normalised to sum 1;
  mirror padding) or ``mode="mean"``, the input's mean colour. Insertion starts from the canvas and adds the
  input's cells back.
- Score: for a classifier (``spec.classifier``) the softmax probability of ``target`` (default: the intact
  input's top-1 class); otherwise the cosine similarity of the pooled image embedding to that of the intact input
  (timm ``forward_head(forward_features(x), pre_logits=True)``: the CLS token, SigLIP's attention-pooled output,
  ResNet's global average pool; the final CLS token where timm pools by the patch mean, as ``models/vit.py``).
- Areas: trapezoidal AUC over ``fractions`` in [0, 1]. ``abpc = auc_insertion - auc_deletion`` (the difference
  the Attention-Guided CAM paper, Leem & Seo, AAAI 2024, reports as ABPC next to insertion and deletion; higher is
  better: removing the map's top cells hurts, adding them back helps). Deletion: lower is better; insertion:
  higher is better.
- A random order (``seed``) gives the baseline curves ``random_deletion`` / ``random_insertion``.

Forward passes: the intact input and the canvas (one each), then the ``steps - 1`` inner steps of the deletion and
insertion curves of the map's order and of the random order, ``batch_size`` at a time: ``4 * steps - 2`` passes
(78 at 20 steps), one batch per order at the defaults. Maps of the same image in one ``evaluate_batch`` call share
the intact, canvas and random-order passes, so each further map costs ``2 * (steps - 1)`` passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .models.model import Model

MODES = ("blur", "mean")
BLUR_SIGMA = 5.0  # RISE's gkern(klen=11, nsig=5) at 224 px ...
BLUR_RADIUS = 5  # ... kernel 2 * 5 + 1 = 11; both scale with the input side S / 224
STEPS = 20
BATCH_SIZE = 42


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves of one map, and of a random order of the same cells."""

    fractions: np.ndarray  # [steps + 1] share of the cells removed (deletion) or inserted (insertion)
    deletion: np.ndarray  # [steps + 1] score with the map's top cells removed; lower area is better
    insertion: np.ndarray  # [steps + 1] score with the map's top cells inserted on the canvas; higher is better
    random_deletion: np.ndarray  # [steps + 1] the same with a random cell order (seeded)
    random_insertion: np.ndarray  # [steps + 1]
    auc_deletion: float  # trapezoidal area under ``deletion`` over ``fractions``
    auc_insertion: float
    abpc: float  # auc_insertion - auc_deletion (AG-CAM's ABPC)
    auc_random_deletion: float
    auc_random_insertion: float
    score: str  # "probability" (of class ``target``) or "cosine" (of the pooled embedding to the intact one)
    target: int | None  # the explained class (classifiers), else None
    mode: str  # "blur" or "mean"

    def as_dict(self) -> dict[str, object]:
        """Plain Python values (curves as lists of floats), e.g. one row of a ``faithfulness`` table or JSON."""
        return {
            k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in self.__dict__.items()
        }  # dataclass field order


def step_counts(n: int, steps: int) -> np.ndarray:
    """``[steps + 1]`` cells removed after each step: ``round(i * n / steps)`` (half up), from 0 to ``n``."""
    return np.floor(np.arange(steps + 1) * n / steps + 0.5).astype(np.int64)


def cell_index(grid: tuple[int, int], size: int) -> np.ndarray:
    """``[S, S]`` the map cell of each input pixel: the cell holding the pixel's centre (row-major index)."""
    gh, gw = grid
    rows = np.floor((np.arange(size) + 0.5) * gh / size).astype(np.int64)  # [S]
    cols = np.floor((np.arange(size) + 0.5) * gw / size).astype(np.int64)  # [S]
    return rows[:, None] * gw + cols[None, :]  # [S, S]


def cell_order(saliency: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(map order, random order)`` of the ``gh * gw`` cells; map ties follow the random order."""
    values = saliency.reshape(-1).astype(np.float64)  # [n]
    random = np.random.default_rng(seed).permutation(values.size)  # [n]
    position = np.empty(values.size, dtype=np.int64)
    position[random] = np.arange(values.size)  # where each cell sits in the random order
    return np.lexsort((position, -values)), random  # descending value, ties by random position


def _check(saliency: np.ndarray, steps: int, mode: str) -> np.ndarray:
    m = np.asarray(saliency)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"saliency must be a non-empty 2-D [gh, gw] map, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("saliency has NaN or infinite values")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return m


def blur(x: torch.Tensor) -> torch.Tensor:
    """RISE's Gaussian blur of ``(B, 3, S, S)`` inputs: sigma 5 px, kernel 11 at S = 224 (scaled with S)."""
    scale = x.shape[-1] / 224.0
    sigma, radius = BLUR_SIGMA * scale, max(1, round(BLUR_RADIUS * scale))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)  # reflect padding needs radius < side
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)  # [k]
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()  # [k]
    c = x.shape[1]
    padded = F.pad(x, (radius, radius, radius, radius), mode="reflect")  # (B, 3, S + 2r, S + 2r)
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # (B, 3, S + 2r, S)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # (B, 3, S, S)


def canvas_of(x: torch.Tensor, mode: str) -> torch.Tensor:
    """What removed cells become: the blurred input or its mean colour, ``(1, 3, S, S)`` for ``x`` ``(1, 3, S, S)``."""
    if mode == "blur":
        return blur(x)
    return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()  # (1, 3, S, S)


def _embedding(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The pooled image embedding ``(B, D)`` (see the module docstring)."""
    tokens = module.forward_features(x)  # (B, T, D) for a ViT, (B, C, h, w) for a ResNet
    cls_but_mean_pool = (
        tokens.ndim == 3
        and getattr(module, "cls_token", None) is not None
        and getattr(module, "global_pool", "token") not in ("token", "map")
    )
    if cls_but_mean_pool:
        return tokens[:, 0]  # (B, D) DINOv3's final normalized CLS token
    return module.forward_head(tokens, pre_logits=True)  # (B, D)


class _Scorer:
    """Scores inputs against the intact one: class probability (classifiers) or embedding cosine similarity."""

    def __init__(self, model: Model, intact: torch.Tensor, target: int | None, batch_size: int):
        self.model, self.batch_size = model, batch_size
        self.classifier = bool(model.spec.classifier)
        if not self.classifier and target is not None:
            raise ValueError(f"model {model.spec.name!r} is not a classifier; target must be None")
        if self.classifier and target is not None and not (isinstance(target, int | np.integer) and target >= 0):
            raise ValueError(f"target must be a class index >= 0, got {target!r}")
        out = self._forward(intact)  # (1, C) logits or (1, D) embedding
        if self.classifier:
            self.target = int(out.argmax(-1)) if target is None else int(target)
            if self.target >= out.shape[-1]:
                raise ValueError(f"target {self.target} is not a class of this model ({out.shape[-1]} classes)")
        else:
            self.target, self.reference = None, out  # (1, D)
        self.intact = float(self._scores(out)[0])  # the intact input's own score (cosine: 1)

    @torch.no_grad()
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        module = self.model.module
        return module(x) if self.classifier else _embedding(module, x)

    def __call__(self, inputs: torch.Tensor) -> np.ndarray:
        """``[K]`` scores of ``(K, 3, S, S)`` inputs, ``batch_size`` at a time."""
        scores = [self._scores(self._forward(chunk.to(self.model.device))) for chunk in inputs.split(self.batch_size)]
        return np.concatenate(scores)

    def _scores(self, out: torch.Tensor) -> np.ndarray:
        """``[b]`` scores of ``(b, C)`` logits (target probability) or ``(b, D)`` embeddings (cosine similarity)."""
        if self.classifier:
            score = out.float().softmax(-1)[:, self.target]  # (b,)
        else:
            score = F.cosine_similarity(out.float(), self.reference.float(), dim=-1)  # (b,)
        return score.cpu().numpy().astype(np.float64)


def _curve_inputs(x, canvas, cells, order, counts, insert: bool) -> torch.Tensor:
    """``(steps - 1, 3, S, S)`` inputs of the inner steps: the first ``counts[i]`` cells of ``order`` swapped."""
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)  # [n] position of each cell in the order
    pixel_rank = torch.from_numpy(rank[cells])  # (S, S) position of each pixel's cell
    k = torch.from_numpy(counts[1:-1])  # (steps - 1,)
    swapped = (pixel_rank[None] < k[:, None, None])[:, None].to(x.dtype)  # (steps - 1, 1, S, S)
    src, dst = (canvas, x) if insert else (x, canvas)  # insertion: canvas with the cells of x
    return src * (1 - swapped) + dst * swapped  # (steps - 1, 3, S, S)


def _auc(curve: np.ndarray, fractions: np.ndarray) -> float:
    return float(np.trapezoid(curve, fractions))


class _Image:
    """The intact input, its canvas and scorer, and the random-order curves of one grid (shared across maps)."""

    def __init__(self, model: Model, image: Image.Image, mode: str, target: int | None, batch_size: int):
        self.x = model.transform(image)[None]  # (1, 3, S, S)
        self.canvas = canvas_of(self.x, mode)  # (1, 3, S, S)
        self.scorer = _Scorer(model, self.x.to(model.device), target, batch_size)
        self.ends = (self.scorer.intact, float(self.scorer(self.canvas)[0]))  # intact, canvas
        self.random: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def curves(self, cells, order, counts) -> tuple[np.ndarray, np.ndarray]:
        """Deletion and insertion curves ``[steps + 1]`` of one cell order."""
        inner = torch.cat(
            [_curve_inputs(self.x, self.canvas, cells, order, counts, insert) for insert in (False, True)]
        )
        scores = self.scorer(inner) if len(inner) else np.zeros(0)
        n = len(counts) - 2
        intact, canvas = self.ends
        deletion = np.concatenate([[intact], scores[:n], [canvas]])
        insertion = np.concatenate([[canvas], scores[n:], [intact]])
        return deletion, insertion


def _evaluate(prepared: _Image, saliency: np.ndarray, steps: int, mode: str, seed: int) -> Faithfulness:
    size = prepared.x.shape[-1]
    cells = cell_index(saliency.shape, size)  # (S, S)
    counts = step_counts(saliency.size, steps)
    fractions = counts / saliency.size
    order, random = cell_order(saliency, seed)
    key = (saliency.shape, steps, seed)
    if key not in prepared.random:
        prepared.random[key] = prepared.curves(cells, random, counts)
    deletion, insertion = prepared.curves(cells, order, counts)
    random_deletion, random_insertion = prepared.random[key]
    auc_del, auc_ins = _auc(deletion, fractions), _auc(insertion, fractions)
    return Faithfulness(
        fractions=fractions,
        deletion=deletion,
        insertion=insertion,
        random_deletion=random_deletion,
        random_insertion=random_insertion,
        auc_deletion=auc_del,
        auc_insertion=auc_ins,
        abpc=auc_ins - auc_del,
        auc_random_deletion=_auc(random_deletion, fractions),
        auc_random_insertion=_auc(random_insertion, fractions),
        score="probability" if prepared.scorer.classifier else "cosine",
        target=prepared.scorer.target,
        mode=mode,
    )


def evaluate_batch(
    model: Model,
    images: Sequence[Image.Image],
    saliencies: Sequence[np.ndarray],
    *,
    steps: int = STEPS,
    mode: str = "blur",
    targets: Sequence[int | None] | int | None = None,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
) -> list[Faithfulness]:
    """``evaluate`` for each (image, map) pair; pairs with the same image object share its intact, canvas and
    random-order passes (pass one PIL image several times to score several maps of it).

    Args:
        model: a loaded ``vitattn.Model``.
        images: PIL images (any mode and size).
        saliencies: one ``[gh, gw]`` map per image, on the model's patch grid (or a ResNet stage's grid).
        steps: steps from nothing to everything removed.
        mode: ``"blur"`` or ``"mean"``: what a removed cell becomes.
        targets: class to score per pair, or one for all (classifiers only; default: each image's top-1).
        seed: seed of the random order (and of the tie-break between equal map values).
        batch_size: inputs per forward pass.
    """
    if len(images) != len(saliencies):
        raise ValueError(f"got {len(images)} images for {len(saliencies)} saliency maps")
    per_pair = list(targets) if isinstance(targets, Sequence) else [targets] * len(images)
    if len(per_pair) != len(images):
        raise ValueError(f"got {len(per_pair)} targets for {len(images)} images")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    maps = [_check(s, steps, mode) for s in saliencies]
    prepared: dict[tuple[int, int | None], _Image] = {}
    out = []
    for image, saliency, target in zip(images, maps, per_pair, strict=True):
        if not isinstance(image, Image.Image):
            raise ValueError(f"images must be PIL images, got {type(image).__name__}")
        key = (id(image), target)
        if key not in prepared:
            prepared[key] = _Image(model, image, mode, target, batch_size)
        out.append(_evaluate(prepared[key], saliency, steps, mode, seed))
    return out


def evaluate(
    model: Model,
    image: Image.Image,
    saliency: np.ndarray,
    *,
    steps: int = STEPS,
    mode: str = "blur",
    target: int | None = None,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
) -> Faithfulness:
    """Deletion and insertion curves of one map of one image (see the module docstring).

    Args:
        model: a loaded ``vitattn.Model``.
        image: PIL image (any mode and size).
        saliency: ``[gh, gw]`` map on the model's patch grid (or a ResNet stage's grid), covering the whole image.
        steps: steps from nothing to everything removed (RISE: 20 here).
        mode: ``"blur"`` or ``"mean"``: what a removed cell becomes.
        target: class to score (classifiers only; default: the intact image's top-1).
        seed: seed of the random order (and of the tie-break between equal map values).
        batch_size: inputs per forward pass (``4 * steps - 2`` inputs per map).

    Returns:
        ``Faithfulness``.
    """
    return evaluate_batch(
        model, [image], [saliency], steps=steps, mode=mode, targets=[target], seed=seed, batch_size=batch_size
    )[0]
