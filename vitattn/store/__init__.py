"""Precomputed maps, features and metrics of an annotated image set, as Parquet, local or on the Hugging Face Hub.

    from vitattn.store import open_store
    store = open_store("hf://datasets/ns/name")    # or a local folder written by `python -m precompute`
    store.map("astronaut", "dinov2", "cls", layer=11)
    store.image_meta()["astronaut"]                 # metadata of every image (not the image bytes)
    store.predictions("astronaut", "vit")           # top-5 [(label, probability), ...], None without a classifier
    store.head_stats("dinov2"); store.faithfulness("vit")   # per-head statistics, deletion/insertion, as columns

Layout and schemas: ``layout.py``; the manifest: ``manifest.py``; writing (used by the precompute job):
``writer.py``; reading: ``reader.py`` (the views) and ``whole.py`` (the tables read whole) over ``files.py`` (a
local folder or a Hub repo, read-only, bounded timeouts), ``tables.py`` (row groups as numpy), ``quantize.py``
(int8 / float16 features), ``vitattn/cache.py`` and ``recover.py`` (a manifest rebuilt from the data files); the
dataset card: ``card.py``. Numpy, pyarrow and (for the Hub) huggingface_hub; no torch.
"""

from vitattn.store.layout import SCHEMA_VERSION, TABLES, HubUnavailable, StoreError, table_path
from vitattn.store.reader import Store, open_store
from vitattn.store.tables import StoredImage

__all__ = [
    "SCHEMA_VERSION",
    "TABLES",
    "HubUnavailable",
    "Store",
    "StoreError",
    "StoredImage",
    "open_store",
    "table_path",
]
