"""Faults: the precompute job killed (SIGKILL) at random points and restarted; pushes that fail part-way (errors,
dropped connections, a commit whose answer is lost); the Hub unreachable or stalling at start and mid-session.

The job must end with the store of an uninterrupted run; the repo must never show a half-written store and the next
push completes the one that failed; reads must fail within seconds, never wait out minutes of retries.

Run: python -m pytest tests/test_faults.py -q
"""

import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub.utils import _http as hf_http
from small_models import small_overrides

from precompute import Config, push, run
from precompute.push import PushError, local_files
from vitattn.store import HubUnavailable, StoreError, files as store_files, open_store
from vitattn.store.layout import CARD, MANIFEST, METADATA_KEY, file_parts, model_tables, table_path
from vitattn.store.manifest import parse_manifest

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"vit": small_overrides("vit")}
REPO = "ns/faults"
LOCATION = f"hf://datasets/{REPO}"
HANG_GUARD = 60  # seconds: only to turn a hang into a failure, never a speed assertion


def job_config(out: Path) -> Config:
    """One small model, one image per unit: 7 image units and 7 model units of 9 files (predictions, head statistics,
    faithfulness and sanity curves of the first two images included)."""
    return Config(output=out, models=("vit",), methods=("cls", "rollout"), feature_layers="-1", overrides=SMALL,
                  chunk_size=1, batch_size=1, resolution=64, random_weights=True, progress=False,
                  faithfulness_layers="-1", sanity_images=2)  # fmt: skip


def command(out: Path) -> list[str]:
    """``python -m precompute`` with exactly ``job_config(out)``."""
    cmd = [sys.executable, "-m", "precompute", "--models", "vit", "--methods", "cls,rollout", "--feature-layers=-1"]
    cmd += ["--chunk-size", "1", "--batch-size", "1", "--resolution", "64", "--random-weights", "--quiet"]
    cmd += ["--faithfulness-layers=-1", "--sanity-images", "2"]
    return cmd + ["--output", str(out), "--overrides", json.dumps(SMALL)]


def rows(folder: Path) -> dict[str, list[dict]]:
    return {p.relative_to(folder).as_posix(): pq.read_table(p).to_pylist() for p in sorted(folder.rglob("*.parquet"))}


def manifest_without_created(folder: Path) -> dict:
    return {k: v for k, v in json.loads((folder / MANIFEST).read_text()).items() if k != "created"}


def bounded(fn, seconds: float = HANG_GUARD):
    """``fn()``'s result or the exception it raised; fails the test if it has not returned after ``seconds``."""
    out: dict = {}

    def call() -> None:
        try:
            out["value"] = fn()
        except Exception as e:  # noqa: BLE001 - handed back to the test
            out["error"] = e

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: it hangs"
    return out.get("error", out.get("value"))


# ------------------------------------------------------------------------------------------- the job, SIGKILLed


@pytest.mark.slow  # the job as a process, killed and restarted until it ends
def test_the_job_killed_at_random_points_ends_with_the_store_of_an_uninterrupted_run(tmp_path):
    """Three runs of ``python -m precompute`` killed after a seeded random amount of progress, then a last run."""
    reference = tmp_path / "reference"
    run(job_config(reference))
    n_files = len(list(reference.rglob("*.parquet")))
    out = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(20240607)
    kills = 0
    for _ in range(3):  # each run spends ~4 s importing torch and building models before it writes anything
        done = len(list(out.rglob("*.parquet")))  # complete files (temporary ones start with a dot)
        target, extra = done + rng.randint(3, 16), rng.uniform(0.0, 0.2)
        process = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + HANG_GUARD
        while process.poll() is None and len(list(out.rglob("*.parquet"))) < min(target, n_files):
            assert time.monotonic() < deadline, "the job made no progress"
            time.sleep(0.005)
        time.sleep(extra)  # somewhere in a unit: between two files, in the middle of one, or loading a model
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=HANG_GUARD)  # reaped: its temporary files belong to a dead process

        if process.returncode != -signal.SIGKILL:
            assert process.returncode == 0, process.stderr.read().decode()[-3000:]
            break
        kills += 1
    assert kills >= 2  # the test did interrupt the job
    run(job_config(out))  # the last restart (in this process: no second torch import)
    assert rows(out) == rows(reference)  # every table, row for row: nothing missing, nothing twice
    assert manifest_without_created(out) == manifest_without_created(reference)
    assert (out / CARD).read_text() == (reference / CARD).read_text()
    assert [p for p in out.rglob("*") if p.name.startswith(".")] == []  # no temporary file left


# ------------------------------------------------------------------------------------------- pushes that fail


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("store")
    run(Config(output=out, models=("vit",), overrides=SMALL, chunk_size=3, feature_layers="none",
               random_weights=True, progress=False))  # fmt: skip
    return out


@pytest.fixture
def instant_backoff(monkeypatch):
    """huggingface_hub's own retries (preupload, tree listing: up to 5, after 1, 2, 4, 8 and 8 s) without the waits."""
    monkeypatch.setattr(hf_http, "time", types.SimpleNamespace(sleep=lambda seconds: None))


def check_every_commit(hub) -> list:
    """Each commit of REPO is a complete, consistent store (or holds no store file at all); returns the commits
    that hold a store, oldest first."""
    repo = hub.storage.repo("dataset", REPO)
    head = hub.storage.resolve(repo, "main")
    stores = []
    for commit in reversed(list(hub.storage.history(repo, head))):
        files = dict(commit.files)
        data = {p: file_parts(p) for p in files if file_parts(p)}
        if not data and MANIFEST not in files:
            continue
        assert MANIFEST in files and CARD in files, (commit.title, sorted(files))
        manifest, chunk_of, problems = parse_manifest(hub.storage.read(files[MANIFEST]), commit.oid)
        assert problems == []
        n_chunks = max(chunk_of.values()) + 1
        expected = {table_path("images", c) for c in range(n_chunks)}
        for model, entry in manifest["models"].items():
            expected |= {table_path(t, c, model) for t in model_tables(entry) for c in range(n_chunks)}
        assert set(data) == expected, (commit.title, sorted(set(data) ^ expected))
        for path, (_, model, chunk) in data.items():
            unit = json.loads(pq.read_metadata(io.BytesIO(hub.storage.read(files[path]))).metadata[METADATA_KEY])
            assert (unit["model"], unit["chunk"]) == (model, chunk), path
        stores.append(commit)
    return stores


FAULTS = [  # where, how, how many times; what the failed push says
    ("POST", "/api/repos/create", 503, 9, "creating the repo: the Hub answered HTTP 503"),
    ("GET", "/tree/", 502, 9, "reading the repo: the Hub answered HTTP 502"),
    ("POST", "/preupload/", 500, 9, "uploading and committing: the Hub answered HTTP 500"),
    ("POST", "/preupload/", "drop", 9, "uploading and committing: the Hub could not be reached (RemoteProtocolError"),
    ("POST", "/commit/", 500, 1, "committing: the Hub answered HTTP 500"),
    ("POST", "/commit/", 503, 1, "committing: the Hub answered HTTP 503"),
    ("POST", "/commit/", "drop", 1, "committing: the Hub could not be reached"),
    ("POST", "/commit/", "truncate", 1, "committing: the Hub could not be reached"),
]


@pytest.mark.parametrize("method, where, mode, times, message", FAULTS, ids=[f"{f[1]}-{f[2]}" for f in FAULTS])
def test_a_failed_push_is_completed_by_the_next(hub, folder, instant_backoff, method, where, mode, times, message):
    fault = hub.fail(method, where, times=times, mode=mode)
    with pytest.raises(PushError) as failed:
        push(folder, REPO, retries=1)  # no retry of its own: fail at once
    text = str(failed.value)
    assert fault.hits >= 1 and f"push to {LOCATION} failed while {message}" in text
    assert "run the same command again" in text and "Traceback" not in text and "\n" not in text
    if mode == "truncate":
        assert "it may have landed" in text
    fault.remaining = 0
    result = push(folder, REPO, retries=1)
    stores = check_every_commit(hub)
    assert len(stores) == 1  # one commit of the store, never a second of the same files
    if mode == "truncate":  # the lost answer's commit had landed: nothing left to send
        assert result.commit is None and result.unchanged == len(local_files(folder))
    else:
        assert result.commit == stores[0].oid and sorted(result.uploaded) == sorted(local_files(folder))
    uploaded = hub.uploaded_paths()
    assert sorted(uploaded) == sorted(set(uploaded)) == sorted(local_files(folder))  # each file sent once
    store = open_store(LOCATION)
    assert store.problems == [] and store.map("coffee", "vit", "cls", 1).shape == (4, 4)


@pytest.mark.parametrize("mode", [503, "drop", "truncate"])
def test_a_push_retries_by_itself(hub, folder, mode):
    hub.fail("POST", "/commit/", times=2, mode=mode)
    result = push(folder, REPO, retry_wait=0)  # three tries
    [store_commit] = check_every_commit(hub)
    assert result.commit == store_commit.oid and sorted(result.uploaded) == sorted(local_files(folder))
    assert sorted(hub.uploaded_paths()) == sorted(local_files(folder))


def test_a_push_the_hub_refuses_is_not_retried(hub, folder):
    fault = hub.fail("POST", "/commit/", times=5, mode=403)
    with pytest.raises(PushError, match="HTTP 403 .*Nothing was committed. Check that HF_TOKEN"):
        push(folder, REPO, retry_wait=0)
    assert fault.hits == 1 and check_every_commit(hub) == []


# ------------------------------------------------------------------------------------------- the Hub unreachable


@pytest.fixture
def pushed(hub, folder) -> str:
    commit = push(folder, REPO).commit
    hub.clear_log()
    return commit


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The waits between a store read and its retry (recorded, not slept)."""
    waits: list[float] = []
    monkeypatch.setattr(store_files.time, "sleep", waits.append)
    return waits


def test_the_hub_unreachable_at_start(hub, pushed, sleeps):
    with hub.offline():
        error = bounded(lambda: open_store(LOCATION))
    assert isinstance(error, HubUnavailable) and isinstance(error, StoreError)
    assert str(error).startswith(f"{LOCATION}: the Hub is unreachable (ConnectError") and "try again" in str(error)
    assert sleeps == [store_files.HUB_RETRY_WAIT] * store_files.HUB_RETRIES  # one short retry, not minutes


def test_a_hub_that_does_not_answer_at_start(hub, pushed, sleeps):
    fault = hub.fail("GET", f"/api/datasets/{REPO}", times=9, mode="stall")
    error = bounded(lambda: open_store(LOCATION, timeout=0.5))
    assert isinstance(error, HubUnavailable) and "ReadTimeout" in str(error)
    assert fault.hits == 1 + store_files.HUB_RETRIES


def test_the_hub_unreachable_mid_session(hub, pushed, sleeps):
    store = open_store(LOCATION)
    seen = store.map("astronaut", "vit", "agcam", 1, head=2)
    metrics = store.metrics()
    with hub.offline():
        assert (store.map("astronaut", "vit", "agcam", 1, head=2) == seen).all()  # from memory
        assert store.map("camera", "vit", "cls", 0).shape == (4, 4)  # same row group
        assert len(store.metrics()["image_id"]) == len(metrics["image_id"])
        for view in (
            lambda: store.map("rocket", "vit", "cls", 0),
            lambda: store.image("coffee"),
            lambda: store.image_meta(),
            lambda: store.predictions("cell", "vit"),
            lambda: store.baselines(),
        ):
            error = bounded(view)
            assert isinstance(error, HubUnavailable), error
            assert "the Hub is unreachable (ConnectError" in str(error) and str(error).endswith("try again")
        assert store.problems == []  # passing, not damage
    assert set(sleeps) == {store_files.HUB_RETRY_WAIT} and len(sleeps) <= 9 * store_files.HUB_RETRIES  # 9 reads
    assert store.map("rocket", "vit", "cls", 0).shape == (4, 4)  # back: the same store works again
    assert store.image("coffee").width == 600 and len(store.image_meta()) == 7


def test_a_hub_that_stops_answering_mid_session(hub, pushed, sleeps):
    store = open_store(LOCATION, timeout=0.5)
    fault = hub.fail("GET", "models/vit/maps-00002.parquet", times=9, mode="stall")
    error = bounded(lambda: store.map("rocket", "vit", "cls", 0))
    assert isinstance(error, HubUnavailable) and "maps-00002.parquet: the Hub is unreachable (ReadTimeout" in str(error)
    assert fault.hits == 1 + store_files.HUB_RETRIES and store.problems == []
    fault.remaining = 0
    assert store.map("rocket", "vit", "cls", 0).shape == (4, 4)


def test_a_damaged_store_on_the_hub(hub, folder, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for rel, path in local_files(folder).items():
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_bytes(path.read_bytes())
    (copy / MANIFEST).write_text('{"format": ')
    (copy / table_path("maps", 1, "vit")).write_bytes(b"PAR1")
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    ops = [CommitOperationAdd(rel, path.read_bytes()) for rel, path in sorted(local_files(copy).items())]
    api.create_commit(REPO, ops, commit_message="damaged", repo_type="dataset")
    store = open_store(LOCATION)
    assert store.models() == ["vit"] and len(store.image_ids()) == 7
    assert "not valid json" in store.problems[0] and "rebuilt from the data files" in store.problems[0]
    with pytest.raises(StoreError, match="maps-00001.parquet is damaged"):
        store.map("chelsea", "vit", "cls", 0)
    assert store.map("rocket", "vit", "cls", 0).shape == (4, 4)
    assert any("maps-00001.parquet is damaged" in p for p in store.problems)
