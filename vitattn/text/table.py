"""Per-label table of a store's text maps: how well each model and text method finds each feature type.

    python -m vitattn.text.table STORE [--metric iou_90] [--models clip,siglip]

STORE is a folder or ``hf://datasets/ns/name`` made by ``python -m precompute`` with text maps. A row per
(label, model, method) at the method's last layer: the number of images with that label, the mean of the metric over
them (each text map scored against the boxes of its label only), and the same metric of the random, center and
saliency baselines on the same boxes.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Mapping

import numpy as np


def per_label(metrics: Mapping[str, np.ndarray], baselines: Mapping[str, np.ndarray], metric: str) -> list[dict]:
    """Rows ``{label, model, method, layer, images, mean, <baseline>...}``, sorted by label then best mean first.

    Args:
        metrics: a store's metrics columns with text rows (``open_store(...).metrics(text=True)``).
        baselines: its baselines columns with text rows (``.baselines(text=True)``).
        metric: a metric name (`vitattn.metrics.METRIC_NAMES`).
    """
    if metric not in metrics:
        raise ValueError(f"unknown metric {metric!r}; metrics: {', '.join(k for k in metrics if k[0].islower())}")
    text = np.array([bool(p) for p in metrics["prompt"]])
    last: dict[tuple, int] = defaultdict(lambda: -1)
    cols = {k: metrics[k][text] for k in ("prompt", "model", "method", "layer", metric)}
    for model, method, layer in zip(cols["model"], cols["method"], cols["layer"], strict=True):
        last[(model, method)] = max(last[(model, method)], int(layer))
    groups: dict[tuple, list[float]] = defaultdict(list)
    for label, model, method, layer, value in zip(*cols.values(), strict=True):
        if int(layer) == last[(model, method)]:
            groups[(label, model, method, int(layer))].append(float(value))
    chance: dict[tuple, list[float]] = defaultdict(list)
    base = (baselines[k] for k in ("prompt", "model", "baseline", metric))
    for label, model, name, value in zip(*base, strict=True):
        if label:
            chance[(label, model, name)].append(float(value))
    names = sorted({k[2] for k in chance})
    rows = [
        {
            "label": label,
            "model": model,
            "method": method,
            "layer": layer,
            "images": len(values),
            "mean": float(np.nanmean(values)),
            **{name: float(np.nanmean(chance[(label, model, name)])) for name in names},
        }
        for (label, model, method, layer), values in groups.items()
    ]
    return sorted(rows, key=lambda r: (r["label"], -r["mean"], r["model"], r["method"]))


def markdown(rows: list[dict], metric: str) -> str:
    if not rows:
        return "no text maps in this store (run python -m precompute with --text-methods)"
    base = [k for k in rows[0] if k not in ("label", "model", "method", "layer", "images", "mean")]
    head = f"| label | model | method | layer | images | {metric} | " + " | ".join(base) + " |"
    lines = [head, "|" + "---|" * (6 + len(base))]
    for r in rows:
        cells = [r["label"], r["model"], r["method"], r["layer"], r["images"], f"{r['mean']:.3f}"]
        lines.append("| " + " | ".join(map(str, cells + [f"{r[b]:.3f}" for b in base])) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from ..store import open_store

    p = argparse.ArgumentParser(prog="python -m vitattn.text.table", description=__doc__.splitlines()[0])
    p.add_argument("store", help="a store folder or hf://datasets/ns/name")
    p.add_argument("--metric", default="iou_90", help="a metric of the metrics table (default iou_90)")
    p.add_argument("--models", default=None, help="comma-separated models (default: every model with text maps)")
    args = p.parse_args(argv)
    store = open_store(args.store)
    models = args.models.split(",") if args.models else None
    metrics = _select(store.metrics(text=True), models)
    baselines = _select(store.baselines(text=True), models)
    print(markdown(per_label(metrics, baselines, args.metric), args.metric))


def _select(cols: dict[str, np.ndarray], models: list[str] | None) -> dict[str, np.ndarray]:
    if models is None:
        return cols
    keep = np.isin(cols["model"], models)
    return {k: v[keep] for k, v in cols.items()}


if __name__ == "__main__":
    main()
