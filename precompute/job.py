"""The job: plan units of work, skip those already done, compute the rest, write the manifest and the card.

A unit is the images of one chunk, or one model on one chunk (its maps, features, metrics, per-box and baseline
files). Every file is written atomically and carries the unit's description (image ids, a digest of their bytes
and boxes, the model settings) in its Parquet metadata; a unit is done when all its files carry the description
this run would write. So a run stopped at any point and started again computes only what is missing, and ends
with the same files as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

from tqdm.auto import tqdm

import vitattn
from precompute import text as text_job
from precompute.config import Config
from precompute.estimate import cost_line
from precompute.unit import Inputs, Unit, _complete, _expected, load_model, settings, write_unit
from vitattn.datasets import load_annotated
from vitattn.store import writer
from vitattn.store.card import render_card
from vitattn.store.layout import CARD, FORMAT, MANIFEST, SCHEMA_VERSION, StoreError, chunks, digest, table_path
from vitattn.store.manifest import any_random, merge_models, now, ordered, parse_manifest

__all__ = ["Inputs", "Unit", "load_model", "plan", "run", "settings", "write_unit"]  # unit.py's, as before


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
    if config.progress and (line := cost_line(config, todo)):
        print(line, file=sys.stderr, flush=True)
    n_images = sum(len(u.ids) for u in todo if u.model is not None)  # the bar counts images of model units
    # Drawn at every analysed batch (miniters=1, mininterval=0): a batch is seconds of work, never too often to draw.
    bar = tqdm(total=n_images, unit="img", disable=not config.progress, desc="precompute", miniters=1, mininterval=0)
    with bar:
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
    sanity = config.sanity_images > 0
    return [
        Unit(
            m,
            c,
            all_chunks[c],
            m is not None and faithful,
            m is not None and sanity,
            bool(m and config.text_methods_of(m)),
        )
        for m in (None, *config.models)
        for c in mine
    ]


def _count(bar, moved: list[int], n: int) -> None:
    """Moves the bar by ``n`` images and remembers it (the rest of the unit is counted when it ends)."""
    bar.update(n)
    moved.append(n)


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


def _done(out: Path, unit: Unit, expected: dict) -> bool:
    return all(_complete(out / rel, expected) for rel in unit.paths)


def _compute(config: Config, inputs: Inputs, todo: list[Unit], bar, on_unit) -> None:
    """The local engine: units in order, each model loaded once."""
    baselines: dict[tuple[str, tuple[int, int]], list] = {}  # (image, grid) -> rows, shared by models
    for model_name in dict.fromkeys(u.model for u in todo):
        units = [u for u in todo if u.model == model_name]
        model = None if model_name is None else load_model(config, model_name)
        for unit in units:
            bar.set_postfix_str(f"{model_name or 'images'} chunk {unit.chunk}")
            moved: list[int] = []  # images the bar already counted (per analysed batch)
            write_unit(config, model, inputs, unit, baselines, partial(_count, bar, moved))
            bar.update(0 if unit.model is None else len(unit.ids) - sum(moved))
            if on_unit is not None:
                on_unit(unit)
        del model


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
