"""A unit of work and how it is computed: the one module both engines (local: ``job.py``, Ray: ``ray_engine.py``)
call, so neither imports the other.

A unit is the images of one chunk, or one model on one chunk (its maps, features, metrics, per-box and baseline
files). ``write_unit`` computes one and writes its files atomically, each carrying the unit's description
(``_expected``: image ids, a digest of their bytes and boxes, the model settings) in its Parquet metadata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa

import vitattn
from precompute import text as text_job
from precompute.config import Config, parse_layers
from vitattn.datasets import AnnotatedImage
from vitattn.metrics import FUSED_HEAD, METRIC_NAMES
from vitattn.specs import get_spec
from vitattn.store import writer
from vitattn.store.layout import CLASSIFIER_TABLES, MODEL_TABLES, SCHEMA_VERSION, digest, table_path
from vitattn.variants import checkpoint_record

FAITHFULNESS_STEPS = 20  # deletion / insertion steps (RISE's curves; vitattn.faithfulness.STEPS)
FAITHFULNESS_MODE = "blur"  # what a removed cell becomes
SANITY_ORDER = "top-down"  # Adebayo et al.'s cascade (vitattn.sanity.model_randomization)


@dataclass(frozen=True)
class Unit:
    """One unit of work: the images of a chunk (``model`` None), or one model on a chunk."""

    model: str | None
    chunk: int
    ids: tuple[str, ...]
    faithfulness: bool = False  # a model unit with a faithfulness table (--faithfulness-layers is not none)
    sanity: bool = False  # a model unit with a sanity table (--sanity-images is not 0; rows for the first images only)
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
            + (("sanity",) if self.sanity else ())
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
        **({"flow_layers": list(config.flow_layers_of(name))} if config.flow_layers_of(name) else {}),
        **({"sanity": _sanity_settings(config)} if config.sanity_images else {}),
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


def _sanity_settings(config: Config) -> dict:
    """What the sanity table depends on: how many images (the first N of the set), the order and the seed."""
    return {"images": config.sanity_images, "order": SANITY_ORDER, "seed": config.seed}


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


def _complete(path: Path, expected: dict) -> bool:
    """Whether ``path`` is a complete file of the unit described by ``expected``."""
    meta = writer.read_unit(path)
    return meta is not None and {k: meta.get(k) for k in expected} == expected


def write_unit(
    config: Config, model, inputs: Inputs, unit: Unit, baselines: dict, on_images: Callable[[int], None] | None = None
) -> list[str]:
    """Computes one unit and writes its files (each atomically); the one function both engines call.

    Files of the unit already complete (a worker killed between two files of a unit) are kept, not written again.

    Args:
        config: the run.
        model: the unit's `vitattn.Model` (None for the images of a chunk).
        inputs: the records of (at least) the unit's images.
        unit: what to compute.
        baselines: a cache of baseline rows shared by the units one process computes.
        on_images: called with the number of images of each batch analysed (a progress bar).

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
        tables, unit_meta = _model_tables(config, model, inputs, unit, expected, baselines, on_images)
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


def _model_tables(config: Config, model, inputs: Inputs, unit: Unit, expected: dict, baselines: dict, on_images=None):
    """Every table of a model unit, and the metadata its files carry."""
    name, ids = unit.model, unit.ids
    records = [inputs.records[i] for i in ids]
    rgbs = [r.load() for r in records]
    layers = parse_layers(config.feature_layers, model.spec.num_layers)
    stats = model.spec.family == "vit"
    methods = config.methods_of(name)
    analyses = []  # batch by batch (the batches analyze would make itself), so a progress bar can move per batch
    for start in range(0, len(rgbs), config.batch_size):
        batch = rgbs[start : start + config.batch_size]
        kw = {"methods": methods, "features": bool(layers), "stats": stats, "batch_size": config.batch_size}
        if "flow" in methods:
            kw["flow_layers"] = config.flow_layers_of(name)
        analyses += model.analyze(batch, **kw)
        if on_images is not None:
            on_images(len(batch))
    rows = [writer.map_rows(a) for a in analyses]
    tables = {
        "maps": writer.maps_table(name, ids, rows),
        "features": writer.features_table(name, ids, analyses, layers, config.feature_dtype),
        **_scores(config, name, records, rgbs, [tuple(a.grid) for a in analyses], rows, baselines, model.device),
        "predictions": writer.predictions_table(name, ids, analyses),
    }
    if stats:
        tables["headstats"] = writer.headstats_table(name, ids, analyses)
    model_settings = settings(config, name)
    if unit.faithfulness:
        tables["faithfulness"] = _faithfulness(config, model, ids, rgbs, rows, model_settings["faithfulness"])
    if unit.text:  # text maps of the box labels, their metrics and baselines beside the image maps' ones
        text = text_job.text_tables(config, model, records, rgbs, [tuple(a.grid) for a in analyses])
        tables["textmaps"] = text["textmaps"]
        for table in ("metrics", "baselines"):
            tables[table] = pa.concat_tables([tables[table], text[table]])
    if unit.sanity:
        first = max(0, model_settings["sanity"]["images"] - unit.chunk * config.chunk_size)  # the set's first N
        tables["sanity"] = _sanity(model, ids[:first], rgbs[:first], methods, model_settings["sanity"])
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


def _sanity(model, ids, rgbs, methods, asked: dict):
    """Randomisation curves of each method's fused map at its last layer on these images (flow, costly, is left out).
    A chunk past the set's first ``asked["images"]`` images gets a file without rows."""
    from vitattn.sanity import model_randomization

    rows = [
        (image_id, method, model.spec.num_layers - 1,
         model_randomization(model, rgb, method, order=asked["order"], seed=asked["seed"]))
        for image_id, rgb in zip(ids, rgbs, strict=True)
        for method in methods
        if method != "flow"
    ]  # fmt: skip
    return writer.sanity_table(model.spec.name, rows)


def _scores(config: Config, name: str, records, rgbs, grids, rows, baselines: dict, device=None) -> dict:
    """The metrics, per-box and baseline tables of a unit; an image without boxes has no rows in them. Baselines
    depend on the image and the grid only, so models sharing a grid share them (``baselines``, a run's cache).

    Every map is scored by the batched scorer on the device the analysis ran on (``device``; the CPU if None),
    which computes the numpy reference's numbers (``vitattn.metrics.batched``)."""
    from vitattn.metrics.batched import score_maps

    scorer = partial(score_maps, device=device)
    scored = [k for k, r in enumerate(records) if r.boxes]
    ids = [records[k].id for k in scored]
    boxes = [records[k].boxes for k in scored]
    metrics, per_box = writer.score_tables(name, ids, [rows[k] for k in scored], boxes, config.resolution, scorer)
    base_rows = []
    for k in scored:
        key = (records[k].id, grids[k])
        if key not in baselines:
            rgb = np.asarray(rgbs[k])
            baselines[key] = writer.baseline_rows(key[0], records[k].boxes, rgb, grids[k], config.resolution, scorer)
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
        "sanity": "sanity" in model_settings,  # a sanity table (randomisation curves of the first images)
        "sanity_images": model_settings.get("sanity", {}).get("images", 0),
        "resolution": model_settings["resolution"],
        "metrics": model_settings["metrics"],
        "settings_digest": digest(model_settings),
    }
