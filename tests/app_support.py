"""What the app tests share: a random-weight store of tiny models, built once per session, and the app launched once.

``store_dir()`` runs the precompute job (``--random-weights`` with the tiny variants of ``small_models``) on the
bundled examples; ``AppServer`` starts ``python app.py`` on that store on a free 127.0.0.1 port and stops it by its
process id. Both are cached per test process, so the handler, client and browser tests pay for them once.
"""

from __future__ import annotations

import atexit
import inspect
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from types import SimpleNamespace

from playwright.sync_api import Error as PlaywrightError, TimeoutError as PlaywrightTimeout
from run_cache import RUN_ENV, built_once, run_root
from small_models import small_overrides

import vitattn

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"


# One of each kind the page must handle: CLS + registers, no CLS (pool), a classifier (agcam), a CNN (gradcam).
KINDS = ("dinov2", "siglip", "vit", "resnet50")
# The app the tests launch: this checkout, or (to check that a test fails on an older version) another folder.
APP_ROOT = Path(os.environ.get("VITATTN_TEST_APP_ROOT") or ROOT)


@cache
def store_dir(models: tuple[str, ...] | None = None, trust: bool = False) -> Path:
    """A store of the tiny random variants of ``models`` (default: every model) on the bundled examples, made by
    the precompute job (built once per test run and set of models, shared by the run's processes: ``run_cache``).

    ``trust``: also what the Trust, Text and IoU-label views read: the randomisation curves of the first image
    (``--sanity-images 1``), attention flow at the last layer and the naclip and legrad text maps of every box label
    with prompts as given (``--templates none``). Keep ``models`` few (``TRUST_MODELS``): the curves cost one analysis
    per stage and method, and a text model's tokenizer must need no Hub (clip's ships with open_clip).

    No faithfulness curves (``--faithfulness-layers none``, the command's default on a CPU): they cost 78 forward
    passes per map, 70% of the build, and the Features tab computes a map's curves when asked. The stored curves
    are read from the Heads/Variants/Features store (``test_app_more_support``) and checked in ``test_store.py``.
    """
    from precompute import Config, run

    models = tuple(models or vitattn.MODELS)
    overrides = {name: small_overrides(name) for name in models}
    config = {"models": models, "random_weights": True, "overrides": overrides, "progress": False,
              "faithfulness_layers": "none"}  # fmt: skip
    if trust:
        config.update(sanity_images=1, flow_layers="-1", text_methods=("naclip", "legrad"), templates="none")
    key = "app-store-" + ("all" if models == tuple(vitattn.MODELS) else "-".join(models)) + ("-trust" if trust else "")
    return built_once(key, lambda out: run(Config(output=out / "store", **config))) / "store"


TRUST_MODELS = ("clip", "resnet50")  # a ViT with a text tower (naclip) and flow, a CNN (stages, not heads)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ``python app.py`` with ``faulthandler`` dumping every thread's stack to its log on SIGUSR1 (``AppServer.stacks``:
# what a page that never settles was waiting for on the server side).
BOOT = (
    "import faulthandler, runpy, signal, sys; faulthandler.register(signal.SIGUSR1, all_threads=True); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)
LIVE: set[AppServer] = set()  # the servers this test process started or attached to, and has not stopped


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
        detached: bool = False,
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
        args = [sys.executable, "-c", BOOT, "app.py", "--host", "127.0.0.1", "--port", str(self.port), *args]
        if store is not None:
            args += ["--store", str(store)]
        with tempfile.NamedTemporaryFile(prefix="vitattn-app-", suffix=".log", delete=False) as log:
            self.log = Path(log.name)
            # detached: its own session, so it outlives the test process that started it (``shared_server``)
            self.process = subprocess.Popen(
                args, cwd=APP_ROOT, env=base, stdout=log, stderr=subprocess.STDOUT, start_new_session=detached
            )
        self.pid = self.process.pid
        self.owned = not detached  # this test process stops it (a detached one: the run, ``stop_shared``)
        LIVE.add(self)
        self._wait(timeout)

    def record(self) -> dict:
        """Where another test process finds this server (``attach``)."""
        return {"port": self.port, "pid": self.pid, "temp": str(self.temp), "log": str(self.log)}

    @classmethod
    def attach(cls, record: dict) -> AppServer:
        """A server another test process of this run started (``shared_server``): it can be asked and inspected
        (``url``, ``files``, ``stacks``); the run stops it (``stop_shared``)."""
        self = cls.__new__(cls)
        self.port, self.pid, self.process, self.owned = record["port"], record["pid"], None, False
        self.temp, self.log = Path(record["temp"]), Path(record["log"])
        self.url = f"http://127.0.0.1:{self.port}/"
        LIVE.add(self)
        return self

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

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
        return self.log.read_text(errors="replace")[-5000:]

    def stacks(self) -> str:
        """Every thread's stack of the running server (faulthandler's dump, from its log)."""
        if not self.alive():
            return "(exited)"
        start = self.log.stat().st_size
        os.kill(self.pid, signal.SIGUSR1)
        time.sleep(1.0)
        return self.log.read_bytes()[start:].decode(errors="replace")

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
        LIVE.discard(self)
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        elif self.process is None and self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.log.unlink(missing_ok=True)
        shutil.rmtree(self.temp, ignore_errors=True)


def owned_servers() -> set[AppServer]:
    """The servers this test process started, is to stop, and has not stopped."""
    return {server for server in LIVE if server.owned}


def stop_servers(keep: set[AppServer] = frozenset()) -> None:
    """Stops every server this process owns except ``keep`` (conftest: a test or fixture that failed before it
    stopped its server; one left running took 3 s of CPU a minute for the rest of the run)."""
    for server in owned_servers() - set(keep):
        server.stop()


SHARED = "server-"  # run_root() / "server-<key>" / "server.json": a shared server's record


@cache
def shared_server(key: str, store: Callable[[], Path]) -> AppServer:
    """The app on ``store()``, launched once per test run by the first of its processes that asks, and shared by all
    of them (a launch costs about 5 s of CPU, and each app warms caches of its own): ``built_once`` keeps its record,
    and the run stops it at its end (``stop_shared``, from conftest's ``pytest_unconfigure``). A process outside a
    test run gets an app of its own, stopped when it exits."""
    if not os.environ.get(RUN_ENV):
        server = AppServer(store())
        atexit.register(server.stop)
        return server

    def launch(folder: Path) -> None:
        (folder / "server.json").write_text(json.dumps(AppServer(store(), detached=True).record()))

    return AppServer.attach(json.loads((built_once(SHARED + key, launch) / "server.json").read_text()))


def stop_shared() -> None:
    """Stops every server this run shared (the run's controlling process, at its end)."""
    for record in run_root().glob(f"{SHARED}*/server.json"):
        AppServer.attach(json.loads(record.read_text())).stop()


def app_server(models: tuple[str, ...] | None = None) -> AppServer:
    """The app on ``store_dir(models)``, one per test run and set of models (``shared_server``)."""
    return shared_server("-".join(models or ("default",)), lambda: store_dir(models))


@cache
def _tls():
    import ssl

    return ssl.create_default_context()


def api_client(url: str):
    """``gradio_client.Client(url)`` with one TLS context for the whole process. The client makes a new ``httpx``
    client for every call, upload, download and message stream, and hands each its ``ssl_verify``, which ``httpx``
    turns into a new context, loading the system's certificate bundle (about 30 ms of CPU), unless it is a context
    already: over a run, half a minute spent on certificates for plain ``http://`` calls. The context verifies as
    the default one does."""
    import gradio_client

    return gradio_client.Client(url, verbose=False, ssl_verify=_tls())


# -- driving the page in headless chromium --------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SCREENS = ARTIFACTS / "screens"
MAX_REQUESTS = 8  # queue requests one action may cause (one event, re-run once when the value changed meanwhile)
LINK_REQUESTS = 8  # a click that opens the Attention tab: the link, then the Attention views the app re-runs
LOAD_REQUESTS = 40  # the page's load events
QUIET_MS = 50  # the page idle this long (every event it sent answered, nothing redrawn): it has settled
SETTLE_MS = 90_000  # an action that has not settled by then fails (it never hangs the suite)
POLL_MS = 20
# The page's own record of its requests to Gradio, kept by the page itself (an init script wraps ``fetch``, which
# Gradio's client uses for every call), so it is exact and never late: each event joined (``/queue/join`` answers its
# ``event_id``) and each event done (the session's message stream, ``/queue/data``, says ``process_completed`` with
# that id); other calls to the server are open until their answer is read. Heartbeats are not counted. Every change to
# the page's DOM counts as activity too: an answer's outputs are drawn, then a change event may be sent. An event done
# expects the events chained to it (``.then``, ``.success``; the page's config says which), and an answer that changed
# a state (its ``changed_state_ids``) the events listening to that state's change: the page sends their joins some
# milliseconds later, and no status tracker bridges that gap (the app's events name no progress targets).
# ``busy()`` says what keeps the page busy: the calls in flight, the events joined and not done (their ``fn_index``),
# the chained events not yet joined, the status trackers shown (live events show one), a progress bar, the pictures on
# screen still loading (one off screen or in a closed tab is lazy: it loads when shown).
TRACK = """(() => {
  const CHAIN_MS = 2000;
  const s = window.__walk = {
    calls: 0, joins: 0, base: 0, joined: new Map(), done: new Map(), chained: new Map(), expired: [],
    last: performance.now(), redrawn: null};
  const touch = () => { s.last = performance.now(); };
  const expire = (fn) => { s.expired.push(fn); s.chained.delete(fn); return false; };
  const all = {subtree: true, childList: true, attributes: true, characterData: true};
  new MutationObserver((records) => { touch(); s.redrawn = records[records.length - 1]; }).observe(document, all);
  const loading = (i) => { if (i.complete) return false;
    const r = i.getBoundingClientRect(); return r.width > 0 && r.bottom > 0 && r.top < innerHeight; };
  s.busy = () => ({
    calls: s.calls,
    waiting: [...s.joined].filter(([id]) => !s.done.has(id)).map(([, fn]) => fn),
    chained: [...s.chained].filter(([fn, t]) => performance.now() - t < CHAIN_MS || expire(fn)).map(([fn]) => fn),
    trackers: document.querySelectorAll('[data-testid=status-tracker]:not(.hide)').length,
    progress: !!document.querySelector('.eta-bar, .progress-text'),
    loading: [...document.images].filter(loading).map(i => i.src.slice(-60)),
  });
  s.idle = () => {  // ms idle (0 while busy: the quiet window restarts)
    const b = s.busy(), now = performance.now();
    if (b.calls > 0 || b.waiting.length || b.chained.length || b.trackers || b.progress || b.loading.length) {
      s.last = now; return 0; }
    return now - s.last;
  };
  // An event done starts the events chained to it (``.then``; ``.success`` when it succeeded): the page sends
  // their joins some milliseconds later, after its outputs are drawn. Until then (at most CHAIN_MS) it is busy.
  const expect = (started) => {  // the page's events (to the server) that ``started`` says follow
    for (const d of (window.gradio_config || {}).dependencies || [])
      if (d.backend_fn && started(d)) s.chained.set(d.id, performance.now());
  };
  const chain = (id) => {
    const fn = s.joined.get(id), success = s.done.get(id);
    if (fn === undefined || success === undefined) return;  // both the join's answer and the completion are needed
    expect((d) => d.trigger_after === fn
      && (d.trigger_only_on_success ? success : d.trigger_only_on_failure ? !success : true));
  };
  // A state changed by an answer starts the events listening to its change (the app's second events, ``_gate``).
  const woken = (ids) => expect((d) => d.targets.some(([id, event]) => event === "change" && ids.includes(id)));
  const fnOf = (init) => { try { return JSON.parse(init.body).fn_index; } catch (e) { return null; } };
  const read = async (body, onChunk) => {
    const reader = body.getReader(), decoder = new TextDecoder();
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      onChunk(decoder.decode(value, {stream: true}));
    }
  };
  const messages = () => {  // one stream's reader of server-sent events: its own buffer of a part-read message
    let buffer = "";
    return (text) => {
      const parts = (buffer + text).split("\\n\\n");
      buffer = parts.pop();
      for (const part of parts) for (const line of part.split("\\n")) {
        if (!line.startsWith("data:")) continue;
        let m = null;
        try { m = JSON.parse(line.slice(5)); } catch (e) {}
        if (m && m.output && m.output.changed_state_ids) woken(m.output.changed_state_ids);
        if (m && m.msg === "process_completed") { s.done.set(m.event_id, !!m.success); chain(m.event_id); }
      }
    };
  };
  const fetch = window.fetch;
  window.fetch = async function (input, init) {
    const url = String(input && input.url || input);
    if (!url.includes("/gradio_api/") || url.includes("/heartbeat/")) return fetch.apply(this, arguments);
    const stream = url.includes("/queue/data");  // open while the session has events: their messages are read
    if (!stream) s.calls++;
    if (url.includes("/queue/join")) { s.joins++; s.chained.delete(fnOf(init)); }
    touch();
    const end = () => { if (!stream) s.calls--; touch(); };
    let response;
    try { response = await fetch.apply(this, arguments); } catch (e) { end(); throw e; }
    if (!response.body) { end(); return response; }
    const [mine, theirs] = response.body.tee();
    const fn = fnOf(init);
    const onMessages = stream ? messages() : null;
    let text = "";
    read(mine, (chunk) => { touch(); if (stream) onMessages(chunk); else text += chunk; })
      .catch(() => {})
      .finally(() => {
        if (url.includes("/queue/join")) {
          try { const id = JSON.parse(text).event_id; s.joined.set(id, fn); chain(id); } catch (e) {} }
        end();
      });
    return new Response(theirs, {status: response.status, statusText: response.statusText, headers: response.headers});
  };
})()"""
# How long the page has been idle, in ms (0 while busy, ``busy()`` above).
IDLE = "() => window.__walk ? window.__walk.idle() : 0"
# The quiet window starts now: what the page did before does not count, nor the joins it sent.
RESTART = "() => { const s = window.__walk; if (s) { s.last = performance.now(); s.base = s.joins; } }"
# Settled: idle for ``quiet`` ms; or more than ``bound`` events joined since ``RESTART`` (a loop: the caller fails).
# Polled inside the page (``wait_for_function``): no round trip to the test per poll.
SETTLED = """([quiet, bound]) => { const s = window.__walk;
  return !!s && (s.joins - s.base > bound || s.idle() >= quiet); }"""
# What keeps a page busy, and the element last redrawn (for an action that never settles).
BUSY = """() => { const s = window.__walk, r = s.redrawn;
  const t = r && (r.target.nodeType === 1 ? r.target : r.target.parentElement);
  return {...s.busy(), redrawn: t ? `${t.tagName}#${t.id}.${t.className} ${r.type}` : null}; }"""
# The last events the page joined: ``[event_id, fn_index, done]`` (done: true, false when it failed, null when not).
EVENTS = """() => { const s = window.__walk;
  return [...s.joined].slice(-10).map(([id, fn]) => [id, fn, s.done.has(id) ? s.done.get(id) : null]); }"""
# The page's events by ``fn_index``: their API names.
DEPENDENCIES = "() => Object.fromEntries(window.gradio_config.dependencies.map(d => [d.id, d.api_name]))"
# The middle of an element once a click there reaches it (scrolled into view, nothing over it). A dropdown's options
# fly in (5 px over 200 ms): a click lands on the option throughout, as a person's does.
REACHABLE = """(e) => new Promise((done) => {
  e.scrollIntoView({block: "nearest"});
  const frame = () => {
    const r = e.getBoundingClientRect(), x = r.x + r.width / 2, y = r.y + r.height / 2;
    const top = r.width > 0 ? document.elementFromPoint(x, y) : null;
    if (top && (top === e || e.contains(top))) done({x, y}); else requestAnimationFrame(frame);
  };
  frame();
})"""
FRAMES = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"  # two frames drawn
ERROR_TEXT = re.compile(r"\bError\b|failed")
# Text cut or spilling out of its box (issue 20, problem 9): an element whose own text is wider than its box, unless an
# ancestor scrolls sideways (a wide table scrolls: its text is reachable); Vega charts' text (legend entries, titles)
# outside their SVG (Vega lays a bottom legend in one row, and the SVG cuts what does not fit) or ending in Vega's "…".
OVERFLOW = """(root) => {
  const found = [];
  const shown = (e) => { const r = e.getBoundingClientRect();
                         return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden"; };
  const scrolls = (e) => { for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
                             const o = getComputedStyle(a).overflowX; if (o === "auto" || o === "scroll") return true; }
                           return false; };
  const SKIP = new Set(["TEXTAREA", "INPUT", "CODE", "PRE"]);
  for (const e of root.querySelectorAll("*")) {
    if (e.closest("svg, [data-testid=status-tracker], .sr-only") || !shown(e) || e.clientWidth < 4) continue;
    const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || SKIP.has(e.tagName) || getComputedStyle(e).display === "inline") continue;
    if (e.scrollWidth > e.clientWidth + 1 && !scrolls(e))
      found.push(`${e.tagName} "${e.textContent.trim().slice(0, 40)}" ${e.scrollWidth} > ${e.clientWidth} px`);
  }
  for (const svg of root.querySelectorAll(".vega-embed svg")) {
    if (!shown(svg)) continue;
    const box = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll("text")) {
      const r = t.getBoundingClientRect(), text = t.textContent;
      const out = r.right > box.right + 1 || r.left < box.left - 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1;
      if (text.trim() && (out || text.endsWith("\u2026")))
        found.push(`chart text "${text}" at x ${Math.round(r.left)}..${Math.round(r.right)}, ` +
                   `its chart ${Math.round(box.left)}..${Math.round(box.right)}`);
    }
  }
  return found;
}"""


class Walker:
    """A page driven with the mouse, as a person does, and a count of the requests it sends to Gradio's queue (one
    per event run). Every action must settle within ``bound`` requests and leave no notice and no error text.

    Args:
        page: a playwright page on the app.
        prefix: of the screenshots' names (``artifacts/screens/<prefix>-<name>.png``).
        bound: the requests one action may cause (``act`` takes another for one action).
        notice_ok: text of a notice a reload may show (e.g. a store's warning), dismissed rather than failed.
    """

    def __init__(self, page, prefix: str = "walk", bound: int = MAX_REQUESTS, notice_ok: str | None = None):
        self.page = page
        self.prefix = prefix
        self.bound = bound
        self.notice_ok = notice_ok
        self.sent = 0  # joins sent (one per event run), counted from the browser's requests
        self.log: list[str] = []
        page.add_init_script(TRACK)
        page.on("request", self._count)

    def _count(self, request) -> None:
        if "/queue/join" in request.url:
            self.sent += 1

    def quiet(self) -> float:
        """How long the page has been idle, in ms (``IDLE``; 0 while busy or while a new page replaces the old)."""
        try:
            return float(self.page.evaluate(IDLE))
        except PlaywrightError:  # a reload under way: no page to ask yet
            return 0.0

    def act(self, what: str, action, bound: int | None = None, check: bool = True) -> int:
        """Runs ``action``, waits until the page settles (idle for ``QUIET_MS`` after the action), and returns the
        requests it caused (at most the bound); with ``check``, fails on a notice or error text."""
        bound = self.bound if bound is None else bound
        before = self.sent
        action()
        with suppress(PlaywrightError):  # a reload under way: its new page starts its own record
            self.page.evaluate(RESTART)
        deadline = time.monotonic() + SETTLE_MS / 1000
        while True:
            left = deadline - time.monotonic()
            try:
                self.page.wait_for_function(
                    SETTLED, arg=[QUIET_MS, bound], polling=POLL_MS, timeout=max(1, left * 1000)
                )
                break
            except PlaywrightTimeout:
                raise AssertionError(self._stuck(what)) from None
            except PlaywrightError:  # the page was replaced (a reload) while it was asked: ask the new one
                if left <= 0:
                    raise AssertionError(self._stuck(what)) from None
                self.page.wait_for_timeout(POLL_MS)
        caused = self.sent - before
        assert caused <= bound, f"{what}: {caused} requests and counting; the page does not settle"
        self.log.append(f"{what}: {caused}")
        if check:
            self.no_error(what)
        return caused

    def _stuck(self, what: str) -> str:
        """Why an action did not settle: the events the page waits for, the last events it joined (id, fn_index,
        done), the last actions, and every app server's log and threads."""
        try:
            names, busy = self.page.evaluate(DEPENDENCIES), self.page.evaluate(BUSY)
            waiting = [f"{fn} ({names.get(str(fn))})" for fn in busy.pop("waiting")] + [busy]
            events = self.page.evaluate(EVENTS)
        except PlaywrightError as e:
            waiting, events = [f"unknown: {e}"], []
        servers = "\n".join(
            f"--- {server.url}\n{server.output()[-3000:]}\n{server.stacks()[-6000:]}" for server in list(LIVE)
        )
        actions = "\n".join(self.log[-12:])
        return (f"{what}: not settled after {SETTLE_MS / 1000:.0f} s; events not done: {waiting}\n"
                f"last events joined (id, fn, done): {events}\nlast actions:\n{actions}\n{servers}")  # fmt: skip

    def no_error(self, what: str) -> None:
        toasts = self.page.locator(".toast-body")
        if toasts.count():
            text = " | ".join(toasts.all_inner_texts())
            self.shot(f"error-{re.sub(r'[^a-z0-9]+', '-', what.lower())[:60]}", full=False)
            raise AssertionError(f"{what}: a notice appeared: {text}")
        body = self.page.locator("body").inner_text()
        found = ERROR_TEXT.search(body)
        assert found is None, f"{what}: the page says {body[max(0, found.start() - 80) : found.end() + 80]!r}"

    def pick(self, label: str, option: str, within=None, bound: int | None = None) -> int:
        """Opens the dropdown ``label`` with a click and clicks ``option``."""
        box = (within or self.page).get_by_label(label, exact=True)

        def do() -> None:
            box.click()
            choice = self.page.get_by_role("option").filter(has_text=re.compile(rf"^(✓\s*)?{re.escape(option)}$"))
            self.mouse_click(choice)

        return self.act(f"{label} = {option}", do, bound)

    def goto(self, url: str) -> None:
        """Loads ``url`` and waits until Gradio has built the page (its tab bar is there): only then does the page
        send its load events, and until then nothing it records says it is busy (its scripts and config load)."""
        self.page.goto(url)
        self.page.locator("[role=tab]").first.wait_for()

    def mouse_click(self, locator) -> None:
        """A click with the mouse at the middle of ``locator`` as soon as a click there reaches it (``REACHABLE``).
        Playwright's own click also waits until the element lies still: for a dropdown's option, until its 200 ms
        fly-in has ended, and its retries add about 60 ms more."""
        locator.wait_for()
        at = locator.evaluate(REACHABLE)
        self.page.mouse.click(at["x"], at["y"])

    def options(self, label: str, within=None) -> list[str]:
        """The options of a dropdown (opened with a click, closed with Escape: no event; the page is waited for only
        when it sent something meanwhile)."""
        box = (within or self.page).get_by_label(label, exact=True)
        box.click()
        names = self.page.get_by_role("option").all_inner_texts()
        box.press("Escape")
        self.page.locator("body").click(position={"x": 5, "y": 5})  # blur
        self.page.evaluate(FRAMES)
        if self.quiet() == 0:  # a call in flight or an event not done
            self.act("options closed", lambda: None, check=False)
        return [n.strip().splitlines()[-1].strip() for n in names]  # the chosen one reads "✓\ncls"

    def slide(self, elem_id: str, fraction: float, bound: int | None = None) -> int:
        """A click on a slider's track at ``fraction`` of its width."""
        track = self.page.locator(f"#{elem_id} input[type=range]")

        def do() -> None:
            box = track.bounding_box()
            track.click(position={"x": max(1, min(box["width"] - 1, fraction * box["width"])), "y": box["height"] / 2})

        return self.act(f"{elem_id} at {fraction:.0%}", do, bound)

    def click(self, what: str, locator, bound: int | None = None, **position) -> int:
        return self.act(what, lambda: locator.click(**position), bound)

    def tab(self, name: str) -> None:
        """Opens a tab. Gradio's tab bar moves tabs that do not fit into an overflow menu (after a later tab was
        selected it can show that one twice and hide another): the visible tab is clicked, else the page reloaded
        (a fresh page shows every tab again)."""
        visible = self.page.get_by_role("tab", name=name, exact=True).locator("visible=true")
        if not visible.count():
            self.act("reload", lambda: self.goto(self.page.url), bound=LOAD_REQUESTS, check=False)
            for toast in self.page.locator(".toast-body").all():
                text = toast.inner_text()
                assert self.notice_ok and self.notice_ok in text, f"reload: an unexpected notice: {text}"
                toast.get_by_role("button").last.click()
        self.act(f"tab {name}", visible.first.click)

    def header_model(self, model: str) -> None:
        """Picks the header's model (its views and a link's re-run may take up to ``LINK_REQUESTS``)."""
        self.pick("Model", model, self.page.locator("#top-controls"), bound=LINK_REQUESTS)

    def overflowing(self) -> list[str]:
        """The page's text that does not fit its box (``OVERFLOW``): one line per element, empty when all fits."""
        return self.page.evaluate(OVERFLOW, self.page.locator("body").element_handle())

    def selected_tab(self) -> str:
        return self.page.locator("[role=tab][aria-selected=true]").first.inner_text().strip()

    def shot(self, name: str, full: bool = True) -> None:
        self.page.screenshot(path=str(SCREENS / f"{self.prefix}-{name}.png"), full_page=full)


@contextmanager
def open_page(url: str, prefix: str, bound: int = MAX_REQUESTS, notice_ok: str | None = None):
    """Headless chromium (1400x1000, downloads accepted) on the app at ``url``, loaded with no notice: a `Walker`."""
    from playwright.sync_api import sync_playwright

    SCREENS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(20_000)
        w = Walker(page, prefix, bound, notice_ok)
        w.act("load", lambda: w.goto(url), bound=LOAD_REQUESTS, check=False)
        notices = [" ".join(t.inner_text().split()) for t in page.locator(".toast-body").all()]
        assert not notices, f"load: notices {notices}"
        w.act("after load", lambda: page.wait_for_timeout(500), bound=LOAD_REQUESTS)
        try:
            yield w
        finally:
            with suppress(PlaywrightError):  # chained events expected and never sent: each held an action CHAIN_MS
                w.log.append(f"chained events never sent: {page.evaluate('() => window.__walk.expired')}")
            print("\n".join(w.log))
            browser.close()


def bound_handlers(explorer) -> SimpleNamespace:
    """The app's handlers bound to ``explorer`` the way the page binds them (``vitattn.ui.shell.api.bind``): every
    public endpoint by its API name, as ``build_demo(explorer)`` serves it (``handlers.attention(image_id, ...)``,
    ``handlers.layer_metrics(...)``), and every function of the tabs and the header whose first parameter is the
    Explorer (``handlers.on_model(...)``, ``handlers.page_strip(...)``)."""
    from vitattn.ui.demo import TABS, build_demo
    from vitattn.ui.shell import api, header

    bound: dict = {}
    for module in (header, *reversed(TABS)):
        for name, fn in vars(module).items():
            if inspect.isfunction(fn) and fn.__module__ == module.__name__:
                params = list(inspect.signature(fn).parameters)
                if params and params[0] == "ex":
                    bound[name] = api.bind(fn, explorer)
    demo = build_demo(explorer)
    for block_fn in demo.fns.values():
        if block_fn.api_name and block_fn.api_visibility != "private":
            bound[block_fn.api_name] = block_fn.fn
    return SimpleNamespace(**bound, PLAY=header.PLAY, PAUSE=header.PAUSE, STEPS=header.STEPS)
