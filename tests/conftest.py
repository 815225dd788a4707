"""Shared pytest fixtures, and the run's shared folders (``run_cache``) with their clean-up."""

import os
import shutil
import sys
import uuid

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


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests are skipped without CUDA whatever ``-m`` says (the inner loop's ``-m`` replaces addopts').

    The files run in pytest-xdist's order (``--dist loadfile`` sorts them by their number of tests and hands each
    worker the next file as it finishes one). Ordering them here did not pay: all browser files first ran 10:02 (two
    mouse walks side by side contend for a chromium and an app server each), browser files alternating with slow ones
    8:50 and 8:52, xdist's own order 8:22 and 8:56 on the same day (docs/testing.md)."""
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu:
        import torch

        if not torch.cuda.is_available():
            for item in gpu:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


def _servers():
    """``app_support`` if this process has imported it (only then can it have started an app server)."""
    return sys.modules.get("app_support")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A server the test body started is stopped when the test ends, also when it failed before stopping it."""
    before = _servers().owned_servers() if _servers() else set()
    try:
        return (yield)
    finally:
        if _servers():
            _servers().stop_servers(keep=before)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """A fixture that failed after it started a server (before handing it out) leaves none running."""
    before = _servers().owned_servers() if _servers() else set()
    try:
        return (yield)
    except BaseException:
        if _servers():
            _servers().stop_servers(keep=before)
        raise


def pytest_unconfigure(config):
    if _servers():  # whatever this process still runs (a fixture whose teardown never came)
        _servers().stop_servers()
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
