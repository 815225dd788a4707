"""Parquet row groups and tables as numpy: a row group of maps, of features or of an image decoded for views,
whole tables as columns, and Parquet files opened for random access with an index of their row groups."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from vitattn.boxes import LabeledBox
from vitattn.datasets import AnnotatedImage
from vitattn.store.layout import SCHEMAS
from vitattn.store.quantize import dequantize_int8


@dataclass(frozen=True)
class StoredImage:
    """An image of the store, upright RGB, with its boxes (normalized ``(x0, y0, x1, y1)``) and metadata."""

    id: str
    image: Image.Image
    width: int
    height: int
    boxes: tuple[LabeledBox, ...]
    meta: dict


@dataclass(frozen=True)
class MapGroup:
    """The maps of one image under one model: flat float16 values and (method, layer, head) -> slice, grid."""

    values: np.ndarray  # [sum of gh * gw] float16
    index: dict[tuple[str, int, int], tuple[int, int, int, int]]  # key -> (start, stop, gh, gw)

    @property
    def nbytes(self) -> int:
        return self.values.nbytes + 100 * len(self.index)


class ParquetHandle:
    """An open Parquet file: its parsed footer, which row group holds each key, and a lock for reads."""

    def __init__(self, source, keys: Sequence[str]):
        self.source = source
        self.file = pq.ParquetFile(source, pre_buffer=True)
        self.lock = threading.Lock()
        self.index = row_group_index(self.file, keys) if keys else {}

    def read(self, group: int | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """One row group, or the whole file; all columns or only ``columns``."""
        columns = list(columns) if columns is not None else None
        with self.lock:
            return self.file.read(columns) if group is None else self.file.read_row_group(group, columns)

    def close(self) -> None:
        self.source.close()


def row_group_index(file: pq.ParquetFile, keys: Sequence[str]) -> dict[tuple, int]:
    """Key values -> row group, from the footer's min/max statistics (or the key columns when they are missing)."""
    metadata = file.metadata
    columns = [file.schema_arrow.get_field_index(k) for k in keys]
    index = {}
    for i in range(metadata.num_row_groups):
        stats = [metadata.row_group(i).column(c).statistics for c in columns]
        if all(s is not None and s.has_min_max and s.min == s.max for s in stats):
            index[tuple(s.min for s in stats)] = i
        else:
            table = file.read_row_group(i, columns=list(keys))
            for row in set(zip(*(table.column(k).to_pylist() for k in keys), strict=True)):
                index[row] = i
    return index


def conform(parts: list[pa.Table], table: str) -> pa.Table:
    """Parts of a table as one, with this version's columns first: a column that files written by another
    version lack (a metric added since) is null there (NaN in numpy); columns this version does not know are kept.
    """
    schema = SCHEMAS[table]
    whole = pa.concat_tables(parts, promote_options="permissive") if parts else schema.empty_table()
    for field in schema:
        if field.name not in whole.column_names:
            whole = whole.append_column(field, pa.nulls(whole.num_rows, field.type))
    known = [f.name for f in schema]
    whole = whole.select(known + [c for c in whole.column_names if c not in known])
    return whole.cast(pa.schema([schema.field(c) if c in known else whole.schema.field(c) for c in whole.column_names]))


def decode_maps(table: pa.Table) -> MapGroup:
    values = table.column("values").combine_chunks()
    offsets = values.offsets.to_numpy()
    keys = zip(*(table.column(c).to_pylist() for c in ("method", "layer", "head", "grid_h", "grid_w")), strict=True)
    index = {
        (m, layer, h): (int(offsets[i]), int(offsets[i + 1]), gh, gw) for i, (m, layer, h, gh, gw) in enumerate(keys)
    }
    return MapGroup(values.values.to_numpy(zero_copy_only=False), index)


@dataclass(frozen=True)
class FeatureGroup:
    """The features of one (image, layer) as stored (kept so in the cache: int8 takes a quarter of float32)."""

    values: np.ndarray  # [N, D] float16, or int8
    scale: np.ndarray | None  # [N] float32 per token for int8, else None

    @property
    def nbytes(self) -> int:
        return self.values.nbytes + (0 if self.scale is None else self.scale.nbytes)

    def float32(self) -> np.ndarray:
        """A fresh ``[N, D]`` float32 array."""
        if self.scale is None:
            return self.values.astype(np.float32)
        return dequantize_int8(self.values, self.scale)


def decode_features(table: pa.Table) -> FeatureGroup:
    if table.num_rows != 1:
        raise ValueError(f"expected one row of features per (image, layer), got {table.num_rows}")
    n = table.column("grid_h")[0].as_py() * table.column("grid_w")[0].as_py()
    dim = table.column("dim")[0].as_py()
    scale = None
    if "scale" in table.column_names:  # int8 bytes with one scale per token
        values = np.frombuffer(table.column("values")[0].as_py(), dtype=np.int8).reshape(n, dim)
        scale = table.column("scale").combine_chunks().values.to_numpy(zero_copy_only=False)
        if scale.shape != (n,):
            raise ValueError(f"features: {scale.shape[0]} scales for {n} tokens")
    else:
        values = table.column("values").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(n, dim)
    values.flags.writeable = False
    return FeatureGroup(values, scale)


def decode_image(table: pa.Table) -> StoredImage:
    row = table.to_pylist()[0]
    boxes = tuple(
        LabeledBox(
            (b["x0"], b["y0"], b["x1"], b["y1"]), b["label"] or "", b["group"] or "", json.loads(b["extra"] or "{}")
        )
        for b in row["boxes"]
    )
    meta = json.loads(row["meta"] or "{}")
    record = AnnotatedImage(row["image_id"], boxes, meta, None, data=row["image"]["bytes"])
    return StoredImage(row["image_id"], record.load(), row["width"], row["height"], boxes, meta)


def decode_textmaps(table: pa.Table) -> MapGroup:
    """One image's text maps, indexed by (method, layer, prompt)."""
    values = table.column("values").combine_chunks()
    offsets = values.offsets.to_numpy()
    keys = zip(*(table.column(c).to_pylist() for c in ("method", "layer", "prompt", "grid_h", "grid_w")), strict=True)
    index = {(m, la, p): (int(offsets[i]), int(offsets[i + 1]), gh, gw) for i, (m, la, p, gh, gw) in enumerate(keys)}
    return MapGroup(values.values.to_numpy(zero_copy_only=False), index)


DECODERS = {"maps": decode_maps, "features": decode_features, "images": decode_image, "textmaps": decode_textmaps}


def columns(table: pa.Table) -> dict[str, np.ndarray]:
    """Table columns as numpy: numbers as they are, strings as numpy ``str`` arrays (through a dictionary)."""
    out = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            encoded = column.dictionary_encode()
            words = np.asarray(encoded.dictionary.to_pylist(), dtype=str)
            out[name] = words[encoded.indices.to_numpy(zero_copy_only=False)] if len(words) else np.asarray([], str)
        else:
            out[name] = column.to_numpy(zero_copy_only=False)
    return out
