"""Secrets: the Hub token comes from ``HF_TOKEN`` or huggingface_hub's stored login only, is never needed to read a
public store, never written, logged or shown in a message (a failing push's included), and the store reader has no
way to write to the Hub.

Run: python -m pytest tests/test_secrets.py -q
"""

import importlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from small_models import small_overrides

from precompute import Config, push, run
from precompute.config import parser
from precompute.push import local_files
from vitattn.store import HubUnavailable, Store, open_store

ROOT = Path(__file__).resolve().parent.parent
REPO = "ns/secrets"
LOCATION = f"hf://datasets/{REPO}"
TOKEN = "hf_vitattnTESTsecret0123456789abcdefXYZ"
READER_MODULES = tuple(
    f"vitattn.store.{m}" for m in ("reader", "files", "tables", "recover", "layout", "manifest", "quantize")
) + (
    "vitattn.cache",
    "vitattn.secrets",
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("store")
    run(Config(output=out, models=("vit",), overrides={"vit": small_overrides("vit")}, chunk_size=3,
               feature_layers="-1", random_weights=True, progress=False))  # fmt: skip
    return out


@pytest.fixture
def pushed(hub, folder) -> str:
    commit = push(folder, REPO).commit
    hub.clear_log()
    return commit


def read_everything(store) -> None:
    store.map("coffee", "vit", "cls", 1, head=1)
    store.features("rocket", "vit", 1)
    store.image("cell")
    store.image_meta()
    store.predictions("astronaut", "vit")
    store.metrics()
    store.box_metrics()
    store.baselines()


def test_reading_a_public_store_sends_no_token_and_never_writes(hub, pushed):
    """The ``hub`` fixture leaves no token anywhere: no HF_TOKEN, an empty token file path."""
    store = open_store(LOCATION)
    read_everything(store)
    assert store.problems == [] and len(hub.log) > 5
    assert {e.method for e in hub.log} == {"GET"} and not any(e.authorization for e in hub.log)


def test_a_configured_token_is_sent_but_never_shown(hub, pushed, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # a private store needs it; huggingface_hub reads it at each call
    store = open_store(LOCATION)
    read_everything(store)
    assert all(e.authorization for e in hub.log) and {e.method for e in hub.log} == {"GET"}
    hub.fail("GET", "models/vit/features-00001.parquet", mode=401)
    with pytest.raises(HubUnavailable) as refused:
        store.features("chelsea", "vit", 1)
    with hub.offline(), pytest.raises(HubUnavailable) as unreachable:
        store.features("chelsea", "vit", 1)
    for error in (refused.value, unreachable.value):
        assert TOKEN not in str(error) and TOKEN not in repr(error)
    assert "HTTP 401" in str(refused.value) and "unreachable" in str(unreachable.value)


def test_the_store_reader_has_no_write_path():
    public = {name for name in dir(Store) if not name.startswith("_")}
    assert public == {  # reads only
        "baselines", "box_metrics", "close", "faithfulness", "features", "head_stats", "image", "image_ids",
        "image_meta", "map", "metrics", "models", "predictions", "random_weights", "sanity", "text_map",
    }  # fmt: skip
    for name in READER_MODULES:
        source = inspect.getsource(importlib.import_module(name))
        for word in ("create_commit", "upload", "CommitOperation", "HfApi(", "HfFileSystem(", "delete_"):
            assert word not in source, (name, word)
        assert re.findall(r"get_session\(\)\.(\w+)", source) in ([], ["get"]), name  # HTTP: GET only
    assert "--token" not in parser().format_help()  # a token on the command line would show in process listings


@pytest.mark.slow  # the job as a process
def test_the_command_pushes_with_hf_token_and_never_shows_it(hub, tmp_path):
    out = tmp_path / "store"
    cmd = [sys.executable, "-m", "precompute", "--models", "vit", "--random-weights", "--output", str(out), "--quiet"]
    cmd += [
        "--methods",
        "rollout",
        "--feature-layers",
        "none",
        "--overrides",
        json.dumps({"vit": small_overrides("vit")}),
    ]
    home = tmp_path / "home"
    env = {**hub.client_env(home), "PYTHONPATH": str(ROOT), "HF_TOKEN": TOKEN, "HF_HUB_VERBOSITY": "debug"}
    done = subprocess.run([*cmd, "--push-to-hub", REPO], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"hf://datasets/{REPO}@" in done.stdout and "pushed" in done.stdout
    assert sorted(hub.uploaded_paths()) == sorted(local_files(out))
    writes = [e for e in hub.log if e.method != "GET"]
    assert writes and all(e.authorization for e in writes)  # the token pushed
    store = open_store(LOCATION)
    assert store.random_weights and store.models() == ["vit"] and store.problems == []

    hub.fail("POST", "/commit/", times=9, mode=403)  # e.g. a read-only token
    failed = subprocess.run([*cmd, "--push-to-hub", "ns/other"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=180)  # fmt: skip
    assert failed.returncode == 1
    [line] = [line for line in failed.stderr.splitlines() if line.startswith("precompute:")]
    assert line.startswith("precompute: push to hf://datasets/ns/other failed while committing: the Hub answered HTTP")
    assert "Check that HF_TOKEN" in line and "run the same command again" in line
    assert "Traceback" not in failed.stderr
    for text in (done.stdout, done.stderr, failed.stdout, failed.stderr):
        assert TOKEN not in text
    for path in [*home.rglob("*"), *out.rglob("*")]:  # nothing written to disk holds it (caches, store, logs)
        assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path
