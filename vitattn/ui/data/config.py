"""How the app is set up: where its store is and which weights live inference uses. Parsed once, then passed down.

    python app.py [--store LOCATION] [--host HOST] [--port PORT]

``LOCATION`` is a folder or ``hf://datasets/<namespace>/<name>[@<revision>]``; it can also come from the
``VITATTN_STORE`` environment variable. Without one the app uses ``./store`` when it holds a store, else the bundled
example images with live inference.

``VITATTN_WEIGHTS`` selects the weights of live inference: ``pretrained`` (the default), or, for tests and demos
without network only, ``random`` (the full-size architectures) or ``small`` (tiny random variants that load in
milliseconds). Random weights are labelled on every picture and on the page.

Limits (the app is public; each is shown on the page where it applies):

- an upload is at most ``MAX_UPLOAD_BYTES`` (the server refuses a larger one before storing it) and
  ``vitattn.images.MAX_PIXELS`` pixels (read from the header and refused before decoding: a decompression bomb
  costs nothing);
- live inference runs ``LIVE_WORKERS`` analyses at a time; more wait in the queue. Cached views (stored maps,
  analyses already made) have their own ``VIEW_WORKERS`` workers, so they never wait behind live inference;
- at most ``QUEUE_SIZE`` requests wait; beyond that a request is refused with "the queue is full";
- uploads and the pictures Gradio writes for its answers are deleted ``TEMP_FILES[1]`` seconds after they were
  made (checked every ``TEMP_FILES[0]`` seconds) and when the server stops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from vitattn.images import MAX_PIXELS

ENV_STORE = "VITATTN_STORE"
ENV_WEIGHTS = "VITATTN_WEIGHTS"
DEFAULT_STORE = Path("store")
WEIGHTS = ("pretrained", "random", "small")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_PIXELS = MAX_PIXELS
LIVE_WORKERS = 1
VIEW_WORKERS = 8
QUEUE_SIZE = 256
TEMP_FILES = (600, 3600)


@dataclass(frozen=True)
class AppConfig:
    """What the app reads and how it computes what is not stored."""

    store: str | None = None  # store location; None: ./store when it holds a manifest, else no store
    weights: str = "pretrained"  # live inference: "pretrained", or "random" / "small" (tests, no network)
    device: str | None = None  # torch device of live inference; None: CUDA when available
    analyses: int = 24  # live analyses kept in memory (LRU over image content x model)
    uploads: int = 32  # uploaded images kept in memory (LRU)
    models_kept: int = 3  # loaded networks kept in memory (LRU)
    live_workers: int = LIVE_WORKERS  # live analyses (and network loads) at once, whoever asks for them

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {self.weights!r}")
        if self.live_workers < 1:
            raise ValueError(f"live_workers must be >= 1, got {self.live_workers}")

    @classmethod
    def from_env(cls, store: str | None = None, **kw) -> AppConfig:
        """``store`` (e.g. from ``--store``), else ``$VITATTN_STORE``, else ``./store`` if it holds a store."""
        config = cls(weights=os.environ.get(ENV_WEIGHTS, "pretrained") or "pretrained", **kw)
        location = store or os.environ.get(ENV_STORE) or None
        if location is None and (DEFAULT_STORE / "manifest.json").is_file():
            location = str(DEFAULT_STORE)
        return replace(config, store=location)
