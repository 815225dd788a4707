"""Cost of the continuous metrics and of faithfulness, and what they add to the precompute of one image.

    python -m bench.metrics [--model vit] [--maps 128] [--repeats 5] [--device cpu] [--small-only] [--scoring-only]

1. Metrics per map: ``score_batch`` (every column) against its continuous part alone (``mse``, ``kl``, ``emd``:
   min-max normalisation, soft ground truth, exact 8x8 transport by POT), on ``--maps`` random 14x14 maps at R = 224,
   run side by side; the batched scorer beside ``score_batch``; then each of the three alone, and
   ``baseline_metrics`` (five baselines, 20 random seeds).
2. Faithfulness per map: ``evaluate`` (20 steps, blur) of one map with a small ViT and the full-size ViT-B, in
   forward passes per second (``4 * steps - 2`` passes per map: intact, canvas, 19 inner steps of four curves).
3. One image as the precompute job does it with the full-size model, side by side in one run: ``analyze`` (the
   attention methods, then every method), scoring every map of it (every method, layer and head) with the batched
   scorer the job uses (``vitattn.metrics.batched.score_maps`` on ``--device``) and with the numpy reference
   (``score_batch``, in batches of 128 like the writer), and faithfulness of the fused last-layer map of each
   method (``--faithfulness-layers`` default; the random-order curves are shared).
Random weights: speed does not depend on the values.
"""

from __future__ import annotations

import statistics

import numpy as np
import torch
from PIL import Image

import vitattn
from bench.common import median, once, parser, side_by_side
from vitattn.faithfulness import evaluate, evaluate_batch
from vitattn.metrics import baseline_metrics, score_batch, soft_ground_truth
from vitattn.metrics.batched import score_maps
from vitattn.metrics.continuous import map_emd, map_kl, map_mse, normalize_maps
from vitattn.metrics.raster import upsample
from vitattn.specs import ATTENTION_METHODS
from vitattn.store.writer import SCORE_BATCH, map_rows

BOXES = [(0.1, 0.2, 0.45, 0.8), (0.55, 0.1, 0.9, 0.5), (0.3, 0.6, 0.7, 0.95)]


def metrics_per_map(n_maps: int, repeats: int, device: str) -> None:
    rng = np.random.default_rng(0)
    maps = rng.random((n_maps, 14, 14)).astype(np.float32)
    up = upsample(maps, 224)  # [N, 224, 224]
    gt = soft_ground_truth(BOXES, 224)

    def continuous() -> None:
        m = normalize_maps(up)
        map_mse(m, gt), map_kl(gt, m), map_emd(m, gt)

    t_all, t_cont = side_by_side(lambda: score_batch(maps, BOXES, 224), continuous, repeats)
    ms = 1000 / n_maps
    print(f"metrics of {n_maps} maps (14x14 -> R = 224, {len(BOXES)} boxes), per map:")
    print(
        f"  score_batch (every column) {t_all * ms:6.2f} ms | continuous part alone {t_cont * ms:6.2f} ms | "
        f"others {(t_all - t_cont) * ms:6.2f} ms | continuous share {t_cont / t_all:.2f}"
    )

    def batched() -> None:
        score_maps(maps, BOXES, 224, device=device)

    t_bat, t_ref = side_by_side(batched, lambda: score_batch(maps, BOXES, 224), repeats)
    print(f"  batched score_maps ({device}) {t_bat * ms:6.2f} ms | numpy score_batch {t_ref * ms:6.2f} ms")
    norm = normalize_maps(up)
    for name, fn in (
        ("normalise", lambda: normalize_maps(up)),
        ("mse", lambda: map_mse(norm, gt)),
        ("kl", lambda: map_kl(gt, norm)),
        ("emd (POT)", lambda: map_emd(norm, gt)),
    ):
        print(f"  {name:14s} {median(fn, repeats) * ms:6.2f} ms per map")
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    t_base = median(lambda: baseline_metrics(BOXES, image, grid=(14, 14)), repeats)
    print(f"  baseline_metrics (5 baselines, random over 20 seeds, every metric) {t_base * 1000:.1f} ms per image")


def faithfulness_per_map(model: vitattn.Model, image: Image.Image, label: str, repeats: int) -> float:
    saliency = model.analyze(image, methods=["mean"], features=False).map("mean")
    steps = 20
    t = median(lambda: evaluate(model, image, saliency, steps=steps), repeats)
    passes = 4 * steps - 2
    print(
        f"faithfulness, {label} (grid {saliency.shape}, input {model.spec.img_size} px): "
        f"{t * 1000:8.1f} ms per map, {passes} passes, {passes / t:7.1f} passes/s"
    )
    return t


def scoring_against_analyze(model: vitattn.Model, image: Image.Image, methods: list[str], repeats: int) -> None:
    """``analyze`` of one image beside scoring all its maps: batched (the job's) and numpy, alternately."""
    analysis = model.analyze(image, methods=methods)
    maps = np.stack([r[3] for r in map_rows(analysis)]).astype(np.float32)  # [M, gh, gw] float16 as stored
    device = str(model.device)

    def batched() -> None:
        for start in range(0, len(maps), SCORE_BATCH):
            score_maps(maps[start : start + SCORE_BATCH], BOXES, 224, device=device)

    def reference() -> None:
        for start in range(0, len(maps), SCORE_BATCH):
            score_batch(maps[start : start + SCORE_BATCH], BOXES, 224)

    def forward() -> None:
        model.analyze(image, methods=methods)
        if model.device.type == "cuda":
            torch.cuda.synchronize()

    forward(), batched(), reference()  # warm-up
    times = [(once(forward), once(batched), once(reference)) for _ in range(repeats)]
    t_fwd, t_bat, t_ref = (statistics.median(t[i] for t in times) for i in range(3))
    print(f"one image, {model.spec.name}, methods {','.join(methods)}: {len(maps)} maps, median of {repeats}")
    print(
        f"  analyze {t_fwd * 1000:.0f} ms | scoring every map: batched ({device}) {t_bat * 1000:.0f} ms "
        f"({t_bat / len(maps) * 1000:.2f} ms per map, {t_bat / t_fwd:.2f}x analyze) | numpy reference "
        f"{t_ref * 1000:.0f} ms ({t_ref / len(maps) * 1000:.2f} ms per map, {t_ref / t_fwd:.2f}x analyze)"
    )


def precompute_one_image(model: vitattn.Model, image: Image.Image, repeats: int) -> None:
    methods = [m for m in model.spec.methods if m in ATTENTION_METHODS]
    scoring_against_analyze(model, image, methods, max(3, repeats))
    scoring_against_analyze(model, image, list(model.spec.methods), max(3, repeats))
    analysis = model.analyze(image, methods=methods)
    rows = map_rows(analysis)
    maps = np.stack([r[3] for r in rows]).astype(np.float32)  # [M, gh, gw]

    gt = soft_ground_truth(BOXES, 224)

    def score_all() -> None:  # as the writer does: score_batch, SCORE_BATCH maps at a time
        for start in range(0, len(maps), SCORE_BATCH):
            score_batch(maps[start : start + SCORE_BATCH], BOXES, 224)

    def continuous_only() -> None:  # the part of score_all that mse, kl and emd add
        for start in range(0, len(maps), SCORE_BATCH):
            m = normalize_maps(upsample(maps[start : start + SCORE_BATCH], 224))
            map_mse(m, gt), map_kl(gt, m), map_emd(m, gt)

    t_analyze = median(lambda: model.analyze(image, methods=methods), repeats)
    t_score, t_cont = side_by_side(score_all, continuous_only, max(3, repeats))
    fused = [analysis.map(m) for m in methods]
    t_faith = median(lambda: evaluate_batch(model, [image] * len(fused), fused), max(1, repeats // 2))
    print(f"precompute of one image, {model.spec.name}, methods {methods}: {len(rows)} maps")
    print(
        f"  analyze {t_analyze * 1000:.0f} ms | scoring every map (every column) {t_score * 1000:.0f} ms, of which "
        f"the continuous metrics alone take {t_cont * 1000:.0f} ms ({t_cont / t_score:.0%})"
    )
    print(
        f"  faithfulness of the {len(fused)} fused last-layer maps {t_faith * 1000:.0f} ms "
        f"({t_faith / t_analyze:.1f}x analyze, {t_faith / (t_analyze + t_score):.2f}x analyze + scoring)"
    )


def main() -> None:
    p = parser(__doc__, model="vit", repeats=5)
    p.add_argument("--maps", type=int, default=128)
    p.add_argument("--small-only", action="store_true", help="skip the full-size model")
    p.add_argument("--skip-metrics", action="store_true", help="faithfulness and precompute only")
    p.add_argument("--scoring-only", action="store_true", help="only part 3's analyze against scoring, full size")
    args = p.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"torch threads {torch.get_num_threads()}, device {device}")
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    torch.manual_seed(0)
    if args.scoring_only:
        full = vitattn.load_model(args.model, pretrained=False, device=device)
        scoring_against_analyze(full, image, [m for m in full.spec.methods if m in ATTENTION_METHODS], args.repeats)
        scoring_against_analyze(full, image, list(full.spec.methods), args.repeats)
        return
    if not args.skip_metrics:
        metrics_per_map(args.maps, args.repeats, device)
    small = vitattn.load_model(args.model, pretrained=False, device=device, depth=2, embed_dim=64, num_heads=4)
    t_small = faithfulness_per_map(small, image, f"small {args.model} (depth 2, dim 64)", args.repeats)
    if args.small_only:
        return
    full = vitattn.load_model(args.model, pretrained=False, device=device)
    t_full = faithfulness_per_map(
        full, image, f"full-size {args.model} ({full.spec.timm_id})", max(1, args.repeats // 2)
    )
    print(f"  full-size / small: {t_full / t_small:.1f}x")
    precompute_one_image(full, image, max(1, args.repeats // 2))


if __name__ == "__main__":
    main()
