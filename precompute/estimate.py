"""What a run will cost, said in one line before it starts, with the flag that changes it the most.

The cost is counted in forward passes of each model (``analyze``: one, plus about two per gradient method for the
backward pass; faithfulness: ``4 * steps - 2`` passes per map, the dominant term on a CPU) and maps to score, then
turned into seconds with the forward's FLOPs (``vit_flops``, ResNet-50's 4.1 GMACs) over this device's measured
matrix-multiply rate (``device_rate``: one timed 1024^3 matmul) at ``FORWARD_EFFICIENCY``, plus ``SCORE_SECONDS``
per map. An estimate: the progress bar then shows the real images per second and the time left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from precompute.config import Config, parse_layers
from precompute.unit import FAITHFULNESS_STEPS
from vitattn.specs import GRADIENT_METHODS, get_spec

HEADED = ("cls", "mean", "pool", "agcam")  # methods with a map per head beside the fused one
LAST_LAYER_ONLY = ("pool",)  # methods read at the last layer only
FAITHFULNESS_PASSES = 4 * FAITHFULNESS_STEPS - 2  # per map: intact, canvas, 19 inner steps of four curves
SHARED_PASSES = 230 / 390  # evaluate_batch shares an image's intact and random-order passes: 230 forwards for
# ViT-B's 5 fused maps instead of 5 * 78 (README, precompute benchmark)
FORWARD_EFFICIENCY = 0.6  # share of the 1024^3 matmul rate a forward reaches (CPU: dinov2's analyze on 7 images)
SCORE_SECONDS = {"cpu": 1.5e-3, "cuda": 2e-4}  # per map (bench.metrics; the EMD's host work sets the GPU figure)


@dataclass(frozen=True)
class Cost:
    """The work of one model on one image."""

    maps: int  # maps scored
    passes: float  # forward-pass equivalents of analyze
    faithfulness_maps: int  # fused maps with deletion / insertion curves
    flops: float  # of one forward pass

    @property
    def faithfulness_passes(self) -> int:
        return self.faithfulness_maps * FAITHFULNESS_PASSES


def vit_flops(spec, overrides: dict) -> float:
    """Forward FLOPs of one image (a multiply-add counts 2): per block 24 N D^2 (qkv, projection, 4x MLP) and
    4 N^2 D (scores and weighted sum); the patch embedding 2 N D (3 p^2)."""
    depth = overrides.get("depth", spec.num_layers)
    d = overrides.get("embed_dim", 768)
    p = spec.patch_size
    n = (overrides.get("img_size", spec.img_size) // p) ** 2 + spec.num_prefix_tokens
    return depth * (24 * n * d * d + 4 * n * n * d) + 2 * n * d * 3 * p * p


def model_cost(config: Config, name: str) -> Cost:
    """Maps, forward passes and faithfulness maps of one model on one image, from its spec and the run's options."""
    spec = get_spec(name)
    overrides = dict(config.overrides.get(name, {}))
    layers = config.num_layers(name)
    methods = config.methods_of(name)
    heads = overrides.get("num_heads", spec.num_heads)
    maps = sum(
        (1 if m in LAST_LAYER_ONLY else layers) * (1 + (heads if m in HEADED and spec.family == "vit" else 0))
        for m in methods
    )
    passes = 1 + 2 * sum(m in GRADIENT_METHODS for m in methods)
    faithful = len(methods) * len(parse_layers(config.faithfulness_layers, layers))
    if spec.family == "vit":
        flops = vit_flops(spec, overrides)
    else:
        flops = 8.2e9 * (overrides.get("img_size", spec.img_size) / 224) ** 2  # ResNet-50: 4.1 GMACs at 224
    return Cost(maps=maps, passes=passes, faithfulness_maps=faithful, flops=flops)


def device_rate(device: str) -> float:
    """Measured float32 matrix-multiply FLOP/s of ``device``: the best of three warm 1024^3 products (0.1 s on a
    CPU)."""
    import torch

    a = torch.randn(1024, 1024, device=device)
    (a @ a).sum().item()  # warm-up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        (a @ a).sum().item()
        best = min(best, time.perf_counter() - start)
    return 2 * 1024**3 / max(best, 1e-9)


def seconds(cost: Cost, images: int, rate: float, device_type: str, *, faithfulness: bool = True) -> float:
    """Estimated seconds of one model on ``images`` images."""
    passes = cost.passes + (cost.faithfulness_passes * SHARED_PASSES if faithfulness else 0)
    per_image = passes * cost.flops / (rate * FORWARD_EFFICIENCY)
    per_image += cost.maps * SCORE_SECONDS.get(device_type, SCORE_SECONDS["cpu"])
    return images * per_image


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"


def describe(config: Config, images: dict[str, int], device: str, rate: float) -> str:
    """The one line: images, models, maps, forward passes and time on this device; how to change the big term.

    Args:
        config: the run.
        images: model name -> images it still has to compute.
        device: the device the models run on ("cpu", "cuda", "cuda:1", ...).
        rate: ``device_rate(device)``.
    """
    kind = device.split(":")[0]
    costs = {m: model_cost(config, m) for m in images}
    total = sum(seconds(costs[m], n, rate, kind) for m, n in images.items())
    maps = sum(costs[m].maps * n for m, n in images.items())
    passes = sum(costs[m].faithfulness_passes * n for m, n in images.items())
    n, plural = max(images.values(), default=0), "s" if len(images) > 1 else ""
    head = f"precompute: {n} images x {len(images)} model{plural} ({', '.join(images)}) on {device}: {maps:,} maps, "
    head += f"about {_duration(total)}"
    if passes:
        without = sum(seconds(costs[m], n, rate, kind, faithfulness=False) for m, n in images.items())
        return (
            f"{head}, of which faithfulness ({passes:,} forward passes, {FAITHFULNESS_PASSES} per map) takes about "
            f"{_duration(total - without)}: --faithfulness-layers none skips it"
        )
    probe = replace(config, faithfulness_layers="-1")
    extra = sum(
        seconds(model_cost(probe, m), n, rate, kind) - seconds(costs[m], n, rate, kind) for m, n in images.items()
    )
    why = "off (the default on a CPU)" if kind == "cpu" else "off"
    return (
        f"{head}; faithfulness {why}: --faithfulness-layers -1 turns it on at the last layer (deletion / insertion "
        f"curves, {FAITHFULNESS_PASSES} forward passes per map: about {_duration(extra)} more here)"
    )


def sanity_clause(config: Config, images: dict[str, int], device: str, rate: float) -> str:
    """What the randomisation curves add: each is one analyze of the intact model and one per stage (vitattn.sanity's
    stages: the blocks, head, norm and patch embedding of a ViT; a ResNet's stages, fc and stem) for each method on
    each of the set's first ``sanity_images`` images."""
    if not config.sanity_images:
        why = " (the default on a CPU)" if device.startswith("cpu") else ""
        return f"; sanity curves off{why}: --sanity-images 8 adds them on the first 8 images"
    total = 0.0
    for m, n in images.items():
        cost, spec = model_cost(config, m), get_spec(m)
        stages = config.num_layers(m) + (3 if spec.family == "vit" else 2)  # + head, norm, patch_embed / fc, stem
        curves = min(n, config.sanity_images) * len(config.methods_of(m))
        total += curves * (stages + 1) * cost.passes * cost.flops / (rate * FORWARD_EFFICIENCY)
    n = config.sanity_images
    return f"; sanity curves on the first {n} images about {_duration(total)}: --sanity-images 0 skips them"


def cost_line(config: Config, todo) -> str | None:
    """``describe`` for the model units still to do (None when there are none)."""
    images: dict[str, int] = {}
    for unit in todo:
        if unit.model is not None:
            images[unit.model] = images.get(unit.model, 0) + len(unit.ids)
    if not images:
        return None
    device = config.resolved_device()
    rate = device_rate(device)
    return describe(config, images, device, rate) + sanity_clause(config, images, device, rate)
