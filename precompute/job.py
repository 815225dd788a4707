"""The job: plan units of work, skip those already done, compute the rest, write the manifest and the card.

A unit is the images of one chunk, or one model on one chunk (its maps, features, metrics, per-box and baseline
files). Every file is written atomically and carries the unit's description (image ids, a digest of their bytes
and boxes, the model settings) in its Parquet metadata; a unit is done when all its files carry the description
this run would write. So a run stopped at any point and started again computes only what is missing, and ends
with the same files as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

import vitattn
from precompute import text as text_job
from precompute.config import Config, parse_layers
from vitattn.datasets import AnnotatedImage, load_annotated
from vitattn.metrics import FUSED_HEAD, METRIC_NAMES
from vitattn.specs import get_spec
from vitattn.store import writer
from vitattn.store.card import render_card
from vitattn.store.layout import (
    CARD,
    CLASSIFIER_TABLES,
    FORMAT,
    MANIFEST,
    MODEL_TABLES,
    SCHEMA_VERSION,
    StoreError,
    chunks,
    digest,
    table_path,
)
from vitattn.store.manifest import any_random, merge_models, now, ordered, parse_manifest
from vitattn.variants import checkpoint_record

FAITHFULNESS_STEPS = 20  # deletion / insertion steps (RISE's curves; vitattn.faithfulness.STEPS)
FAITHFULNESS_MODE = "blur"  # what a removed cell becomes


@dataclass(frozen=True)
class Unit:
    """One unit of work: the images of a chunk (``model`` None), or one model on a chunk."""

    model: str | None
    chunk: int
    ids: tuple[str, ...]
    faithfulness: bool = False  # a model unit with a faithfulness table (--faithfulness-layers is not none)
    text: bool = False  # a model unit with text maps of the box labels (precompute/text.py)

    @property
    def tables(self) -> tuple[str, ...]:
        if self.model is None:
            return ("images",)
        spec = get_spec(self.model)
        return (
            MODEL_TABLES
            + (CLASSIFIER_TABLES if spec.classifier else ())
            + (("headstats",) if spec.family == "vit" else ())
            + (("faithfulness",) if self.faithfulness else ())
            + (("textmaps",) if self.text else ())
        )

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(table_path(t, self.chunk, self.model) for t in self.tables)


class Inputs:
    """The records of the image set, their encoded bytes and digests of chunks."""

    def __init__(self, records: list[AnnotatedImage]):
        self.records = {r.id: r for r in records}
        self._digests: dict[tuple[str, ...], str] = {}

    def encoded(self, image_id: str) -> bytes:
        record = self.records[image_id]
        return record.data if record.data is not None else Path(record.path).read_bytes()

    def chunk_digest(self, ids: tuple[str, ...]) -> str:
        """Ids, image bytes, boxes and metadata of a chunk: a unit is redone when any of them changes."""
        if ids not in self._digests:
            parts = [(i, hashlib.sha256(self.encoded(i)).hexdigest(), _boxes(self.records[i])) for i in ids]
            metas = [json.dumps(self.records[i].meta, sort_keys=True, default=str) for i in ids]
            self._digests[ids] = digest([parts, metas])
        return self._digests[ids]

    def images_digest(self) -> str:
        """Ids and boxes of the whole set (no bytes: cheap), to refuse mixing two image sets in one store."""
        return digest([(i, _boxes(r)) for i, r in sorted(self.records.items())])


def _boxes(record: AnnotatedImage) -> list:
    return [(b.box, b.label, b.group) for b in record.boxes]


def settings(config: Config, name: str) -> dict:
    """What a model's files depend on (the batch size and device only change rounding)."""
    return {
        "checkpoint": get_spec(name).timm_id,
        "random_weights": config.random_weights,
        "seed": config.seed if config.random_weights else None,
        "overrides": dict(config.overrides.get(name, {})),
        "methods": list(config.methods_of(name)),
        "feature_layers": config.feature_layers,
        "feature_dtype": config.feature_dtype,
        "headstats": get_spec(name).family == "vit",
        "faithfulness": _faithfulness_settings(config, name),
        "resolution": config.resolution,
        "metrics": list(METRIC_NAMES),  # a metric added to vitattn redoes the units
        **_variant_settings(config, name),
        **text_job.settings(config, name),
    }


def _faithfulness_settings(config: Config, name: str) -> dict | None:
    if config.faithfulness_layers == "none":
        return None
    layers = parse_layers(config.faithfulness_layers, config.num_layers(name))
    return {"layers": list(layers), "steps": FAITHFULNESS_STEPS, "mode": FAITHFULNESS_MODE}


def _variant_settings(config: Config, name: str) -> dict:
    """A variant's checkpoint (identity: content hash or Hub id; strategy, validation accuracy) and the weights it
    was trained from; nothing for a base model, so its digest stays as it was."""
    if name not in config.checkpoints:
        return {}
    record = checkpoint_record(config.checkpoints[name])
    return {"random_weights": record["random_weights"], "seed": record["seed"], "variant": record}


def load_model(config: Config, name: str) -> vitattn.Model:
    """The model of a run; random weights are seeded, so every run (and restart) builds the same ones."""
    import torch

    if config.random_weights:
        torch.manual_seed(config.seed)
    overrides = config.overrides.get(name, {})
    return vitattn.load_model(
        name,
        pretrained=not config.random_weights,
        device=config.device,
        checkpoint=config.checkpoints.get(name),
        **overrides,
    )


def run(config: Config, *, on_unit: Callable[[Unit], None] | None = None) -> dict:
    """Computes the store into ``config.output`` (resuming there); returns the manifest written.

    Args:
        config: the run.
        on_unit: called after each unit is written (tests interrupt a run from here).

    Raises:
        ValueError: an empty image set, or an output folder holding a store of another image set.
    """
    inputs = Inputs(load_annotated(config.source))
    if not inputs.records:
        raise ValueError(f"source {config.source!r} has no images")
    base = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "source": neutral_source(config.source),
        "chunk_size": config.chunk_size,
        "images": sorted(inputs.records),
        "images_digest": inputs.images_digest(),
    }
    if any(config.text_methods_of(m) for m in config.models):  # the labels text maps are computed for
        base["text_vocabulary"] = text_job.vocabulary(inputs.records.values())
    old = _read_manifest(config.output, inputs, base, config.chunk_size)
    merge_models(old, {**base, "models": {}}, str(config.output))  # refuses a folder holding another image set
    _clean_temporary(config.output)
    todo = [u for u in plan(config, base["images"]) if not _done(config.output, u, _expected(config, inputs, u))]
    with tqdm(total=len(todo), unit="unit", disable=not config.progress, desc="precompute") as bar:
        if config.engine == "ray":
            from precompute.ray_engine import compute_on_ray

            compute_on_ray(config, inputs, todo, bar, on_unit)
        else:
            _compute(config, inputs, todo, bar, on_unit)
    _clean_temporary(config.output)  # a worker killed mid-write (Ray restarts it elsewhere) leaves one behind
    return _write_manifest(config, old, base)


def plan(config: Config, image_ids: list[str]) -> list[Unit]:
    """This shard's units: the images of its chunks first, then each model on them."""
    all_chunks = chunks(image_ids, config.chunk_size)
    i, n = config.shard
    mine = [c for c in range(len(all_chunks)) if c % n == i]
    if not mine:
        warnings.warn(f"shard {i}/{n} has no chunks: the set has {len(all_chunks)}", stacklevel=3)
    faithful = config.faithfulness_layers != "none"
    return [
        Unit(m, c, all_chunks[c], m is not None and faithful, m is not None and bool(config.text_methods_of(m)))
        for m in (None, *config.models)
        for c in mine
    ]


def _write_manifest(config: Config, old: dict | None, base: dict) -> dict:
    """The manifest and card: this run's models (from their files) and the other models already there."""
    n_chunks = len(chunks(base["images"], config.chunk_size))
    models = {m: info for m in config.models if (info := _model_info(config.output, m, config, n_chunks))}
    manifest = merge_models(old, {**base, "models": models}, str(config.output))
    manifest = {**manifest, "vitattn_version": vitattn.__version__, "random_weights": any_random(manifest["models"])}
    unchanged = old is not None and _without(old, "created") == _without(manifest, "created")
    manifest = ordered({**manifest, "created": old["created"] if unchanged else now()})  # a no-op rerun: no change
    _write_text(config.output / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    _write_text(config.output / CARD, render_card(manifest))
    return manifest


def _expected(config: Config, inputs: Inputs, unit: Unit) -> dict:
    """The description a unit's files carry (their ``vitattn`` Parquet metadata, less the model info)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "model": unit.model,
        "chunk": unit.chunk,
        "images": list(unit.ids),
        "digest": inputs.chunk_digest(unit.ids),
        "settings": None if unit.model is None else digest(settings(config, unit.model)),
    }


def _done(out: Path, unit: Unit, expected: dict) -> bool:
    return all(_complete(out / rel, expected) for rel in unit.paths)


def _complete(path: Path, expected: dict) -> bool:
    """Whether ``path`` is a complete file of the unit described by ``expected``."""
    meta = writer.read_unit(path)
    return meta is not None and {k: meta.get(k) for k in expected} == expected


def _compute(config: Config, inputs: Inputs, todo: list[Unit], bar, on_unit) -> None:
    """The local engine: units in order, each model loaded once."""
    baselines: dict[tuple[str, tuple[int, int]], list] = {}  # (image, grid) -> rows, shared by models
    for model_name in dict.fromkeys(u.model for u in todo):
        units = [u for u in todo if u.model == model_name]
        model = None if model_name is None else load_model(config, model_name)
        for unit in units:
            bar.set_postfix_str(f"{model_name or 'images'} chunk {unit.chunk}")
            write_unit(config, model, inputs, unit, baselines)
            bar.update()
            if on_unit is not None:
                on_unit(unit)
        del model


def write_unit(config: Config, model, inputs: Inputs, unit: Unit, baselines: dict) -> list[str]:
    """Computes one unit and writes its files (each atomically); the one function both engines call.

    Files of the unit already complete (a worker killed between two files of a unit) are kept, not written again.

    Args:
        config: the run.
        model: the unit's `vitattn.Model` (None for the images of a chunk).
        inputs: the records of (at least) the unit's images.
        unit: what to compute.
        baselines: a cache of baseline rows shared by the units one process computes.

    Returns:
        The paths written, relative to ``config.output``.
    """
    expected = _expected(config, inputs, unit)
    missing = [(t, rel) for t, rel in zip(unit.tables, unit.paths, strict=True)
               if not _complete(config.output / rel, expected)]  # fmt: skip
    if not missing:
        return []
    if model is None:
        tables, unit_meta = {"images": _images_table(inputs, unit)}, expected
    else:
        tables, unit_meta = _model_tables(config, model, inputs, unit, expected, baselines)
    for table, rel in missing:
        writer.write_table(config.output / rel, table, tables[table], unit_meta)
    return [rel for _, rel in missing]


def _images_table(inputs: Inputs, unit: Unit):
    rows = []
    for image_id in unit.ids:
        record = inputs.records[image_id]
        width, height = record.load().size
        rows.append((image_id, inputs.encoded(image_id), width, height, record.boxes, record.meta))
    return writer.images_table(rows)


def _model_tables(config: Config, model, inputs: Inputs, unit: Unit, expected: dict, baselines: dict):
    """Every table of a model unit, and the metadata its files carry."""
    name, ids = unit.model, unit.ids
    records = [inputs.records[i] for i in ids]
    rgbs = [r.load() for r in records]
    layers = parse_layers(config.feature_layers, model.spec.num_layers)
    stats = model.spec.family == "vit"
    methods = config.methods_of(name)
    analyses = model.analyze(rgbs, methods=methods, features=bool(layers), stats=stats, batch_size=config.batch_size)
    rows = [writer.map_rows(a) for a in analyses]
    tables = {
        "maps": writer.maps_table(name, ids, rows),
        "features": writer.features_table(name, ids, analyses, layers, config.feature_dtype),
        **_scores(config, name, records, rgbs, [tuple(a.grid) for a in analyses], rows, baselines),
        "predictions": writer.predictions_table(name, ids, analyses),
    }
    if stats:
        tables["headstats"] = writer.headstats_table(name, ids, analyses)
    if unit.text:  # text maps of the box labels, their metrics and baselines beside the image maps' ones
        text = text_job.text_tables(config, model, records, rgbs, [tuple(a.grid) for a in analyses])
        tables["textmaps"] = text["textmaps"]
        for table in ("metrics", "baselines"):
            tables[table] = pa.concat_tables([tables[table], text[table]])
    model_settings = settings(config, name)
    if unit.faithfulness:
        tables["faithfulness"] = _faithfulness(config, model, ids, rgbs, rows, model_settings["faithfulness"])
    return tables, {**expected, "info": model_info(model.spec, analyses[0], layers, model_settings)}


def _faithfulness(config: Config, model, ids, rgbs, rows, asked: dict):
    """Deletion and insertion curves of the fused map (as stored: float16) of every method at the layers asked."""
    from vitattn.faithfulness import BATCH_SIZE, evaluate_batch

    pairs = [
        (k, method, layer, values)
        for k, per_image in enumerate(rows)
        for method, layer, head, values in per_image
        if head == FUSED_HEAD and layer in asked["layers"]
    ]
    results = evaluate_batch(
        model,
        [rgbs[k] for k, *_ in pairs],  # the same image object per image: its intact and random passes are shared
        [values.astype(np.float32) for *_, values in pairs],
        steps=asked["steps"],
        mode=asked["mode"],
        batch_size=max(config.batch_size, BATCH_SIZE),
    )
    return writer.faithfulness_table(model.spec.name, [(ids[k], m, layer, f) for (k, m, layer, _), f in
                                                       zip(pairs, results, strict=True)])  # fmt: skip


def _scores(config: Config, name: str, records, rgbs, grids, rows, baselines: dict) -> dict:
    """The metrics, per-box and baseline tables of a unit; an image without boxes has no rows in them. Baselines
    depend on the image and the grid only, so models sharing a grid share them (``baselines``, a run's cache)."""
    scored = [k for k, r in enumerate(records) if r.boxes]
    ids = [records[k].id for k in scored]
    boxes = [records[k].boxes for k in scored]
    metrics, per_box = writer.score_tables(name, ids, [rows[k] for k in scored], boxes, config.resolution)
    base_rows = []
    for k in scored:
        key = (records[k].id, grids[k])
        if key not in baselines:
            rgb = np.asarray(rgbs[k])
            baselines[key] = writer.baseline_rows(key[0], records[k].boxes, rgb, grids[k], config.resolution)
        base_rows += baselines[key]
    return {"metrics": metrics, "boxes": per_box, "baselines": writer.baselines_table(name, base_rows)}


def model_info(spec, analysis, layers: tuple[int, ...], model_settings: dict) -> dict:
    """A model's manifest entry: its checkpoint and weights, and what the store holds for it."""
    methods = list(analysis.methods)
    return {
        "title": spec.title,
        "checkpoint": spec.timm_id,
        "hf_id": spec.hf_id,
        "family": spec.family,
        "training": spec.training,
        "classifier": spec.classifier,
        "predictions": spec.classifier,  # a predictions table (top-5 per image) in the model's folder
        **(
            {"base": spec.base, "strategy": spec.strategy, "variant": model_settings["variant"]}
            if spec.is_variant
            else {}
        ),
        "random_weights": model_settings["random_weights"],
        "overrides": model_settings["overrides"],
        "methods": methods,
        "layers": {m: list(analysis.layers(m)) for m in methods},
        "heads": {m: int(analysis.heads(m).shape[0]) if analysis.has_heads(m) else 0 for m in methods},
        "num_layers": spec.num_layers,
        "num_heads": spec.num_heads,
        "grid": list(analysis.grid),
        "img_size": spec.img_size,
        "patch_size": spec.patch_size,
        "num_prefix_tokens": spec.num_prefix_tokens,
        "feature_layers": list(layers),
        "feature_grids": [list(analysis.feature_grid(layer)) for layer in layers],
        "feature_dims": [int(analysis.features(layer).shape[1]) for layer in layers],
        "feature_dtype": model_settings["feature_dtype"],
        "headstats": model_settings["headstats"],  # a headstats table (per-head statistics) in the model's folder
        "faithfulness": model_settings["faithfulness"] is not None,  # a faithfulness table
        "faithfulness_layers": (model_settings["faithfulness"] or {}).get("layers", []),
        "textmaps": "text" in model_settings,  # a textmaps table; its metrics rows carry the label as prompt
        **({"text": model_settings["text"]} if "text" in model_settings else {}),
        "resolution": model_settings["resolution"],
        "metrics": model_settings["metrics"],
        "settings_digest": digest(model_settings),
    }


def _model_info(out: Path, name: str, config: Config, n_chunks: int) -> dict | None:
    """The manifest entry of a model, from the first of its files written with this run's settings."""
    wanted = digest(settings(config, name))
    for chunk in range(n_chunks):
        meta = writer.read_unit(out / table_path("maps", chunk, name))
        if meta is not None and meta.get("settings") == wanted and "info" in meta:
            return meta["info"]
    return None


def _without(manifest: dict, key: str) -> dict:
    return {k: v for k, v in manifest.items() if k != key}


def _read_manifest(out: Path, inputs: Inputs, base: dict, chunk_size: int) -> dict | None:
    """The manifest of the store in ``out``, None if there is none. One that cannot be read is rebuilt from the data
    files: a model whose files were computed on this run's chunks keeps its entry (a warning says what happened)."""
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        return parse_manifest(path.read_bytes(), str(out))[0]
    except StoreError as e:
        models = {}
        ids = chunks(base["images"], chunk_size)
        for folder in sorted(p for p in (out / "models").glob("*") if p.is_dir()):
            units = [writer.read_unit(out / table_path("maps", c, folder.name)) for c in range(len(ids))]
            units = [(c, u) for c, u in enumerate(units) if u is not None and "info" in u]
            if units and all(u.get("digest") == inputs.chunk_digest(ids[c]) for c, u in units):
                models[folder.name] = units[0][1]["info"]
        warnings.warn(f"{e}: rebuilt from the data files ({', '.join(models) or 'no models'})", stacklevel=3)
        return {**base, "models": models, "created": now()}


def neutral_source(source: str) -> str:
    """The source as the manifest records it: ``examples`` and Hub ids as given, a local path by its last part only
    (a pushed store does not show the folders of the machine that made it)."""
    head, sep, second = source.partition("::")
    if head == "examples" or head.startswith("hf://"):
        return source
    return Path(head).name + sep + (Path(second).name if second else "")


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = writer.temporary(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _clean_temporary(out: Path) -> None:
    """Removes temporary files left by killed processes of this machine (their process is gone); those of other
    machines sharing the folder (Ray workers, shards) are left alone: their pids mean nothing here."""
    host = socket.gethostname()
    for path in out.glob("**/.*.tmp-*"):
        writer_host, _, pid = path.name.partition(".tmp-")[2].rpartition("-")
        if writer_host in ("", host) and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
