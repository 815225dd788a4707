"""The precompute job's text maps: for a model with a text tower, every box label of every image is a prompt (through
the run's templates); its text maps are stored (``textmaps`` table) and scored against the boxes of that label only,
with every metric (``metrics`` rows whose ``prompt`` is the label) and the baselines on the same boxes (``baselines``
rows with that ``prompt``). Image maps keep ``prompt`` "".

Only public scoring functions are called (`writer.score_tables`, `writer.baseline_rows`); nothing here changes how a
map is scored. Like the image maps (``unit._scores``), text maps and their baselines are scored by the batched scorer
on the device the text maps were computed on (``vitattn.metrics.batched.score_maps``, equal to the numpy reference
to 1e-5): on a GPU the labels' scoring no longer falls back to the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import pyarrow as pa

from vitattn.metrics import FUSED_HEAD
from vitattn.store import writer
from vitattn.store.layout import SCHEMAS
from vitattn.store.quantize import to_float16
from vitattn.text.compute import text_maps


def labels_of(record) -> list[str]:
    """The distinct non-empty box labels of an image, sorted: its prompts."""
    return sorted({b.label for b in record.boxes if getattr(b, "label", "")})


def vocabulary(records) -> list[str]:
    """Every label of an image set (what the manifest records as the text vocabulary)."""
    return sorted({label for r in records for label in labels_of(r)})


def templates_of(config) -> str | None:
    return None if config.templates == "none" else config.templates


def settings(config, name: str) -> dict:
    """What a model's text tables depend on (empty for a model without text maps, so its digest is unchanged)."""
    methods = config.text_methods_of(name)
    return {"text": {"methods": list(methods), "templates": config.templates}} if methods else {}


def text_tables(config, model, records: Sequence, rgbs: Sequence, grids: Sequence[tuple[int, int]]) -> dict:
    """``textmaps`` of a unit and its text ``metrics`` and ``baselines`` rows (to be appended to the unit's)."""
    from vitattn.metrics.batched import score_maps

    name, methods = model.spec.name, config.text_methods_of(model.spec.name)
    scorer = partial(score_maps, device=model.device)
    maps, metrics, baselines = [], [], []
    for record, rgb, grid in zip(records, rgbs, grids, strict=True):
        labels = labels_of(record)
        if not labels:
            continue
        x = model.transform(rgb)[None].to(model.device)  # (1, 3, S, S): each image has its own prompts
        result = text_maps(model, x, labels, templates_of(config), methods)[0]
        for label in labels:
            rows = [
                (m, layer, FUSED_HEAD, to_float16(result.map(m, layer, label), f"{name}/{m}/{label}"))
                for m in methods
                for layer in result.layers(m)
            ]
            maps += [(record.id, m, layer, label, values) for m, layer, _, values in rows]
            boxes = [b for b in record.boxes if b.label == label]
            scored, _ = writer.score_tables(name, [record.id], [rows], [boxes], config.resolution, scorer, prompt=label)
            metrics.append(scored)
            base = writer.baseline_rows(record.id, boxes, np.asarray(rgb), grid, config.resolution, scorer)
            baselines.append(writer.baselines_table(name, base, prompt=label))
    return {
        "textmaps": textmaps_table(name, maps),
        "metrics": _concat(metrics, "metrics"),
        "baselines": _concat(baselines, "baselines"),
    }


def textmaps_table(model: str, rows: Sequence[tuple]) -> pa.Table:
    """``rows``: ``(image_id, method, layer, prompt, float16 [gh, gw])``."""
    return writer.keyed_maps_table("textmaps", model, rows, "prompt")


def _concat(tables: list[pa.Table], name: str) -> pa.Table:
    return pa.concat_tables(tables) if tables else SCHEMAS[name].empty_table()


def read_text_map(table: pa.Table, image_id: str, method: str, layer: int, prompt: str) -> np.ndarray:
    """One map of a ``textmaps`` table, ``(gh, gw)`` float32."""
    mask = [
        r == (image_id, method, layer, prompt)
        for r in zip(*(table.column(c).to_pylist() for c in ("image_id", "method", "layer", "prompt")), strict=True)
    ]
    hits = [i for i, hit in enumerate(mask) if hit]
    if len(hits) != 1:
        raise ValueError(f"{len(hits)} text maps for {(image_id, method, layer, prompt)}")
    row = table.slice(hits[0], 1)
    gh, gw = row.column("grid_h")[0].as_py(), row.column("grid_w")[0].as_py()
    return np.asarray(row.column("values")[0].as_py(), dtype=np.float32).reshape(gh, gw)


__all__ = ["labels_of", "settings", "text_tables", "textmaps_table", "vocabulary", "read_text_map"]
