"""The store on a Hub (the local server of tests/hubserver.py, through the real huggingface_hub client): push as one
commit of the changed files, open pinned to a commit, read views lazily, load each table with `datasets`.

Run: python -m pytest tests/test_store_hub.py -q
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import CommitOperationDelete, HfApi, constants
from small_models import small_overrides

from precompute import Config, push, run
from precompute.push import local_files
from vitattn.metrics import BASELINE_NAMES
from vitattn.store import HubUnavailable, StoreError, open_store
from vitattn.store.files import HUB_BLOCK_SIZE

REPO = "ns/store"
LOCATION = f"hf://datasets/{REPO}"
ROOT = Path(__file__).resolve().parent.parent


def config(out: Path, models: tuple[str, ...], **kw) -> Config:
    overrides = {m: small_overrides(m) for m in models}
    kw = {"chunk_size": 3, "batch_size": 4, "random_weights": True, "progress": False, **kw}
    return Config(output=out, models=models, overrides=overrides, **kw)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """``one``: a store of vit; ``two``: the same folder after adding clip (computed once, copied per test)."""
    one = tmp_path_factory.mktemp("one")
    run(config(one, ("vit",)))
    two = tmp_path_factory.mktemp("two")
    shutil.copytree(one, two, dirs_exist_ok=True)
    run(config(two, ("clip",)))
    return {"one": one, "two": two}


@pytest.fixture
def pushed(hub, folders) -> str:
    """REPO holding the vit store; the request log is cleared afterwards. Returns the commit."""
    result = push(folders["one"], REPO)
    hub.clear_log()
    return result.commit


def test_first_push_is_one_commit_of_every_file(hub, folders):
    result = push(folders["one"], REPO)
    files = local_files(folders["one"])
    assert sorted(hub.uploaded_paths()) == sorted(files) == sorted(result.uploaded)
    assert [e.route for e in hub.log].count("commit") == 1
    assert result.commit == HfApi().dataset_info(REPO).sha
    hub.clear_log()
    again = push(folders["one"], REPO)  # nothing changed: no commit at all
    assert again.commit is None and again.unchanged == len(files) and hub.uploaded_paths() == []
    assert "commit" not in [e.route for e in hub.log]


def test_pushing_one_more_model_uploads_only_its_files(hub, folders, pushed):
    result = push(folders["two"], REPO)
    uploaded = sorted(hub.uploaded_paths())
    clip = sorted(p for p in local_files(folders["two"]) if p.startswith("models/clip/"))
    assert uploaded == sorted([*clip, "manifest.json", "README.md"]) == sorted(result.uploaded)
    assert [e.route for e in hub.log].count("commit") == 1
    store = open_store(LOCATION)
    assert store.models() == ["vit", "clip"] and store.revision == result.commit != pushed


def test_push_keeps_the_models_the_repo_already_has(hub, folders, tmp_path, pushed):
    other = tmp_path / "other"  # another machine: the same images, only clip
    run(config(other, ("clip",)))
    result = push(other, REPO)
    assert not any(p.startswith("models/vit/") for p in result.uploaded)
    store = open_store(LOCATION)
    assert store.models() == ["vit", "clip"] and store.problems == []
    assert store.map("coffee", "vit", "cls", 1).shape == store.map("coffee", "clip", "cls", 1).shape == (4, 4)
    mixed = tmp_path / "mixed"
    run(config(mixed, ("clip",), chunk_size=4, feature_layers="none"))
    with pytest.raises(StoreError, match="another image set or chunk size"):
        push(mixed, REPO)


def test_a_view_fetches_a_small_fraction_and_repeats_come_from_memory(hub, folders, pushed):
    store = open_store(LOCATION)
    opening = [e for e in hub.log if e.route == "resolve"]
    assert [e.path.rsplit("/", 1)[-1] for e in opening] == ["manifest.json"]  # opening reads the manifest only
    assert store.revision == pushed and store.problems == []
    local = open_store(folders["one"])
    hub.clear_log()
    view = store.map("astronaut", "vit", "cls", 1, head=2)
    np.testing.assert_array_equal(view, local.map("astronaut", "vit", "cls", 1, head=2))
    [read] = [e for e in hub.log if e.route == "resolve"]  # one range request: footer and row group (a small file)
    assert read.status == 206 and read.path == f"/datasets/{REPO}/resolve/{pushed}/models/vit/maps-00000.parquet"
    size = (folders["one"] / "models/vit/maps-00000.parquet").stat().st_size
    served = hub.bytes_served(f"/datasets/{REPO}/resolve/")
    assert served == min(size, HUB_BLOCK_SIZE) and served < 0.03 * hub.repo_bytes(REPO), (served, hub.repo_bytes(REPO))
    assert not any(e.authorization for e in hub.log)  # reading needs no token
    hub.clear_log()
    for head in (None, 0, 1, 2, 3):
        store.map("astronaut", "vit", "cls", 1, head)
    store.map("astronaut", "vit", "mean", 0)
    assert hub.log == []  # the same row group: from memory
    np.testing.assert_array_equal(store.features("rocket", "vit", 1), local.features("rocket", "vit", 1))
    assert store.image("cell").boxes == local.image("cell").boxes
    assert {e.path.rsplit("/", 1)[-1] for e in hub.log if e.route == "resolve"} == {
        "features-00002.parquet",
        "images-00000.parquet",
    }


def test_whole_tables_and_errors(hub, folders, pushed):
    store, local = open_store(LOCATION), open_store(folders["one"])
    for name in ("metrics", "box_metrics", "baselines"):
        remote_table, local_table = getattr(store, name)(), getattr(local, name)("vit")
        assert remote_table.keys() == local_table.keys()
        for column in remote_table:
            np.testing.assert_array_equal(remote_table[column], local_table[column])
    with pytest.raises(StoreError, match="model 'clip' is not in this store; models: vit"):
        store.map("coffee", "clip", "cls", 0)
    with pytest.raises(StoreError, match="not a safe identifier"):
        store.map("../../etc/passwd", "vit", "cls", 0)
    with pytest.raises(StoreError, match="no dataset ns/missing"):
        open_store("hf://datasets/ns/missing")
    with pytest.raises(StoreError, match="no revision 'v9'"):
        open_store(f"{LOCATION}@v9")
    with pytest.raises(StoreError, match="expected hf://datasets/<namespace>/<name>"):
        open_store("hf://models/ns/store")
    with hub.offline(), pytest.raises(HubUnavailable, match="the Hub is unreachable .*; try again"):
        open_store(LOCATION)


def test_a_store_stays_pinned_to_the_commit_it_opened(hub, folders, pushed):
    old = open_store(LOCATION)
    newer = push(folders["two"], REPO).commit
    assert old.revision == pushed and old.models() == ["vit"]
    assert old.map("coffee", "vit", "rollout", 0).shape == (4, 4)
    assert all(pushed in e.path for e in hub.log if e.route == "resolve")
    assert open_store(LOCATION).revision == newer
    pinned = open_store(f"{LOCATION}@{pushed}")
    assert pinned.revision == pushed and pinned.models() == ["vit"]


def test_missing_files_on_the_hub_are_problems(hub, folders, pushed):
    api = HfApi()
    api.create_commit(
        REPO, [CommitOperationDelete("models/vit/maps-00001.parquet")], commit_message="lose one", repo_type="dataset"
    )
    store = open_store(LOCATION)
    assert store.problems == ["model 'vit': 1 of 24 files missing (models/vit/maps-00001.parquet)"]
    with pytest.raises(StoreError, match="models/vit/maps-00001.parquet is missing"):
        store.map("coffee", "vit", "cls", 0)
    assert store.map("rocket", "vit", "cls", 0).shape == (4, 4)


def test_each_table_loads_with_datasets_in_a_subprocess(hub, folders, tmp_path):
    push(folders["two"], REPO)
    hub.clear_log()
    code = (
        "import datasets, json; out = {}\n"
        "for name in ['images', 'maps', 'features', 'metrics', 'boxes', 'baselines', 'headstats', 'faithfulness']:\n"
        f"    d = datasets.load_dataset({REPO!r}, name, split='train'); out[name] = d.num_rows\n"
        f"im = datasets.load_dataset({REPO!r}, 'images', split='train')[0]\n"
        "out['image'] = [type(im['image']).__name__, im['image'].size, im['boxes'][0]['label']]\n"
        "print(json.dumps(out))"
    )
    env = hub.client_env(tmp_path / "sub_home")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.splitlines()[-1])
    local = open_store(folders["two"])
    assert rows["images"] == 7 and rows["image"][1] == [512, 512] and rows["image"][2] == "face"
    assert rows["metrics"] == len(local.metrics()["image_id"]) and rows["boxes"] == len(local.box_metrics()["iou"])
    assert rows["baselines"] == len(local.baselines()["image_id"]) == 7 * len(BASELINE_NAMES) * 2
    assert rows["headstats"] == 7 * 2 * 2 * 4  # images x models (vit, clip) x layers x heads
    assert rows["faithfulness"] == len(local.faithfulness("vit")["image_id"]) + len(local.faithfulness("clip")["abpc"])
    maps_per_image = sum(
        (1 + m["heads"][k]) * len(v) for m in local.manifest["models"].values() for k, v in m["layers"].items()
    )
    assert rows["maps"] == 7 * maps_per_image and rows["features"] == 7 * 2 * 2
    assert not any(e.authorization for e in hub.log) and not [e for e in hub.log if e.route is None]


def test_lfs_files_are_compared_by_sha256(hub, folders, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the git-LFS upload path (no Xet offline)
    hub.lfs_threshold = 4096
    push(folders["one"], REPO)
    lfs = [f for f in HfApi().list_repo_tree(REPO, recursive=True, repo_type="dataset") if getattr(f, "lfs", None)]
    assert len(lfs) > 10
    hub.clear_log()
    assert push(folders["one"], REPO).commit is None and hub.uploaded_paths() == []
    result = push(folders["two"], REPO)
    assert all(p.startswith("models/clip/") or p in ("manifest.json", "README.md") for p in result.uploaded)
    assert open_store(LOCATION).map("coffee", "clip", "mean", 1, 3).shape == (4, 4)


def test_a_network_error_is_passing_not_damage(hub, pushed):
    store = open_store(LOCATION)
    fault = hub.fail("GET", "models/vit/maps-00001.parquet", times=2, mode=503)  # a try and one retry
    with pytest.raises(HubUnavailable, match=r"maps-00001.parquet: the Hub is unreachable \(HTTP 503.*; try again"):
        store.map("coffee", "vit", "cls", 0)
    assert fault.hits == 2 and store.problems == []
    fault = hub.fail("GET", "models/vit/maps-00001.parquet", mode=403)  # not retried
    with pytest.raises(HubUnavailable, match=r"the Hub refused the request \(HTTP 403: Injected fault \(403\)\)"):
        store.map("coffee", "vit", "cls", 0)
    assert fault.hits == 1 and store.problems == []
    assert store.map("coffee", "vit", "cls", 0).shape == (4, 4)  # the next view tries again
    hub.fail("GET", "models/vit/metrics-00002.parquet", mode=403)
    with pytest.raises(StoreError, match="the metrics table is unavailable"):
        store.metrics()
    assert len(store.metrics()["image_id"]) == len(open_store(LOCATION).metrics("vit")["image_id"])
