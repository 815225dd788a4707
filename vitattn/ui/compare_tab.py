"""The Compare tab (being written): two maps of one image side by side on one colour scale, and B - A."""

from __future__ import annotations

from vitattn.ui.explorer import Explorer


def build(explorer: Explorer, controls: dict) -> None:
    """Adds the Compare tab; call inside the app's open ``gr.Tabs()`` (controls as for ``more_tabs.build``)."""
