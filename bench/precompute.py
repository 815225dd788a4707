"""Throughput of the precompute job for one ViT-B: images per second of the whole job, and where the time goes.

    python -m bench.precompute [--model vit] [--images 16] [--batch-size 8] [--device cpu]
    python -m bench.precompute --device cuda --batch-size 64 --images 256 [--bf16]   # on a GPU machine
    python -m bench.precompute --device cuda --batch-size 64 --images 256 --faithfulness-layers none  # issue 19's goal

The image set is the bundled examples repeated to ``--images`` (their encoded bytes and boxes), the model a
full-size architecture with random weights (no download; speed does not depend on the values). Two measurements,
in one run:

1. stages, unit by unit (``--chunk-size`` images per unit, as the job cuts them), each timed alone with the job's own
   functions: decode (the image files to RGB), transform (resize, normalize, stack: the model's input on the host),
   forward/analyze (`Model.analyze`: host to device, forward, backward for gradient methods, every map and feature
   back as numpy; the transform is measured apart and subtracted), metrics (every map scored against the boxes by
   the batched scorer on the model's device, and the baselines), faithfulness (deletion / insertion passes of the
   fused maps at ``--faithfulness-layers``), Parquet encode (tables built and encoded in memory), disk write
   (written, fsynced, renamed);
2. the whole job (`precompute.run`) on the same images into a fresh folder: images per second end to end.

It prints each stage's seconds, images per second if that stage ran alone, its share, and which bound the job hits
(the slowest stage: compute, host preprocessing, metrics, Parquet encoding or disk), then the arithmetic limit of the
forward pass on the device (FLOPs per image) and the bytes the store holds per image. ``--bf16`` runs analyze under
``torch.autocast(bfloat16)`` (the job itself computes in float32). Needs torch, timm, numpy, pyarrow, scipy, PIL and
tqdm only (no gradio, datasets or ray).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

import vitattn
from bench.common import synchronize
from precompute import Config, run
from precompute.config import parse_layers
from precompute.estimate import vit_flops
from precompute.unit import _faithfulness, _scores, settings
from vitattn.datasets import AnnotatedImage, load_annotated, load_examples
from vitattn.store import writer

STAGES = ("decode", "transform", "forward/analyze", "metrics", "faithfulness", "parquet encode", "disk write")
BOUND = {
    "decode": "host preprocessing (image decoding)",
    "transform": "host preprocessing (resize/normalize)",
    "forward/analyze": "compute (forward, backward, maps and features to host)",
    "metrics": "metrics (batched scoring on the device; the exact EMD on the host)",
    "faithfulness": "compute (deletion / insertion forward passes)",
    "parquet encode": "Parquet encoding (CPU)",
    "disk write": "disk",
}


def image_set(n: int, folder: Path) -> Path:
    """``n`` images: the bundled examples' files repeated, as a vitattn-boxes json in ``folder``."""
    examples = load_examples()
    entries = []
    for i in range(n):
        record = examples[i % len(examples)]
        name = f"img{i:05d}{record.path.suffix}"
        shutil.copyfile(record.path, folder / name)
        boxes = [{"label": b.label, "group": b.group, "box": list(b.box)} for b in record.boxes]
        entries.append({"id": f"img{i:05d}", "file": name, "boxes": boxes})
    path = folder / "boxes.json"
    path.write_text(json.dumps({"format": "vitattn-boxes/1", "images": entries}))
    return path


@contextlib.contextmanager
def clock(totals: dict, stage: str):
    """Adds the time of the ``with`` body to ``totals[stage]`` (the device synchronized at both ends)."""
    synchronize()
    start = time.perf_counter()
    yield
    synchronize()
    totals[stage] += time.perf_counter() - start


def measure_stages(config: Config, model, records: list[AnnotatedImage], out: Path, autocast) -> tuple[dict, int]:
    """Seconds per stage over every unit, and the bytes written."""
    totals = dict.fromkeys(STAGES, 0.0)
    written = 0
    for start in range(0, len(records), config.chunk_size):
        written += one_unit(config, model, records[start : start + config.chunk_size], out, autocast, totals)
    totals["forward/analyze"] = max(0.0, totals["forward/analyze"] - totals["transform"])  # analyze includes it
    return totals, written


def one_unit(config: Config, model, chunk: list[AnnotatedImage], out: Path, autocast, totals: dict) -> int:
    """One unit of the job, stage by stage (the job's own functions); returns the bytes written."""
    name, ids = config.models[0], [r.id for r in chunk]
    layers = parse_layers(config.feature_layers, model.spec.num_layers)
    with clock(totals, "decode"):
        rgbs = [r.load() for r in chunk]
    with clock(totals, "transform"):
        torch.stack([model.transform(im) for im in rgbs])  # (B, 3, S, S), as analyze makes it
    stats = model.spec.family == "vit"
    with clock(totals, "forward/analyze"), autocast():
        methods, batch = config.methods_of(name), config.batch_size
        analyses = model.analyze(rgbs, methods=methods, features=bool(layers), stats=stats, batch_size=batch)
    with clock(totals, "parquet encode"):
        rows = [writer.map_rows(a) for a in analyses]  # float16 maps: what is scored and stored
    with clock(totals, "metrics"):
        scores = _scores(config, name, chunk, rgbs, [tuple(a.grid) for a in analyses], rows, {}, model.device)
    asked = settings(config, name)["faithfulness"]
    with clock(totals, "faithfulness"), autocast():
        faithful = {"faithfulness": _faithfulness(config, model, ids, rgbs, rows, asked)} if asked else {}
    with clock(totals, "parquet encode"):
        tables = {
            **faithful,
            **({"headstats": writer.headstats_table(name, ids, analyses)} if stats else {}),
            "maps": writer.maps_table(name, ids, rows),
            "features": writer.features_table(name, ids, analyses, layers, config.feature_dtype),
            **scores,
            "predictions": writer.predictions_table(name, ids, analyses),
        }
        encoded = {t: writer.encode_table(t, table, {"images": ids}) for t, table in tables.items()}
    with clock(totals, "disk write"):
        for table, data in encoded.items():
            writer.write_bytes(out / f"{table}-{ids[0]}.parquet", data)
    return sum(data.size for data in encoded.values())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.precompute", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="vit", help="a ViT of vitattn.MODELS (default vit: ViT-B/16)")
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--chunk-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="analyze under torch.autocast(bfloat16)")
    p.add_argument("--methods", default="all", help="comma-separated methods or all")
    p.add_argument("--feature-layers", default="all")
    p.add_argument("--feature-dtype", default=Config.feature_dtype, help="as the job's option")
    p.add_argument("--faithfulness-layers", default="-1", help="as the job's option ('none': skip)")
    p.add_argument("--keep", default=None, help="folder for the store (default: a temporary one, removed)")
    args = p.parse_args(argv)
    spec = vitattn.get_spec(args.model)
    methods = args.methods.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-precompute-"))
    try:
        source = image_set(args.images, work)
        config = Config(
            source=str(source), models=(args.model,), methods=None if args.methods == "all" else tuple(methods),
            feature_layers=args.feature_layers, feature_dtype=args.feature_dtype, batch_size=args.batch_size,
            faithfulness_layers=args.faithfulness_layers,
            device=args.device, chunk_size=args.chunk_size, random_weights=True, progress=False,
            output=Path(args.keep) if args.keep else work / "store",
        )  # fmt: skip
        autocast = (lambda: torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16)) if args.bf16 else (
            contextlib.nullcontext)  # fmt: skip
        torch.manual_seed(0)
        model = vitattn.load_model(args.model, pretrained=False, device=args.device)
        records = load_annotated(str(source))  # sorted by id, as the job reads them
        device_name = torch.cuda.get_device_name() if model.device.type == "cuda" else "cpu"
        print(f"model {args.model} ({spec.timm_id}, random weights) on {model.device} ({device_name}), "
              f"torch threads {torch.get_num_threads()}, {'bf16 autocast' if args.bf16 else 'float32'}")  # fmt: skip
        print(f"methods {', '.join(config.methods_of(args.model))}; feature layers {args.feature_layers} "
              f"({args.feature_dtype}); {args.images} images, batch {args.batch_size}, "
              f"chunk {args.chunk_size}")  # fmt: skip
        warm = args.batch_size if model.device.type == "cuda" else 1  # kernels chosen per batch shape on a GPU
        measure_stages(config, model, records[:warm], work / "warm", autocast)  # warm-up
        totals, written = measure_stages(config, model, records, work / "stages", autocast)
        n = len(records)
        total = sum(totals.values())
        print(f"\nstages ({n} images, each stage timed alone):")
        for stage in STAGES:
            t = totals[stage]
            print(
                f"  {stage:16s} {t:8.2f} s  {n / t if t else float('inf'):9.3g} img/s alone  {100 * t / total:5.1f} %"
            )
        print(f"  {'sum':16s} {total:8.2f} s  {n / total:9.3g} img/s  (sequential, as the job runs them)")
        slowest = max(totals, key=totals.get)
        print(f"bound: {BOUND[slowest]} ({100 * totals[slowest] / total:.0f} % of the time)")

        del model
        start = time.perf_counter()
        with autocast():
            run(config)
        whole = time.perf_counter() - start
        store_bytes = sum(f.stat().st_size for f in config.output.rglob("*.parquet"))
        image_bytes = sum(f.stat().st_size for f in (config.output / "images").rglob("*.parquet"))
        print(f"\nwhole job (precompute.run, model load included): {whole:.2f} s, {n / whole:.2f} img/s")
        print(f"store: {store_bytes / n / 1e6:.2f} MB per image ({(store_bytes - image_bytes) / n / 1e6:.2f} MB "
              f"without the image bytes); stage run wrote {written / n / 1e6:.2f} MB per image")  # fmt: skip
        flops = vit_flops(spec, {})
        print(f"\nforward arithmetic: {flops / 1e9:.1f} GFLOPs per image ({flops / 2e9:.1f} GMACs); measured "
              f"forward/analyze {n / totals['forward/analyze']:.1f} img/s = "
              f"{flops * n / totals['forward/analyze'] / 1e12:.2f} TFLOP/s of forward work")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
