"""How the page's controls reach the views: one event per control, computing every view that control affects.

Gradio's ``trigger_mode="always_last"`` (a change that arrives while a view is computed is computed once more at the
end, so the page never stays on a stale value) loops when one trigger starts several such events: each finished
event re-triggers the others, and a dropdown pick turned into hundreds of requests (issue 9). So each trigger starts
exactly one event, whose handler runs the views in turn (``combine``). A view that fails shows its one-line error as a
notice and leaves its outputs as they were; the other views still update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gradio as gr

from vitattn.ui.errors import warn

View = tuple[Callable, Sequence | None, Sequence]  # (handler, inputs, outputs)


def combine(views: Sequence[View]) -> View:
    """One handler that runs ``views`` in order: its inputs are theirs (each once), its outputs theirs in turn.

    The handler is a generator: the first view's outputs go to the page as soon as they are ready (the picture a
    person is waiting for), then every output when all are done. The last answer repeats the first view's outputs
    because Gradio applies only the last answer of a generator to a tab that has not been opened yet (the IoU tab's
    leaderboard stayed empty with a skip there).
    """
    inputs: list = []
    for _, ins, _ in views:
        inputs += [c for c in (ins or []) if all(c is not d for d in inputs)]
    outputs = [o for _, _, outs in views for o in outs]

    def run(*values):
        given = {id(c): v for c, v in zip(inputs, values, strict=True)}
        out: list = []
        for k, (fn, ins, outs) in enumerate(views):
            out += _outputs(fn, [given[id(c)] for c in (ins or [])], len(outs))
            if k == 0 and len(views) > 1:
                yield out + [gr.skip()] * (len(outputs) - len(out))
        yield out  # all of them again: a tab not yet shown takes only the last answer of a generator

    run.__name__ = "+".join(fn.__name__ for fn, _, _ in views)
    return run, inputs, outputs


def _outputs(fn: Callable, args: list, n: int) -> list:
    """``fn(*args)`` as a list of ``n`` outputs; on ``gr.Error`` a notice and ``n`` skips (outputs left as they are)."""
    try:
        result = fn(*args)
    except gr.Error as e:
        warn(e.message)
        return [gr.skip()] * n
    return [result] if n == 1 else list(result)
