"""What every bench shares: timings that wait for the device, runs side by side, and the common flags."""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def synchronize() -> None:
    """Waits for the GPU's queued work (nothing without CUDA)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def once(fn) -> float:
    """Seconds of one call of ``fn``, the device's queued work included."""
    synchronize()
    t = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - t


def median(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up."""
    fn()
    return statistics.median(once(fn) for _ in range(repeats))


def side_by_side(a, b, repeats: int) -> tuple[float, float]:
    """Median times of ``a`` and ``b``, run alternately so both see the same machine load."""
    a(), b()  # warm-up
    times = [(once(a), once(b)) for _ in range(repeats)]
    return statistics.median(t for t, _ in times), statistics.median(t for _, t in times)


def parser(doc: str, *, model: str | None = None, repeats: int | None = None, device: str | None = "auto"):
    """A bench's command line: its docstring's first line as description, and the flags every bench spells alike
    (``--model``, ``--repeats``, ``--device``; ``device="auto"`` means CUDA when available). Pass ``None`` to leave
    one out."""
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    if model is not None:
        p.add_argument("--model", default=model, help=f"a model of vitattn.MODELS (default {model})")
    if repeats is not None:
        p.add_argument("--repeats", type=int, default=repeats, help=f"timed runs per figure (default {repeats})")
    if device == "auto":
        p.add_argument("--device", default=None, help="cuda or cpu (default: CUDA when available)")
    elif device is not None:
        p.add_argument("--device", default=device, help=f"cuda or cpu (default {device})")
    return p
