"""Components the tabs lay out the same way: a read-only table with its CSV export, a native chart."""

from __future__ import annotations

import gradio as gr

from vitattn.ui.actions import export


def table(label: str, elem_id: str, csv: str | None = None, **options) -> gr.Dataframe:
    """A read-only table; with ``csv``, a button under it that offers the table as shown as ``<csv>-....csv``
    (call it inside the layout, where the table goes)."""
    frame = gr.Dataframe(label=label, interactive=False, elem_id=elem_id, **options)
    if csv:
        export.csv_button(frame, csv)
    return frame


def chart(kind: type, x: str, y: str, by: str, *, title: str, axes: tuple[str, str], elem_id: str, **options):
    """A native Gradio chart (``gr.LinePlot``, ``gr.ScatterPlot``) of columns ``x`` and ``y``, one colour per value of
    ``by``, with its own title (no label above it) and axis titles ``axes``; 360 px high unless ``height`` says."""
    x_title, y_title = axes
    options = {"height": 360, "show_label": False, **options}
    return kind(x=x, y=y, color=by, title=title, x_title=x_title, y_title=y_title, elem_id=elem_id, **options)
