"""Cost of `analyze` against a plain inference forward of the same ViT-B, measured side by side.

    python -m bench.engine [--model vit] [--batch 8] [--repeats 5] [--device cpu]

"plain" is the model as timm ships it for inference (fused SDPA attention, no hooks, no_grad); "analyze" captures
every layer's attention, computes cls/mean/rollout (and pool) for all layers and heads, and keeps every layer's
patch features, as numpy. Then `gae` alone (one forward and one backward) against the plain forward, the cost of the
per-head statistics (`stats=True`) and of PCA feature pictures per image. Random weights: speed does not depend on
the values.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import torch
from PIL import Image

import vitattn
from bench.common import parser, side_by_side
from vitattn.headstats import head_stats
from vitattn.pca import joint_pca, pca_rgb
from vitattn.specs import ATTENTION_METHODS


def main() -> None:
    p = parser(__doc__, model="vit", repeats=5)
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args()

    torch.manual_seed(0)
    model = vitattn.load_model(args.model, pretrained=False, device=args.device)
    plain = copy.deepcopy(model.module)
    for m in plain.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = True
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) for _ in range(args.batch)]
    methods = [m for m in model.spec.methods if m in ATTENTION_METHODS]

    def run_plain(n: int) -> None:
        x = torch.stack([model.transform(im) for im in images[:n]]).to(model.device)
        with torch.no_grad():
            plain(x)

    def run_analyze(n: int) -> None:
        model.analyze(images[:n], methods=methods, features=True, batch_size=n)

    print(f"model {args.model} ({model.spec.timm_id}), device {model.device}, torch threads {torch.get_num_threads()}")
    print(f"load average (1, 5, 15 min) at the start: {os.getloadavg()}")
    print(f"methods {methods}, {model.spec.num_layers} layers x {model.spec.num_heads} heads, features of every layer")
    for n in (1, args.batch):
        t_plain, t_analyze = side_by_side(lambda n=n: run_plain(n), lambda n=n: run_analyze(n), args.repeats)
        print(
            f"batch {n:2d}: plain forward {t_plain * 1000:8.1f} ms ({n / t_plain:6.1f} img/s) | "
            f"analyze {t_analyze * 1000:8.1f} ms ({n / t_analyze:6.1f} img/s) | ratio {t_analyze / t_plain:.2f}"
        )
    if "agcam" in model.spec.methods:
        t_plain, t_all = side_by_side(
            lambda: run_plain(args.batch),
            lambda: model.analyze(images, methods=[*methods, "agcam"], batch_size=args.batch),
            args.repeats,
        )
        print(f"batch {args.batch:2d}: {methods} + agcam (one backward) ratio {t_all / t_plain:.2f}")
    if "gae" in model.spec.methods:
        t_plain, t_gae = side_by_side(
            lambda: run_plain(args.batch),
            lambda: model.analyze(images, methods=["gae"], batch_size=args.batch),
            args.repeats,
        )
        print(
            f"batch {args.batch:2d}: plain forward {t_plain * 1000:8.1f} ms | analyze gae (forward + backward, "
            f"features) {t_gae * 1000:8.1f} ms | ratio {t_gae / t_plain:.2f}"
        )
    statistics_and_pca(model, plain, images, args.repeats)
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")


def statistics_and_pca(model: vitattn.Model, plain, images: list[Image.Image], repeats: int) -> None:
    """Per image, each against a plain forward of the same images run alternately: the head statistics (on a
    captured trace, what ``stats=True`` adds to analyze) and PCA pictures of the last layer's features."""
    n = len(images)
    x = torch.stack([model.transform(im) for im in images]).to(model.device)
    with torch.no_grad():
        trace = model.adapter.trace(x)
    feats = [f.cpu().numpy() for f in trace.features[-1]]  # per image (P, D)
    grid = trace.grids[-1]

    def forward(k: int) -> None:
        with torch.no_grad():
            plain(x[:k])

    runs = [
        (
            f"head statistics, {model.spec.num_layers} layers x {model.spec.num_heads} heads",
            n,
            lambda: head_stats(trace, model.spec.patch_size),
        ),
        ("PCA pca_rgb, one image", 1, lambda: pca_rgb(feats[0], grid)),
        ("PCA pca_rgb, background='auto'", 1, lambda: pca_rgb(feats[0], grid, background="auto")),
        (f"PCA joint_pca of {n} images", n, lambda: joint_pca(feats, [grid] * n)),
    ]
    for label, k, run in runs:
        t_plain, t = side_by_side(lambda k=k: forward(k), run, repeats)
        print(
            f"{label}: {t / k * 1000:7.1f} ms per image | plain forward {t_plain / k * 1000:7.1f} ms per image "
            f"| ratio {t / t_plain:.3f}"
        )


if __name__ == "__main__":
    main()
