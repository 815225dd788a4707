"""Without network: live inference fails at once with one line, and ``--random-weights`` serves the examples.

The app is launched with an empty Hugging Face cache and a Hub endpoint on a closed local port (a real connection
refused, as offline), and asked for a view of a bundled example, which needs pretrained weights.
"""

from __future__ import annotations

import socket

import pytest
from app_support import AppServer, api_client, free_port
from gradio_client.exceptions import AppError

pytestmark = pytest.mark.slow


@pytest.fixture
def offline(tmp_path) -> dict[str, str]:
    port = free_port()  # nothing listens there: every connection is refused
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    return {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HUB_OFFLINE": None}


def test_offline_live_inference_fails_with_one_line_naming_the_way_out(offline):
    server = AppServer(None, weights="pretrained", env=offline)
    try:
        client = api_client(server.url)
        with pytest.raises(AppError) as caught:
            client.predict("astronaut", "dinov2", "cls", 11, -1, api_name="/attention")
        message = str(caught.value)
        assert "weights of dinov2" in message and "not cached and the Hub is unreachable" in message
        assert "--random-weights" in message and "\n" not in message.strip()
        assert client.predict(api_name="/info")["random_weights"]["live"] is False
    finally:
        server.stop()


def test_random_weights_serve_the_bundled_examples_offline_and_say_so(offline):
    server = AppServer(None, weights="pretrained", env=offline, args=("--random-weights",))
    try:
        client = api_client(server.url)
        info = client.predict(api_name="/info")
        assert info["mode"] == "live" and info["random_weights"]["live"] is True
        _, table, data = client.predict("astronaut", "siglip", "pool", 11, -1, api_name="/attention")
        assert data["random_weights"] is True and data["source"] == "live" and table["data"]
    finally:
        server.stop()
