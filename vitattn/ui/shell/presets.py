"""The one set of event and component presets of the page: queues, private events, pictures."""

from __future__ import annotations

from PIL import Image

from vitattn.ui.actions.views import OPACITY  # noqa: F401  (the default weight of the map colours)
from vitattn.ui.data.config import LIVE_WORKERS, VIEW_WORKERS

# Live inference (uploads; predictions unless stored) and cached views queue separately: a view never waits for one.
LIVE = {"concurrency_id": "live", "concurrency_limit": LIVE_WORKERS}
# No progress shown, and none tracked: on every status message of any event, Gradio's page (6.x) updates each component
# that has ever been a progress target of an event that ran (a walk of the layout tree and a deep copy of its value
# per component), so an event that shows no progress names no targets (``show_progress_on=()``, not the outputs).
QUIET = {"show_progress": "hidden", "show_progress_on": ()}
VIEWS = {"concurrency_id": "views", "concurrency_limit": VIEW_WORKERS, **QUIET}
PRIVATE = {"api_visibility": "private"}  # a page event, not part of the public API
LAST = {"trigger_mode": "always_last"}  # a change during a view is computed once more (one event per trigger: wiring)
PICTURE = {"format": "jpeg", "interactive": False, "buttons": ["download", "fullscreen"]}  # jpeg: fast to encode
BANDED = {**PICTURE, "show_label": False}  # pictures with their own title band (a label would cover it)
PNG = {**BANDED, "format": "png"}  # pictures of tables and dots: sharp text
PNG_LEVEL = 1  # zlib level of the PNGs Gradio writes (its default, 6: 2.6x the time for 8% smaller files; ``quick``)
FREE = {"allow_custom_value": True}  # choices follow other controls: a stale value reaches the handler, which checks it
HIDDEN = {"visible": False, "interactive": True}


def queue(live: bool, progress_on=()) -> dict:
    """The private event options of a handler in the live queue or the views' queue. A live event shows its progress
    on one component: ``progress_on``, or the first of them (its outputs). Every progress target costs the page work on
    every status message of every event (``QUIET``)."""
    if not live:
        return {**PRIVATE, **VIEWS}
    first = list(progress_on)[:1] if isinstance(progress_on, list | tuple) else [progress_on]
    return {**PRIVATE, **LIVE, "show_progress_on": first}


def quick(answer):
    """A handler's answer with every picture in it (a PIL image, alone or in a tuple, list or ``gr.update``) set to be
    written as a PNG at ``PNG_LEVEL``: Gradio saves a picture itself, at zlib's default level, and Pillow lets an
    image carry its writer's parameters (``Image.encoderinfo``). A 456x520 feature picture: 19.6 ms at level 6, 7.5 ms
    at level 1, 149 and 161 KiB (JPEG pictures ignore the setting)."""
    if isinstance(answer, Image.Image):
        answer.encoderinfo = {**getattr(answer, "encoderinfo", {}), "compress_level": PNG_LEVEL}
    elif isinstance(answer, list | tuple):
        for value in answer:
            quick(value)
    elif isinstance(answer, dict) and "value" in answer:
        quick(answer["value"])
    return answer
