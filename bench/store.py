"""Store size and view cost on a Hub: bytes per image per model, cold and warm views through the local Hub server.

    python -m bench.store [--images 120] [--models dinov2,clip,resnet50] [--small] [--views 20] [--keep DIR]

Builds an annotated set of ``--images`` images (random crops of the bundled examples, their boxes cropped with
them), runs the precompute job on it with random weights (full-size architectures unless ``--small``; speed and
sizes do not depend on the values), pushes the store to the local Hub of tests/hubserver.py and reads it back
through the real huggingface_hub client:

- cold view: a freshly opened store (manifest read, nothing else) serves one map / feature / image view;
  bytes and requests from the server's log, against the whole store;
- warm view: the same views again, p50 and p90 of the time per view;
- image metadata: ``store.image_meta()`` on a fresh store (the meta column only), bytes and requests.

The server sets TCP_NODELAY (it used not to, and every answer then waited ~40 ms for a delayed ACK), so cold times
are the client's and the loopback's. Goals: a cold view fetches under 1% of the store; a warm view p50 under 5 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the local Hub server and small variants live with the tests

from hubserver import HubServer, point_client_at  # noqa: E402
from small_models import small_overrides  # noqa: E402

from precompute import Config, push, run  # noqa: E402
from vitattn.datasets import load_examples  # noqa: E402
from vitattn.store import open_store  # noqa: E402

REPO = "bench/store"


def make_set(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` random crops of the bundled examples with their boxes, as a vitattn-boxes json; returns the json."""
    rng = random.Random(seed)
    examples = [(r, r.load()) for r in load_examples()]
    entries = []
    for i in range(n):
        record, image = examples[i % len(examples)]
        w, h = image.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        boxes = []
        for b in record.boxes:
            x0, y0 = max(b.box[0] * w, x), max(b.box[1] * h, y)
            x1, y1 = min(b.box[2] * w, x + cw), min(b.box[3] * h, y + ch)
            if x1 - x0 > 4 and y1 - y0 > 4:
                box = [(x0 - x) / cw, (y0 - y) / ch, (x1 - x) / cw, (y1 - y) / ch]
                boxes.append({"label": b.label, "box": [round(min(max(v, 0.0), 1.0), 6) for v in box]})
        boxes = boxes or [{"label": "centre", "box": [0.25, 0.25, 0.75, 0.75]}]
        name = f"{record.id}-{i:04d}"
        image.crop((x, y, x + cw, y + ch)).save(folder / f"{name}.jpg", quality=90)
        entries.append({"id": name, "file": f"{name}.jpg", "width": cw, "height": ch, "boxes": boxes})
    path = folder / "annotations.json"
    path.write_text(json.dumps({"format": "vitattn-boxes/1", "images": entries}))
    return path


def sizes(folder: Path, n_images: int) -> dict[str, dict[str, float]]:
    """Bytes per image: of the images table, and per model and table."""
    out: dict[str, dict[str, float]] = {"images": {"images": 0.0}}
    for path in folder.rglob("*.parquet"):
        rel = path.relative_to(folder).parts
        model, table = ("images", "images") if rel[0] == "images" else (rel[1], path.stem.split("-")[0])
        out.setdefault(model, {}).setdefault(table, 0.0)
        out[model][table] += path.stat().st_size / n_images
    return out


def views(store, n: int, seed: int) -> list[tuple]:
    """``n`` random map views: (image, model, method, layer, head)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        model = rng.choice(store.models())
        entry = store.manifest["models"][model]
        method = rng.choice(entry["methods"])
        heads = entry["heads"][method]
        head = rng.choice([None, *range(heads)])
        out.append((rng.choice(store.image_ids()), model, method, rng.choice(entry["layers"][method]), head))
    return out


def cold(hub: HubServer, location: str, kind: str, n: int, total: int) -> dict[str, float]:
    """Median bytes, requests and ms of ``n`` views, each on a freshly opened store."""
    bytes_, requests, times = [], [], []
    for i, view in enumerate(views(open_store(location), n, seed=1)):
        store = open_store(location)
        hub.clear_log()
        t = time.perf_counter()
        if kind == "map":
            store.map(*view)
        elif kind == "features":
            layers = store.manifest["models"][view[1]]["feature_layers"]
            layer = layers[i % len(layers)]
            store.features(view[0], view[1], layer)
        else:
            store.image(view[0])
        times.append((time.perf_counter() - t) * 1000)
        reads = [e for e in hub.log if e.route == "resolve"]
        bytes_.append(sum(e.bytes_sent for e in reads))
        requests.append(len(reads))
    median = statistics.median(bytes_)
    return {
        "bytes": median,
        "max_bytes": max(bytes_),
        "share": median / total,
        "requests": statistics.median(requests),
        "ms": statistics.median(times),
    }


def warm(location: str, n: int) -> dict[str, float]:
    """p50 / p90 ms of map views whose row groups are already in memory."""
    store = open_store(location)
    picks = views(store, 50, seed=2)
    for view in picks:
        store.map(*view)
    rng = random.Random(3)
    times = []
    for _ in range(n):
        view = rng.choice(picks)
        t = time.perf_counter()
        store.map(*view)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50": times[len(times) // 2], "p90": times[int(len(times) * 0.9)]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=120)
    p.add_argument("--models", default="dinov2,clip,resnet50")
    p.add_argument("--small", action="store_true", help="small random variants (tests/small_models.py)")
    p.add_argument("--views", type=int, default=20, help="cold views per kind")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--keep", default=None, help="build the store in this folder and keep it (a rerun reuses it)")
    args = p.parse_args(argv)
    models = tuple(args.models.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        folder = Path(args.keep).resolve() if args.keep else work / "store"
        images = folder.with_name(folder.name + "-images")  # a stable path: --keep reruns resume, not redo
        images.mkdir(parents=True, exist_ok=True)
        overrides = {m: small_overrides(m) for m in models} if args.small else {}
        config = Config(
            source=str(make_set(images, args.images)), models=models, output=folder, random_weights=True,
            overrides=overrides, batch_size=args.batch_size, device="cpu",
        )  # fmt: skip
        t = time.perf_counter()
        run(config)
        built = time.perf_counter() - t
        figures = measure(folder, work, args.views)
        report(args, models, built, sizes(folder, args.images), **figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(folder: Path, work: Path, n_views: int) -> dict:
    """Push ``folder`` to a local Hub and read it back: opening, cold views (as shipped, TCP_NODELAY), warm views."""
    with HubServer(lfs_threshold=1 << 20) as hub, point_client_at(hub.url, work / "hf_home"):
        from huggingface_hub import constants
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
        constants.HF_HUB_DISABLE_XET = True  # large files go through the git-LFS path (Xet cannot work offline)
        t = time.perf_counter()
        push(folder, REPO)
        pushed = time.perf_counter() - t
        total = hub.repo_bytes(REPO)
        location = f"hf://datasets/{REPO}"
        hub.clear_log()
        t = time.perf_counter()
        open_store(location)
        opening = {"ms": (time.perf_counter() - t) * 1000, "bytes": hub.bytes_served(), "requests": len(hub.log)}
        shipped = {kind: cold(hub, location, kind, n_views, total) for kind in ("map", "features", "image")}
        hot = warm(location, 2000)
        store = open_store(location)
        hub.clear_log()
        t = time.perf_counter()
        n_meta = len(store.image_meta())
        meta = {"ms": (time.perf_counter() - t) * 1000, "bytes": hub.bytes_served(), "requests": len(hub.log)}
        meta["images_bytes"] = sum(s for p, s in store._listing.items() if p.startswith("images/"))
        meta["n"] = n_meta
    return dict(pushed=pushed, total=total, opening=opening, shipped=shipped, hot=hot, meta=meta)


def report(args, models, built, per_image, *, pushed, total, opening, shipped, hot, meta) -> None:
    size = "small random variants" if args.small else "full-size architectures, random weights"
    print(f"command: python -m bench.store {' '.join(sys.argv[1:])}".rstrip())
    print(f"store: {args.images} images x {', '.join(models)} ({size}); {total / 1e6:.1f} MB on the Hub")
    print(f"built in {built:.0f} s (CPU), pushed in {pushed:.1f} s")
    print("bytes per image:")
    for model, tables in per_image.items():
        parts = ", ".join(f"{t} {v / 1e3:.1f} kB" for t, v in sorted(tables.items()))
        print(f"  {model:10s} {sum(tables.values()) / 1e3:9.1f} kB  ({parts})")
    print(f"open: {opening['requests']} requests, {opening['bytes'] / 1e3:.1f} kB, {opening['ms']:.0f} ms")
    print("cold view (fresh store; median of views):")
    for kind, s in shipped.items():
        print(
            f"  {kind:8s} {s['bytes'] / 1e3:7.1f} kB (max {s['max_bytes'] / 1e3:.1f}) = {100 * s['share']:.3f}% of "
            f"the store, {s['requests']:.0f} requests, {s['ms']:.1f} ms"
        )
    print(f"warm map view: p50 {hot['p50']:.4f} ms, p90 {hot['p90']:.4f} ms")
    print(
        f"image_meta() of {meta['n']} images: {meta['requests']} requests, {meta['bytes'] / 1e3:.1f} kB "
        f"(the images table: {meta['images_bytes'] / 1e6:.1f} MB), {meta['ms']:.0f} ms"
    )
    ok = all(s["share"] < 0.01 for s in shipped.values()) and hot["p50"] < 5
    print(f"goals (cold < 1% of the store, warm p50 < 5 ms): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
