"""Shared by the tests of the Heads, Variants and Features tabs: a random-weight store with a fine-tuned variant.

``more_store()`` fine-tunes the tiny random ``vit`` (``python -m vitattn.finetune --strategy full
--random-weights``) on a red/blue toy set, then runs the precompute job on the bundled examples for ``dinov2``,
``siglip``, ``vit``, ``resnet50`` and the variant ``vit@full``, each the tiny variant of ``small_models`` (two
blocks, 64 channels, 4 heads). Built once per test run. No test lives here. ``toy_set`` and ``toy_config``
are the fine-tune set-up ``test_finetune`` shares.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image
from run_cache import built_once
from small_models import small_overrides

MODELS = ("dinov2", "siglip", "vit", "resnet50")
VARIANT = "vit@full"
TINY = small_overrides("vit")  # depth 2, 64 channels, 4 heads, 64 px: the tiny random vit every fine-tune test uses
LR = {"linear": 1e-2, "lora": 1e-2, "full": 1e-3}  # larger than the study's: a few short epochs on a toy set


def toy_set(folder: Path, per_class: int = 8, seed: int = 0) -> Path:
    """A class-folder set: reddish and bluish noise images, 24x24 (separable by colour alone)."""
    rng = np.random.default_rng(seed)
    for name, channel in (("red", 0), ("blue", 2)):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (24, 24, 3), dtype=np.uint8)
            pixels[..., channel] = rng.integers(170, 256, (24, 24), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{name}{i}.png")
    return folder


def toy_config(tmp: Path, strategy: str, **kw):
    """The fine-tune job's config for the tiny random vit on ``tmp / "toy"`` (``toy_set``), written to
    ``tmp / "run-<strategy>"``: 3 epochs of batch 4 at ``LR[strategy]``, quiet; ``kw`` overrides any field."""
    from vitattn.finetune import FinetuneConfig

    kw = {
        "dataset": str(tmp / "toy"),
        "output": tmp / f"run-{strategy}",
        "epochs": 3,
        "batch_size": 4,
        "lr": LR[strategy],
        "random_weights": True,
        "progress": False,
        "overrides": TINY,
        **kw,
    }
    return FinetuneConfig(model="vit", strategy=strategy, **kw)


def finetuned(tmp: Path) -> tuple[Path, dict]:
    """The tiny random vit fine-tuned in full for 2 epochs under ``tmp``: its output folder and its finetune record."""
    from vitattn.finetune import run

    toy_set(tmp / "toy")
    config = toy_config(tmp, "full", epochs=2)
    return config.output, run(config, log=lambda line: None)


def _build_more_store(out: Path) -> None:
    from precompute import Config, run

    folder, _ = finetuned(out / "finetune")
    overrides = {**{m: small_overrides(m) for m in MODELS}, VARIANT: small_overrides("vit")}
    run(Config(output=out / "store", models=(*MODELS, VARIANT), checkpoints={VARIANT: str(folder)},
               random_weights=True, overrides=overrides, progress=False))  # fmt: skip


@cache
def more_store() -> Path:
    """The store: four tiny random models and one fine-tuned variant, on the bundled examples (built once per test
    run, shared by its processes: ``run_cache``)."""
    return built_once("more-store", _build_more_store) / "store"


def more_server():
    """The app launched on ``more_store()``, once per test run (the client and the browser tests share it)."""
    from app_support import shared_server

    return shared_server("more", more_store)
