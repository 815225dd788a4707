"""The view registry: a view declares the controls it reads; which views a control recomputes follows from that.

    views.add("chart", page_chart, [image_id, model, method, layer, head, percentile], [chart])
    views.on([layer.input], layer)          # every view that reads ``layer``, in one event
    views.after(event.then, model, method)  # after a step that set them, every view that reads either

A hand-written "this control recomputes these views" table drifts from the views it describes (a view that starts
reading a control is forgotten by the table); here the table is derived, so a view cannot miss a control it reads.
Each trigger starts exactly one event whose handler runs the views in turn (``wiring.combine``), because several
``always_last`` events on one trigger restart each other; the views bound to a tab follow in a second event, sent only
while one of their tabs is open (``start``, ``_gate``), so they never slow the picture down. Views marked ``always``
(the status line) join every header refresh.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gradio as gr

from vitattn.ui.shell import wiring
from vitattn.ui.shell.presets import LAST, QUIET, queue

_WAKES = itertools.count(1)  # a gate's values: each differs from the one before, so the state changes


@dataclass(frozen=True)
class View:
    """One view: ``fn(*inputs) -> outputs``; ``live``: it may run live inference (the live queue)."""

    name: str
    fn: Callable
    inputs: tuple
    outputs: tuple
    live: bool = False
    always: bool = False
    tab: str | None = None  # computed only while this tab is open (and when it opens); None: always
    on_open: bool = True  # computed when its tab opens (False: the tab's own select event computes it)


def _contains(components: Sequence, c) -> bool:
    return any(c is d for d in components)


class Registry:
    """The page's views, in the order they were added (the first is computed first)."""

    def __init__(self) -> None:
        self._views: dict[str, View] = {}
        self.open_tab: gr.State | None = None  # the id of the tab shown (set by the page): tab-bound views read it

    def add(
        self,
        name: str,
        fn: Callable,
        inputs: Sequence,
        outputs: Sequence,
        *,
        live=False,
        always=False,
        tab=None,
        on_open=True,
    ) -> None:
        """Registers a view; ``tab``: compute it only while that tab is open (a view of a tab nobody looks at, e.g. the
        Query tab's live inference, does not run on every header change; it runs when its tab opens)."""
        if name in self._views:
            raise ValueError(f"view {name!r} is registered twice")
        self._views[name] = View(name, fn, tuple(inputs or ()), tuple(outputs), live, always, tab, on_open)

    def of_tab(self, tab: str) -> tuple[str, ...]:
        """The views bound to ``tab`` that run when it opens."""
        return tuple(n for n, v in self._views.items() if v.tab == tab and v.on_open)

    def _triple(self, v: View, opened: bool) -> wiring.Step:
        """The view as (fn, inputs, outputs); a tab-bound one also reads the open tab and skips while it is closed
        (``opened``: the event opens its tab, so it runs)."""
        if v.tab is None or opened:
            return v.fn, list(v.inputs), list(v.outputs)
        if self.open_tab is None:
            raise ValueError(f"view {v.name!r} is bound to tab {v.tab!r} but the page has no open-tab state")

        def when_open(shown: str, *values):
            if shown == v.tab:
                return v.fn(*values)
            return gr.skip() if len(v.outputs) == 1 else wiring.skips(len(v.outputs))

        when_open.__name__ = f"{v.fn.__name__}_if_open"
        return when_open, [self.open_tab, *v.inputs], list(v.outputs)

    def __getitem__(self, name: str) -> View:
        return self._views[name]

    def reading(self, *controls) -> tuple[str, ...]:
        """The names of the views whose inputs include any of ``controls`` (in registration order)."""
        return tuple(n for n, v in self._views.items() if any(_contains(v.inputs, c) for c in controls))

    def names(self, targets: Sequence) -> tuple[str, ...]:
        """``targets`` (view names or controls) as view names: a control stands for every view that reads it."""
        out: list[str] = []
        for t in targets:
            for n in (t,) if isinstance(t, str) else self.reading(t):
                if n not in out:
                    out.append(n)
        return tuple(out)

    def handler(
        self, names: Sequence[str], step: wiring.Step | None = None, opened: bool = False, tail=None
    ) -> tuple[wiring.Step, dict]:
        """One handler for the views ``names`` (after ``step``, when given; ``tail`` last, see ``wiring.combine``),
        and its queue options."""
        chosen = [self._views[n] for n in names]
        triples = [self._triple(v, opened) for v in chosen]
        repeat = bool(chosen) and self._home(chosen[0]) not in (None, self._shown_first())
        fn = wiring.combine(triples, repeat, tail) if step is None else wiring.after_step(step, triples, repeat, tail)
        return fn, queue(any(v.live for v in chosen), fn[2])

    def _gate(self, names: Sequence[str]) -> tuple[gr.State, wiring.Step]:
        """A state whose change starts the views ``names`` (bound to tabs), and the step that changes it, last in the
        event before them, only while one of their tabs is open: Gradio sends a state's change event only when its
        value changed, so while those tabs are closed no second event is sent at all (a ``.then`` was sent on every
        change, and its views answered a skip per output, each a new component on the server)."""
        gate, tabs = gr.State(0), {self._views[n].tab for n in names}

        def wake(shown: str):
            return next(_WAKES) if shown in tabs else gr.skip()

        return gate, (wake, [self.open_tab], [gate])

    def start(
        self, begin: Callable, names: Sequence[str], *, step=None, opened=False, live=None, options=None, once=False
    ) -> None:
        """The views ``names`` (after ``step``) started by ``begin`` (a trigger's event method, ``gr.on`` bound to
        triggers, or a step's ``.then``): the views of the page in one event, then the views bound to a tab that
        is not the one opening in a second one, which the first starts only while one of those tabs is open
        (``_gate``; each view skips while its own tab is closed). So a view of a closed tab never holds the picture
        back, adds its outputs to the picture's answer, nor puts it in the live queue. ``once``: ``begin`` is a
        dropdown's ``input``, sent twice per mouse pick (``wiring.once_per_pick``; the gate then stays put too)."""
        now = [n for n in names if opened or self._views[n].tab is None]
        later = [n for n in names if n not in now]
        if not now:
            now, later = later, []
        gate, tail = self._gate(later) if later else (None, None)
        (fn, inputs, outputs), kw = self.handler(now, step, opened, tail)
        if once:
            fn = wiring.once_per_pick(fn, len(inputs), len(outputs))
        if live is not None:
            kw = queue(live, outputs)
        begin(fn, inputs, outputs, **kw, **(options or {}))
        if later:  # started by the gate while one of their tabs is open; those closed skip, with no progress shown
            (fn, inputs, outputs), kw = self.handler(later)
            gate.change(fn, inputs, outputs, **{**kw, **QUIET, **LAST})

    def on(self, triggers: list, *targets, live: bool | None = None) -> None:
        """``targets`` (controls: every view reading them; or view names) recomputed on ``triggers`` (a dropdown's
        ``input``, which hears the keyboard too, is computed once per pick)."""
        once, mode = wiring.picks(triggers)
        options = {**LAST, **mode}
        self.start(functools.partial(gr.on, triggers), self.names(targets), live=live, options=options, once=once)

    def after(self, then: Callable, *targets, header: bool = False, opened: bool = False, once: bool = False) -> None:
        """``targets`` recomputed after a step (``then``: the step's ``.then`` or ``.success``); ``header``: also
        the views marked ``always``; ``opened``: the step opened the views' tab; ``once``: see ``on_pick``."""
        names = self.names(targets)
        if header:
            names += tuple(n for n, v in self._views.items() if v.always and n not in names)
        self.start(then, names, opened=opened, once=once)

    def on_pick(self, dropdown, fn: Callable, inputs, outputs, *targets, header: bool = False, **options) -> None:
        """A pick in ``dropdown`` starts a step (``fn`` sets other controls from it), then the views that read
        ``targets``. On ``input``, which hears the mouse and the keyboard (``select`` misses a pick made with the
        keyboard), once per pick: the page's second ``input`` of a mouse pick is answered with skips by the step
        and, with the same values, by its views (``wiring.once_per_pick``)."""
        inputs, outputs = wiring.components(inputs), wiring.components(outputs)
        step = wiring.once_per_pick(fn, len(inputs), len(outputs))
        done = dropdown.input(step, inputs, outputs, **queue(False), **options)
        self.after(done.then, *targets, header=header, once=True)

    def _shown_first(self) -> str | None:
        """The tab shown when the page loads."""
        return None if self.open_tab is None else self.open_tab.value

    @staticmethod
    def _home(v: View) -> str | None:
        """The id of the tab the view's first output lies in (None: outside every tab, e.g. the header)."""
        block = getattr(v.outputs[0], "parent", None) if v.outputs else None
        while block is not None and not isinstance(block, gr.Tab):
            block = block.parent
        return None if block is None else block.id

    def on_open(self, tab: gr.Tab, tab_id: str) -> None:
        """When ``tab`` opens: the open-tab state is set (a ``gr.State`` lives on the server: a value set in the
        browser alone would never reach it), then the tab's views run."""

        def opened_tab() -> str:
            return tab_id

        opened = tab.select(opened_tab, None, self.open_tab, **queue(False))
        if self.of_tab(tab_id):
            self.after(opened.then, *self.of_tab(tab_id), opened=True)
