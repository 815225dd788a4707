"""What the app adds to Gradio's own cost: a cached view through gradio_client against the app's no-op endpoint.

    python -m bench.app [--store DIR] [--model dinov2] [--repeats 100]

Without ``--store``, the precompute job builds a store of the full-size ``--model`` with random weights on the
bundled examples in a temporary folder (speed does not depend on the values). Then, on that store:

- through the client: ``python app.py`` is launched on a free 127.0.0.1 port and a ``gradio_client.Client`` calls,
  alternately, ``/attention`` on views it has already seen (every example image, several layers and heads) and
  ``/ping`` (a no-op: Gradio's own cost of one call); p50 and p90 of each, and the ratio of the p50s. Measured
  twice: downloading the picture as a client does by default, and with ``download_files=False``;
- in process: the same ``app.attention`` handler called directly on the same views;
- live: one analysis of an uploaded image on the CPU (full-size ``--model``, random weights), without and with
  building the network first.

Goals: in-process p50 under 10 ms; through the client at most 1.5 times the no-op endpoint.
"""

from __future__ import annotations

import io
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import parser

ROOT = Path(__file__).resolve().parent.parent


def percentiles(times: list[float]) -> tuple[float, float]:
    """p50 and p90 in milliseconds."""
    q = statistics.quantiles(times, n=10)
    return statistics.median(times) * 1e3, q[-1] * 1e3


@contextmanager
def store_or_built(given: str | None, model: str, prefix: str) -> Iterator[Path]:
    """The store at ``given``, else one of ``model`` built in a temporary folder (``prefix``), removed on exit."""
    if given is not None:
        yield Path(given)
        return
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield build_store(model, folder / "store")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def build_store(model: str, out: Path) -> Path:
    from precompute import Config, run

    t = time.perf_counter()
    run(Config(models=(model,), random_weights=True, output=out, feature_layers="-1", progress=False))
    print(f"built a random-weight store of {model} on the examples in {time.perf_counter() - t:.1f} s: {out}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(store: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    args = [sys.executable, "app.py", "--store", str(store), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=2):
                return process, url
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"the app exited with {process.returncode}") from None
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the app did not start")


def views(explorer, model: str) -> list[tuple]:
    """Every example image at the first, middle and last layer, fused and with one head, for the first method."""
    info = explorer.info(model)
    method = info.methods[0]
    layers = sorted(
        {info.layers[method][0], info.layers[method][len(info.layers[method]) // 2], info.layers[method][-1]}
    )
    heads = [-1, 0] if info.heads[method] else [-1]
    return [(i, model, method, layer, h, 0.6) for i in explorer.image_ids() for layer in layers for h in heads]


def through_client(url: str, cases: list[tuple], repeats: int, download: bool) -> dict[str, list[float]]:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=download)
    for case in cases:  # warm: every view read from the store once
        client.predict(*case, api_name="/attention")
    times: dict[str, list[float]] = {"ping": [], "attention": []}
    for case in itertools.islice(itertools.cycle(cases), repeats):
        for name, args in (("ping", ()), ("attention", case)):
            t = time.perf_counter()
            client.predict(*args, api_name=f"/{name}")
            times[name].append(time.perf_counter() - t)
    return times


def in_process(cases: list[tuple], repeats: int) -> list[float]:
    import app

    for case in cases:
        app.attention(*case)
    times = []
    for case in itertools.islice(itertools.cycle(cases), repeats):
        t = time.perf_counter()
        app.attention(*case)
        times.append(time.perf_counter() - t)
    return times


def live_analysis(model: str) -> tuple[float, float]:
    """Seconds of the first analysis of an upload (building the network too) and of another upload."""
    from PIL import Image

    from vitattn.datasets import load_examples
    from vitattn.ui import AppConfig, Explorer, LiveModels

    ex = Explorer(AppConfig(), live=LiveModels("random", device="cpu"), examples=load_examples())
    out = []
    for record in load_examples()[:2]:
        buf = io.BytesIO()
        record.load().save(buf, "JPEG")
        t = time.perf_counter()
        item = ex.upload(buf.getvalue())
        ex.analysis(item, model)
        out.append(time.perf_counter() - t)
    assert isinstance(item.picture, Image.Image)
    return out[0], out[1]


def main() -> None:
    p = parser(__doc__, model="dinov2", repeats=100, device=None)
    p.add_argument("--store", default=None, help="an existing store (default: build one in a temporary folder)")
    args = p.parse_args()

    with store_or_built(args.store, args.model, "vitattn-bench-app-") as store:
        os.environ["VITATTN_STORE"] = str(store)
        import app

        cases = views(app.EXPLORER, args.model)
        n_images = len(app.EXPLORER.image_ids())
        print(f"{len(cases)} cached views ({args.model}, {n_images} images), {args.repeats} calls each")
        local = percentiles(in_process(cases, args.repeats))
        process, url = launch(store)
        try:
            remote = {d: through_client(url, cases, args.repeats, d) for d in (True, False)}
        finally:
            process.terminate()
            process.wait(timeout=30)
        first, second = live_analysis(args.model)

    print(f"\n{'measurement':58s} {'p50 ms':>8s} {'p90 ms':>8s}")
    print(f"{'in process: app.attention (cached view)':58s} {local[0]:8.2f} {local[1]:8.2f}")
    for download, times in remote.items():
        what = "downloading the picture" if download else "download_files=False"
        ping, view = percentiles(times["ping"]), percentiles(times["attention"])
        print(f"{'client, ' + what + ': /ping (no-op)':58s} {ping[0]:8.2f} {ping[1]:8.2f}")
        print(f"{'client, ' + what + ': /attention (cached view)':58s} {view[0]:8.2f} {view[1]:8.2f}")
        print(f"{'  ratio of p50s /attention : /ping':58s} {view[0] / ping[0]:8.2f}")
    print(f"{f'live analysis of an upload on the CPU, {args.model}, building the network':58s} {first * 1e3:8.0f}")
    print(f"{f'live analysis of another upload on the CPU, {args.model}':58s} {second * 1e3:8.0f}")
    ratio = percentiles(remote[True]["attention"])[0] / percentiles(remote[True]["ping"])[0]
    print(
        f"\ngoals: in-process p50 < 10 ms: {'met' if local[0] < 10 else 'MISSED'}; "
        f"client p50 <= 1.5 x no-op: {'met' if ratio <= 1.5 else 'MISSED'} ({ratio:.2f})"
    )


if __name__ == "__main__":
    main()
