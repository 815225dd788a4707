"""Export: a map as ``.npy``, tables as CSV, pictures as PNG: files a ``gr.File`` offers for download.

Files go to one folder per server process; files older than the app's temporary-file age (``TEMP_FILES``) are deleted
whenever a new export is written. Gradio copies each returned file into its own cache, which it cleans itself.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from vitattn.ui.data.config import TEMP_FILES

FOLDER = Path(tempfile.gettempdir()) / f"vitattn-export-{os.getpid()}"


def folder() -> Path:
    """The export folder, emptied of files older than ``TEMP_FILES[1]`` seconds."""
    FOLDER.mkdir(parents=True, exist_ok=True)
    old = time.time() - TEMP_FILES[1]
    for f in FOLDER.iterdir():
        try:
            if f.stat().st_mtime < old:
                f.unlink()
        except OSError:  # another request removed it first
            pass
    return FOLDER


def name(*parts: object) -> str:
    """A file name from ``parts`` (an image id, a model, a layer...): letters, digits, ``.``, ``-`` and ``_`` only."""
    text = "_".join(str(p) for p in parts if p is not None and str(p) != "")
    return re.sub(r"[^A-Za-z0-9.\-]+", "-", text).strip("-") or "export"


def npy(stem: str, array: np.ndarray) -> str:
    """``array`` as ``stem.npy`` (load with ``numpy.load``); returns the path."""
    path = folder() / f"{stem}.npy"
    np.save(path, np.asarray(array))
    return str(path)


def csv(stem: str, table: pd.DataFrame | None) -> str:
    """``table`` as ``stem.csv`` (an empty or missing table: the header only, or an empty file)."""
    path = folder() / f"{stem}.csv"
    (table if isinstance(table, pd.DataFrame) else pd.DataFrame()).to_csv(path, index=False)
    return str(path)


def png(stem: str, picture: Image.Image) -> str:
    """``picture`` as a lossless ``stem.png``."""
    path = folder() / f"{stem}.png"
    picture.save(path, format="PNG")
    return str(path)


def csv_button(table, stem: str) -> None:
    """A small button under ``table`` (a ``gr.Dataframe``) that offers the table as shown as a CSV file; call it
    inside the layout, right after the table."""
    import gradio as gr

    with gr.Row():
        button = gr.Button("Export this table (CSV)", size="sm", scale=0, min_width=200)
        files = gr.File(label="CSV", interactive=False, visible=False, scale=3)

    def export_table(shown: pd.DataFrame | None) -> dict:
        return gr.update(value=csv(name(stem), shown), visible=True)

    button.click(export_table, table, files, api_visibility="private")
