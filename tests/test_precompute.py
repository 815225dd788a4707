"""The precompute job: configuration from the command line, resume after an interruption, shards, adding a model.

Run: python -m pytest tests/test_precompute.py -q
"""

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image
from small_models import small_overrides

import precompute
from precompute import Config, Unit, run
from precompute.__main__ import main
from precompute.config import parse_layers
from vitattn.store import StoreError, open_store

MODELS = ("vit", "resnet50")  # a gradient method with heads (agcam) and a CNN with per-stage grids
SMALL = {name: small_overrides(name) for name in MODELS}


def config(out: Path, models=MODELS, **kw) -> Config:
    """The job on tiny models, without faithfulness curves (78 forward passes per map; tests/test_faults.py resumes
    and kills runs that compute them)."""
    kw = {"chunk_size": 3, "batch_size": 2, "random_weights": True, "progress": False, "faithfulness_layers": "none",
          **kw}  # fmt: skip
    return Config(output=out, models=models, overrides={m: SMALL[m] for m in models}, **kw)


def data_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}


def tables(folder: Path) -> dict[str, list]:
    """Every table's rows, file by file (the comparison the issue asks for: table contents)."""
    return {rel: pq.read_table(folder / rel).to_pylist() for rel in data_files(folder)}


def without_created(folder: Path) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text())
    return {k: v for k, v in manifest.items() if k != "created"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run of both models."""
    out = tmp_path_factory.mktemp("reference")
    run(config(out))
    return out


class Stop(Exception):
    pass


def test_config_from_the_command_line():
    default = Config.from_args(["--device", "cpu"])
    # faithfulness off by default on a CPU; the job's text maps by default (precompute/text.py)
    assert default == Config(
        device="cpu", faithfulness_layers="none", sanity_images=0, text_methods=("naclip", "legrad")
    )
    assert default.models[0] == "dinov2" and default.methods is None
    args = "--source x.json --models vit,clip --methods cls,rollout --feature-layers 0,-1 --batch-size 4 --device cpu"
    args += " --output out --chunk-size 8 --shard 1/4 --push-to-hub ns/name --private --random-weights --seed 3 --quiet"
    c = Config.from_args(args.split())
    assert (c.source, c.models, c.methods, c.feature_layers) == ("x.json", ("vit", "clip"), ("cls", "rollout"), "0,-1")
    assert (c.batch_size, c.device, c.output, c.chunk_size, c.shard) == (4, "cpu", Path("out"), 8, (1, 4))
    assert (c.push_to_hub, c.private, c.random_weights, c.seed, c.progress) == ("ns/name", True, True, 3, False)
    assert c.methods_of("vit") == ("cls", "rollout") and c.methods_of("siglip") == ("rollout",)
    with pytest.raises(AttributeError):
        c.seed = 4  # frozen
    overrides = Config.from_args(["--models", "vit", "--overrides", json.dumps({"vit": {"depth": 2}})]).overrides
    assert overrides == {"vit": {"depth": 2}}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--models", "vit,nope"], "unknown model 'nope'"),
        (["--methods", "cls,nope"], "unknown method"),
        (["--shard", "4/4"], "need 0 <= i < n"),
        (["--shard", "1-4"], "expected i/n"),
        (["--feature-layers", "a,b"], "expected all, none or comma-separated"),
        (["--batch-size", "0"], "must be positive"),
        (["--push-to-hub", "just-a-name"], "expected namespace/name"),
    ],
)
def test_config_errors(args, message, capsys):
    with pytest.raises(SystemExit) as err:
        Config.from_args(args)
    assert message in str(err.value) + capsys.readouterr().err


def test_feature_layers():
    assert parse_layers("all", 3) == (0, 1, 2) and parse_layers("none", 3) == ()
    assert parse_layers("-1,0,2", 4) == (0, 2, 3)
    with pytest.raises(ValueError, match="out of range"):
        parse_layers("12", 12)


def test_help_shows_every_option(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("usage: python -m precompute")
    for option in ("--source", "--models", "--methods", "--feature-layers", "--batch-size", "--device", "--output"):
        assert option in out
    for option in ("--shard", "--push-to-hub", "--random-weights", "--chunk-size"):
        assert option in out
    assert "--overrides" not in out  # test-only, hidden
    assert "python -m precompute --random-weights" in precompute.__doc__  # the docstring shows the command


def test_resume_after_an_interruption_gives_the_same_store(reference, tmp_path):
    out = tmp_path / "store"
    done: list[Unit] = []

    def stop_after_four(unit: Unit) -> None:
        done.append(unit)
        if len(done) == 4:
            raise Stop

    with pytest.raises(Stop):
        run(config(out), on_unit=stop_after_four)
    assert [u.model for u in done] == [None, None, None, "vit"]  # the images first, then model by model
    assert not (out / "manifest.json").exists() and not list(out.glob("**/.*tmp*"))
    redone: list[Unit] = []
    run(config(out), on_unit=redone.append)
    assert len(redone) == 3 + 2 * 3 - 4  # only what was missing
    assert set(redone).isdisjoint(done)
    assert tables(out) == tables(reference)
    assert data_files(out) == data_files(reference)  # byte for byte, even
    assert without_created(out) == without_created(reference)


def test_a_unit_left_half_written_is_redone(reference, tmp_path):
    out = tmp_path / "store"
    shutil.copytree(reference, out)
    damaged = out / "models/vit/metrics-00001.parquet"
    damaged.write_bytes(damaged.read_bytes()[:100])  # e.g. a disk full, or a copy cut short
    (out / "models/resnet50/boxes-00002.parquet").unlink()  # killed between two files of a unit
    (out / "models/vit/.maps-00000.parquet.tmp-999999999").write_bytes(b"left by a killed run")
    redone: list[Unit] = []
    run(config(out), on_unit=redone.append)
    assert sorted((u.model, u.chunk) for u in redone) == [("resnet50", 2), ("vit", 1)]
    assert data_files(out) == data_files(reference)
    assert not list(out.glob("**/.*tmp*"))


def test_a_rerun_with_nothing_new_changes_no_file(reference, tmp_path):
    out = tmp_path / "store"
    shutil.copytree(reference, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    redone: list[Unit] = []
    run(config(out), on_unit=redone.append)
    assert redone == [] and {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_shards_split_the_work(reference, tmp_path):
    out = tmp_path / "store"
    units = {0: [], 1: []}
    for i in (0, 1):
        run(config(out, shard=(i, 2)), on_unit=units[i].append)
    assert {u.chunk for u in units[0]} == {0, 2} and {u.chunk for u in units[1]} == {1}
    assert data_files(out) == data_files(reference)
    assert without_created(out) == without_created(reference)


def test_adding_a_model_rewrites_nothing_else(tmp_path):
    out = tmp_path / "store"
    run(config(out, models=("vit",)))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*.parquet")}
    redone: list[Unit] = []
    run(config(out, models=("resnet50",)), on_unit=redone.append)
    assert {u.model for u in redone} == {"resnet50"}
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in before} == before
    store = open_store(out)
    assert store.models() == ["vit", "resnet50"] and store.problems == []
    assert store.map("coffee", "resnet50", "gradcam", 3).shape == (3, 3)


def test_changed_settings_redo_that_model_only(tmp_path):
    out = tmp_path / "store"
    run(config(out))
    redone: list[Unit] = []
    run(config(out, models=("vit",), methods=("cls",), feature_layers="-1"), on_unit=redone.append)
    assert {u.model for u in redone} == {"vit"} and len(redone) == 3
    store = open_store(out)
    assert store.manifest["models"]["vit"]["methods"] == ["cls"]
    assert store.manifest["models"]["vit"]["feature_layers"] == [1]
    assert store.models() == ["vit", "resnet50"]  # kept from the first run
    with pytest.raises(StoreError, match="valid methods: cls$"):
        store.map("coffee", "vit", "agcam", 0)


def test_refuses_a_folder_holding_another_image_set(tmp_path):
    out = tmp_path / "store"
    run(config(out, models=("vit",), feature_layers="none"))
    with pytest.raises(StoreError, match="another image set or chunk size"):
        run(config(out, models=("vit",), chunk_size=4))


def test_the_command_runs_end_to_end(tmp_path, capsys):
    """In process (tests/test_store_hub.py runs the command in a subprocess, pushing to a Hub)."""
    out = tmp_path / "store"
    args = ["--models", "vit", "--random-weights", "--output", str(out), "--methods", "cls,rollout"]
    args += ["--feature-layers", "-1", "--quiet", "--overrides", json.dumps({"vit": SMALL["vit"]})]
    assert main(args) == 0
    assert "7 images; models: vit" in capsys.readouterr().out
    store = open_store(out)
    assert store.random_weights and store.manifest["models"]["vit"]["methods"] == ["cls", "rollout"]
    assert store.map("rocket", "vit", "rollout", 1).shape == (4, 4)


def test_an_image_without_boxes_has_maps_but_no_scores(tmp_path):
    """WikiChurches keeps images without boxes: they get maps and features, and no metric rows."""
    folder = tmp_path / "set"
    folder.mkdir()
    for name, size in (("boxed", (64, 48)), ("plain", (40, 40))):
        Image.new("RGB", size, (200, 30, 30)).save(folder / f"{name}.png")
    entries = [
        {"id": "boxed", "file": "boxed.png", "boxes": [{"label": "all", "box": [0.1, 0.1, 0.9, 0.9]}]},
        {"id": "plain", "file": "plain.png", "boxes": []},
    ]
    (folder / "boxes.json").write_text(json.dumps({"format": "vitattn-boxes/1", "images": entries}))
    out = tmp_path / "store"
    run(config(out, models=("vit",), source=str(folder / "boxes.json")))
    store = open_store(out)
    assert store.image_ids() == ["boxed", "plain"] and store.image("plain").boxes == ()
    assert store.map("plain", "vit", "agcam", 1, 0).shape == (4, 4)
    assert set(store.metrics()["image_id"]) == set(store.baselines()["image_id"]) == {"boxed"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--models", "vit,resnet50", "--feature-layers", "11"], "model 'resnet50' has 4 layers: feature layers must"),
        (["--models", "dinov2,resnet50", "--feature-layers", "0,-5"], "model 'resnet50' has 4 layers"),
        (["--models", "vit,siglip", "--methods", "cls"], "model 'siglip' supports none of the methods asked"),
        (["--models", "vit", "--feature-layers", "2", "--overrides", '{"vit": {"depth": 2}}'], "'vit' has 2 layers"),
    ],
)
def test_options_are_checked_against_every_model_before_any_work(args, message, tmp_path, capsys):
    out = tmp_path / "store"
    with pytest.raises(SystemExit) as err:
        main([*args, "--random-weights", "--output", str(out), "--quiet"])
    assert message in str(err.value) and str(err.value).startswith("precompute: ")
    assert not out.exists()  # refused before anything was written


def test_the_store_shows_no_local_path_and_moving_the_json_redoes_nothing(tmp_path):
    folder = tmp_path / "private-machine-folder" / "set"
    folder.mkdir(parents=True)
    Image.new("RGB", (64, 48), (200, 30, 30)).save(folder / "red.png")
    entries = [{"id": "red", "file": "red.png", "boxes": [{"label": "all", "box": [0.1, 0.1, 0.9, 0.9]}]}]
    (folder / "boxes.json").write_text(json.dumps({"format": "vitattn-boxes/1", "images": entries}))
    out = tmp_path / "store"
    run(config(out, models=("vit",), source=str(folder / "boxes.json")))
    store = open_store(out)
    assert store.image("red").meta == {"source": "vitattn-boxes"} and store.manifest["source"] == "boxes.json"
    for path in out.rglob("*"):
        assert not path.is_file() or b"private-machine-folder" not in path.read_bytes(), path
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    redone: list[Unit] = []
    run(config(out, models=("vit",), source=str(moved / "boxes.json")), on_unit=redone.append)
    assert redone == []


def test_a_damaged_manifest_is_rebuilt_by_the_next_run(reference, tmp_path):
    out = tmp_path / "store"
    shutil.copytree(reference, out)
    (out / "manifest.json").write_text('{"format": "vitattn-st')  # e.g. a disk that filled up
    redone: list[Unit] = []
    with pytest.warns(UserWarning, match="not valid json.*rebuilt from the data files \\(resnet50, vit\\)"):
        run(config(out, models=("vit",)), on_unit=redone.append)  # resnet50 was made by an earlier run
    assert redone == []
    assert without_created(out) == without_created(reference) and data_files(out) == data_files(reference)
