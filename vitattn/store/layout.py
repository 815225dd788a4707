"""The store's layout: files, table schemas, chunks and the manifest. Shared by the writer and the reader.

A store is a folder (or a Hugging Face dataset repo holding the same files)::

    README.md                                  dataset card: one `configs:` entry per table
    manifest.json                              schema version, models, image ids, vitattn version, when it was made
    images/images-00000.parquet                images of chunk 0 (ids 0 .. chunk_size - 1 in sorted order), ...
    models/<model>/maps-00000.parquet          every map of chunk 0 under <model>
    models/<model>/features-00000.parquet      patch tokens
    models/<model>/metrics-00000.parquet       every metric of every map (METRICS_COLUMNS)
    models/<model>/boxes-00000.parquet         per-box IoU (BOX_COLUMNS)
    models/<model>/baselines-00000.parquet     random / center / saliency metrics on <model>'s grid
    models/<model>/predictions-00000.parquet   top-5 ImageNet predictions (classifiers only)
    models/<model>/headstats-00000.parquet     per-head attention distance, CLS entropy, prefix share (ViTs only)
    models/<model>/faithfulness-00000.parquet  deletion / insertion curves of fused maps (--faithfulness-layers)
    models/<model>/sanity-00000.parquet        randomisation curves of the set's first images (--sanity-images; the
                                               files of later chunks hold no rows)
    models/<model>/textmaps-00000.parquet      text maps of each image's box labels (models with a text tower)

Images are split into chunks of ``chunk_size`` consecutive ids (sorted); a chunk of one model is the unit of work
of the precompute job, so a file is either complete or absent, and adding a model adds its own folder only.
Rows are sorted by their look-up key. Maps and images have one row group per image, features one per
(image, layer): a view reads a footer and one row group.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

import pyarrow as pa

from vitattn.metrics import METRIC_NAMES

SCHEMA_VERSION = 1
FORMAT = "vitattn-store"
MANIFEST = "manifest.json"
CARD = "README.md"
METADATA_KEY = b"vitattn"  # Parquet key-value metadata of every data file: which unit of work wrote it
MODEL_TABLES = ("maps", "features", "metrics", "boxes", "baselines")  # every model has these
CLASSIFIER_TABLES = ("predictions",)  # models with an ImageNet head (manifest entry: "predictions": true) also these
OPTIONAL_TABLES = ("headstats", "faithfulness", "sanity", "textmaps")  # a model has one when its manifest entry says so
TABLES = ("images", *MODEL_TABLES, *CLASSIFIER_TABLES, *OPTIONAL_TABLES)
FLOAT16_MAX = 65504.0
_FILE = re.compile(
    r"^(?:images/images|models/(?P<model>[A-Za-z0-9][A-Za-z0-9._-]*(?:@[A-Za-z0-9][A-Za-z0-9._-]*)?)"  # clip@lora
    r"/(?P<table>[a-z]+))-(\d{5})\.parquet$"
)


class StoreError(ValueError):
    """Something asked of a store is not in it, or the store cannot be read; the message names what is missing."""


class HubUnavailable(StoreError):
    """The Hub could not be reached or did not answer a read (network down, timeout, 5xx): a later try may work."""


def table_path(table: str, chunk: int, model: str | None = None) -> str:
    """The path of one file, relative to the store root (always with ``/``)."""
    if table == "images":
        return f"images/images-{chunk:05d}.parquet"
    if table not in TABLES or model is None:
        raise ValueError(f"unknown table {table!r} (or no model given); tables: {', '.join(TABLES)}")
    return f"models/{model}/{table}-{chunk:05d}.parquet"


def is_store_file(path: str) -> bool:
    """Whether ``path`` (relative, ``/``-separated) is a file of the layout: card, manifest or a data file."""
    if path in (CARD, MANIFEST):
        return True
    match = _FILE.match(path)
    return match is not None and (match["table"] is None or match["table"] in TABLES[1:])


def file_parts(path: str) -> tuple[str, str | None, int] | None:
    """``(table, model or None, chunk)`` of a data file's path, or None when ``path`` is no data file."""
    match = _FILE.match(path)
    if match is None or not is_store_file(path):
        return None
    return (match["table"] or "images", match["model"], int(match[3]))


def model_tables(entry: dict) -> tuple[str, ...]:
    """The tables a model's manifest entry says it has (stores made before predictions existed lack the key)."""
    return (
        MODEL_TABLES
        + (CLASSIFIER_TABLES if entry.get("predictions") else ())
        + tuple(t for t in OPTIONAL_TABLES if entry.get(t))
    )


def chunks(image_ids: Sequence[str], chunk_size: int) -> list[tuple[str, ...]]:
    """The sorted ids cut into consecutive chunks of ``chunk_size``."""
    ids = sorted(image_ids)
    return [tuple(ids[i : i + chunk_size]) for i in range(0, len(ids), chunk_size)]


def digest(value: object) -> str:
    """A short stable hash of a json-able value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _schema(fields: list[tuple[str, pa.DataType]], hf_features: dict | None = None) -> pa.Schema:
    metadata = None
    if hf_features:  # datasets / the Hub's viewer read column types from here (an Image column shows as images)
        metadata = {b"huggingface": json.dumps({"info": {"features": hf_features}}).encode()}
    return pa.schema(fields, metadata=metadata)


SANITY_SIMILARITIES = ("spearman", "spearman_abs", "ssim", "hog_similarity")  # vitattn.sanity.SIMILARITY_NAMES
FAITHFULNESS_AUCS = ("auc_deletion", "auc_insertion", "abpc", "auc_random_deletion", "auc_random_insertion")
FAITHFULNESS_CURVES = ("fractions", "deletion", "insertion", "random_deletion", "random_insertion")
_KEYS = [("image_id", pa.string()), ("model", pa.string()), ("method", pa.string())]
_LAYER_HEAD = [("layer", pa.int32()), ("head", pa.int32())]
_GRID = [("grid_h", pa.int32()), ("grid_w", pa.int32())]
_METRICS = [(name, pa.float64()) for name in METRIC_NAMES]
BOX_TYPE = pa.struct(
    [("x0", pa.float64()), ("y0", pa.float64()), ("x1", pa.float64()), ("y1", pa.float64())]
    + [("label", pa.string()), ("group", pa.string()), ("extra", pa.string())]
)
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # the `datasets.Image` storage type

SCHEMAS: dict[str, pa.Schema] = {
    "images": _schema(
        [("image_id", pa.string()), ("image", IMAGE_TYPE), ("width", pa.int32()), ("height", pa.int32())]
        + [("boxes", pa.list_(BOX_TYPE)), ("meta", pa.string())],  # meta: json object
        {"image": {"_type": "Image"}},
    ),
    "maps": _schema([*_KEYS, *_LAYER_HEAD, *_GRID, ("values", pa.list_(pa.float16()))]),  # values: gh * gw, row-major
    "features": _schema(
        [("image_id", pa.string()), ("model", pa.string()), ("layer", pa.int32()), *_GRID]
        + [("dim", pa.int32()), ("values", pa.list_(pa.float16()))]  # values: (gh * gw) * dim, row-major
    ),
    # prompt: the box label a text map was asked for (vitattn.text), scored against that label's boxes; "" for an
    # image map (null in files written before text maps existed)
    "metrics": _schema([*_KEYS, *_LAYER_HEAD, *_METRICS, ("prompt", pa.string())]),
    "boxes": _schema([*_KEYS, *_LAYER_HEAD, ("box", pa.int32()), ("label", pa.string()), ("iou", pa.float64())]),
    "baselines": _schema(  # prompt: a label's baselines, on that label's boxes only; "" for all the image's boxes
        [("image_id", pa.string()), ("model", pa.string()), *_GRID, ("baseline", pa.string())]
        + _METRICS
        + [("prompt", pa.string())]
    ),
    "predictions": _schema(  # rank 0 is the top-1; target: the class gradient methods explain (null: none computed)
        [("image_id", pa.string()), ("model", pa.string()), ("rank", pa.int32()), ("label", pa.string())]
        + [("prob", pa.float64()), ("target", pa.int32())]
    ),
    "headstats": _schema(  # per head of a ViT (vitattn/headstats.py); entropy, prefix_share NaN where undefined
        [("image_id", pa.string()), ("model", pa.string()), *_LAYER_HEAD]
        + [("distance_px", pa.float32()), ("entropy", pa.float32()), ("prefix_share", pa.float32())]
    ),
    "faithfulness": _schema(  # deletion / insertion of the fused map of a method at a layer (vitattn/faithfulness.py)
        [*_KEYS, ("layer", pa.int32()), ("score", pa.string()), ("target", pa.int32()), ("mode", pa.string())]
        + [(name, pa.float64()) for name in FAITHFULNESS_AUCS]
        + [(name, pa.list_(pa.float32())) for name in FAITHFULNESS_CURVES]
    ),
    "sanity": _schema(  # model-parameter randomisation of a method's fused map (vitattn.sanity), one row per step
        [*_KEYS, ("layer", pa.int32()), ("order", pa.string()), ("step", pa.int32()), ("stage", pa.string())]
        + [(name, pa.float64()) for name in SANITY_SIMILARITIES]
        + [*_GRID, ("values", pa.list_(pa.float16()))]  # the map at that step, gh * gw row-major
    ),
    "textmaps": _schema(  # values: gh * gw float16, row-major; head fused (vitattn.text)
        [*_KEYS, ("layer", pa.int32()), ("prompt", pa.string()), *_GRID, ("values", pa.list_(pa.float16()))]
    ),
}
SORT_KEYS = {
    "images": ("image_id",),
    "maps": ("image_id", "method", "layer", "head"),
    "features": ("image_id", "layer"),
    "metrics": ("image_id", "method", "layer", "head", "prompt"),
    "boxes": ("image_id", "method", "layer", "head", "box"),
    "baselines": ("image_id", "baseline", "prompt"),
    "predictions": ("image_id", "rank"),
    "headstats": ("image_id", "layer", "head"),
    "faithfulness": ("image_id", "method", "layer"),
    "sanity": ("image_id", "method", "step"),
    "textmaps": ("image_id", "method", "layer", "prompt"),
}
FEATURE_SCHEMAS = {  # float16, or int8 (raw bytes: Parquet has no 8-bit type) with a float32 scale per token
    "float16": SCHEMAS["features"],
    "int8": _schema(
        [("image_id", pa.string()), ("model", pa.string()), ("layer", pa.int32()), *_GRID, ("dim", pa.int32())]
        + [("values", pa.binary()), ("scale", pa.list_(pa.float32()))]  # values: int8 bytes, (gh * gw) x dim
    ),
}
ROW_GROUP_KEYS = {
    "images": ("image_id",),
    "maps": ("image_id",),
    "features": ("image_id", "layer"),
    "textmaps": ("image_id",),
}  # else one group
