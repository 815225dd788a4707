"""The Ray engine: the job's units of work (a model on a chunk of images) computed by model workers on a Ray cluster.

    python -m precompute --engine ray --ray-address auto --gpus-per-worker 1 --output /shared/store ...

Why Ray actors and not Ray Data's ``map_batches``: a unit is coarse (a chunk of 32 images, several seconds of GPU
work) and its result is a set of files written atomically beside the store, not rows flowing to a sink. Ray Data
would re-batch images across units, wants rows out, and would retry a batch without knowing which unit files exist.
Actors over units keep the local engine's contract exactly: one worker process per GPU holds one model at a time
(loaded once, kept for every following unit of that model: units arrive in model order), and takes the next unit
when it finishes one; each unit is retried as a whole and is idempotent, since it is computed by the very function
the local engine calls (`unit.write_unit`), which keeps the files of the unit already complete.

- The driver plans the units as the local engine does (skipping those done), writes the images of each chunk itself
  (cheap), sends every model unit with its records (image bytes, boxes, meta) to the workers, and writes the
  manifest and the card at the end: a run can stop under one engine and resume under the other, ``--shard`` splits
  the chunks as before and ``--push-to-hub`` pushes the same files.
- Workers need no access to the image source, only to the output folder: on a cluster of several machines,
  ``--output`` must be a shared filesystem (NFS, EFS, Lustre...) mounted at the same path everywhere.
- A worker that dies (killed, out of memory, node lost) is restarted by Ray (``MAX_RESTARTS``) and the unit it was
  computing is retried (``MAX_TASK_RETRIES``); beyond that the run stops and running it again completes it.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from dataclasses import replace

from precompute.config import Config
from precompute.unit import Inputs, Unit, load_model, write_unit
from vitattn.store import StoreError

MAX_RESTARTS = 3  # a worker process that dies is started again this many times
MAX_TASK_RETRIES = 3  # the unit it was computing is retried this many times (on the restarted worker)
CPUS_PER_WORKER = 1


class EngineError(StoreError):
    """The Ray engine cannot run or finish (no Ray, too few GPUs, a worker that keeps dying): one line, what to do."""


class ModelWorker:
    """One Ray actor: holds the model of the units it is given (loaded when the first unit of a model arrives)."""

    def __init__(self, config: Config):
        self.config = config
        self.name: str | None = None
        self.model = None
        self.baselines: dict = {}  # (image, grid) -> baseline rows, shared by this worker's units

    def pid(self) -> int:
        """The worker's process id (tests kill it)."""
        return os.getpid()

    def compute(self, unit: Unit, records: list) -> tuple[Unit, list[str]]:
        """Computes and writes one model unit; returns it with the paths written."""
        if unit.model != self.name:
            self.model = None  # free the previous model before loading the next
            self.model = load_model(self.config, unit.model)
            self.name = unit.model
        written = write_unit(self.config, self.model, Inputs(records), unit, self.baselines)
        return unit, written


def import_ray():
    try:
        import ray
    except ImportError:
        hint = "pip install -r requirements-ray.txt"
        raise EngineError(f"--engine ray needs Ray, which is not installed: {hint}") from None
    return ray


def compute_on_ray(config: Config, inputs: Inputs, todo: list[Unit], bar, on_unit) -> None:
    """Computes ``todo``: the images here, model units on a pool of `ModelWorker` actors; ``on_unit`` after each."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=config.ray_address, log_to_driver=True)
    model_units = [u for u in todo if u.model is not None]
    actors = _start_workers(ray, config, len(model_units)) if model_units else []
    try:
        for unit in (u for u in todo if u.model is None):  # while the workers load their first model
            bar.set_postfix_str(f"images chunk {unit.chunk}")
            write_unit(config, None, inputs, unit, {})
            _done(bar, on_unit, unit)
        _dispatch(ray, actors, inputs, model_units, bar, on_unit)
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if started:
            ray.shutdown()


def _start_workers(ray, config: Config, n_units: int) -> list:
    """As many workers as the cluster holds (GPUs / ``gpus_per_worker``, else CPUs), or ``ray_workers``."""
    resources = ray.cluster_resources()
    gpus = config.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
    if gpus > resources.get("GPU", 0):
        raise EngineError(f"--gpus-per-worker {gpus}: the Ray cluster has {resources.get('GPU', 0)} GPUs")
    fits = int(resources["GPU"] // gpus) if gpus else int(resources.get("CPU", 1) // CPUS_PER_WORKER)
    n = max(1, min(config.ray_workers or fits, n_units))
    prefix = f"vitattn-precompute-{uuid.uuid4().hex[:8]}"
    options = {
        "num_gpus": gpus,
        "num_cpus": CPUS_PER_WORKER,
        "max_restarts": MAX_RESTARTS,
        "max_task_retries": MAX_TASK_RETRIES,
        "max_concurrency": 2,  # pid() answers while a unit is computed; the driver sends one unit at a time
    }
    worker = ray.remote(ModelWorker)
    return [worker.options(name=f"{prefix}-{i}", **options).remote(config) for i in range(n)]


def _dispatch(ray, actors: list, inputs: Inputs, units: list[Unit], bar, on_unit) -> None:
    """Each idle worker gets the next unit (model order kept), until every unit is written."""
    queue = deque(units)
    idle = list(actors)
    running: dict = {}  # object ref -> (actor, unit)
    while queue or running:
        while idle and queue:
            actor, unit = idle.pop(0), queue.popleft()
            records = [replace(inputs.records[i], path=None, data=inputs.encoded(i)) for i in unit.ids]
            running[actor.compute.remote(unit, records)] = (actor, unit)
        (ref,), _ = ray.wait(list(running), num_returns=1)
        actor, unit = running.pop(ref)
        try:
            ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # the unit itself failed: its own error, as the local engine
            raise e.as_instanceof_cause() from None
        except ray.exceptions.RayActorError as e:
            raise EngineError(
                f"a Ray worker died {MAX_RESTARTS + 1} times computing {unit.model} chunk {unit.chunk} "
                f"({type(e).__name__}); run the same command again to resume"
            ) from None
        idle.append(actor)
        bar.set_postfix_str(f"{unit.model} chunk {unit.chunk}")
        _done(bar, on_unit, unit)


def _done(bar, on_unit, unit: Unit) -> None:
    bar.update(0 if unit.model is None else len(unit.ids))  # the bar counts images of model units
    if on_unit is not None:
        on_unit(unit)
