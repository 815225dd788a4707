"""The page's structure, read from the built Blocks (``build_demo(explorer)``, no server, no browser): every slider
follows the keyboard, tab labels are unique, a view with one output gets its value (not a list), the header's
controls recompute every view that reads them, and the public API keeps its endpoints."""

from __future__ import annotations

import inspect

import gradio as gr
import pandas as pd
import pytest

from vitattn.ui.demo import TABS, build_demo
from vitattn.ui.shell import wiring
from vitattn.ui.shell.registry import Registry

ENDPOINTS = {
    "analyze", "attention", "breakdown", "compare", "compare_maps", "faithfulness", "head_exemplars", "head_matrix",
    "head_ranking", "head_stats", "heads", "image", "info", "layer_curves", "layer_head", "layer_metrics", "layers",
    "leaderboard", "metrics", "pca", "ping", "predictions", "query_attention", "similarity", "variant_compare",
    "variant_table", "sanity_curves", "sanity_strip", "sanity_live", "text_map", "text_metrics",
}  # fmt: skip


@pytest.fixture(scope="module")
def demo(explorer) -> gr.Blocks:
    return build_demo(explorer)


def _triggers(demo: gr.Blocks) -> set[tuple[int, str]]:
    return {(block_id, event) for fn in demo.fns.values() for block_id, event in fn.targets}


def test_every_slider_recomputes_on_input_so_the_keyboard_moves_the_views(demo):
    """A slider wired to ``release`` only ignores the arrow keys (issue 20, problem 3: Query, Heads, Variants)."""
    triggers = _triggers(demo)
    sliders = {i: b for i, b in demo.blocks.items() if isinstance(b, gr.Slider) and b.interactive is not False}
    assert len(sliders) >= 5
    deaf = [b.label for i, b in sliders.items() if (i, "input") not in triggers and (i, "change") not in triggers]
    assert deaf == []


def test_tab_labels_and_ids_are_unique_and_the_tab_bar_holds_tabs_only(demo):
    """Issue 20, problem 4: a ``gr.State`` made between two tabs (the Heads tab's wiring) shifted the order of the
    tabs after it, and the browser's tab bar read "Heads | Variants | Variants" with Features gone."""
    tabs = [b for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    labels, ids = [t.label for t in tabs], [t.id for t in tabs]
    assert len(tabs) == len(TABS) and len(set(labels)) == len(labels) and len(set(ids)) == len(ids)
    bar = next(b for b in demo.blocks.values() if isinstance(b, gr.Tabs))
    assert [type(c).__name__ for c in bar.children] == ["Tab"] * len(TABS)


def test_the_public_api_keeps_its_endpoints(demo):
    assert {fn.api_name for fn in demo.fns.values() if fn.api_name and fn.api_visibility != "private"} == ENDPOINTS


def test_a_view_with_one_output_answers_its_value_not_a_list_of_it():
    """Gradio wraps the answer of a one-output handler in a list itself: a list of one reached the table as its
    value, shown as one column "1" of pandas' text (issue 20, problem 1: IoU tab's paired and breakdown tables)."""
    frame = pd.DataFrame({"a": [1, 2]})
    fn, _, outputs = wiring.combine([(lambda: frame, None, ["table"])])
    assert len(outputs) == 1 and fn() is frame  # one view: a plain handler, one answer
    failing, _, _ = wiring.combine([(lambda: (_ for _ in ()).throw(gr.Error("no")), None, ["table"])])
    assert type(failing()).__name__ == "dict"  # one skip, not [skip] ("[object Object]")
    streamed, _, _ = wiring.after_step((lambda: 1, None, ["x"]), [(lambda: frame, None, ["table"])])
    assert all(a[1] is frame for a in streamed())


def test_the_first_views_answer_is_sent_once_unless_its_tab_may_not_be_shown_yet():
    """Several views: the first view's outputs go first; the last answer repeats them only with ``repeat`` (a view of
    a tab not yet opened takes only a generator's last answer). Sent twice, a picture was written twice to one file
    and the browser, reading it meanwhile, showed a broken image."""
    views = [(lambda: "picture", None, ["picture"]), (lambda: ("chart", "note"), None, ["chart", "note"])]
    once = list(wiring.combine(views, repeat=False)[0]())
    assert once[0][0] == "picture" and once[-1][1:] == ["chart", "note"] and once[-1][0] == gr.skip()
    twice = list(wiring.combine(views, repeat=True)[0]())
    assert twice[-1] == ["picture", "chart", "note"]


def test_a_control_recomputes_exactly_the_views_that_read_it():
    with gr.Blocks():
        a, b, c = gr.Number(), gr.Number(), gr.Number()
        registry = Registry()
        registry.add("ab", lambda x, y: x, [a, b], [gr.Number()])
        registry.add("b", lambda y: y, [b], [gr.Number()])
        registry.add("c", lambda z: z, [c], [gr.Number()])
    assert registry.reading(a) == ("ab",) and registry.reading(b) == ("ab", "b") and registry.reading(c) == ("c",)
    assert registry.names([b, "c"]) == ("ab", "b", "c")


def test_the_header_recomputes_every_view_that_reads_it(demo, explorer):
    """A model pick is followed (in its ``.then``) by one event whose outputs include every registered view's
    outputs that read the model: the Attention views, the similarity map and your boxes' metrics."""
    by_id = {b.elem_id: i for i, b in demo.blocks.items() if getattr(b, "elem_id", None)}
    for name in ("attention-map", "layer-chart", "layer-strip", "head-grid", "similarity-map", "your-boxes"):
        assert any(by_id[name] in [o._id for o in fn.outputs] for fn in demo.fns.values()), name


def test_views_of_a_closed_tab_follow_the_picture_in_a_second_event(demo):
    """An opacity change answers the page's views in one event in the views' queue; the views bound to a tab (the
    Query tab's, the Text tab's live maps) run in a second event, so they neither hold the picture back, nor add their
    outputs to its answer, nor put it in the live queue. The first event starts the second through a state's change
    (its last output), which it changes only while one of those tabs is open."""
    by_id = {b.elem_id: i for i, b in demo.blocks.items() if getattr(b, "elem_id", None)}
    fns = list(demo.fns.values())
    (first,) = [fn for fn in fns if (by_id["opacity"], "input") in fn.targets]
    outputs = {o._id for o in first.outputs}
    assert by_id["attention-map"] in outputs and by_id["layer-strip"] in outputs
    assert by_id["query-attention"] not in outputs and by_id["text-maps"] not in outputs
    assert first.concurrency_id == "views"
    gate = first.outputs[-1]
    assert isinstance(gate, gr.State) and [fn for fn in fns if fn.trigger_after == first._id] == []
    (chained,) = [fn for fn in fns if (gate._id, "change") in fn.targets]
    assert {by_id["query-attention"], by_id["text-maps"]} <= {o._id for o in chained.outputs}


def test_an_event_that_shows_no_progress_names_no_progress_targets(demo):
    """On each status message of any event, Gradio's page (6.x) updates every component that has ever been a progress
    target of an event that ran: a walk of the layout tree and a deep copy of its value, per component. An event
    that shows no progress named its outputs as targets all the same (up to 37 of them for the header's chained
    views), and a walk of the page spent a quarter of the browser's time there. Views now name none; an event that
    shows progress shows it on one component (the first view's picture), not on every output of every view."""
    page_events = [fn for fn in demo.fns.values() if fn.targets or fn.trigger_after is not None]
    hidden = [fn for fn in page_events if fn.show_progress == "hidden"]
    assert len(hidden) > 100
    assert [fn.name for fn in hidden if fn.show_progress_on is None or len(fn.show_progress_on)] == []
    shown = [fn for fn in page_events if fn.show_progress != "hidden" and len(fn.outputs) > 2]
    assert shown and [fn.name for fn in shown if fn.show_progress_on is None or len(fn.show_progress_on) > 1] == []


def test_the_second_event_is_started_only_while_one_of_its_tabs_is_open(demo):
    """The gate of a second event (the last output of the first) changes only while a tab of the second event's
    views is open: with the Attention tab open an opacity change sends one event, not two (the second used to run on
    every change and answer a skip per output)."""
    by_id = {b.elem_id: i for i, b in demo.blocks.items() if getattr(b, "elem_id", None)}
    (first,) = [fn for fn in demo.fns.values() if (by_id["opacity"], "input") in fn.targets]
    inputs = first.inputs
    values = [c.value for c in inputs]
    shown = next(i for i, c in enumerate(inputs) if isinstance(c, gr.State) and c.value == "attention")

    def gate_value(tab: str):
        args = list(values)
        args[shown] = tab
        result = first.fn(*args)
        answers = list(result) if inspect.isgenerator(result) else [result]
        return answers[-1][-1]

    assert gate_value("attention") == gr.skip()
    woken = gate_value("query")
    assert isinstance(woken, int) and gate_value("query") != woken  # a new value each time: the state changes


def _single_choice(block) -> bool:
    return isinstance(block, gr.Dropdown) and not block.multiselect


def test_every_pick_of_a_dropdown_computes_its_views_once(demo):
    """A single-choice dropdown's ``input`` is sent twice per pick with the mouse (Gradio 6.31; see
    tests/test_dropdown_picks.py): every event on it computes once per pick (``wiring.once_per_pick``). The Variants,
    Heads, Features and Query tabs computed every pick twice."""
    doubled = [
        f"{block.label} -> {fn.name}"
        for fn in demo.fns.values()
        for block_id, event in fn.targets
        if _single_choice(block := demo.blocks.get(block_id))
        and event == "input"
        and not getattr(fn.fn, "once_per_pick", False)
    ]
    picked = [b for b in demo.blocks.values() if _single_choice(b)]
    assert len(picked) > 15 and doubled == []
    held = [  # "always_last" held a pick's second input back until the first answer, which could strand it
        f"{demo.blocks[fn.targets[0][0]].label} -> {fn.name}"
        for fn in demo.fns.values()
        if fn.targets
        and all(_single_choice(demo.blocks.get(i)) and e == "input" for i, e in fn.targets)
        and fn.trigger_mode == "always_last"
    ]
    assert held == []


def test_every_dropdown_hears_the_keyboard(demo):
    """A dropdown on ``select`` only ignores a pick with the arrow keys and Enter (tests/test_dropdown_picks.py): the
    header's dropdowns and every tab's listened to ``select`` and never heard the keyboard."""
    events: dict[int, set[str]] = {}
    for fn in demo.fns.values():
        for block_id, event in fn.targets:
            if _single_choice(demo.blocks.get(block_id)):
                events.setdefault(block_id, set()).add(event)
    deaf = {demo.blocks[i].label for i, e in events.items() if "select" in e and "input" not in e}
    assert len(events) > 15 and deaf == set()


def test_the_pictures_of_a_bound_handler_are_written_as_fast_pngs():
    """``api.bind`` marks every picture a handler answers (alone, in a tuple or list, in a ``gr.update``) to be
    written at ``PNG_LEVEL``, and Gradio's own writer honours it: the bytes are zlib level 1's, the pixels the same."""
    import io

    import numpy as np
    from gradio.processing_utils import encode_pil_to_bytes
    from PIL import Image

    from vitattn.ui.shell import api
    from vitattn.ui.shell.presets import PNG_LEVEL

    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)) for _ in range(3)]
    handler = api.bind(lambda ex, k: (pictures[0], [pictures[1]], gr.update(value=pictures[2]), k), object())
    first, listed, update, k = handler(7)
    assert k == 7 and first is pictures[0] and listed[0] is pictures[1] and update["value"] is pictures[2]
    for picture in pictures:
        assert picture.encoderinfo == {"compress_level": PNG_LEVEL}
        written = encode_pil_to_bytes(picture, "png")  # what Image.postprocess writes to the cache
        direct = io.BytesIO()
        Image.fromarray(np.asarray(picture)).save(direct, "png", compress_level=PNG_LEVEL)
        assert written == direct.getvalue()
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(written))), np.asarray(picture))


def test_a_pick_is_computed_once_and_the_last_pick_wins():
    """``wiring.once_per_pick`` (a dropdown's ``input`` is sent at once, also while the pick's first event runs):
    the same values again from the same session within the window are the pick's second ``input`` (skips, whether
    the first is still running or done); a call overtaken by a later one with other values answers skips, so the
    older pick's views never overwrite the newer's; another session is never confused with this one."""
    import threading
    from types import SimpleNamespace

    started, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def view(value):
        runs.append(value)
        if value == "slow" and not started.is_set():  # the first pick takes until released
            started.set()
            release.wait(10)
        return f"view of {value}"

    run = wiring.once_per_pick(view, 1, 1)
    me, other = SimpleNamespace(session_hash="me"), SimpleNamespace(session_hash="other")
    answers: dict[str, object] = {}
    first = threading.Thread(target=lambda: answers.setdefault("slow", run("slow", me)))
    first.start()
    assert started.wait(10)
    assert isinstance(run("slow", me), dict)  # the pick's second input while the first runs: a skip
    assert run("slow", other) == "view of slow"  # another session's pick of the same value
    assert run("fast", me) == "view of fast"  # a later pick with other values, while the first still runs
    release.set()
    first.join(10)
    assert answers["slow"] == gr.skip()  # overtaken: the older pick leaves the views to the newer one
    assert isinstance(run("fast", me), dict)  # the second input of the later pick
    assert runs == ["slow", "slow", "fast"]

    def streamed(value):  # a combined handler: the first view's answer, then all of them
        yield f"first {value}"
        yield f"all {value}"

    gen = wiring.once_per_pick(streamed, 1, 1)
    assert list(gen("a", me)) == ["first a", "all a"] and list(gen("a", me)) == [gr.skip()]
