"""Cost of the trust checks on full-size random-weight models: attention flow per image and layer, and one
model-parameter randomisation curve.

    python -m bench.trust [--models vit,vit32] [--layers -1] [--threads 1]

Random weights: the cost of a max-flow depends on the capacities, so figures on trained weights may differ (the
graph has the same size). One image, CPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

import vitattn
from vitattn.sanity import model_randomization


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.trust")
    p.add_argument("--models", default="vit,vit32")
    p.add_argument("--layers", default="-1", help="comma-separated flow layers (default: the last)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the max-flow itself is single-threaded)")
    p.add_argument("--sanity", action="store_true", help="also time one top-down randomisation curve of rollout")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8))
    layers = [int(x) for x in args.layers.split(",")]
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = vitattn.load_model(name, pretrained=False, device="cpu")
        t0 = time.perf_counter()
        model.analyze(image, methods=["rollout"], features=False)
        base = time.perf_counter() - t0
        for layer in layers:
            t0 = time.perf_counter()
            model.analyze(image, methods=["flow"], flow_layers=[layer], features=False)
            cost = time.perf_counter() - t0
            patches = model.spec.grid[0] * model.spec.grid[1]
            each = 1000 * cost / patches
            print(f"{name}: flow at layer {layer % model.spec.num_layers}: {cost:.2f} s per image "
                  f"({patches} max-flows, {each:.1f} ms each); rollout (all layers) {base:.2f} s")  # fmt: skip
        if args.sanity:
            t0 = time.perf_counter()
            rows = model_randomization(model, image, "rollout")
            print(f"{name}: top-down randomisation of rollout, {len(rows)} steps: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
