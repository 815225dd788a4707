"""The app's public API: typed, documented inputs and named outputs, apart from the page's controls.

Each endpoint takes hidden components made here, so ``gradio_client``'s ``view_api`` shows what a client needs:
``layer`` and ``head`` as integers (``head`` -1 or None: all heads fused), choices where there are choices, a default
for every display-only input (opacity), and outputs named for what they hold (``picture``, ``metrics``, ``map``). The
page wires its own controls to the same handlers with private events, so a page control (a slider, a dropdown with
labels) never decides an API type. Handler docstrings (the lines before ``Args:``) are the endpoints' descriptions.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence

import gradio as gr

from vitattn.ui.data.errors import guard
from vitattn.ui.shell.presets import quick

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


def bind(fn: Callable, explorer, name: str | None = None) -> Callable:
    """``fn(explorer, *args)`` as a handler of ``*args``, guarded (``errors.guard``).

    Keeps what Gradio and ``view_api`` read from a handler: its name, docstring (the endpoint's description),
    parameter names, defaults and annotations. The signature is ``fn``'s without its first parameter, set as
    ``__signature__``, so Gradio still injects ``gr.SelectData`` into a parameter annotated with it
    (``functools.partial`` loses the docstring and the annotations, and Gradio then injects nothing).
    """

    @functools.wraps(fn)
    def bound(*args, **kwargs):
        return quick(fn(explorer, *args, **kwargs))  # its pictures written as fast PNGs

    signature = inspect.signature(fn)
    bound.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
    if name is not None:
        bound.__name__ = name
    return guard(bound)


def description(fn: Callable) -> str:
    """The first paragraph of a docstring on one line: the endpoint's description in ``view_api``."""
    return " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split())


class Inputs:
    """The hidden typed inputs the app's own endpoints share (make it inside a hidden column)."""

    def __init__(self, ex, models: list[str], methods: list[str]) -> None:
        from vitattn.metrics import PERCENTILES
        from vitattn.ui.actions import iou, views
        from vitattn.ui.data.catalog import FUSED

        self.image = text("image_id", "an image id from /info, or the id /analyze returned")
        self.model = choice("model", "a model from /info", models)
        self.method = choice("method", "a method of the model (see /info)", methods)
        # No bounds on layer and head: the app's own check names the valid ones for the model and method.
        self.layer = integer("layer", "0-based layer (ResNet: stage - 1)")
        self.head = integer("head", "head number, or -1 for all heads fused", FUSED)
        self.opacity = number("opacity", "weight of the map colours over the image, 0..1", 0.6, 0, 1)
        self.mask = choice("mask", "IoU percentile whose kept pixels are outlined; 0: none", [0, *PERCENTILES], 0)
        self.box = integer("box", "score expert box n alone; -1: every box", -1, -1)
        self.target = integer(
            "target", "ImageNet class 0..999 a gradient method of a classifier explains; -1: its top-1", views.TOP1, -1
        )
        self.sim_scale = choice(
            "scale", "colour scale: the map's own range, or fixed [-1, 1]", views.SIM_SCALES, "per map"
        )
        self.percentile = choice("percentile", "IoU percentile", PERCENTILES, 90)
        self.scale = choice("scale", "colour scale: each tile its own range, or shared", views.SCALES, "per map")
        self.coords = [number(n, "normalized to [0, 1]", None, 0, 1) for n in ("x0", "y0", "x1", "y1")]
        self.boxes = text("boxes", "x0 y0 x1 y1 [label] per line, normalized to [0, 1]", "")
        self.file = upload("image_file", "an image file (gradio_client.handle_file)")
        self.board_method = choice("method", "a method, or best", [iou.BEST, *methods], iou.BEST)
        self.model_b = choice("model_b", "a model from /info", models)
        self.by = choice("by", "label or style", iou.BREAKDOWNS, "label")
        self.group_layer = integer("layer", "0-based layer; -1: the best", -1)


def free_choice(name: str, doc: str, values, default=None) -> gr.Dropdown:
    """One of ``values``, any other value reaching the handler (which checks it and names the valid ones)."""
    return gr.Dropdown(list(values), value=default, label=f"{name}: {doc}", allow_custom_value=True, **HIDDEN)


def png(name: str) -> gr.Image:
    return gr.Image(label=name, format="png", visible=False)


def add(name: str, fn: Callable, inputs: list, outputs: list, group: dict) -> None:
    """``fn`` (already bound) as the public endpoint ``/name``, described by its docstring's first paragraph."""
    gr.on([], fn, inputs, outputs, api_name=name, api_description=description(fn), **group)
