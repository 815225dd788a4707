"""A manifest rebuilt from the data files, for a store whose ``manifest.json`` is missing or cannot be read.

Every data file carries the description of the unit of work that wrote it (its ``vitattn`` Parquet metadata): the
chunk, its image ids and, in a model's files, the model's manifest entry. Reading the footers of the images files
(and of one maps file per model) is enough to serve the store again; what only the manifest held (the source, when
it was made) is lost. On the Hub, a footer is one range request.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pyarrow.parquet as pq

from vitattn.store.layout import FORMAT, METADATA_KEY, SCHEMA_VERSION, file_parts, table_path


def rebuild_manifest(listing: dict[str, int], open_file: Callable) -> tuple[dict, dict[str, int]] | None:
    """The manifest and the chunk of each image, from the files in ``listing`` (opened with ``open_file(rel)``);
    None when no data file describes its images."""
    parts = {rel: p for rel in sorted(listing) if (p := file_parts(rel)) is not None}
    models = sorted({model for _, model, _ in parts.values() if model is not None})
    chunk_ids: dict[int, list[str]] = {}
    versions = set()
    for chunk in sorted({c for _, _, c in parts.values()}):
        for rel in [table_path("images", chunk)] + [table_path("maps", chunk, m) for m in models]:
            unit = _unit(rel, listing, open_file)
            if unit is not None and unit.get("chunk") == chunk and isinstance(unit.get("images"), list):
                chunk_ids[chunk] = [str(i) for i in unit["images"]]
                versions.add(unit.get("schema_version"))
                break
    if not chunk_ids:
        return None
    entries = {}
    for model in models:
        for chunk in sorted(chunk_ids):
            unit = _unit(table_path("maps", chunk, model), listing, open_file)
            if unit is not None and isinstance(unit.get("info"), dict):
                entries[model] = unit["info"]
                break
    ids = sorted(i for chunk_list in chunk_ids.values() for i in chunk_list)
    manifest = {
        "format": FORMAT,
        "schema_version": versions.pop() if len(versions) == 1 else SCHEMA_VERSION,
        "chunk_size": max(len(v) for v in chunk_ids.values()),
        "random_weights": any(bool(e.get("random_weights")) for e in entries.values()),
        "models": entries,
        "images": ids,
    }
    return manifest, {image_id: chunk for chunk, chunk_list in chunk_ids.items() for image_id in chunk_list}


def _unit(rel: str, listing: dict[str, int], open_file: Callable) -> dict | None:
    if rel not in listing:
        return None
    try:
        with open_file(rel) as source:
            metadata = pq.read_metadata(source).metadata or {}
        return json.loads(metadata[METADATA_KEY])
    except Exception:  # noqa: BLE001 - a damaged or unreachable file only means this one tells nothing
        return None
