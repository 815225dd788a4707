"""vitattn: where do vision models look in an image, and does it match where experts look?

    python app.py [--store LOCATION] [--host HOST] [--port PORT] [--random-weights]

LOCATION is a store folder or hf://datasets/<namespace>/<name>[@<revision>] (also $VITATTN_STORE); without one the
app uses ./store when it holds a store, else the bundled example images with live inference. ``--random-weights``
runs live inference on untrained networks (no download: the app works offline; every picture says so). Every action
is also an API endpoint with typed inputs: ``gradio_client.Client(url).view_api()`` lists them.

Limits (``vitattn/ui/data/config.py``): uploads of at most 20 MiB and 50 million pixels (a larger image is refused
from its header, before decoding); one live analysis at a time, queued, while cached views have 8 workers of their
own; at most 256 waiting requests; uploads and generated pictures are deleted after an hour. Errors come back as one
clear line (``gr.Error``), never a stack trace, and never with a Hub token in them.

The page itself is ``vitattn.ui.demo.build_demo(explorer)`` (docs/app.md: its layers and tabs). This file only
reads the command line, opens the Explorer and serves; ``gradio app.py`` and Hugging Face Spaces find ``demo``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import replace

import gradio as gr

from vitattn.ui import AppConfig, Explorer
from vitattn.ui.data.config import MAX_UPLOAD_BYTES, QUEUE_SIZE, VIEW_WORKERS
from vitattn.ui.demo import build_demo
from vitattn.ui.shell.header import KEYS
from vitattn.ui.shell.style import CSS


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="The vitattn app.")
    p.add_argument("--store", default=None, help="store folder or hf://datasets/ns/name[@rev] (or $VITATTN_STORE)")
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=None, help="port (default 7860 or $GRADIO_SERVER_PORT)")
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="live inference with untrained networks: no download, works offline (labelled on every picture)",
    )
    return p.parse_args(argv)


def open_explorer(args: argparse.Namespace) -> Explorer:
    """The Explorer the command line asks for (the store's manifest is read; no map, no model loaded)."""
    config = AppConfig.from_env(store=args.store)
    return Explorer.open(replace(config, weights="random") if args.random_weights else config)


def serve(demo: gr.Blocks, host: str | None = None, port: int | None = None, *, block: bool = True):
    """Launches ``demo`` with the app's limits: queue size, upload size, file access, concurrency groups.

    Gradio serves files only from its own upload and cache folders (nothing else is allowed); ``block=False``
    returns at once (tests: ``demo.close()`` stops it).
    """
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=VIEW_WORKERS)
    return demo.launch(
        js=KEYS,
        css=CSS,
        server_name=host,
        server_port=port,
        show_error=True,
        max_file_size=MAX_UPLOAD_BYTES,
        prevent_thread_lock=not block,
        quiet=not block,
    )


def clean_up(demo: gr.Blocks) -> None:
    """Deletes every upload and generated file of ``demo`` (Gradio does so on shutdown only when no client is still
    connected)."""
    from gradio.route_utils import delete_files_created_by_app

    delete_files_created_by_app(demo, age=None)


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: Gradio closes the server, then clean_up runs


ARGS = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
demo = build_demo(open_explorer(ARGS))  # what `gradio app.py` and Spaces serve

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    try:
        serve(demo, ARGS.host, ARGS.port)
    finally:
        clean_up(demo)
