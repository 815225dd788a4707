"""The one set of event and component presets of the page: queues, private events, pictures."""

from __future__ import annotations

from vitattn.ui.actions.views import OPACITY  # noqa: F401  (the default weight of the map colours)
from vitattn.ui.data.config import LIVE_WORKERS, VIEW_WORKERS

# Live inference (uploads; predictions unless stored) and cached views queue separately: a view never waits for one.
LIVE = {"concurrency_id": "live", "concurrency_limit": LIVE_WORKERS}
VIEWS = {"concurrency_id": "views", "concurrency_limit": VIEW_WORKERS, "show_progress": "hidden"}
PRIVATE = {"api_visibility": "private"}  # a page event, not part of the public API
LAST = {"trigger_mode": "always_last"}  # a change during a view is computed once more (one event per trigger: wiring)
PICTURE = {"format": "jpeg", "interactive": False, "buttons": ["download", "fullscreen"]}  # jpeg: fast to encode
BANDED = {**PICTURE, "show_label": False}  # pictures with their own title band (a label would cover it)
PNG = {**BANDED, "format": "png"}  # pictures of tables and dots: sharp text
FREE = {"allow_custom_value": True}  # choices follow other controls: a stale value reaches the handler, which checks it
HIDDEN = {"visible": False, "interactive": True}


def queue(live: bool) -> dict:
    """The private event options of a handler in the live queue or the views' queue."""
    return {**PRIVATE, **(LIVE if live else VIEWS)}
