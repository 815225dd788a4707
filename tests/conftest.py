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
