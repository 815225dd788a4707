"""Many concurrent users of the app: cached views, similarity clicks and uploads mixed, through gradio_client.

    python -m bench.load [--store DIR] [--model dinov2] [--users 24] [--requests 20] [--uploads 0.1] [--noop]

Without ``--store``, the precompute job builds a store of the full-size ``--model`` with random weights on the
bundled examples in a temporary folder (speed does not depend on the values), so uploads cost a real CPU analysis.
``python app.py`` is launched on that store on a free 127.0.0.1 port; each user is a thread with its own
``gradio_client.Client`` making ``--requests`` requests, each drawn at random: an attention view of a stored image
(random image, layer and head), a similarity click (a random point or box), or, with probability ``--uploads``, an
upload of a new image (a live analysis). Reported per kind and overall: requests, errors, p50 and p99 latency; and the
server process's resident memory after start-up and at its peak (``VmHWM``, Linux).

What it shows: every request succeeds; cached views stay fast while uploads wait for the single live worker
(``LIVE_WORKERS``); the server's memory stays bounded.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from bench.app import build_store, launch

KINDS = ("view", "similarity", "upload", "ping")


def memory_mib(pid: int) -> dict[str, float]:
    """Resident memory now and at its peak (MiB) of a process, from /proc (Linux)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def noise_png(folder: Path, seed: int) -> str:
    rng = np.random.default_rng(seed)
    size = (int(rng.integers(200, 900)), int(rng.integers(200, 900)))
    path = folder / f"upload-{seed}.png"
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return str(path)


class User:
    """One client making ``n`` random requests; records (kind, seconds, error or None)."""

    def __init__(self, url: str, info: dict, model: str, uploads: float, folder: Path, seed: int, noop: bool = False):
        from gradio_client import Client

        self.client = Client(url, verbose=False)
        self.info, self.model, self.uploads, self.folder = info, model, uploads, folder
        self.rng = random.Random(seed)
        self.seed = seed
        self.noop = noop  # every request is the no-op /ping: Gradio's own cost, the ceiling of views/s
        self.records: list[tuple[str, float, str | None]] = []

    def request(self, k: int) -> None:
        from gradio_client import handle_file

        entry = self.info["models"][self.model]
        method = entry["methods"][0]
        image = self.rng.choice(self.info["images"])
        draw = self.rng.random()
        if self.noop:
            kind, args, api = "ping", (), "/ping"
        elif draw < self.uploads:
            kind, args = "upload", (handle_file(noise_png(self.folder, self.seed * 1000 + k)), self.model)
            api = "/analyze"
        elif draw < self.uploads + (1 - self.uploads) * 0.35:
            x, y = self.rng.random(), self.rng.random()
            w = self.rng.choice([0.0, 0.2, 0.4])
            box = (x * (1 - w), y * (1 - w), x * (1 - w) + w, y * (1 - w) + w)
            kind, args = "similarity", (image, self.model, entry["feature_layers"][-1], *box, 0.6)
            api = "/similarity"
        else:
            layer = self.rng.choice(entry["layers"][method])
            head = self.rng.choice([-1, *range(min(entry["heads"][method], 4))])
            kind, args, api = "view", (image, self.model, method, layer, head, 0.6), "/attention"
        start = time.perf_counter()
        try:
            self.client.predict(*args, api_name=api)
            error = None
        except Exception as e:  # noqa: BLE001 - every failure is counted and reported
            error = f"{type(e).__name__}: {e}"
        self.records.append((kind, time.perf_counter() - start, error))

    def run(self, n: int, go: threading.Event) -> list[tuple[str, float, str | None]]:
        go.wait()
        try:
            for k in range(n):
                self.request(k)
        finally:
            self.client.close()
        return self.records


def quantile(times: list[float], q: float) -> float:
    if len(times) == 1:
        return times[0]
    return statistics.quantiles(times, n=100, method="inclusive")[int(q * 100) - 1]


def report(records: list[tuple[str, float, str | None]], wall: float, users: int) -> None:
    by_kind = defaultdict(list)
    for kind, seconds, error in records:
        by_kind[kind].append((seconds, error))
    print(f"\n{'kind':12s} {'requests':>9s} {'errors':>7s} {'p50 ms':>9s} {'p99 ms':>9s} {'max ms':>9s}")
    for kind in (*KINDS, "all"):
        rows = [(s, e) for k, s, e in records if k == kind or kind == "all"]
        if not rows:
            continue
        times = [s for s, _ in rows]
        errors = sum(e is not None for _, e in rows)
        p50, p99 = quantile(times, 0.5) * 1e3, quantile(times, 0.99) * 1e3
        print(f"{kind:12s} {len(rows):9d} {errors:7d} {p50:9.1f} {p99:9.1f} {max(times) * 1e3:9.1f}")
    print(f"\n{users} users, {len(records)} requests in {wall:.1f} s ({len(records) / wall:.1f} requests/s)")
    failures = [e for _, _, e in records if e]
    for error in sorted(set(failures))[:10]:
        print(f"  error x{failures.count(error)}: {error[:200]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default=None, help="an existing store (default: build one in a temporary folder)")
    p.add_argument("--model", default="dinov2", help="model of the store, the views and the uploads")
    p.add_argument("--users", type=int, default=24, help="concurrent users")
    p.add_argument("--requests", type=int, default=20, help="requests per user")
    p.add_argument("--uploads", type=float, default=0.1, help="share of requests that upload a new image")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--noop", action="store_true", help="then the same load of /ping calls: Gradio's own ceiling, side by side"
    )
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vitattn-bench-load-"))
    try:
        store = Path(args.store) if args.store else build_store(args.model, tmp / "store")
        process, url = launch(store)
        try:
            from gradio_client import Client

            warm = Client(url, verbose=False)
            info = warm.predict(api_name="/info")
            if args.model not in info["models"]:
                sys.exit(f"the store has no {args.model}; models: {', '.join(info['models'])}")
            warm.predict(handle_warm(tmp), args.model, api_name="/analyze")  # load the network once
            warm.close()
            before = memory_mib(process.pid)
            records, wall = run_users(url, info, args, tmp, noop=False)
            after = memory_mib(process.pid)
            noop = run_users(url, info, args, tmp, noop=True) if args.noop else None
        finally:
            process.terminate()
            process.wait(timeout=60)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report(records, wall, args.users)
    if noop is not None:
        report(*noop, args.users)
        print(f"ratio requests/s, this load : the no-op /ping: {len(records) / wall / (len(noop[0]) / noop[1]):.2f}")
    print(
        f"server memory: {before['VmRSS']:.0f} MiB resident after start-up and one analysis, "
        f"{after['VmRSS']:.0f} MiB after the load, peak {after['VmHWM']:.0f} MiB"
    )


def run_users(url: str, info: dict, args, folder: Path, noop: bool) -> tuple[list, float]:
    """``args.users`` concurrent users making ``args.requests`` requests each: the records and the wall time."""
    go = threading.Event()
    users = [User(url, info, args.model, args.uploads, folder, args.seed + i, noop) for i in range(args.users)]
    with ThreadPoolExecutor(args.users) as pool:
        futures = [pool.submit(u.run, args.requests, go) for u in users]
        start = time.perf_counter()
        go.set()
        records = [r for f in futures for r in f.result()]
        return records, time.perf_counter() - start


def handle_warm(folder: Path):
    from gradio_client import handle_file

    return handle_file(noise_png(folder, 10**6))


if __name__ == "__main__":
    main()
