"""Writing a store: tables from analyses, images and scores, written atomically as sorted Parquet files.

Numpy and pyarrow only (no torch): the precompute job computes the `Analysis` values and hands them here.
Every map is rounded to float16 before it is scored, so the metrics table agrees with the maps the store holds.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vitattn.analysis import Analysis
from vitattn.boxes import LabeledBox
from vitattn.metrics import FUSED_HEAD, METRIC_NAMES, baseline_metrics, score_batch
from vitattn.store.layout import (
    FAITHFULNESS_AUCS,
    FAITHFULNESS_CURVES,
    FEATURE_SCHEMAS,
    METADATA_KEY,
    ROW_GROUP_KEYS,
    SANITY_SIMILARITIES,
    SCHEMAS,
    SORT_KEYS,
)
from vitattn.store.quantize import quantize_int8, to_float16

WRITE_LOG = "VITATTN_WRITE_LOG"  # environment variable: a file where every data file written is logged
SCORE_BATCH = 128  # maps scored at once (score_batch needs ~1.5 MB per map at R = 224)


def _flat_list(arrays: Sequence[np.ndarray], type: pa.DataType | None = None) -> pa.ListArray:
    """One list<type> row per array (flattened row-major); float16 by default."""
    type = type or pa.float16()
    sizes = np.array([a.size for a in arrays], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    flat = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0, type.to_pandas_dtype())
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=type))


def map_rows(analysis: Analysis) -> list[tuple[str, int, int, np.ndarray]]:
    """Every map of an analysis as ``(method, layer, head, float16 [gh, gw])``, fused first (head -1), sorted."""
    rows = []
    for method in sorted(analysis.methods):
        for layer in analysis.layers(method):
            what = f"{analysis.model}/{method}/layer {layer}"
            rows.append((method, layer, FUSED_HEAD, to_float16(analysis.map(method, layer), what)))
            if analysis.has_heads(method):
                heads = to_float16(analysis.heads(method, layer), what)
                rows += [(method, layer, h, heads[h]) for h in range(heads.shape[0])]
    return rows


def maps_table(model: str, image_ids: Sequence[str], rows: Sequence[Sequence[tuple]]) -> pa.Table:
    """The maps table of some images: ``rows[i]`` are ``map_rows`` of ``image_ids[i]``."""
    flat = [(image_id, *row) for image_id, per_image in zip(image_ids, rows, strict=True) for row in per_image]
    return keyed_maps_table("maps", model, flat, "head")


def keyed_maps_table(table: str, model: str, rows: Sequence[tuple], key: str) -> pa.Table:
    """A table of maps (``maps``: keyed by head, ``textmaps``: by prompt) of one model: ``rows`` are
    ``(image_id, method, layer, <key>, float16 [gh, gw])``."""
    values = [r[4] for r in rows]
    return pa.Table.from_pydict(
        {
            "image_id": [r[0] for r in rows],
            "model": [model] * len(rows),
            "method": [r[1] for r in rows],
            "layer": [r[2] for r in rows],
            key: [r[3] for r in rows],
            "grid_h": [v.shape[0] for v in values],
            "grid_w": [v.shape[1] for v in values],
            "values": _flat_list(values),
        },
        schema=SCHEMAS[table],
    )


def features_table(
    model: str, image_ids: Sequence[str], analyses: Sequence[Analysis], layers: Sequence[int], dtype: str = "float16"
) -> pa.Table:
    """Patch tokens ``(gh * gw, D)`` of ``layers`` of each image, as ``dtype`` (``FEATURE_SCHEMAS``): float16, or
    int8 with a per-token scale (``quantize.py``)."""
    pairs = zip(image_ids, analyses, strict=True)
    rows = [(i, layer, a.feature_grid(layer), a.features(layer)) for i, a in pairs for layer in layers]
    columns = {
        "image_id": [r[0] for r in rows],
        "model": [model] * len(rows),
        "layer": [r[1] for r in rows],
        "grid_h": [r[2][0] for r in rows],
        "grid_w": [r[2][1] for r in rows],
        "dim": [r[3].shape[1] for r in rows],
    }
    if dtype == "float16":
        columns["values"] = _flat_list([to_float16(r[3], f"{model}/features/layer {r[1]}") for r in rows])
    elif dtype == "int8":
        quantized = [quantize_int8(r[3]) for r in rows]  # [(int8 [N, D], float32 [N])]
        columns["values"] = [q.tobytes() for q, _ in quantized]  # row-major
        columns["scale"] = _flat_list([s for _, s in quantized], pa.float32())
    else:
        raise ValueError(f"feature dtype {dtype!r}: expected one of {', '.join(FEATURE_SCHEMAS)}")
    return pa.Table.from_pydict(columns, schema=FEATURE_SCHEMAS[dtype])


def score_tables(
    model: str,
    image_ids: Sequence[str],
    rows: Sequence[Sequence[tuple]],
    boxes: Sequence,
    resolution: int,
    scorer: Callable = score_batch,
    *,
    prompt: str = "",
) -> tuple[pa.Table, pa.Table]:
    """The metrics table (every metric of every map) and the per-box table of some images.

    Maps are scored as stored (float16), grouped by grid, ``SCORE_BATCH`` at a time with ``scorer``: the numpy
    reference ``score_batch``, or the batched torch scorer (``vitattn.metrics.batched.score_maps`` on a device;
    the precompute job's) that computes the same numbers. ``prompt``: the metrics table's prompt column (the label
    of text maps scored against that label's boxes).
    """
    metrics: dict[str, list] = {c: [] for c in SCHEMAS["metrics"].names}
    per_box: dict[str, list] = {c: [] for c in SCHEMAS["boxes"].names}
    for image_id, per_image, image_boxes in zip(image_ids, rows, boxes, strict=True):
        labels = [b.label if isinstance(b, LabeledBox) else "" for b in image_boxes]
        for batch in _batches(per_image):
            scores = scorer(np.stack([r[3] for r in batch]).astype(np.float32), image_boxes, resolution)
            for j, (method, layer, head, _) in enumerate(batch):
                keys = {"image_id": image_id, "model": model, "method": method, "layer": layer, "head": head}
                for k, v in keys.items():
                    metrics[k].append(v)
                    per_box[k] += [v] * len(labels)
                for name in METRIC_NAMES:
                    metrics[name].append(float(scores.metrics[name][j]))
                metrics["prompt"].append(prompt)
                per_box["box"] += range(len(labels))
                per_box["label"] += labels
                per_box["iou"] += scores.box_iou[j].tolist()
    return _table("metrics", metrics), _table("boxes", per_box)


def _batches(rows: Sequence[tuple]) -> list[list[tuple]]:
    """Rows grouped by grid shape, in slices of at most SCORE_BATCH (order kept within a grid)."""
    by_grid: dict[tuple[int, int], list[tuple]] = {}
    for row in rows:
        by_grid.setdefault(row[3].shape, []).append(row)
    return [group[i : i + SCORE_BATCH] for group in by_grid.values() for i in range(0, len(group), SCORE_BATCH)]


def baseline_rows(
    image_id: str,
    boxes: Sequence,
    rgb: np.ndarray,
    grid: tuple[int, int],
    resolution: int,
    scorer: Callable = score_batch,
) -> list:
    """``(image_id, grid_h, grid_w, baseline, *METRIC_NAMES)`` rows of the random, center and saliency baselines."""
    scores = baseline_metrics(boxes, image=rgb, resolution=resolution, grid=tuple(grid), scorer=scorer)
    return [(image_id, *grid, name, *(values[m] for m in METRIC_NAMES)) for name, values in sorted(scores.items())]


def baselines_table(model: str, rows: Sequence[tuple], *, prompt: str = "") -> pa.Table:
    """``prompt``: the label whose boxes the rows were computed on ("" for all boxes of the image)."""
    columns = ("image_id", "grid_h", "grid_w", "baseline", *METRIC_NAMES)
    data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
    return _table("baselines", {**data, "model": [model] * len(rows), "prompt": [prompt] * len(rows)})


def predictions_table(model: str, image_ids: Sequence[str], analyses: Sequence[Analysis]) -> pa.Table:
    """The top-5 predictions of each image (none for a model without a classifier head), rank 0 first, with the
    class its gradient methods explain (``target``; None when no gradient method was computed)."""
    rows = [
        (image_id, rank, label, prob, a.target)
        for image_id, a in zip(image_ids, analyses, strict=True)
        for rank, (label, prob) in enumerate(a.predictions or ())
    ]
    columns = ("image_id", "rank", "label", "prob", "target")
    data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
    return _table("predictions", {**data, "model": [model] * len(rows)})


def headstats_table(model: str, image_ids: Sequence[str], analyses: Sequence[Analysis]) -> pa.Table:
    """Per-head statistics of each image (``Analysis.head_stats``: ``(L, H)`` arrays), one row per (layer, head)."""
    data: dict[str, list] = {c: [] for c in SCHEMAS["headstats"].names}
    for image_id, a in zip(image_ids, analyses, strict=True):
        stats = {k: np.asarray(v, dtype=np.float32) for k, v in a.head_stats.items()}  # (L, H) each
        n_layers, n_heads = stats["distance_px"].shape
        data["image_id"] += [image_id] * (n_layers * n_heads)
        data["layer"] += np.repeat(np.arange(n_layers), n_heads).tolist()
        data["head"] += np.tile(np.arange(n_heads), n_layers).tolist()
        for name in ("distance_px", "entropy", "prefix_share"):
            data[name] += stats[name].ravel().tolist()
    return _table("headstats", {**data, "model": [model] * len(data["image_id"])})


def faithfulness_table(model: str, rows: Sequence[tuple[str, str, int, object]]) -> pa.Table:
    """``(image_id, method, layer, Faithfulness)`` rows: the scalars, and the curves as float32 lists."""
    data: dict[str, list] = {"image_id": [r[0] for r in rows], "method": [r[1] for r in rows]}
    data["layer"] = [r[2] for r in rows]
    for name in ("score", "target", "mode", *FAITHFULNESS_AUCS):
        data[name] = [getattr(r[3], name) for r in rows]
    for name in FAITHFULNESS_CURVES:
        data[name] = [np.asarray(getattr(r[3], name), dtype=np.float32) for r in rows]
    return _table("faithfulness", {**data, "model": [model] * len(rows)})


def sanity_table(model: str, rows: Sequence[tuple[str, str, int, Sequence[Mapping]]]) -> pa.Table:
    """``(image_id, method, layer, steps)`` with ``steps`` the rows of `vitattn.sanity.model_randomization`."""
    data: dict[str, list] = {c: [] for c in SCHEMAS["sanity"].names}
    for image_id, method, layer, steps in rows:
        for s in steps:
            gh, gw = s["map"].shape
            data["image_id"].append(image_id)
            data["method"].append(method)
            data["layer"].append(int(layer))
            for name in ("order", "step", "stage"):
                data[name].append(s[name])
            for name in SANITY_SIMILARITIES:  # undefined (a constant map): null, NaN when read
                data[name].append(None if np.isnan(s[name]) else float(s[name]))
            data["grid_h"].append(gh)
            data["grid_w"].append(gw)
            data["values"].append(to_float16(np.ravel(s["map"]), f"sanity map {model}/{method}/{s['stage']}"))
    return _table("sanity", {**data, "model": [model] * len(data["image_id"])})


def images_table(records: Sequence[tuple[str, bytes, int, int, Sequence[LabeledBox], Mapping]]) -> pa.Table:
    """``(image_id, encoded bytes, width, height, boxes, meta)`` per image; width and height of the upright image."""
    boxes = [
        [
            {"x0": b.box[0], "y0": b.box[1], "x1": b.box[2], "y1": b.box[3], "label": b.label, "group": b.group}
            | {"extra": json.dumps(b.extra, sort_keys=True, default=str)}
            for b in r[4]
        ]
        for r in records
    ]
    return _table(
        "images",
        {
            "image_id": [r[0] for r in records],
            "image": [{"bytes": r[1], "path": None} for r in records],
            "width": [r[2] for r in records],
            "height": [r[3] for r in records],
            "boxes": boxes,
            "meta": [json.dumps(dict(r[5]), sort_keys=True, default=str) for r in records],
        },
    )


def _table(name: str, columns: Mapping[str, Sequence]) -> pa.Table:
    schema = SCHEMAS[name]
    return pa.Table.from_pydict({c: columns[c] for c in schema.names}, schema=schema)


def write_table(path: Path, name: str, table: pa.Table, unit: Mapping) -> None:
    """Writes ``table`` (one of ``SCHEMAS``) to ``path`` atomically, sorted, with ``unit`` in its metadata.

    The file is written beside its destination under a temporary name and renamed into place, so ``path`` is
    either the complete file or what was there before. Rows are sorted by ``SORT_KEYS[name]``; each distinct
    ``ROW_GROUP_KEYS[name]`` value gets its own row group (one per image, or per (image, layer)).
    """
    write_bytes(path, encode_table(name, table, unit))


def encode_table(name: str, table: pa.Table, unit: Mapping) -> pa.Buffer:
    """The Parquet file of ``table`` in memory (what `write_table` writes): sorted, row groups, ``unit`` metadata."""
    table = table.sort_by([(k, "ascending") for k in SORT_KEYS[name]])
    metadata = {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(unit).encode()}
    table = table.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, table.schema, **_options(name, table.schema)) as writer:
        for start, stop in _group_bounds(table, ROW_GROUP_KEYS.get(name, ())):
            writer.write_table(table.slice(start, stop - start), row_group_size=max(1, stop - start))
    return sink.getvalue()


def write_bytes(path: Path, data) -> None:
    """``data`` to ``path`` atomically: a temporary file beside it, synced to disk, renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _log_write(path)
    finally:
        tmp.unlink(missing_ok=True)


def temporary(path: Path) -> Path:
    """The hidden name ``path`` is written under before it is renamed into place: host and process id, so that a
    cleanup removes only what a dead process of its own machine left (several machines may share one folder)."""
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def _log_write(path: Path) -> None:
    """Appends ``path`` to the file named by ``VITATTN_WRITE_LOG``, if set: an audit of every data file written
    as ``<pid> <path>`` lines (tests count writes with it across processes, e.g. the Ray engine's workers)."""
    log = os.environ.get(WRITE_LOG)
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {path}\n")


def _options(name: str, schema: pa.Schema) -> dict:
    """Writer options that keep footers small (a footer is read before any row group): statistics only on the
    sort keys (the reader finds row groups from them), dictionaries only where a row group has many rows."""
    one_row_groups = name in ("images", "features")  # one row per row group: a dictionary page only adds bytes
    strings = False if one_row_groups else [f.name for f in schema if pa.types.is_string(f.type)]
    compression = {leaf: "none" if leaf.startswith("image.") else "zstd" for leaf in _leaves(schema)}  # JPEG, PNG
    sorting = list(pq.SortingColumn.from_ordering(schema, [(k, "ascending") for k in SORT_KEYS[name]]))
    statistics = list(ROW_GROUP_KEYS.get(name, SORT_KEYS[name]))
    return dict(compression=compression, use_dictionary=strings, write_statistics=statistics, sorting_columns=sorting)


def _leaves(fields) -> list[str]:
    """The Parquet column paths of a schema's leaves (``values.list.element``, ``boxes.list.element.x0``, ...): per
    column options are keyed by them, not by the top-level names (a list column keyed ``values`` is left
    uncompressed)."""
    out = []
    for field in fields:
        if pa.types.is_list(field.type):
            out += [f"{field.name}.list.{leaf}" for leaf in _leaves([field.type.value_field.with_name("element")])]
        elif pa.types.is_struct(field.type):
            out += [f"{field.name}.{leaf}" for leaf in _leaves(list(field.type))]
        else:
            out.append(field.name)
    return out


def _group_bounds(table: pa.Table, keys: Sequence[str]) -> list[tuple[int, int]]:
    """``[start, stop)`` row ranges of equal ``keys`` in a sorted table; the whole table when ``keys`` is empty."""
    n = table.num_rows
    if not keys or n == 0:
        return [(0, n)]
    change = np.zeros(n, dtype=bool)  # [n] a new group starts here
    change[0] = True
    for key in keys:
        values = np.asarray(table.column(key).to_pylist(), dtype=object)
        change[1:] |= values[1:] != values[:-1]
    starts = np.flatnonzero(change).tolist()
    return list(zip(starts, [*starts[1:], n], strict=True))


def read_unit(path: Path) -> dict | None:
    """The unit metadata of a complete data file, or None when it is absent or unreadable (then it is redone)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
        return json.loads(metadata[METADATA_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None
