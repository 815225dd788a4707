"""The app's logic, apart from its layout (``app.py``): where maps come from, the handlers, the page plumbing.

- ``config.py``: `AppConfig`, where the store is and which weights live inference uses, and the app's limits;
- ``explorer.py``: `Explorer`, the data: stored maps when there are some, live inference otherwise (``live.py``),
  with bounded caches (``vitattn/cache.py``);
- ``catalog.py``: models, images and input checks (``gr.Error`` with the valid choices);
- ``views.py``: Attention, Similarity and Your-image handlers; ``iou.py``: the IoU tab;
- ``page.py``: page plumbing: valid control values, clicks on pictures, gallery and status line;
- ``errors.py``: what a client sees when something fails: one ``gr.Error`` line, tokens hidden.
"""

from vitattn.ui.data.config import AppConfig
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.data.live import LiveModels, Variant

__all__ = ["AppConfig", "Explorer", "LiveModels", "Variant"]
