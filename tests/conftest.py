"""Shared pytest fixtures."""

import pytest
from hubserver import HubServer, point_client_at


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
