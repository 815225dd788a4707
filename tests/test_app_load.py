"""The app under concurrent users (a light version of ``python -m bench.load``): every request succeeds, live
inference runs at most ``LIVE_WORKERS`` at a time, and a cached view is answered while a live analysis is running.

The app is launched in this process (``app.serve(build_demo(explorer), block=False)``) so that a live analysis can
be held at a gate: the checks are about order and completion, never about time.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from app_support import api_client, free_port
from gradio_client import handle_file
from small_models import noise_image

import app
from vitattn.ui.data import live
from vitattn.ui.data.config import LIVE_WORKERS
from vitattn.ui.demo import build_demo

USERS = 6
ROUNDS = 2


@pytest.fixture(scope="module")
def url(explorer):
    demo = build_demo(explorer)
    _, local_url, _ = app.serve(demo, "127.0.0.1", free_port(), block=False)
    try:
        yield local_url
    finally:
        demo.close()
        app.clean_up(demo)


class Watch:
    """Counts live analyses running at once; ``gate`` holds each one until it is set."""

    def __init__(self, gate: bool = False):
        self.gate = threading.Event()
        if not gate:
            self.gate.set()
        self.started = threading.Event()
        self.running = self.most = self.calls = 0
        self._lock = threading.Lock()
        self._real = live._analyze_on_device

    def __call__(self, owner, model, image):
        with self._lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        self.started.set()
        try:
            assert self.gate.wait(120), "the gate was never opened"
            return self._real(owner, model, image)
        finally:
            with self._lock:
                self.running -= 1


def upload(folder, seed: int) -> str:
    path = folder / f"upload-{seed}.png"
    noise_image(80 + seed, 60, seed=seed).save(path)
    return str(path)


def test_a_cached_view_is_answered_while_a_live_analysis_runs(url, tmp_path, monkeypatch):
    watch = Watch(gate=True)
    monkeypatch.setattr(live, "_analyze_on_device", watch)
    analyst, viewer = api_client(url), api_client(url)
    try:
        job = analyst.submit(handle_file(upload(tmp_path, 100)), "mae", api_name="/analyze")
        assert watch.started.wait(60)
        _, _, view = viewer.predict("rocket", "mae", "cls", 1, -1, 0.5, api_name="/attention")
        _, sim = viewer.predict("rocket", "mae", 1, 0.2, 0.2, 0.6, 0.6, 0.5, api_name="/similarity")
        board = viewer.predict(90, "best", api_name="/leaderboard")
        assert view["source"] == sim["source"] == "store" and board["data"]
        assert not job.done()  # the analysis is still held at the gate: the views did not wait for it
        watch.gate.set()
        image_id, _, data = job.result(timeout=120)
        assert image_id.startswith("upload-") and data["source"] == "live"
    finally:
        watch.gate.set()
        analyst.close()
        viewer.close()


def test_concurrent_users_all_succeed_and_live_inference_is_bounded(url, tmp_path, monkeypatch):
    watch = Watch()
    monkeypatch.setattr(live, "_analyze_on_device", watch)
    images = ["astronaut", "camera", "cell", "chelsea", "coffee", "retina", "rocket"]

    def user(k: int) -> list[str]:
        client = api_client(url)
        done = []
        try:
            for r in range(ROUNDS):
                image = images[(k + r) % len(images)]
                _, _, data = client.predict(image, "dinov2", "cls", r % 2, -1, 0.6, api_name="/attention")
                done.append(data["source"])
                _, data = client.predict(image, "dinov2", 1, 0.1 * r, 0.2, 0.5, 0.7, 0.6, api_name="/similarity")
                done.append(data["source"])
                image_id, _, data = client.predict(
                    handle_file(upload(tmp_path, k * 10 + r)), "dinov2", api_name="/analyze"
                )
                done.append(data["source"])
                _, _, data = client.predict(image_id, "dinov2", "mean", 1, 2, 0.6, api_name="/attention")
                done.append(data["source"])
        finally:
            client.close()
        return done

    with ThreadPoolExecutor(USERS) as pool:
        results = list(pool.map(user, range(USERS)))
    assert [len(r) for r in results] == [4 * ROUNDS] * USERS  # every request answered, none failed
    assert all(r[k] == "store" for r in results for k in range(0, 4 * ROUNDS, 4))
    assert watch.calls == USERS * ROUNDS and 1 <= watch.most <= LIVE_WORKERS
