"""How the page's controls reach the views: one event per control, computing every view that control affects.

Gradio's ``trigger_mode="always_last"`` (a change that arrives while a view is computed is computed once more at the
end, so the page never stays on a stale value) loops when one trigger starts several such events: each finished
event re-triggers the others, and a dropdown pick turned into hundreds of requests (issue 9). So each trigger starts
exactly one event, whose handler runs the views in turn (``combine``). A view that fails shows its one-line error as a
notice and leaves its outputs as they were; the other views still update.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import gradio as gr

from vitattn.ui.data.errors import guard, warn
from vitattn.ui.shell.presets import queue

Step = tuple[Callable, Sequence | None, Sequence]  # (handler, inputs, outputs)


def combine(views: Sequence[Step], repeat: bool = True, tail: Step | None = None) -> Step:
    """One handler that runs ``views`` in order: its inputs are theirs (each once), its outputs theirs in turn.

    With several views the handler is a generator (``_streamed``): the first view's outputs go to the page as soon as
    they are ready (the picture a person is waiting for), then the others. One view is a plain handler: one answer,
    without a generator's second message and streaming status on the page. ``tail`` (a step, not a view) is computed
    last and answered with the last answer only (the registry's gate of a chained event).
    """
    run, inputs, outputs = _streamed(views, repeat, tail)
    if len(views) > 1:
        return run, inputs, outputs

    def run_one(*values):
        return next(run(*values))  # one view: the generator's only answer

    run_one.__name__ = run.__name__
    return run_one, inputs, outputs


def _streamed(views: Sequence[Step], repeat: bool = True, tail: Step | None = None) -> Step:
    """``combine``'s generator: the first view's answer, then the others'. With ``repeat`` the last answer repeats the
    first view's outputs, because Gradio applies only the last answer of a generator to a tab that has not been
    opened yet (the IoU tab's leaderboard stayed empty with a skip there). Without it they are left as they are: a
    picture sent twice is written twice to the same file, and a browser reading it meanwhile showed a broken image."""
    steps = [*views, *([tail] if tail else [])]
    inputs: list = []
    for _, ins, _ in steps:
        inputs += [c for c in (ins or []) if all(c is not d for d in inputs)]
    outputs = [o for _, _, outs in steps for o in outs]

    def run(*values):
        given = {id(c): v for c, v in zip(inputs, values, strict=True)}
        out: list = []
        for k, (fn, ins, outs) in enumerate(steps):
            out += _outputs(fn, [given[id(c)] for c in (ins or [])], len(outs))
            if k == 0 and len(views) > 1:
                yield _answer(out + [gr.skip()] * (len(outputs) - len(out)))
        if not repeat and len(views) > 1:
            out[: len(views[0][2])] = [gr.skip()] * len(views[0][2])
        yield _answer(out)

    run.__name__ = "+".join(fn.__name__ for fn, _, _ in views)
    return run, inputs, outputs


def after_step(step: Step, views: Sequence[Step], repeat: bool = True, tail: Step | None = None) -> Step:
    """One handler that runs ``step`` (a page step that sets controls, e.g. a new image's boxes), then ``views`` on
    the values it set: one request where a ``.then`` would take two. The step's outputs and the first view's go to
    the page first (``combine``). A step that returns None has nothing to do: no output changes."""
    fn, ins, outs = step
    views_fn, views_in, views_out = _streamed(views, repeat, tail)
    inputs = [*(ins or [])]
    inputs += [c for c in views_in if all(c is not d for d in inputs)]

    def run(*values):
        given = {id(c): v for c, v in zip(inputs, values, strict=True)}
        try:
            result = fn(*(given[id(c)] for c in (ins or [])))
        except gr.Error as e:
            warn(e.message)
            result = [gr.skip()] * len(outs)
        if result is None:
            yield _answer([gr.skip()] * (len(outs) + len(views_out)))
            return
        set_by_step = [result] if len(outs) == 1 else list(result)
        for c, v in zip(outs, set_by_step, strict=True):
            if not isinstance(v, dict):  # a plain value
                given[id(c)] = v
            elif "value" in v:  # an update that sets a value
                given[id(c)] = v["value"]
        for answer in views_fn(*(given[id(c)] for c in views_in)):
            yield _answer([*set_by_step, *(answer if len(views_out) > 1 else [answer])])

    run.__name__ = f"{fn.__name__}+{views_fn.__name__}"
    return run, inputs, [*outs, *views_out]


def _answer(values: list):
    """A handler's answer for its outputs: the value itself for one output (Gradio wraps a single output's answer
    in a list itself; a list of one would reach the component as its value: a table showed ``[DataFrame]`` as one
    column of text, a skip as ``[object Object]``), else the list."""
    return values[0] if len(values) == 1 else values


def _outputs(fn: Callable, args: list, n: int) -> list:
    """``fn(*args)`` as a list of ``n`` outputs; on ``gr.Error`` a notice and ``n`` skips (outputs left as they are)."""
    try:
        result = fn(*args)
    except gr.Error as e:
        warn(e.message)
        return [gr.skip()] * n
    return [result] if n == 1 else list(result)


def safe(n: int) -> Callable:
    """A page handler that shows a ``gr.Error`` as a notice and leaves its ``n`` outputs as they were."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args):
            try:
                return guard(fn)(*args)
            except gr.Error as e:
                warn(e.message)
                return tuple(gr.skip() for _ in range(n)) if n > 1 else gr.skip()

        return run

    return wrap


def skips(n: int) -> tuple:
    """``n`` outputs left as they are."""
    return tuple(gr.skip() for _ in range(n))


PICK_WINDOW_S = 2.0  # the second ``input`` of a mouse pick follows the first within milliseconds
# A dropdown's ``input`` event is sent at once, also while the pick's first event runs (``trigger_mode="multiple"``):
# with "always_last" the page held the pick's second ``input`` back and sent it the moment the first answer arrived,
# just as the server ended the session's message stream (no event left); when the page read the new event's join
# before the stream's end, it never opened a new stream, and that event (and every later pick of the dropdown, held
# back behind it) waited for good. ``once_per_pick`` gives what "always_last" gave: the last pick's views win.
PICKS = {"trigger_mode": "multiple"}


def picks_twice(trigger: Callable) -> bool:
    """Whether ``trigger`` is the ``input`` event of a single-choice dropdown. Gradio's page (6.31) sends it twice for
    one pick with the mouse (the option's click, then the value it set) and once for a pick with the keyboard or a
    typed value; its ``select`` is sent once, for the mouse only (a pick with the arrow keys and Enter sends none, so a
    view on ``select`` ignores it)."""
    component = getattr(trigger, "__self__", None)
    return (
        isinstance(component, gr.Dropdown)
        and not component.multiselect
        and getattr(trigger, "event_name", None) == "input"
    )


def picks(triggers: Sequence[Callable]) -> tuple[bool, dict]:
    """Whether a handler on ``triggers`` is computed once per pick (some trigger is a dropdown's ``input``:
    ``once_per_pick``), and the trigger mode to add: ``PICKS`` when every trigger is one (sent at once), else none
    (the caller's, e.g. "always_last", which coalesces a slider's drag)."""
    twice = [picks_twice(t) for t in triggers]
    return any(twice), (PICKS if twice and all(twice) else {})


def once_per_pick(fn: Callable, n_inputs: int, n_outputs: int) -> Callable:
    """``fn`` on a dropdown's ``input`` (``picks_twice``, sent with ``PICKS``), computed once per pick, the last pick
    winning. Per session: a call with the same values as the last call, within ``PICK_WINDOW_S`` of its start or its
    answer, is the pick's second ``input`` and is answered with skips (the first, running or done, gives those
    values' views);
    a call overtaken by a later call with other values (a second pick while the first was computed) answers skips
    instead of its views, so an older pick never overwrites a newer one. Values other than plain ones (str, numbers,
    None, lists of them) are never taken for a second ``input``."""
    latest: OrderedDict[str, tuple] = OrderedDict()  # session -> (values, time started, call); the newest 256
    calls = itertools.count(1)
    lock = threading.Lock()

    def begin(values: list, request) -> tuple[str | None, int] | None:
        """None for the pick's second ``input``; else the session and this call's number."""
        session = getattr(request, "session_hash", None)
        key = tuple(values) if all(_plain(v) for v in values) else None
        now, call = time.monotonic(), next(calls)
        with lock:
            seen = latest.get(session) if session is not None else None
            if key is not None and seen is not None and seen[0] == key and now - seen[1] < PICK_WINDOW_S:
                return None
            if session is not None:
                latest[session] = (key, now, call)
                latest.move_to_end(session)
                while len(latest) > 256:
                    latest.popitem(last=False)
        return session, call

    def overtaken(session: str | None, call: int) -> bool:
        """Whether a later call of the session started; if not, this call's answer restarts the window."""
        with lock:
            if session is None or session not in latest:
                return False
            key, _, last = latest[session]
            if last == call:
                latest[session] = (key, time.monotonic(), call)
            return last != call

    nothing = gr.skip() if n_outputs == 1 else skips(n_outputs)  # outputs left as they are

    if inspect.isgeneratorfunction(fn):  # a combined handler that streams its views' answers (``combine``)

        def run(*args):
            *values, request = args
            started = begin(values, request)
            if started is None:
                yield nothing
                return
            for answer in fn(*values):
                if overtaken(*started):
                    yield nothing
                    return
                yield answer

    else:

        def run(*args):
            *values, request = args
            started = begin(values, request)
            if started is None:
                return nothing
            answer = fn(*values)
            return nothing if overtaken(*started) else answer

    kinds = inspect.Parameter.POSITIONAL_ONLY
    params = [inspect.Parameter(f"v{i}", kinds) for i in range(n_inputs)]
    params.append(inspect.Parameter("request", kinds, annotation=gr.Request))
    run.__signature__ = inspect.Signature(params)  # Gradio passes the request to the parameter annotated so
    run.__annotations__ = {"request": gr.Request}
    run.__name__ = getattr(fn, "__name__", "view")
    run.once_per_pick = True
    return run


def _plain(value) -> bool:
    """A value compared as it is: None, a str, a number, a bool, or a list or tuple of them."""
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


def components(given) -> list:
    """An event's inputs or outputs as Gradio takes them (a list, one component, or None) as a list."""
    return [] if given is None else list(given) if isinstance(given, list | tuple) else [given]


def listen(trigger: Callable, fn: Callable, inputs, outputs, *, live: bool = False, **options):
    """``fn`` on ``trigger`` as a private page event in the views' queue (``live``: the live one), guarded by `safe`
    with one skip per output: the count follows ``outputs`` (a list, or one component), never a hand-written number.
    A single-choice dropdown's ``input`` computes ``fn`` once per pick (``once_per_pick``)."""
    n = len(components(outputs))
    handler = safe(n)(fn)
    once, mode = picks([trigger])
    if once:
        handler = once_per_pick(handler, len(components(inputs)), n)
    return trigger(handler, inputs, outputs, **queue(live, outputs), **{**options, **mode})
