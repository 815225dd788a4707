"""Stored feature precision: the error float16 and int8 (one scale per token) add to feature similarity maps, and
the bytes per image they take, measured side by side on the bundled images.

    python -m bench.quantize [--models dinov2,clip,vit,resnet50] [--layers -1] [--outliers 0] [--pretrained]

For each model (full-size architecture, random weights: no download here) and each image, the patch features of a
layer are stored and read back as each dtype (``vitattn/store/quantize.py``, the code the store uses). The similarity
map of a query patch is the cosine similarity of every patch to it (``similarity.cosine_to_mean`` with one cell
selected, the app's point query); all N query patches are compared, as the full N x N cosine matrix:

- max |d cos| and mean |d cos|: over all entries, against the float32 features;
- Spearman rho: rank correlation of each query's similarity map with its float32 map (min and mean over queries);
- bytes per image and layer: the features table as the store writes it (Parquet, zstd), per image.

``--outliers K`` multiplies K random channels of every token by 50 before storing: the few huge channels of some
pretrained ViTs (high-norm outlier features; Darcet et al. 2023, "Vision Transformers Need Registers") that random
weights lack, which is where a per-token int8 scale loses the most precision.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import pyarrow.parquet as pq
from scipy.stats import rankdata

import vitattn
from precompute.config import parse_layers
from vitattn.datasets import load_examples
from vitattn.store import writer
from vitattn.store.quantize import FEATURE_DTYPES, round_trip

OUTLIER_GAIN = 50.0


def cosine_matrix(f: np.ndarray) -> np.ndarray:
    """``[N, D]`` -> ``[N, N]`` cosine similarities (row i: the similarity map of query patch i)."""
    f = np.asarray(f, dtype=np.float64)
    norms = np.linalg.norm(f, axis=1, keepdims=True)  # [N, 1]
    unit = np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)
    return unit @ unit.T


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row of ``a`` with the same row of ``b`` (average ranks for ties): ``[N]``."""
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)  # [N, N]
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    return (ra * rb).sum(axis=1) / np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))


def with_outliers(f: np.ndarray, channels: np.ndarray) -> np.ndarray:
    out = np.array(f, dtype=np.float32)
    out[:, channels] *= OUTLIER_GAIN
    return out


def measure(name: str, images, layers_text: str, outliers: int, pretrained: bool = False) -> list[dict]:
    import torch

    torch.manual_seed(0)
    model = vitattn.load_model(name, pretrained=pretrained, device="cpu")
    layers = parse_layers(layers_text, model.spec.num_layers)
    start = time.perf_counter()
    analyses = model.analyze(images, methods=model.spec.methods[:1], features=True, batch_size=len(images))
    seconds = time.perf_counter() - start
    rng = np.random.default_rng(0)
    rows = []
    for layer in layers:
        dim = analyses[0].features(layer).shape[1]
        channels = rng.choice(dim, size=outliers, replace=False)
        per = {d: {"max": 0.0, "mean": [], "rho": []} for d in FEATURE_DTYPES}
        for a in analyses:
            f = with_outliers(a.features(layer), channels)
            exact = cosine_matrix(f)
            for d in FEATURE_DTYPES:
                approx = cosine_matrix(round_trip(f, d))
                diff = np.abs(approx - exact)
                per[d]["max"] = max(per[d]["max"], float(diff.max()))
                per[d]["mean"].append(float(diff.mean()))
                per[d]["rho"].append(spearman_rows(approx, exact))
        sizes = {d: table_bytes(name, analyses, layer, d) / len(analyses) for d in FEATURE_DTYPES}
        n, dim = analyses[0].features(layer).shape
        for d in FEATURE_DTYPES:
            rho = np.concatenate(per[d]["rho"])
            rows.append(
                {
                    "model": name,
                    "layer": layer,
                    "tokens": n,
                    "dim": dim,
                    "dtype": d,
                    "max": per[d]["max"],
                    "mean": float(np.mean(per[d]["mean"])),
                    "rho_min": float(rho.min()),
                    "rho_mean": float(rho.mean()),
                    "bytes": sizes[d],
                    "float32": 4 * n * dim,
                    "seconds": seconds,
                }  # fmt: skip
            )
    return rows


def table_bytes(name: str, analyses, layer: int, dtype: str) -> int:
    """Bytes of the features table of these images at one layer, as the store writes it (Parquet, zstd)."""
    ids = [f"image{i}" for i in range(len(analyses))]
    table = writer.features_table(name, ids, analyses, [layer], dtype)
    sink = io.BytesIO()
    pq.write_table(table, sink, **writer._options("features", table.schema))
    return sink.tell()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.quantize", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="dinov2,clip,vit,resnet50", help="comma-separated models (random weights)")
    p.add_argument("--layers", default="-1", help="feature layers measured (all, or comma-separated; -1: last)")
    p.add_argument("--outliers", type=int, default=0, help="channels per token multiplied by 50 (stress test)")
    p.add_argument("--pretrained", action="store_true", help="pretrained weights (downloads them): check before a run")
    args = p.parse_args(argv)
    images = [r.load() for r in load_examples()]
    weights = "pretrained" if args.pretrained else "random"
    print(f"{len(images)} bundled images, {weights} weights, outlier channels: {args.outliers}")
    print(f"{'model':9} {'layer':>5} {'N x D':>10} {'dtype':>7} {'max|dcos|':>10} {'mean|dcos|':>11} "
          f"{'rho min':>8} {'rho mean':>9} {'KB/image':>9} {'vs fp32':>8}")  # fmt: skip
    for name in args.models.split(","):
        for r in measure(name, images, args.layers, args.outliers, args.pretrained):
            print(
                f"{r['model']:9} {r['layer']:>5} {r['tokens']:>4} x {r['dim']:<4} {r['dtype']:>7} {r['max']:>10.2e} "
                f"{r['mean']:>11.2e} {r['rho_min']:>8.5f} {r['rho_mean']:>9.6f} {r['bytes'] / 1024:>9.1f} "
                f"{r['bytes'] / r['float32']:>8.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
