"""The precompute job's text maps: each box label of each image is a prompt; its maps are stored, scored against
that label's boxes only (metrics rows with the label as prompt) with the baselines on the same boxes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from small_models import small_overrides

from precompute import Config, run
from precompute.text import labels_of, read_text_map
from vitattn.datasets import load_annotated
from vitattn.metrics import METRIC_NAMES, baseline_metrics, score_batch
from vitattn.store import open_store

MODELS = ("clip", "vit")  # a text model beside one without a text tower


def config(out: Path, **kw) -> Config:
    kw = {"chunk_size": 4, "batch_size": 2, "random_weights": True, "progress": False, "faithfulness_layers": "none",
          "feature_layers": "none", "methods": ("cls",), **kw}  # fmt: skip
    return Config(output=out, models=MODELS, overrides={m: small_overrides(m) for m in MODELS}, **kw)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("text-store") / "store"
    run(config(out, text_methods=("naclip", "legrad")))
    return out


def _table(out: Path, model: str, table: str):
    return pq.read_table(sorted((out / "models" / model).glob(f"{table}-*.parquet"))[0])


def test_text_maps_are_stored_and_scored_against_their_labels_boxes(store):
    cfg = config(store)
    from precompute.job import load_model

    model = load_model(cfg, "clip")
    record = next(r for r in load_annotated("examples") if len(labels_of(r)) > 1)
    label = labels_of(record)[0]
    a = model.analyze(record.load(), prompts=labels_of(record), templates="imagenet80", methods=(),
                      text_methods=("naclip", "legrad"))  # fmt: skip
    chunk = sorted(r.id for r in load_annotated("examples")).index(record.id) // 4
    maps = pq.read_table(store / "models" / "clip" / f"textmaps-{chunk:05d}.parquet")
    metrics = pq.read_table(store / "models" / "clip" / f"metrics-{chunk:05d}.parquet").to_pylist()
    boxes = [b for b in record.boxes if b.label == label]
    for method in ("naclip", "legrad"):
        layer = a.text.layers(method)[-1]
        stored = read_text_map(maps, record.id, method, layer, label)
        np.testing.assert_allclose(stored, a.map(method, prompt=label), rtol=2e-3, atol=1e-4)  # float16
        want = score_batch(stored[None], boxes, cfg.resolution)
        row = next(r for r in metrics if (r["image_id"], r["method"], r["layer"], r["prompt"]) ==
                   (record.id, method, layer, label))  # fmt: skip
        for name in METRIC_NAMES:  # scored by the batched scorer: the numpy reference's numbers to rounding
            np.testing.assert_allclose(row[name], want.metrics[name][0], rtol=0, atol=1e-6, equal_nan=True)
    assert {r["prompt"] for r in metrics if r["method"] == "cls"} == {""}
    baselines = pq.read_table(store / "models" / "clip" / f"baselines-{chunk:05d}.parquet").to_pylist()
    base = baseline_metrics(boxes, image=np.asarray(record.load()), resolution=cfg.resolution, grid=model.spec.grid)
    for name, values in base.items():
        row = next(r for r in baselines if (r["image_id"], r["baseline"], r["prompt"]) == (record.id, name, label))
        for metric in METRIC_NAMES:
            np.testing.assert_allclose(row[metric], values[metric], rtol=0, atol=1e-6, equal_nan=True)


def test_every_label_of_every_image_has_its_maps_and_the_manifest_says_how(store):
    manifest = json.loads((store / "manifest.json").read_text())
    records = load_annotated("examples")
    assert manifest["text_vocabulary"] == sorted({b.label for r in records for b in r.boxes if b.label})
    clip, vit = manifest["models"]["clip"], manifest["models"]["vit"]
    assert clip["textmaps"] and clip["text"] == {"methods": ["naclip", "legrad"], "templates": "imagenet80"}
    assert not vit["textmaps"] and "text" not in vit
    assert not list((store / "models" / "vit").glob("textmaps-*"))
    rows = {(r["image_id"], r["prompt"]) for t in sorted((store / "models" / "clip").glob("textmaps-*.parquet"))
            for r in pq.read_table(t, columns=["image_id", "prompt"]).to_pylist()}  # fmt: skip
    assert rows == {(r.id, label) for r in records for label in labels_of(r)}
    reader = open_store(str(store))
    prompts = reader.metrics("clip", text=True)["prompt"]
    assert set(reader.metrics("clip")["prompt"]) == {""} and set(reader.baselines("clip")["prompt"]) == {""}
    assert set(prompts) - {""} == set(manifest["text_vocabulary"]) and "" in set(prompts)


def test_a_rerun_redoes_nothing_and_other_text_settings_redo_the_text_model_only(store, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    done = []
    run(config(copy, text_methods=("naclip", "legrad")), on_unit=done.append)
    assert done == []
    run(config(copy, text_methods=("maskclip",)), on_unit=done.append)
    assert {u.model for u in done} == {"clip"}


def test_options_are_checked_and_parsed():
    args = Config.from_args(["--models", "clip", "--text-methods", "maskclip,gae", "--templates", "none"])
    assert args.text_methods == ("maskclip", "gae") and args.templates == "none"
    assert Config.from_args(["--text-methods", "none"]).text_methods == ()
    assert Config.from_args([]).text_methods == ("naclip", "legrad") and Config().templates == "imagenet80"
    assert Config().text_methods == ()  # programmatic runs ask for text maps
    with pytest.raises(ValueError, match="valid: none or maskclip"):
        Config(text_methods=("cls",))
    with pytest.raises(SystemExit):
        Config.from_args(["--templates", "imagenet81"])


def test_per_label_table_on_paper_and_on_the_store(store, capsys):
    from vitattn.text.table import main, per_label

    metrics = {
        "model": np.array(["clip"] * 5), "method": np.array(["naclip", "naclip", "legrad", "legrad", "cls"]),
        "layer": np.array([1, 1, 0, 1, 1]), "prompt": np.array(["portal", "portal", "portal", "portal", ""]),
        "iou_90": np.array([0.2, 0.4, 0.9, 0.1, 0.7]),
    }  # fmt: skip
    baselines = {
        "model": np.array(["clip"] * 3), "baseline": np.array(["random", "random", "center"]),
        "prompt": np.array(["portal", "portal", ""]), "iou_90": np.array([0.1, 0.2, 0.5]),
    }  # fmt: skip
    rows = per_label(metrics, baselines, "iou_90")  # legrad at its last layer (1) only; cls is no text map
    assert [(r["method"], r["layer"], r["images"]) for r in rows] == [("naclip", 1, 2), ("legrad", 1, 1)]
    assert rows[0]["mean"] == pytest.approx(0.3) and rows[1]["mean"] == pytest.approx(0.1)
    assert rows[0]["random"] == pytest.approx(0.15) and "center" not in rows[0]
    main([str(store), "--metric", "coverage"])
    out = capsys.readouterr().out
    assert out.startswith("| label | model | method | layer | images | coverage | center | random | saliency")
    labels = sorted({b.label for r in load_annotated("examples") for b in r.boxes if b.label})
    assert len(out.strip().splitlines()) == 2 + 2 * len(labels)  # naclip and legrad per label
