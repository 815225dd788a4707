"""The app on a store on the Hub (tests/hubserver.py, a real HTTP server): it only reads, it sends no token unless one
is configured, a configured token never reaches a page or a client, and it keeps serving when the Hub goes away.

The test store (``app_support.store_dir``, built by the precompute job) is pushed once with ``precompute.push``;
each app is ``python app.py --store hf://datasets/...`` with the environment of ``HubServer.client_env``.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from app_support import AppServer, api_client, store_dir
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from hubserver import HubServer, point_client_at
from small_models import noise_image

from precompute import push

pytestmark = pytest.mark.slow  # the app as a process, on a local Hub (docs/testing.md)

REPO = "ns/vitattn-app"
LOCATION = f"hf://datasets/{REPO}"
TOKEN = "hf_vitattnTestSecret0123456789abcdef"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with HubServer() as server:
        with point_client_at(server.url, tmp_path_factory.mktemp("pusher")):
            push(store_dir(), REPO)
        yield server


def launch(hub: HubServer, home: Path, token: str | None = None) -> AppServer:
    env = {**hub.client_env(home), "HF_TOKEN": token, "HUGGING_FACE_HUB_TOKEN": None}
    return AppServer(LOCATION, env=env)


@pytest.fixture(scope="module")
def session(hub, tmp_path_factory):
    """The app on the Hub store with no token, and a client that has used every endpoint once."""
    hub.clear_log()
    server = launch(hub, tmp_path_factory.mktemp("home"))
    client = api_client(server.url)
    use_everything(client, tmp_path_factory.mktemp("uploads"))
    yield server, client
    client.close()
    server.stop()


def use_everything(client: Client, folder: Path) -> list:
    """One call of every endpoint (and a few refused ones); returns every answer and error message."""
    path = folder / "mine.png"
    noise_image(90, 70, seed=8).save(path)
    answers = [client.predict(api_name="/info")]
    for call in [
        (("astronaut", "dinov2", "cls", 1, -1, 0.6), "/attention"),
        (("coffee", "dinov2", "cls", 0, 2, 0.6), "/attention"),
        (("astronaut", "dinov2", "mean", -1, 0.6), "/layers"),
        (("astronaut", "dinov2", "cls", 1, 0.6), "/heads"),
        (("astronaut", "dinov2", 1, 0.2, 0.2, 0.6, 0.6, 0.6), "/similarity"),
        (("coffee",), "/image"),
        (("astronaut", "vit"), "/predictions"),
        (("astronaut", "dinov2", "cls", 1, -1, "0.1 0.1 0.5 0.5 mine"), "/metrics"),
        ((90, "best"), "/leaderboard"),
        ((90, "best"), "/layer_curves"),
        (("dinov2", "cls", 90), "/layer_head"),
        (("dinov2", "best", -1, "label", 90), "/breakdown"),
        (("dinov2", "resnet50", 90), "/compare"),
        ((handle_file(str(path)), "dinov2"), "/analyze"),
    ]:
        args, api_name = call
        answers.append(client.predict(*args, api_name=api_name))
    for args, api_name in [(("nope",), "/image"), (("astronaut", "dinov2", "cls", 1, 9, 0.6), "/attention")]:
        with pytest.raises(AppError) as caught:
            client.predict(*args, api_name=api_name)
        answers.append(str(caught.value))
    return answers


def page_texts(server: AppServer) -> list[str]:
    texts = []
    for route in ("", "config", "gradio_api/info", "gradio_api/info?all_endpoints=true"):
        with urllib.request.urlopen(server.url + route, timeout=30) as r:
            texts.append(r.read().decode(errors="replace"))
    return texts


def test_a_session_only_reads_from_the_hub_and_sends_no_token(hub, session):
    server, client = session
    assert client.predict(api_name="/info")["mode"] == "store"
    log = hub.log
    assert log and {e.method for e in log} <= {"GET", "HEAD"}, sorted({(e.method, e.path) for e in log})
    assert not any(e.authorization for e in log)
    assert not hub.uploaded_paths()


def test_when_the_hub_goes_away_cached_views_stay_and_new_ones_are_computed_live(hub, session):
    server, client = session
    with hub.offline():
        _, _, seen = client.predict("astronaut", "dinov2", "cls", 1, -1, 0.6, api_name="/attention")
        assert seen["source"] == "store"  # read before: from memory
        picture, table, new = client.predict("astronaut", "mae", "cls", 1, -1, 0.6, api_name="/attention")
        assert new["source"] == "live" and Path(picture).is_file() and table["data"]
        _, sim = client.predict("astronaut", "clip", 0, 0.5, 0.5, 0.5, 0.5, 0.6, api_name="/similarity")
        assert sim["source"] == "live"
        assert client.predict(90, "best", api_name="/leaderboard")["data"]  # the tables were read before
        problems = "\n".join(client.predict(api_name="/info")["problems"])
        assert "maps of mae for image astronaut cannot be read from the store" in problems
        assert "computed live" in problems
        assert client.predict(api_name="/ping") == "pong"
    _, _, back = client.predict("coffee", "dinov2", "cls", 0, 2, 0.6, api_name="/attention")
    assert back["source"] == "store"


def test_the_app_deletes_its_uploads_and_pictures_when_it_stops(session):
    server, client = session
    assert any(p.name == "mine.png" for p in server.files()) and any(p.suffix == ".jpeg" for p in server.files())
    client.close()
    assert server.terminate() == 0
    assert server.files() == []


def test_a_hub_unreachable_at_start_still_starts_with_the_examples(hub, tmp_path):
    with hub.offline():
        server = launch(hub, tmp_path / "home")
        client = api_client(server.url)
        try:
            info = client.predict(api_name="/info")
            assert info["mode"] == "live" and "astronaut" in info["images"]
            assert any("cannot be opened" in p and "bundled example images" in p for p in info["problems"])
            _, _, data = client.predict("astronaut", "dinov2", "cls", 1, -1, 0.6, api_name="/attention")
            assert data["source"] == "live"
            with pytest.raises(AppError, match="needs a store"):
                client.predict(90, "best", api_name="/leaderboard")
        finally:
            client.close()
            server.stop()


def test_a_configured_token_is_used_for_reading_and_never_shown(hub, tmp_path):
    hub.clear_log()
    server = launch(hub, tmp_path / "home", token=TOKEN)
    client = api_client(server.url)
    try:
        answers = use_everything(client, tmp_path)
        with hub.offline():
            answers.append(client.predict("astronaut", "mae", "cls", 1, -1, 0.6, api_name="/attention")[2])
            answers.append(client.predict(api_name="/info"))
        texts = [json.dumps(a, default=str) for a in answers] + page_texts(server)
        texts += [Path(p).read_text(errors="replace") for p in server.files() if p.suffix in (".json", ".txt")]
        assert all(TOKEN not in t for t in texts)
        assert any(e.authorization for e in hub.log)  # the token was sent to the Hub, where it belongs
        assert {e.method for e in hub.log} <= {"GET", "HEAD"}
    finally:
        client.close()
        server.stop()
