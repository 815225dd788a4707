"""The Query tab (being written): where one patch's token attends, per layer and head, beside feature similarity."""

from __future__ import annotations

from vitattn.ui.explorer import Explorer


def build(explorer: Explorer, controls: dict) -> None:
    """Adds the Query tab; call inside the app's open ``gr.Tabs()`` (controls as for ``more_tabs.build``)."""
