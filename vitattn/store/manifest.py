"""The manifest (``manifest.json``): what a store holds. Built by the precompute job, checked by the reader.

    {"format": "vitattn-store", "schema_version": 1, "vitattn_version": "0.1.0", "created": "2025-...Z",
     "source": "examples", "chunk_size": 32, "images": ["astronaut", ...], "images_digest": "...",
     "random_weights": true,
     "models": {"dinov2": {"checkpoint": "vit_base_patch14_reg4_dinov2.lvd142m", "random_weights": true,
                           "methods": ["cls", "mean", "rollout"], "layers": {"cls": [0, ..., 11], ...},
                           "heads": {"cls": 12, "rollout": 0, ...}, "num_layers": 12, "num_heads": 12,
                           "grid": [16, 16], "feature_layers": [0, ..., 11], ...}}}

``heads[method]`` is the number of per-head maps (0: the method fuses heads by definition, only ``head=None``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from vitattn.datasets import is_safe_id
from vitattn.specs import MODEL_NAME
from vitattn.store.layout import FORMAT, SCHEMA_VERSION, StoreError

MODEL_KEYS = ("checkpoint", "random_weights", "methods", "layers", "heads", "num_layers", "num_heads", "grid")
MODEL_KEYS += ("feature_layers",)
ORDER = ("format", "schema_version", "vitattn_version", "created", "source", "random_weights", "chunk_size")
ORDER += ("images_digest", "models", "images")


def ordered(manifest: dict) -> dict:
    """The manifest's keys in one fixed order (the same content always gives the same bytes)."""
    known = {k: manifest[k] for k in ORDER if k in manifest}
    return known | {k: v for k, v in manifest.items() if k not in known}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_manifest(data: bytes, where: str) -> tuple[dict, dict[str, int], list[str]]:
    """The manifest in ``data`` with unusable entries dropped, the chunk of each image, and the problems found.

    Chunks are counted over the sorted ids as written (``layout.chunks``), unsafe ids included, so dropping an id
    never moves the others to another file.

    Raises:
        StoreError: not a vitattn store manifest at all (not json, wrong format, no images or chunk size).
    """
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StoreError(f"{where}: manifest.json is not valid json ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StoreError(f"{where}: manifest.json is not a {FORMAT} manifest (format {_get(doc, 'format')!r})")
    problems = []
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        problems.append(
            f"unknown schema version {version!r} (this vitattn reads version {SCHEMA_VERSION}); views may fail"
        )
    chunk_size = doc.get("chunk_size")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise StoreError(f"{where}: manifest.json has no valid chunk_size (got {chunk_size!r})")
    images = doc.get("images")
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise StoreError(f"{where}: manifest.json has no list of image ids")
    safe = [i for i in images if is_safe_id(i)]
    chunk_of = {image_id: k // chunk_size for k, image_id in enumerate(sorted(images)) if is_safe_id(image_id)}
    if len(safe) != len(images):
        problems.append(f"manifest: {len(images) - len(safe)} image id(s) are not safe identifiers and were skipped")
    models, dropped = {}, []
    for name, entry in (doc.get("models") or {}).items():
        missing = [k for k in MODEL_KEYS if not isinstance(entry, dict) or k not in entry]
        if not (isinstance(name, str) and MODEL_NAME.match(name)) or missing:  # a base or a variant (clip@lora)
            dropped.append(f"{name!r}" + (f" (lacks {', '.join(missing)})" if missing else " (unsafe name)"))
        else:
            models[name] = entry
    if dropped:
        problems.append(f"manifest: model entries skipped: {'; '.join(dropped)}")
    return {**doc, "images": safe, "models": models}, chunk_of, problems


def merge_models(old: dict | None, new: dict, where: str) -> dict:
    """``new``'s manifest with the models of ``old`` that ``new`` lacks, when both describe the same images.

    Raises:
        StoreError: the two manifests hold different image sets or chunk sizes.
    """
    if not old:
        return new
    for key in ("images_digest", "chunk_size"):
        if old.get(key) != new.get(key):
            raise StoreError(
                f"{where} holds a store of another image set or chunk size ({key} {old.get(key)!r}, "
                f"this run {new.get(key)!r}); write to a new folder or repo, or use the same input and --chunk-size"
            )
    models = {**old.get("models", {}), **new["models"]}
    return ordered({**new, "models": models, "random_weights": any_random(models)})


def any_random(models: dict) -> bool:
    return any(bool(m.get("random_weights")) for m in models.values())


def _get(doc: object, key: str) -> object:
    return doc.get(key) if isinstance(doc, dict) else None
