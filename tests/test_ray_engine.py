"""The Ray engine (``--engine ray``) on a real local Ray instance (2 CPUs, no GPU): its store equals the local
engine's table for table; a worker killed mid-run ends in the same store after Ray restarts it, with no file written
twice; a run moves between engines; the local engine needs no Ray.

Run: python -m pytest tests/test_ray_engine.py -q
"""

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from small_models import small_overrides

from precompute import Config, Unit, run

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("vit", "resnet50")
SMALL = {name: small_overrides(name) for name in MODELS}
WRITE_LOG = "VITATTN_WRITE_LOG"

pytestmark = pytest.mark.slow  # a Ray instance takes some seconds to start; the runs below about a minute in all


def config(out: Path, **kw) -> Config:
    """Both models, one image per unit (7 chunks): enough units for a kill to land mid-run."""
    kw = {"chunk_size": 1, "batch_size": 1, "resolution": 64, "random_weights": True, "progress": False, **kw}
    return Config(output=out, models=MODELS, methods=("cls", "rollout", "gradcam"), feature_layers="-1",
                  overrides=SMALL, **kw)  # fmt: skip


def tables(folder: Path) -> dict[str, list]:
    return {p.relative_to(folder).as_posix(): pq.read_table(p).to_pylist() for p in sorted(folder.rglob("*.parquet"))}


def assert_same_tables(a: dict[str, list], b: dict[str, list]) -> None:
    """The same files, rows and values; floats equal up to float32 rounding. A Ray worker holding one CPU runs torch
    on one thread, the local engine on all of them, and torch's CPU kernels sum in an order that depends on the
    thread count (the last bit of a ResNet's class probability, hence of its faithfulness curves, can differ)."""
    assert a.keys() == b.keys()
    for path in a:
        assert len(a[path]) == len(b[path]), path
        for row_a, row_b in zip(a[path], b[path], strict=True):
            assert row_a.keys() == row_b.keys(), path
            for column, x in row_a.items():
                y = row_b[column]
                if isinstance(x, float) or (isinstance(x, list) and x and isinstance(x[0], float)):
                    # The sanity curves re-run randomised networks, whose maps carry those last bits into float16
                    # values (one float16 step is 2^-10 relative) and into HOG's orientation bins.
                    rtol, atol = (1e-3, 1e-6) if "/sanity-" in path else (1e-6, 1e-9)
                    np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"{path} {column}")
                else:
                    assert x == y, (path, column)


def manifest(folder: Path) -> dict:
    return {k: v for k, v in json.loads((folder / "manifest.json").read_text()).items() if k != "created"}


def writes(log: Path) -> list[tuple[int, str]]:
    """``(pid, path)`` of every data file written since the log was emptied."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [(int(pid), path) for pid, _, path in (line.partition(" ") for line in lines)]


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    """The write log every process of the module appends to (the driver and the Ray workers)."""
    path = tmp_path_factory.mktemp("log") / "writes.log"
    old = os.environ.get(WRITE_LOG)
    os.environ[WRITE_LOG] = str(path)
    yield path
    if old is None:
        del os.environ[WRITE_LOG]
    else:
        os.environ[WRITE_LOG] = old


@pytest.fixture(scope="module")
def cluster(log):
    """A real local Ray instance with 2 CPUs: two model workers."""
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {WRITE_LOG: str(log)}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, log) -> Path:
    """The local engine's store, faithfulness curves included."""
    out = tmp_path_factory.mktemp("local")
    run(config(out))
    return out


# The kill and the move test are about units and files, not about what a unit computes (the equality test checks
# every table, faithfulness included, through Ray): without faithfulness a unit computes in a quarter of the time.
LIGHT = {"faithfulness_layers": "none"}


@pytest.fixture(scope="module")
def light_reference(tmp_path_factory, log) -> Path:
    """The local engine's store without faithfulness curves."""
    out = tmp_path_factory.mktemp("local-light")
    run(config(out, **LIGHT))
    return out


def test_the_ray_store_equals_the_local_store(cluster, reference, log, tmp_path):
    out = tmp_path / "store"
    log.write_text("")
    done: list[Unit] = []
    run(config(out, engine="ray"), on_unit=done.append)
    assert len(done) == 7 * 3 and len(set(done)) == len(done)  # 7 image units, 7 units of each model
    assert_same_tables(tables(out), tables(reference))
    assert manifest(out) == manifest(reference)
    written = writes(log)
    paths = [p for _, p in written]
    assert sorted(paths) == sorted(str(out / p) for p in tables(out))  # every file once
    workers = {pid for pid, p in written if "/models/" in p}
    assert os.getpid() not in workers and len(workers) == 2  # the model units ran in the two workers
    assert {pid for pid, p in written if "/images/" in p} == {os.getpid()}  # the images: the driver


def test_a_worker_killed_mid_run_ends_in_the_same_store(cluster, light_reference, log, tmp_path):
    """SIGKILL of a worker right after it wrote the first file of a unit (the unit is half-written): Ray starts the
    worker again and retries the unit, which writes the files still missing; no file is written twice."""
    out = tmp_path / "store"
    log.write_text("")
    killed: list[int] = []

    def kill_first_model_writer() -> None:
        while not killed:
            for pid, path in writes(log):
                if "/models/" in path and pid != os.getpid():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_first_model_writer, daemon=True)
    killer.start()
    run(config(out, engine="ray", **LIGHT))
    killer.join(timeout=60)  # only turns a hang into a failure
    assert len(killed) == 1
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)  # that process is gone
    written = writes(log)
    counts = collections.Counter(p for _, p in written)
    assert counts.most_common(1)[0][1] == 1  # nothing written twice
    assert len({pid for pid, p in written if "/models/" in p}) >= 3  # two workers, and the restarted one
    assert_same_tables(tables(out), tables(light_reference))
    assert manifest(out) == manifest(light_reference)
    assert not list(out.glob("**/.*tmp*"))


class Stop(Exception):
    pass


def test_a_run_moves_between_engines(cluster, light_reference, log, tmp_path):
    """Stopped under the local engine, resumed under Ray: only the missing units are computed."""
    out = tmp_path / "store"
    done: list[Unit] = []

    def stop_after_nine(unit: Unit) -> None:
        done.append(unit)
        if len(done) == 9:  # the 7 image units and 2 of vit's
            raise Stop

    with pytest.raises(Stop):
        run(config(out, **LIGHT), on_unit=stop_after_nine)
    redone: list[Unit] = []
    run(config(out, engine="ray", **LIGHT), on_unit=redone.append)
    assert len(redone) == 21 - 9 and set(redone).isdisjoint(done)
    assert_same_tables(tables(out), tables(light_reference))
    assert manifest(out) == manifest(light_reference)
    again: list[Unit] = []
    run(config(out, **LIGHT), on_unit=again.append)  # and back: nothing left to do
    assert again == []


def test_the_local_engine_needs_no_ray(tmp_path):
    """In a process where ``import ray`` fails: --engine local runs, --engine ray is refused in one line."""
    out = tmp_path / "store"
    code = f"""
import sys
sys.modules["ray"] = None  # import ray raises ImportError
from precompute.__main__ import main
args = ["--models", "vit", "--methods", "cls", "--feature-layers", "none", "--random-weights", "--quiet"]
args += ["--overrides", {json.dumps(json.dumps({"vit": SMALL["vit"]}))}, "--output", {str(out)!r}]
assert main(args) == 0
assert "ray" not in [m.split(".")[0] for m, v in sys.modules.items() if v is not None]
main(args + ["--engine", "ray"])
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and (out / "manifest.json").is_file()
    message = done.stderr.strip().splitlines()[-1]
    assert message == "precompute: --engine ray needs Ray, which is not installed: pip install -r requirements-ray.txt"


def test_ray_options_are_checked(capsys):
    with pytest.raises(SystemExit) as err:
        Config.from_args(["--ray-address", "auto"])
    assert "need --engine ray" in str(err.value)
    with pytest.raises(SystemExit) as err:
        Config.from_args(["--engine", "ray", "--ray-workers", "0"])
    assert "--ray-workers 0: must be at least 1" in str(err.value)
    args = ["--engine", "ray", "--ray-address", "ray://head:10001", "--gpus-per-worker", "0.5", "--ray-workers", "8"]
    c = Config.from_args(args)
    assert (c.engine, c.ray_address, c.gpus_per_worker, c.ray_workers) == ("ray", "ray://head:10001", 0.5, 8)
