"""The store's dataset card (``README.md``): one ``configs:`` entry per table, so that
``datasets.load_dataset(repo, "maps")`` loads a table and the Hub's dataset viewer shows each one.

The card names the models and whether their weights were random, but not when the store was made, so it only
changes (and is only pushed again) when the set of models does.
"""

from __future__ import annotations

from vitattn.store.layout import OPTIONAL_TABLES, TABLES

DATA_FILES = {"images": "images/images-*.parquet"} | {t: f"models/*/{t}-*.parquet" for t in TABLES[1:]}
DESCRIPTIONS = {
    "images": "image_id, the image, width, height, expert boxes (normalized x0, y0, x1, y1 with labels), meta (json)",
    "maps": "image_id, model, method, layer, head (-1: all heads fused), grid_h, grid_w, values (float16, row-major)",
    "features": "image_id, model, layer, grid_h, grid_w, dim, values (patch tokens (grid_h * grid_w) x dim: float16, "
    "or int8 bytes times scale, one per token)",
    "metrics": "image_id, model, method, layer, head and every alignment metric of that map with the boxes; prompt: "
    "a text map's box label, scored against that label's boxes only (empty for image maps)",
    "boxes": "image_id, model, method, layer, head, box, label, iou: each box alone against the map at 90th pct.",
    "baselines": "image_id, model, grid_h, grid_w, baseline (random, center, saliency) and every metric; prompt: "
    "a label's baselines on that label's boxes (empty: all boxes)",
    "predictions": "image_id, model, rank (0: top-1), label, prob, target (the class gradient methods explain)",
    "headstats": "image_id, model, layer, head, distance_px (mean attention distance), entropy, prefix_share (ViTs)",
    "faithfulness": "image_id, model, method, layer, deletion / insertion curves of the fused map, their AUCs, abpc",
    "sanity": "image_id, model, method, layer, order, step, stage (randomised down to), spearman, spearman_abs, ssim, "
    "hog_similarity against the intact map, grid_h, grid_w, values (the map at that step; first images only)",
    "textmaps": "image_id, model, method, layer, prompt (a box label, through the manifest's templates), grid_h, "
    "grid_w, values (float16, row-major)",
}


def render_card(manifest: dict) -> str:
    """The README.md of a store described by ``manifest`` (a predictions config only when a model has them)."""
    optional = ("predictions", *OPTIONAL_TABLES)  # a config only when some model has the table
    present = {t for t in optional if any(m.get(t) for m in manifest["models"].values())}
    names = [t for t in DATA_FILES if t not in optional or t in present]
    configs = "\n".join(
        f"- config_name: {name}\n  data_files:\n  - split: train\n    path: {DATA_FILES[name]}" for name in names
    )
    rows = "\n".join(
        f"| {name} | `{m['checkpoint']}` | {'**random**' if m['random_weights'] else 'pretrained'} "
        f"| {', '.join(m['methods'])} | {m['num_layers']} | {'x'.join(map(str, m['grid']))} |"
        for name, m in manifest["models"].items()
    )
    tables = "\n".join(f"| {name} | {DESCRIPTIONS[name]} |" for name in names)
    warning = (
        "\n**Some models here have random weights** (a dry run or a test): their maps show no learned attention.\n"
        if any(m["random_weights"] for m in manifest["models"].values())
        else ""
    )
    return f"""---
configs:
{configs}
tags:
- vitattn
- attention-maps
pretty_name: vitattn store
---
# vitattn store

Attention maps, patch features and alignment metrics of {len(manifest["images"])} annotated images, computed by
vitattn (`python -m precompute`). Read it lazily with
`vitattn.store.open_store("hf://datasets/<this repo>")`, or load one table with
`datasets.load_dataset("<this repo>", "<table>")`.
{warning}
| model | checkpoint | weights | methods | layers | grid |
|---|---|---|---|---|---|
{rows}

| table | columns |
|---|---|
{tables}

`manifest.json` describes the store (schema version {manifest["schema_version"]}): models, layers, heads, image ids.
"""
