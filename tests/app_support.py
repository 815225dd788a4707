"""What the app tests share: a random-weight store of tiny models, built once per session, and the app launched once.

``store_dir()`` runs the precompute job (``--random-weights`` with the tiny variants of ``small_models``) on the
bundled examples; ``AppServer`` starts ``python app.py`` on that store on a free 127.0.0.1 port and stops it by its
process id. Both are cached per test process, so the handler, client and browser tests pay for them once.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from functools import cache
from pathlib import Path

from small_models import small_overrides

import vitattn

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"


# One of each kind the page must handle: CLS + registers, no CLS (pool), a classifier (agcam), a CNN (gradcam).
KINDS = ("dinov2", "siglip", "vit", "resnet50")
# The app the tests launch: this checkout, or (to check that a test fails on an older version) another folder.
APP_ROOT = Path(os.environ.get("VITATTN_TEST_APP_ROOT") or ROOT)


@cache
def store_dir(models: tuple[str, ...] | None = None) -> Path:
    """A store of the tiny random variants of ``models`` (default: every model) on the bundled examples, made by
    the precompute job (built once per test process and set of models)."""
    from precompute import Config, run

    models = tuple(models or vitattn.MODELS)
    out = Path(tempfile.mkdtemp(prefix="vitattn-app-store-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    overrides = {name: small_overrides(name) for name in models}
    run(Config(output=out / "store", models=models, random_weights=True, overrides=overrides, progress=False))
    return out / "store"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``python app.py --store <store> --port <free>`` in a subprocess; ``url`` once it answers.

    Gradio's uploads and generated files go to a folder of its own (``temp``), removed by ``stop``; ``env`` adds
    to (or, with None values, removes from) the environment, e.g. a Hub endpoint or a token.
    """

    def __init__(
        self,
        store: Path | str | None,
        *,
        weights: str = "small",
        timeout: float = 120.0,
        env: dict[str, str | None] | None = None,
        args: tuple[str, ...] = (),
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.temp = Path(tempfile.mkdtemp(prefix="vitattn-gradio-"))
        base = {**os.environ, "VITATTN_WEIGHTS": weights, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        base.update(GRADIO_TEMP_DIR=str(self.temp))
        base.pop("VITATTN_STORE", None)
        for key, value in (env or {}).items():
            if value is None:
                base.pop(key, None)
            else:
                base[key] = value
        args = [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(self.port), *args]
        if store is not None:
            args += ["--store", str(store)]
        self.log = tempfile.NamedTemporaryFile(prefix="vitattn-app-", suffix=".log", delete=False)  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(args, cwd=APP_ROOT, env=base, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait(timeout)

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited with {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "gradio_api/info", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the app did not answer within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def files(self) -> list[Path]:
        """The files Gradio keeps in its folder (uploads, pictures it wrote for answers)."""
        return [p for p in self.temp.rglob("*") if p.is_file()]

    def terminate(self) -> int:
        """Stops the server as a process manager does (SIGTERM) and returns its exit code; ``temp`` stays."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def stop(self) -> None:
        """Kills the server at once (``terminate`` is the graceful way, which waits for connected clients)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)
        shutil.rmtree(self.temp, ignore_errors=True)


@cache
def app_server(models: tuple[str, ...] | None = None) -> AppServer:
    """The app on ``store_dir(models)``, started once per test process and set of models, stopped at exit."""
    server = AppServer(store_dir(models))
    atexit.register(server.stop)
    return server
