"""Precomputed maps, features and metrics of an annotated image set, as Parquet, local or on the Hugging Face Hub.

    from vitattn.store import open_store
    store = open_store("hf://datasets/ns/name")    # or a local folder written by `python -m precompute`
    store.map("astronaut", "dinov2", "cls", layer=11)

Layout and schemas: ``layout.py``; the manifest: ``manifest.py``; writing (used by the precompute job):
``writer.py``; reading: ``reader.py`` over ``files.py`` (a local folder or a Hub repo), ``tables.py`` (row groups
as numpy) and ``cache.py``; the dataset card: ``card.py``. Numpy, pyarrow and (for the Hub) huggingface_hub; no
torch.
"""

from vitattn.store.layout import SCHEMA_VERSION, TABLES, StoreError, table_path
from vitattn.store.reader import Store, open_store
from vitattn.store.tables import StoredImage

__all__ = ["SCHEMA_VERSION", "TABLES", "Store", "StoreError", "StoredImage", "open_store", "table_path"]
