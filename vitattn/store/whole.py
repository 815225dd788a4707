"""The store's whole-table reads: image metadata, predictions, and the small per-model tables read whole (metrics,
per-box IoU, baselines, head statistics, faithfulness, randomisation curves), as columns.

`WholeTables` is a part of `vitattn.store.reader.Store` (which inherits it): it reads through the Store's files,
caches, listing and damage records, and its checks (``_model``, ``_chunk``, ``_has``, ``_handle``, ``_failed``).
Every chunk file of a table is read at once (``READ_THREADS``; on the Hub one request per file); a missing or
damaged file is left out and named in ``store.problems``.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vitattn.store.layout import StoreError, table_path
from vitattn.store.tables import columns, conform

READ_THREADS = 8  # files read at once when a whole table is asked for


class WholeTables:
    """The whole-table reads of `vitattn.store.reader.Store` (see there for the state they use)."""

    def image_meta(self) -> dict[str, dict]:
        """Every image's metadata (e.g. WikiChurches' ``styles``): image id -> dict, in id order. Reads the meta
        column of the images table only, never the image bytes; images whose file is missing or damaged are left out
        (``problems`` says which)."""
        cached = self._cache.get(("image_meta",))
        if cached is not None:
            return {k: dict(v) for k, v in cached.items()}
        paths = [table_path("images", c) for c in range(self._n_chunks)]
        paths = [p for p in paths if p in self._listing and p not in self._damaged]
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            parts = list(pool.map(self._meta_of, paths))
        found = {k: v for part in parts for k, v in part.items()}
        meta = {i: found[i] for i in self.image_ids() if i in found}
        self._cache.put(("image_meta",), meta, 200 * len(meta) + sum(len(str(v)) for v in meta.values()))
        return {k: dict(v) for k, v in meta.items()}

    def predictions(self, image_id: str, model: str) -> list[tuple[str, float]] | None:
        """The model's top-5 ImageNet predictions for the image, best first: ``[(label, probability), ...]``; None
        when the model has no classifier head (or the store was made before predictions were stored).

        Raises:
            StoreError: unknown model or image, or the predictions file is missing or damaged.
        """
        entry = self._model(model)
        chunk = self._chunk(image_id)
        if not entry.get("predictions"):
            return None
        rel = table_path("predictions", chunk, model)
        what = f"predictions of {model} for {image_id!r}"
        table = self._cache.get(("file", rel))
        if table is None:
            if rel not in self._listing:
                raise StoreError(f"{what} are unavailable: {rel} is missing from the store")
            table = self._read_whole(rel, "predictions")
            if table is None:
                raise StoreError(f"{what} are unavailable: {self._damaged[rel]}")
            table = self._cache.put(("file", rel), table, table.nbytes)
        rows = [r for r in table.to_pylist() if r["image_id"] == image_id]
        return [(r["label"], float(r["prob"])) for r in sorted(rows, key=lambda r: r["rank"])]

    def metrics(self, model: str | None = None, *, text: bool = False) -> dict[str, np.ndarray]:
        """The metrics table (``METRICS_COLUMNS``) of one model or of all, as columns.

        ``text``: also the rows of text maps (``prompt`` a box label, scored against that label's boxes only);
        by default only image maps' rows, as in stores made before text maps.
        """
        return _image_rows(self._whole("metrics", model), text)

    def box_metrics(self, model: str | None = None) -> dict[str, np.ndarray]:
        """The per-box table (``BOX_COLUMNS``: IoU of each box alone, with its label)."""
        return self._whole("boxes", model)

    def baselines(self, model: str | None = None, *, text: bool = False) -> dict[str, np.ndarray]:
        """Baseline metrics per image: ``image_id, model, grid_h, grid_w, baseline`` and every metric.

        Baselines are scored on each model's grid (coarseness alone changes IoU); pass ``model`` for its rows only.
        ``text``: also each label's baselines on that label's boxes (``prompt`` the label).
        """
        return _image_rows(self._whole("baselines", model), text)

    def head_stats(self, model: str) -> dict[str, np.ndarray]:
        """Per-head statistics of a ViT, one row per (image, layer, head): ``image_id, model, layer, head,
        distance_px`` (mean attention distance in input pixels), ``entropy`` (nats, of the CLS row), ``prefix_share``
        (NaN where a statistic is undefined; see `vitattn.headstats`).

        Raises:
            StoreError: unknown model, or one without head statistics (not a ViT, or a store made before them).
        """
        self._has(model, "headstats", "head statistics (ViTs only)")
        return self._whole("headstats", model)

    def faithfulness(self, model: str) -> dict[str, np.ndarray]:
        """Deletion and insertion of the fused map of each method at the layers the job was asked for, one row per
        (image, method, layer): the AUCs and ``abpc`` as floats, ``score`` (probability or cosine), ``target``,
        ``mode``, and the curves (``fractions``, ``deletion``, ...) as an object array of float32 arrays.

        Raises:
            StoreError: unknown model, or one stored without faithfulness (``--faithfulness-layers none``).
        """
        self._has(model, "faithfulness", "faithfulness curves (made with --faithfulness-layers none?)")
        return self._whole("faithfulness", model)

    def sanity(self, model: str) -> dict[str, np.ndarray]:
        """Model-parameter randomisation curves (`vitattn.sanity.model_randomization`, top-down) of the fused map of
        each method at its last layer on the set's first images, one row per (image, method, step): ``image_id,
        model, method, layer, order, step, stage`` (``"none"`` at step 0: the intact model), ``spearman,
        spearman_abs, ssim, hog_similarity``, ``grid_h, grid_w`` and ``values`` (the map at that step, float16).

        Raises:
            StoreError: unknown model, or one stored without them (``--sanity-images 0``, or an older store).
        """
        self._has(model, "sanity", "randomisation curves (made with --sanity-images 0, or before they existed)")
        return self._whole("sanity", model)

    # ----------------------------------------------------------------------------------------------- reading

    def _whole(self, table: str, model: str | None) -> dict[str, np.ndarray]:
        models = self.models() if model is None else [model]
        for name in models:
            self._model(name)
        return columns(conform([self._model_table(table, name) for name in models], table))

    def _model_table(self, table: str, model: str) -> pa.Table:
        """Every chunk file of a small table of one model, read whole (missing or damaged files are skipped)."""
        key = ("whole", table, model)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        paths = [table_path(table, c, model) for c in range(self._n_chunks)]
        paths = [p for p in paths if p in self._listing and p not in self._damaged]  # others are in `problems`
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:  # on the Hub, one request per file
            parts = [p for p in pool.map(lambda rel: self._read_whole(rel, table), paths) if p is not None]
        whole = conform(parts, table)
        return self._cache.put(key, whole, whole.nbytes)

    def _meta_of(self, rel: str) -> dict[str, dict]:
        """image id -> meta of one images file (its id and meta columns only); {} when the file is damaged."""
        try:
            handle = self._handle(rel, "images")
            try:
                table = handle.read(columns=["image_id", "meta"])
            except Exception as e:  # noqa: BLE001 - sorted by _failed
                raise self._failed(rel, e) from None
        except StoreError as e:
            if rel in self._damaged:
                return {}
            raise type(e)(f"image metadata is unavailable: {e}") from None
        ids, metas = table.column("image_id").to_pylist(), table.column("meta").to_pylist()
        return {i: json.loads(m or "{}") for i, m in zip(ids, metas, strict=True)}

    def _read_whole(self, rel: str, table: str) -> pa.Table | None:
        """A small file read whole; None when it is damaged (then in ``problems``)."""
        try:
            return pq.read_table(io.BytesIO(self._files.read(rel)))
        except Exception as e:  # noqa: BLE001 - sorted by _failed
            error = self._failed(rel, e)
            if rel not in self._damaged:  # passing: no partial table is returned (nor cached)
                raise type(error)(f"the {table} table is unavailable: {error}") from None
            return None


def _image_rows(cols: dict[str, np.ndarray], text: bool) -> dict[str, np.ndarray]:
    """``cols`` less the rows of text maps (a non-empty ``prompt``) unless ``text``."""
    if text or "prompt" not in cols:
        return cols
    keep = np.array([p is None or p == "" for p in cols["prompt"]], dtype=bool)
    return cols if keep.all() else {k: v[keep] for k, v in cols.items()}
