"""The store's tables as the Explorer reads them: predictions, metrics, box metrics, baselines and image metadata,
indexed once per model (a part of ``Explorer``, as a mixin)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from vitattn.boxes import LabeledBox
from vitattn.metrics import METRIC_NAMES, all_metrics, baseline_metrics
from vitattn.specs import get_spec
from vitattn.ui.data.catalog import FUSED, Item
from vitattn.ui.data.errors import fail

Table = dict[str, np.ndarray]


class StoredTables:
    """The Explorer's reads of the store's tables (mixin)."""

    def predictions(self, item: Item, model: str) -> tuple[tuple[str, float], ...] | None:
        """Top-5 ImageNet predictions of a classifier (stored, else live inference, cached); None for other models."""
        if not self.info(model).classifier:
            return None
        if self._stored(item, model, "predictions") and hasattr(self.store, "predictions"):
            try:
                stored = self.store.predictions(item.id, model)
                if stored:
                    return tuple((str(label), float(p)) for label, p in stored)
            except Exception as e:
                self._store_failed(item, model, "predictions", e)
        return self.analysis(item, model).predictions

    @property
    def predictions_stored(self) -> bool:
        """Whether the store holds the predictions of every classifier it has (else they need live inference)."""
        if self.store is None or not hasattr(self.store, "predictions"):
            return False
        entries = self.store.manifest["models"]
        return all(entries[m].get("predictions") for m in self._models if self.info(m).classifier)

    def scores(
        self,
        item: Item,
        model: str,
        method: str,
        layer: int,
        head: int | None,
        boxes: Sequence[LabeledBox] = (),
        target: int | None = None,
    ) -> tuple[dict[str, float] | None, str]:
        """Every metric of a view against ``boxes`` (default: the image's expert boxes) and where it came from.

        Stored metrics are read for expert boxes and the top-1 class; others are computed
        (``vitattn.metrics.all_metrics``).
        """
        chosen = self.live_target(item, model, method, target)
        if not boxes and chosen is None and self._stored(item, model, "metrics"):
            try:
                row = self._stored_row("metrics", item.id, model, method=method, layer=layer, head=_head(head))
                if row is not None:
                    return row, "store"
            except Exception as e:
                self._store_failed(item, model, "metrics", e)
        boxes = tuple(boxes) or item.boxes
        if not boxes:
            return None, "none"
        heatmap, origin = self.map(item, model, method, layer, head, chosen)
        key = (item.key, origin, model, method, layer, head, tuple(b.box for b in boxes), chosen)
        return self._scores.get_or_make(key, lambda: all_metrics(heatmap, boxes)), "computed"

    def baselines(self, item: Item, model: str, boxes: Sequence[LabeledBox] = ()) -> dict[str, dict[str, float]]:
        """Baseline name -> metrics on the model's grid, against ``boxes`` (default: the expert boxes)."""
        if not boxes and self._stored(item, model, "baselines"):
            try:
                rows = self._stored_rows("baselines", item.id, model)
                if rows:
                    return {str(r["baseline"]): _metric_values(r) for r in rows}
            except Exception as e:
                self._store_failed(item, model, "baselines", e)
        boxes = tuple(boxes) or item.boxes
        if not boxes:
            return {}
        grid = self.info(model).grid
        key = (item.key, grid, tuple(b.box for b in boxes))
        rgb = lambda: np.asarray(item.picture)  # noqa: E731  saliency works on a 64 px copy anyway
        return self._baselines.get_or_make(key, lambda: baseline_metrics(boxes, rgb(), grid=grid))

    def _index(self, table: str, model: str) -> tuple[Table, dict[str, np.ndarray]]:
        """A stored table of one model and its rows grouped by image id (built once per table and model)."""

        def build() -> tuple[Table, dict[str, np.ndarray]]:
            data = self.store.metrics(model) if table == "metrics" else self._baseline_table(model)
            data = {k: np.asarray(v) for k, v in data.items()}
            ids = data["image_id"]
            order = np.argsort(ids, kind="stable")
            uniq, starts = np.unique(ids[order], return_index=True)
            return data, dict(zip(uniq.tolist(), np.split(order, starts[1:]), strict=True))

        return self._indexes.get_or_make((table, model), build)

    def _baseline_table(self, model: str) -> Table:
        data = self._table("baselines", lambda: self.store.baselines())
        if "model" not in data:
            return data
        keep = np.asarray(data["model"]) == model
        return {k: np.asarray(v)[keep] for k, v in data.items()}

    def _stored_rows(self, table: str, image_id: str, model: str, **where: object) -> list[dict]:
        data, index = self._index(table, model)
        rows = index.get(image_id)
        if rows is None:
            return []
        for column, value in where.items():
            rows = rows[data[column][rows] == value]
        return [{k: v[i] for k, v in data.items()} for i in rows]

    def _stored_row(self, table: str, image_id: str, model: str, **where: object) -> dict[str, float] | None:
        rows = self._stored_rows(table, image_id, model, **where)
        return _metric_values(rows[0]) if rows else None

    def _table(self, name: str, read):
        with self._lock:
            if name in self._tables:
                return self._tables[name]
        value = read()
        with self._lock:
            self._tables[name] = value
        return value

    def require_store(self, what: str) -> None:
        if self.store is None:
            raise fail(
                f"{what} needs a store of precomputed metrics, and this app runs without one. Build one with "
                "`python -m precompute --out store` and restart, or start with --store LOCATION."
            )

    def metrics_table(self) -> Table:
        """The store's metrics table, every model (read once)."""
        self.require_store("the IoU tab")
        return self._table("metrics", lambda: _columns(self.store.metrics()))

    def box_table(self) -> Table:
        """The store's per-box IoU table, every model (read once)."""
        self.require_store("the IoU tab")
        return self._table("boxes", lambda: _columns(self.store.box_metrics()))

    def baseline_table(self) -> Table:
        self.require_store("the IoU tab")
        return self._table("baselines", lambda: _columns(self.store.baselines()))

    def image_meta(self) -> dict[str, dict]:
        """Image id -> metadata of every stored image (``store.image_meta()``, without image bytes, where the store
        has it; else every image is read once)."""
        self.require_store("the IoU tab")
        if hasattr(self.store, "image_meta"):
            return self._table("meta", lambda: {str(i): dict(m) for i, m in self.store.image_meta().items()})
        return self._table("meta", lambda: {i: dict(self.item(i).meta) for i in self._ids})


def _metric_values(row: Mapping) -> dict[str, float]:
    """The metric columns of a stored row (a store written by an older vitattn may lack newer metrics)."""
    return {m: float(row[m]) for m in METRIC_NAMES if m in row}


def _columns(table: Mapping) -> Table:
    return {k: np.asarray(v) for k, v in table.items()}


def _known(name: str) -> bool:
    """A model of ``vitattn.MODELS``, or a variant of one (``clip@lora``: fine-tuned weights, stored as a model)."""
    try:
        get_spec(name)
    except ValueError:
        return False
    return True


def _head(head: int | None) -> int:
    return FUSED if head is None else head
