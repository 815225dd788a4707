"""Reading a store lazily: opening reads the manifest (and lists the files); a view reads one footer and one row
group, and repeated views come from memory (open footers and decoded row groups in bounded LRU caches).

    store = open_store("hf://datasets/ns/name")          # or a local folder
    store.map("astronaut", "dinov2", "cls", layer=11)     # [gh, gw] float32, all heads fused
    store.map("astronaut", "dinov2", "cls", 11, head=3)   # one head

Damage is reported, not fatal: a missing or truncated file, an unknown schema version or a model entry that
cannot be used becomes a line in ``store.problems`` and a `StoreError` for the views that need it; every other
view keeps working. A missing or unreadable manifest is rebuilt from the data files' own descriptions. When the Hub
cannot be reached, views already served keep coming from memory and new ones raise `HubUnavailable` (a
`StoreError`) within seconds. Read-only; thread-safe (the app serves several requests at once).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from vitattn.cache import LRU
from vitattn.datasets import check_id
from vitattn.store.files import HUB_TIMEOUT, HubFiles, LocalFiles, open_files
from vitattn.store.layout import MANIFEST, ROW_GROUP_KEYS, StoreError, model_tables, table_path
from vitattn.store.manifest import any_random, parse_manifest
from vitattn.store.recover import rebuild_manifest
from vitattn.store.tables import DECODERS, ParquetHandle, StoredImage
from vitattn.store.whole import WholeTables

CACHE_BYTES = 256 * 1024 * 1024  # decoded row groups and whole small tables kept in memory
OPEN_FILES = 64  # Parquet files kept open with their footer parsed


class Store(WholeTables):
    """A precomputed store, local or on the Hub. Use `open_store`."""

    def __init__(self, files: LocalFiles | HubFiles, location: str, cache_bytes: int = CACHE_BYTES):
        self.location = location
        self.revision: str | None = files.revision
        self._files = files
        self._listing = files.list()  # names and sizes: missing files are known before any view
        self.manifest, self._chunk_of, self.problems = self._read_manifest()
        self._n_chunks = max(self._chunk_of.values(), default=-1) + 1
        self._lock = threading.RLock()
        self._handles = LRU(OPEN_FILES)  # an evicted file closes when no reader holds it any more
        self._cache = LRU(cache_bytes)
        self._damaged: dict[str, str] = {}
        self._check_files()

    def _read_manifest(self) -> tuple[dict, dict[str, int], list[str]]:
        """The manifest, the chunk of each image and the problems found; rebuilt from the data files when
        ``manifest.json`` is missing or unreadable (then the first problem says so)."""
        try:
            if MANIFEST not in self._listing:
                hint = "not a vitattn store (make one: python -m precompute)"
                raise StoreError(f"{self.location}: no manifest.json; {hint}")
            try:
                data = self._files.read(MANIFEST)
            except OSError as e:
                raise StoreError(f"{self.location}: manifest.json cannot be read ({e})") from None
            return parse_manifest(data, self.location)
        except StoreError as e:
            if isinstance(e, self._files.transient):
                raise
            rebuilt = rebuild_manifest(self._listing, self._files.open)
            if rebuilt is None:
                raise
            manifest, chunk_of, problems = parse_manifest(json.dumps(rebuilt[0]).encode(), self.location)
            chunk_of = {i: rebuilt[1][i] for i in chunk_of}  # the chunks as the files have them
            reason = str(e).removeprefix(f"{self.location}: ")
            line = f"{reason}: rebuilt from the data files ({len(manifest['models'])} models, {len(chunk_of)} images)"
            return manifest, chunk_of, [line, *problems]

    def __repr__(self) -> str:
        at = f"@{self.revision[:10]}" if self.revision else ""
        return f"Store({self.location!r}{at}, {len(self.models())} models, {len(self.image_ids())} images)"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes open files and empties the caches (the store can still be read afterwards)."""
        for handle in self._handles.drain():
            handle.close()
        self._cache.drain()

    # ----------------------------------------------------------------------------------------------- what is there

    @property
    def random_weights(self) -> bool:
        """True if any model in the store used random weights (its maps show no learned attention)."""
        return any_random(self.manifest["models"])

    def models(self) -> list[str]:
        return list(self.manifest["models"])

    def image_ids(self) -> list[str]:
        return list(self.manifest["images"])

    # ----------------------------------------------------------------------------------------------- views

    def image(self, image_id: str) -> StoredImage:
        """The image (upright RGB, a fresh copy), its size, boxes and metadata."""
        chunk = self._chunk(image_id)
        stored = self._group("images", None, chunk, (image_id,), f"image {image_id!r}")
        return StoredImage(stored.id, stored.image.copy(), stored.width, stored.height, stored.boxes, dict(stored.meta))

    def map(self, image_id: str, model: str, method: str, layer: int, head: int | None = None) -> np.ndarray:
        """A ``[gh, gw]`` float32 map; ``head=None`` is all heads fused.

        Raises:
            StoreError: naming the valid models, images, methods, layers or heads, or the file that is unavailable.
        """
        entry = self._model(model)
        chunk = self._chunk(image_id)
        methods = entry["layers"]
        if method not in methods:
            raise StoreError(f"model {model!r} has no method {method!r} in this store; valid methods: {_few(methods)}")
        layer = self._layer(layer, methods[method], f"{model}/{method}")
        n_heads = int(entry["heads"].get(method, 0))
        if head is not None:
            if n_heads == 0:
                raise StoreError(f"method {method!r} fuses all heads by definition; use head=None")
            if isinstance(head, bool) or not isinstance(head, (int, np.integer)) or not 0 <= head < n_heads:
                raise StoreError(f"head {head!r} out of range for {model}/{method}: valid heads 0..{n_heads - 1}")
        what = f"map {model}/{method}/layer {layer} of {image_id!r}"
        group = self._group("maps", model, chunk, (image_id,), what)
        key = (method, layer, -1 if head is None else int(head))
        if key not in group.index:
            raise StoreError(self._problem(f"{table_path('maps', chunk, model)} lacks the {what} (head {key[2]})"))
        start, stop, gh, gw = group.index[key]
        return group.values[start:stop].astype(np.float32).reshape(gh, gw)

    def text_map(self, image_id: str, model: str, method: str, layer: int, prompt: str) -> np.ndarray:
        """The ``[gh, gw]`` float32 text map of a box label ``prompt`` of the image (``textmaps``; heads fused)."""
        what = f"text map {model}/{method}/layer {layer} of {prompt!r} on {image_id!r}"
        if not self._model(model).get("textmaps"):
            raise StoreError(f"model {model!r} has no text maps in this store")
        group = self._group("textmaps", model, self._chunk(image_id), (image_id,), what)
        if (method, layer, prompt) not in group.index:
            raise StoreError(f"the store has no {what}")
        start, stop, gh, gw = group.index[(method, layer, prompt)]
        return group.values[start:stop].astype(np.float32).reshape(gh, gw)

    def features(self, image_id: str, model: str, layer: int) -> np.ndarray:
        """Patch features ``[gh * gw, D]`` float32 of ``layer`` (dequantized when the store holds them as int8)."""
        entry = self._model(model)
        chunk = self._chunk(image_id)
        layer = self._layer(layer, entry["feature_layers"], f"{model} features")
        stored = self._group("features", model, chunk, (image_id, layer), f"features {model}/layer {layer}")
        return stored.float32()

    # ----------------------------------------------------------------------------------------------- checks

    def _has(self, model: str, table: str, what: str) -> None:
        if not self._model(model).get(table):
            raise StoreError(f"model {model!r} has no {what} in this store")

    def _model(self, model: str) -> dict:
        models = self.manifest["models"]
        if not isinstance(model, str) or model not in models:
            raise StoreError(f"model {model!r} is not in this store; models: {_few(models) or 'none'}")
        return models[model]

    def _chunk(self, image_id: str) -> int:
        try:
            check_id(image_id)
        except ValueError as e:
            raise StoreError(str(e)) from None
        if image_id not in self._chunk_of:
            raise StoreError(f"image {image_id!r} is not in this store; images: {_few(self.manifest['images'])}")
        return self._chunk_of[image_id]

    @staticmethod
    def _layer(layer: int, valid: Sequence[int], what: str) -> int:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or int(layer) not in valid:
            raise StoreError(f"layer {layer!r} is not in this store for {what}; valid layers: {_span(valid)}")
        return int(layer)

    def _problem(self, line: str) -> str:
        with self._lock:
            if line not in self.problems:
                self.problems.append(line)
        return line

    def _check_files(self) -> None:
        """One problem line per table whose files are missing (from the listing made when opening)."""
        n_chunks = self._n_chunks
        expected = {"images": [table_path("images", c) for c in range(n_chunks)]}
        for model, entry in self.manifest["models"].items():
            tables = model_tables(entry)
            expected[f"model {model!r}"] = [table_path(t, c, model) for t in tables for c in range(n_chunks)]
        for what, paths in expected.items():
            missing = [p for p in paths if p not in self._listing]
            if missing:
                self._problem(f"{what}: {len(missing)} of {len(paths)} files missing ({_few(missing, 3)})")

    # ----------------------------------------------------------------------------------------------- reading

    def _handle(self, rel: str, table: str) -> ParquetHandle:
        handle = self._handles.get(rel)
        if handle is not None:
            return handle
        with self._lock:
            handle = self._handles.get(rel)
            if handle is not None:
                return handle
            if rel in self._damaged:
                raise StoreError(self._damaged[rel])
            if rel not in self._listing:
                raise StoreError(f"{rel} is missing from the store")
            try:
                handle = ParquetHandle(self._files.open(rel), ROW_GROUP_KEYS.get(table, ()))
            except Exception as e:  # noqa: BLE001 - sorted by _failed: damage, network, or re-raised
                raise self._failed(rel, e) from None
            return self._handles.put(rel, handle)

    def _failed(self, rel: str, error: Exception) -> StoreError:
        """The error for a file that could not be read. A network error is passing (`HubUnavailable`: the next view
        tries again); a file that cannot be parsed is damaged: remembered, reported in ``problems``, not read again.
        Anything else is a bug and re-raised."""
        if isinstance(error, self._files.transient):
            return error  # names the file and says to try again
        if not isinstance(error, (OSError, ValueError, pa.ArrowException)):
            raise error
        reason = f"{type(error).__name__}: {' '.join(str(error).split())}"  # one line
        message = self._problem(f"{rel} is damaged and was skipped ({reason})")
        self._damaged[rel] = message
        self._handles.pop(rel)  # not read again
        return StoreError(message)

    def _group(self, table: str, model: str | None, chunk: int, key: tuple, what: str):
        """The decoded row group of ``key`` in a table's chunk file (from the cache when it was read before)."""
        rel = table_path(table, chunk, model)
        cached = self._cache.get((rel, key))
        if cached is not None:
            return cached
        try:
            handle = self._handle(rel, table)
            if key not in handle.index:
                raise StoreError(self._problem(f"{rel} lacks the row group of {what}"))
            try:
                decoded = DECODERS[table](handle.read(handle.index[key]))
            except Exception as e:  # noqa: BLE001 - sorted by _failed
                raise self._failed(rel, e) from None
        except StoreError as e:
            raise type(e)(f"{what} is unavailable: {e}") from None
        size = decoded.nbytes if hasattr(decoded, "nbytes") else decoded.width * decoded.height * 3
        return self._cache.put((rel, key), decoded, size)


def _few(values, limit: int = 20) -> str:
    values = list(values)
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _span(values: Sequence[int]) -> str:
    values = sorted(values)
    if len(values) > 1 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}"
    return ", ".join(map(str, values)) or "none"


def open_store(
    location: str | Path,
    *,
    cache_bytes: int = CACHE_BYTES,
    token: str | bool | None = None,
    timeout: float = HUB_TIMEOUT,
) -> Store:
    """Opens a store: a local folder, or ``hf://datasets/<namespace>/<name>[@<revision>]`` pinned to one commit.

    Opening reads the manifest and lists the files; views read lazily.

    Args:
        location: folder or Hub location.
        cache_bytes: memory for decoded row groups and small tables.
        token: for private Hub stores (None: ``HF_TOKEN`` or huggingface_hub's stored login, if any); public ones
            need none.
        timeout: seconds a Hub request may wait to connect or for the next bytes of an answer (retried once).

    Raises:
        StoreError: no store there (no manifest nor data files, unknown repo or revision); `HubUnavailable` (a
            StoreError) when the Hub cannot be reached.
    """
    return Store(open_files(location, token, timeout), str(location), cache_bytes)
