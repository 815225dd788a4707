"""A dropdown pick computes its view once, with the mouse, with the keyboard and with a typed value.

Gradio's page (6.31) sends a single-choice dropdown's ``input`` event twice for one pick with the mouse (the option's
click, then the value it set) and once for a pick with the arrow keys and Enter; its ``select`` only for the mouse.
``wiring.listen`` computes a view on a dropdown's ``input`` once per pick (``wiring.once_per_pick``). Checked on a
small real app in a real chromium, beside a plain Gradio listener that shows the page's own behaviour.

Run: python -m pytest tests/test_dropdown_picks.py -q
"""

from __future__ import annotations

import collections
import time

import gradio as gr
import pytest
from app_support import ARGS, CHROMIUM, free_port

from vitattn.ui.shell.wiring import listen

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser
STILL_S = 0.75


@pytest.fixture(scope="module")
def app():
    """Dropdowns with fixed choices and with custom values allowed, each with a view through ``listen``, and the same
    two with a plain Gradio listener on their ``input`` (one event per trigger: two ``always_last`` events on one
    trigger restart each other, see ``wiring``); ``calls`` counts each handler's runs."""
    calls: collections.Counter = collections.Counter()

    def counted(key: str):
        def view(value):
            calls[key] += 1
            return f"{key} {value}"

        return view

    with gr.Blocks() as demo:
        shown = gr.Textbox(label="shown")
        plain = gr.Textbox(label="plain")
        for name, free in (("fixed", False), ("free", True)):
            box = gr.Dropdown(["x", "y", "z"], value="x", label=name, allow_custom_value=free)
            listen(box.input, counted(f"{name} view"), [box], shown, trigger_mode="always_last")
            box = gr.Dropdown(["x", "y", "z"], value="x", label=f"{name} plain", allow_custom_value=free)
            box.input(counted(f"{name} plain"), box, plain, trigger_mode="always_last", show_progress="hidden")
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}", calls
    demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(app, browser):
    """A new page on the app: every dropdown at its first value."""
    page = browser.new_page()
    page.goto(app[0])
    page.get_by_label("fixed", exact=True).wait_for()
    yield page
    page.close()


def _settled(calls: collections.Counter, before: collections.Counter, keys: tuple[str, ...]) -> dict:
    """The runs each handler made since ``before``, once each has run and none ran for ``STILL_S``: the second input
    of a pick follows the first one's answer within milliseconds."""
    deadline, last, since = time.monotonic() + 30, None, time.monotonic()
    while time.monotonic() < deadline:
        now = {k: calls[k] - before[k] for k in keys}
        if now != last:
            last, since = now, time.monotonic()
        elif all(now.values()) and time.monotonic() - since >= STILL_S:
            return now
        time.sleep(0.05)
    raise AssertionError(f"the handlers never settled: {last}")


@pytest.mark.parametrize("name", ["fixed", "free"])
def test_a_pick_with_the_mouse_computes_the_view_once(app, page, name):
    calls = app[1]
    before = collections.Counter(calls)
    runs = {}
    for label in (name, f"{name} plain"):
        page.get_by_label(label, exact=True).click()
        page.get_by_role("option").filter(has_text="z").click()
        key = f"{name} view" if label == name else label
        runs.update(_settled(calls, before, (key,)))
    assert runs == {f"{name} view": 1, f"{name} plain": 2}  # the plain listener shows the page's second input
    assert page.get_by_label("shown").input_value() == f"{name} view z"


def test_a_pick_with_the_keyboard_and_a_typed_value_compute_the_view(app, page):
    """``select`` would miss both; ``input`` is sent once for each, and the view runs once."""
    calls = app[1]
    box = page.get_by_label("fixed", exact=True)
    before = collections.Counter(calls)
    box.click()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert _settled(calls, before, ("fixed view",)) == {"fixed view": 1}
    picked = page.get_by_label("shown").input_value()
    assert picked.startswith("fixed view ") and picked != "fixed view x"

    box = page.get_by_label("free", exact=True)
    before = collections.Counter(calls)
    box.click()
    box.fill("typed")
    page.keyboard.press("Enter")
    assert _settled(calls, before, ("free view",)) == {"free view": 1}
    assert page.get_by_label("shown").input_value() == "free view typed"
