"""Shared pytest fixtures, and the run's shared folders (``run_cache``) with their clean-up."""

import itertools
import os
import shutil
import uuid
from pathlib import Path

import pytest
from hubserver import HubServer, point_client_at
from run_cache import RUN_ENV, run_root


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: one core of the machine's share each
        import torch

        workers = int(config.workerinput.get("workercount", 1))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    else:  # the run itself: its workers inherit the name of the folders they share
        os.environ[RUN_ENV] = uuid.uuid4().hex[:12]


# The files that take a minute or more in a full run (``--durations``): first in their kind, so none starts late.
LONGEST = {"test_app_more_browser.py", "test_app_walk.py", "test_app_generic_browser.py", "test_ray_engine.py"}


def pytest_collection_modifyitems(config, items):
    """Files with browser tests alternate with files with slow ones (a launched app, Ray, the job as a command), then
    the rest, each file's tests together and in their order (``--dist loadfile --no-loadscope-reorder`` hands each
    worker the next file as it finishes one). Two mouse walks side by side contend for the same kind of work (a
    chromium and an app server each) and both ran a quarter slower; a walk beside a slow file fills the cores better,
    and the short files at the end keep both workers busy to the end. ``gpu`` tests are skipped without CUDA whatever
    ``-m`` says (the inner loop's ``-m`` replaces addopts')."""
    kinds: dict[Path, int] = {}
    for item in items:
        kind = 0 if item.get_closest_marker("browser") else 1 if item.get_closest_marker("slow") else 2
        kinds[item.path] = min(kind, kinds.get(item.path, 2))
    walks, slow = (
        sorted((p for p, k in kinds.items() if k == kind), key=lambda p: p.name not in LONGEST) for kind in (0, 1)
    )
    order = [p for pair in itertools.zip_longest(walks, slow) for p in pair if p is not None]
    rank = {p: i for i, p in enumerate(order)}
    items.sort(key=lambda item: rank.get(item.path, len(rank)))  # stable: a file's tests keep their order
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu:
        import torch

        if not torch.cuda.is_available():
            for item in gpu:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):  # the run's end: the apps its workers shared, then its folders
        from app_support import stop_shared

        stop_shared()
        shutil.rmtree(run_root(), ignore_errors=True)


@pytest.fixture
def hub_server():
    """A started local Hub (tests/hubserver.py). Nothing points at it: pass ``endpoint=hub_server.url``."""
    with HubServer() as server:
        yield server


@pytest.fixture
def hub(hub_server, tmp_path):
    """``hub_server``, with this process's huggingface_hub/datasets pointed at it and their caches under tmp_path."""
    with point_client_at(hub_server.url, tmp_path / "hf_home"):
        yield hub_server


@pytest.fixture(scope="module")
def explorer(request):
    """The app's Explorer on a tiny random-weight store, the one every app test builds on.

    The store is ``app_support.store_dir()`` unless the test module names another with ``EXPLORER_STORE`` (a
    function returning a store folder, e.g. ``lambda: store_dir(KINDS)``); live inference uses the module's
    ``EXPLORER_WEIGHTS`` (default ``"small"``: the seeded tiny models the store was made with, no network).
    """
    from app_support import store_dir

    from vitattn.ui import AppConfig, Explorer

    folder = getattr(request.module, "EXPLORER_STORE", store_dir)()
    weights = getattr(request.module, "EXPLORER_WEIGHTS", "small")
    return Explorer.open(AppConfig(store=str(folder), weights=weights))


@pytest.fixture(scope="module")
def handlers(explorer):
    """Every endpoint and page step of the app bound to ``explorer``, by name (``app_support.bound_handlers``)."""
    from app_support import bound_handlers

    return bound_handlers(explorer)


@pytest.fixture(scope="module")
def ex(explorer):
    """``explorer`` under the short name the handler tests use."""
    return explorer
