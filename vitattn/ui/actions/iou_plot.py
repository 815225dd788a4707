"""The per-layer curves of the IoU tab as one Vega-Lite chart: each model's mean IoU per layer with its 95%
bootstrap band, and the baselines as chance lines (hover: the numbers)."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
import pandas as pd
from gradio.components.plot import AltairPlotData

from vitattn.ui.actions.iou import BEST, BOOT_SEED, N_BOOT, chance, curves
from vitattn.ui.data.explorer import Explorer

VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"


CURVES_TITLE = "Mean IoU per layer"


CURVES_HEIGHT = 420


CHANCE_COLOR = "#666666"


PALETTE = ("#f97316", "#3b82f6", "#22c55e", "#ef4444", "#a855f7", "#06b6d4", "#eab308", "#ec4899", "#64748b")


def curves_component(**layout) -> gr.Plot:
    """The IoU tab's curves: a ``gr.Plot`` for ``curves_plot``'s value (``layout``: e.g. ``elem_id``, ``label``)."""
    return gr.Plot(**{"label": CURVES_TITLE, "show_label": False, **layout})


def curves_plot(ex: Explorer, percentile: int, method: str = BEST) -> AltairPlotData:
    """The curves with their bootstrap bands and chance lines, as the value of ``curves_component``."""
    return ex.memo(("iou", "plot", percentile, method), lambda: _plot(ex, percentile, method))


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON objects (NaN: null)."""
    return [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else _plain(v)) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _plot(ex: Explorer, percentile: int, method: str) -> AltairPlotData:
    return AltairPlotData(
        chart="line", plot=json.dumps(curves_spec(curves(ex, percentile, method), chance(ex, percentile)))
    )


def curves_spec(rows: pd.DataFrame, chance_rows: pd.DataFrame) -> dict:
    """A Vega-Lite spec: per model its mean IoU against depth (line and points), its 95% bootstrap band (shaded),
    and per baseline a flat dashed line at its mean; every mark shows its numbers on hover."""
    models = sorted(set(rows["model"]))
    depth = {
        "field": "depth",
        "type": "quantitative",
        "title": "depth: (layer + 1) / number of layers (ResNet: stages)",
        "scale": {"domain": [0, 1]},
        "axis": {"values": [round(0.1 * k, 1) for k in range(11)], "format": ".1f"},
    }
    palette = [PALETTE[i % len(PALETTE)] for i in range(len(models))]  # replaced by the page's colours, by index
    color = {"field": "model", "type": "nominal", "title": "model", "scale": {"domain": models, "range": palette}}
    color["legend"] = {"symbolOpacity": 1}  # the bands' pale fill would be the symbol otherwise
    hover = [
        {"field": "model", "type": "nominal"},
        {"field": "method", "type": "nominal"},
        {"field": "layer", "type": "nominal"},
        {"field": "depth", "type": "quantitative", "format": ".3f"},
        {"field": "iou", "type": "quantitative", "title": "mean IoU", "format": ".4f"},
        {"field": "lo", "type": "quantitative", "title": "95% low", "format": ".4f"},
        {"field": "hi", "type": "quantitative", "title": "95% high", "format": ".4f"},
    ]
    layers = [
        {
            "mark": {"type": "area", "opacity": 0.18, "strokeWidth": 0},
            "encoding": {
                "x": depth,
                "y": {"field": "lo", "type": "quantitative", "title": "mean IoU"},
                "y2": {"field": "hi"},
                "color": color,
                "tooltip": hover,
            },
        },
        {
            "mark": {"type": "line", "point": {"size": 50, "filled": True, "strokeWidth": 0}, "strokeWidth": 2},
            "encoding": {"x": depth, "y": {"field": "iou", "type": "quantitative"}, "color": color, "tooltip": hover},
        },
    ]
    if len(chance_rows):
        layers.append(
            {
                "data": {"values": _records(chance_rows)},
                "mark": {"type": "rule", "stroke": CHANCE_COLOR, "strokeWidth": 1.5},
                "encoding": {
                    "y": {"field": "iou", "type": "quantitative"},
                    "strokeDash": {
                        "field": "baseline",
                        "type": "nominal",
                        "title": "chance (baseline mean)",
                        "scale": {"domain": list(chance_rows["baseline"])},
                    },
                    "tooltip": [
                        {"field": "baseline", "type": "nominal", "title": "chance line"},
                        {"field": "iou", "type": "quantitative", "title": "mean IoU", "format": ".4f"},
                        {"field": "lo", "type": "quantitative", "title": "95% low", "format": ".4f"},
                        {"field": "hi", "type": "quantitative", "title": "95% high", "format": ".4f"},
                    ],
                },
            }
        )
    return {
        "$schema": VEGA_LITE,
        "title": {
            "text": CURVES_TITLE,
            "subtitle": f"bands: 95% bootstrap over images ({N_BOOT} resamples, seed {BOOT_SEED}); "
            "dashed: chance (baselines)",
        },
        "height": CURVES_HEIGHT,
        "usermeta": {"embedOptions": {"renderer": "svg"}},  # vega-embed: SVG, whose legend and marks a test can read
        "data": {"values": _records(rows)},
        "layer": layers,
    }
