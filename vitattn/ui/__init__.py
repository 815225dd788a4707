"""The app's layer, apart from ``app.py`` (command line, config, serving). Layers, each importing only the ones
below it (checked by import-linter: ``lint-imports``, contracts in pyproject.toml):

    demo      ``demo.py``: ``build_demo(explorer)``: the header, every tab, the public API, wired in two phases
    tabs      ``tabs/``: one module per tab (layout, events, endpoints); tabs never import each other
    shell     ``shell/``: the header, the typed ``Page``/``Header``, event presets, the API binder, the view
              registry (which views a control recomputes, derived from the inputs each view declares), links
    actions   ``actions/``: plain functions of (Explorer, plain values) -> pictures, tables, numbers; the checks
    data      ``data/``: ``Explorer`` (stored maps, else live inference), live models, model info, config, errors
    library   ``vitattn`` outside ``ui``: models, methods, metrics, render, store (never imports the app)
"""

from vitattn.ui.data.config import AppConfig
from vitattn.ui.data.explorer import Explorer
from vitattn.ui.data.live import LiveModels, Variant

__all__ = ["AppConfig", "Explorer", "LiveModels", "Variant"]
