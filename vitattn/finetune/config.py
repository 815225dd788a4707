"""The fine-tune job's configuration: one frozen dataclass, parsed once from the command line.

    python -m vitattn.finetune --model clip --strategy lora --dataset wikichurches-styles/ --label style \\
        --exclude hf://datasets/ns/vitattn-wikichurches --output runs/clip-lora
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vitattn.cli import config_from
from vitattn.specs import MODELS, STRATEGIES, get_spec

DEFAULT_LR = {"linear": 1e-3, "lora": 1e-4, "full": 1e-5}  # the study's: head 1e-3, LoRA 1e-4, backbone 1e-5
HEAD_LR = 1e-3


@dataclass(frozen=True)
class LoraSettings:
    """LoRA on the attention projections (timm ``attn.qkv`` and ``attn.proj``), the study's settings."""

    r: int = 8  # rank of the update
    alpha: int = 32  # scaling numerator: the update is (alpha / r) * B @ A
    dropout: float = 0.1  # dropout on the LoRA branch input


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run."""

    model: str  # a base model name (vitattn.MODELS)
    strategy: str  # "linear" (a new head), "lora" (LoRA adapters + head), "full" (everything)
    dataset: str  # class folders, a `datasets` dataset (local or hf://datasets/...), or an annotated source
    output: Path  # the run folder; a rerun resumes there from the last finished epoch
    label: str = "label"  # label column (datasets) or metadata field (annotated sources); class folders: ignored
    image_column: str = "image"  # image column of a `datasets` dataset
    epochs: int = 3
    batch_size: int = 16
    lr: float | None = None  # what the strategy trains besides the head (linear: the head); None: DEFAULT_LR
    head_lr: float = HEAD_LR  # the new head's rate (full and lora)
    weight_decay: float = 0.01  # AdamW (torch's default)
    lora: LoraSettings = LoraSettings()
    val_fraction: float = 0.1  # share of each class held out for validation
    exclude: str | None = None  # a store (folder or hf://datasets/...): its images are never trained on
    device: str | None = None  # "cuda", "cpu"; None: CUDA when available
    random_weights: bool = False  # start from the seeded random base `precompute --random-weights` builds
    seed: int = 0  # torch seed of the random base, the head, the split and the batch order
    workers: int = 0  # DataLoader worker processes
    progress: bool = True
    overrides: Mapping[str, Any] = field(default_factory=dict)  # test-only timm kwargs (depth=2, ...)
    permute_labels: bool = False  # train on the training labels shuffled (seeded): Adebayo et al.'s data randomisation

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", Path(self.output))
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))
        spec = get_spec(self.model)
        if spec.is_variant:
            raise ValueError(f"--model {self.model!r}: fine-tune a base model ({', '.join(MODELS)})")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"--strategy {self.strategy!r}: expected one of {', '.join(STRATEGIES)}")
        if self.strategy == "lora" and spec.family != "vit":
            raise ValueError(f"--strategy lora: {self.model} has no attention projections (LoRA targets attn.qkv/proj)")
        if self.epochs < 1 or self.batch_size < 1 or self.workers < 0:
            raise ValueError("epochs and batch size must be positive, workers not negative")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"--val-fraction {self.val_fraction}: must lie strictly between 0 and 1")
        for name, value in (("lr", self.learning_rate), ("head-lr", self.head_lr)):
            if not value > 0:
                raise ValueError(f"--{name} must be positive, got {value}")

    @property
    def learning_rate(self) -> float:
        return DEFAULT_LR[self.strategy] if self.lr is None else self.lr

    def settings(self) -> dict:
        """What the weights depend on (a resumed run must have the same; ``epochs`` may grow)."""
        return {
            "model": self.model,
            "strategy": self.strategy,
            "dataset": self.dataset,
            "label": self.label,
            "image_column": self.image_column,
            "batch_size": self.batch_size,
            "lr": self.learning_rate,
            "head_lr": self.head_lr if self.strategy != "linear" else None,
            "weight_decay": self.weight_decay,
            "lora": asdict(self.lora) if self.strategy == "lora" else None,
            "val_fraction": self.val_fraction,
            "exclude": self.exclude,
            "random_weights": self.random_weights,
            "seed": self.seed,
            "overrides": dict(self.overrides),
            **({"permute_labels": True} if self.permute_labels else {}),  # absent when off: older runs still resume
        }

    @classmethod
    def from_args(cls, argv: Sequence[str] | None = None) -> FinetuneConfig:
        a = parser().parse_args(argv)
        try:
            return config_from(
                cls,
                a,
                output=Path(a.output),
                lora=LoraSettings(a.lora_r, a.lora_alpha, a.lora_dropout),
                progress=not a.quiet,
                overrides=json.loads(a.overrides) if a.overrides else {},
            )
        except ValueError as e:
            raise SystemExit(f"vitattn.finetune: {e}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vitattn.finetune",
        description="Fine-tune a vitattn model (linear probe, LoRA or full) on an image-classification set.",
    )
    p.add_argument("--model", required=True, help=f"base model ({', '.join(MODELS)})")
    p.add_argument("--strategy", required=True, choices=STRATEGIES, help="linear probe, LoRA + head, or full")
    p.add_argument(
        "--dataset",
        required=True,
        help="a folder of class sub-folders, a datasets dataset (folder or hf://datasets/ns/name[@rev][::split]) "
        "with image and label columns, or an annotated source vitattn reads (building_parts.json, examples, ...)",
    )
    p.add_argument("--label", default="label", help="label column, or metadata field of an annotated source")
    p.add_argument("--image-column", default="image", help="image column of a datasets dataset (default image)")
    p.add_argument("--epochs", type=int, default=3, help="default 3")
    p.add_argument("--batch-size", type=int, default=16, help="default 16")
    p.add_argument("--lr", type=float, default=None, help="linear: head 1e-3; lora: LoRA 1e-4; full: backbone 1e-5")
    p.add_argument("--head-lr", type=float, default=HEAD_LR, help="the new head's rate for lora and full (1e-3)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    p.add_argument("--lora-r", type=int, default=8, help="LoRA rank (default 8)")
    p.add_argument("--lora-alpha", type=int, default=32, help="LoRA alpha (default 32)")
    p.add_argument("--lora-dropout", type=float, default=0.1, help="LoRA dropout (default 0.1)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of each class for validation (0.1)")
    p.add_argument("--exclude", default=None, metavar="STORE", help="never train on the images of this store")
    p.add_argument("--output", required=True, help="run folder; a rerun resumes from the last finished epoch")
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: CUDA when available)")
    p.add_argument("--random-weights", action="store_true", help="the seeded random base of precompute (tests)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random base, head, split and order (0)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--permute-labels",
        action="store_true",
        help="train on the training images' labels randomly permuted (seeded by --seed; validation keeps the true "
        "labels): the data randomisation test of Adebayo et al. 2018",
    )
    p.add_argument("--overrides", default=None, help=argparse.SUPPRESS)  # test-only: json timm kwargs
    return p
