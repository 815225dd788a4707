"""Folders built once per test run and shared by all its processes (pytest-xdist's workers).

A store that several test files read (the app's store of tiny models, say) costs seconds to a minute to build.
``built_once(key, build)`` builds it the first time any process of this run asks for it, under a file lock, and hands
every later caller (in this process or another worker) the same folder. The folders live under one directory per run
(``run_root()``), named by ``VITATTN_TEST_RUN``, which the controlling pytest process sets in ``conftest.py`` before
its workers start and removes when the run ends. Nothing is shared between runs: each run builds from its own code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

RUN_ENV = "VITATTN_TEST_RUN"


def run_root() -> Path:
    """This run's folder (a process started outside pytest gets one of its own, by process id)."""
    return Path(tempfile.gettempdir()) / f"vitattn-test-run-{os.environ.get(RUN_ENV) or os.getpid()}"


def built_once(key: str, build: Callable[[Path], object]) -> Path:
    """``run_root() / key``, made by ``build(folder)`` once per run; a build that failed is tried again."""
    root = run_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / key
    with FileLock(str(root / f"{key}.lock")):
        if not (root / f"{key}.built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (root / f"{key}.built").touch()
    return folder
