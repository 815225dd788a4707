"""The app's public API: typed, documented inputs and named outputs, apart from the page's controls.

Each endpoint takes hidden components made here, so ``gradio_client``'s ``view_api`` shows what a client needs:
``layer`` and ``head`` as integers (``head`` -1 or None: all heads fused), choices where there are choices, a default
for every display-only input (opacity), and outputs named for what they hold (``picture``, ``metrics``, ``map``). The
page wires its own controls to the same handlers with private events, so a page control (a slider, a dropdown with
labels) never decides an API type. Handler docstrings (the lines before ``Args:``) are the endpoints' descriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gradio as gr

HIDDEN = {"visible": False, "interactive": True}


def text(name: str, doc: str, default: str | None = None) -> gr.Textbox:
    """A string input; ``view_api`` shows ``doc`` as where the value goes."""
    return gr.Textbox(default, label=f"{name}: {doc}", **HIDDEN)


def choice(name: str, doc: str, choices: Sequence, default=None) -> gr.Dropdown:
    """One of ``choices`` (shown as a Literal by ``view_api``)."""
    return gr.Dropdown(list(choices), value=default, label=f"{name}: {doc}", **HIDDEN)


def integer(name: str, doc: str, default: int | None = None, lo: int | None = None, hi: int | None = None):
    """A whole number (``view_api``: int), optionally bounded."""
    return gr.Number(default, precision=0, minimum=lo, maximum=hi, label=f"{name}: {doc}", **HIDDEN)


def number(name: str, doc: str, default: float | None = None, lo: float | None = None, hi: float | None = None):
    """A float, optionally bounded."""
    return gr.Number(default, minimum=lo, maximum=hi, label=f"{name}: {doc}", **HIDDEN)


def upload(name: str, doc: str) -> gr.Image:
    """An image file (``handle_file(path)`` in ``gradio_client``), passed on undecoded."""
    return gr.Image(label=f"{name}: {doc}", type="filepath", image_mode=None, **HIDDEN)


def picture(name: str) -> gr.Image:
    return gr.Image(label=name, format="jpeg", visible=False)


def table(name: str) -> gr.Dataframe:
    return gr.Dataframe(label=name, visible=False)


def data(name: str) -> gr.JSON:
    return gr.JSON(label=name, visible=False)


def classes(name: str) -> gr.Label:
    return gr.Label(label=name, visible=False)


def plain(name: str) -> gr.Textbox:
    return gr.Textbox(label=name, visible=False)


def endpoint(name: str, fn: Callable, inputs: list, outputs: list, **kw) -> None:
    """``fn`` as the public endpoint ``/name``, triggered by API calls only.

    Inputs reach ``fn`` as the client sent them (no Gradio preprocessing): the handlers check every value and
    answer a bad one with the app's own one-line error naming the valid choices (Gradio's would be a paragraph
    about "input component at index 4").
    """
    gr.on([], fn, inputs, outputs, api_name=name, **{"preprocess": False, **kw})
