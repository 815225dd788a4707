"""Variant names (``clip@lora``: base ``clip``, strategy ``lora``), their pairs with frozen models, and the records
of their checkpoints (the fine-tune run's validation accuracy, where the weights came from)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

from vitattn.specs import STRATEGIES, VARIANT_SEPARATOR, split_variant


def is_variant(name: str) -> bool:
    """``clip@lora`` is a variant, ``clip`` is not."""
    return VARIANT_SEPARATOR in name


def base_of(name: str) -> str:
    """The base model of a variant name (a base name is its own base)."""
    return split_variant(name)[0]


def variant_pairs(models: Iterable[str]) -> list[tuple[str, str]]:
    """``(frozen, variant)`` for every variant whose base is among ``models`` too, sorted by base then strategy
    order (linear, lora, full), then name."""
    names = list(models)
    present = set(names)
    pairs = [(base_of(n), n) for n in names if is_variant(n) and base_of(n) in present]
    rank = {s: i for i, s in enumerate(STRATEGIES)}
    return sorted(pairs, key=lambda p: (p[0], rank.get(split_variant(p[1])[1], len(rank)), p[1]))


def strategy_of(name: str, manifest: Mapping | None = None) -> str | None:
    """A variant's fine-tuning strategy: from the store's manifest entry when given, else its label if it names one."""
    entry = (manifest or {}).get("models", {}).get(name, {})
    if entry.get("strategy"):
        return str(entry["strategy"])
    label = split_variant(name)[1]
    return label if label in STRATEGIES else None


def validation_accuracies(manifest: Mapping) -> dict[str, float]:
    """Variant name -> the validation accuracy its fine-tune run reported (the last finished epoch), from the store's
    manifest (precompute records it when the checkpoint folder has it)."""
    out = {}
    for name, entry in manifest.get("models", {}).items():
        accuracy = (entry.get("variant") or {}).get("val_accuracy")
        if accuracy is not None:
            out[name] = float(accuracy)
    return out


def checkpoint_of(manifest: Mapping, name: str) -> str | None:
    """A stored variant's checkpoint as ``load_model(..., checkpoint=)`` takes it, for live inference: the Hub id when
    it was loaded from the Hub; None for a local checkpoint (a store records its name and content hash only, never
    the folders of the machine that made it) and for base models."""
    recorded = ((manifest.get("models", {}).get(name) or {}).get("variant") or {}).get("checkpoint")
    return recorded if isinstance(recorded, str) and recorded.startswith("hf-hub:") else None


def checkpoint_record(checkpoint: str) -> dict:
    """What precompute records about a variant's checkpoint (in its settings digest and its manifest entry).

    The checkpoint's identity (a local checkpoint's name and content sha256, or the Hub id as given) and, for a
    fine-tune folder, its strategy, labels, finished epochs, validation accuracy and the base it was trained from
    (pretrained or seeded random: ``random_weights``, ``seed``). A plain state dict holds every weight:
    ``random_weights`` False, strategy unknown.
    """
    if checkpoint.startswith("hf-hub:"):
        return dict(_hub_record(checkpoint))  # one download per process, not one per unit of work
    return _record(checkpoint)


@lru_cache(maxsize=16)
def _hub_record(checkpoint: str) -> dict:
    return _record(checkpoint)


def _record(checkpoint: str) -> dict:
    from vitattn.finetune import checkpoint as ckpt

    record = ckpt.identity(checkpoint)
    info = ckpt.read_info(ckpt.locate(checkpoint))
    if info is None:
        return {**record, "strategy": None, "random_weights": False, "seed": None}
    keys = ("strategy", "labels", "epochs_done", "val_accuracy", "base_checkpoint", "train_images", "excluded")
    return {
        **record,
        **{k: info.get(k) for k in keys},
        "random_weights": bool(info["random_weights"]),
        "seed": info["seed"] if info["random_weights"] else None,
    }
