"""The fine-tune job: base model, strategy, training loop with validation, resume and the output folder.

Every epoch ends by writing the output folder (weights, ``finetune.json``) and ``resume.pt`` (the trainable
state and the optimizer), each atomically, so a run stopped at any point and started again continues after the
last finished epoch and ends with the same weights as an uninterrupted run (the batch order and dropout of epoch
``k`` are seeded by ``(seed, k)``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

import vitattn
from vitattn.finetune import checkpoint as ckpt, data
from vitattn.finetune.config import FinetuneConfig
from vitattn.specs import get_spec


class Images(torch.utils.data.Dataset):
    """(input tensor ``[3, S, S]``, class index) per example, through the model's own transform."""

    def __init__(self, examples: list[data.Example], labels: list[str], transform):
        self.examples, self.index, self.transform = examples, {n: i for i, n in enumerate(labels)}, transform

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        e = self.examples[i]
        return self.transform(e.load()), self.index[e.label]


def build_base(name: str, *, random_weights: bool, seed: int, overrides: dict) -> tuple[nn.Module, object]:
    """The base module exactly as ``precompute`` builds it (seeded random or pretrained), and its transform."""
    if random_weights:
        torch.manual_seed(seed)
    model = vitattn.load_model(name, pretrained=not random_weights, device="cpu", **overrides)
    module = model.module
    import timm.layers

    for m in module.modules():  # training needs no attention weights: timm's default (fused where it can)
        if hasattr(m, "fused_attn"):
            m.fused_attn = timm.layers.use_fused_attn()
    return module, model.transform


def prepare(module: nn.Module, strategy: str, num_classes: int, config: FinetuneConfig) -> tuple[nn.Module, list]:
    """A new head of ``num_classes`` and what the strategy trains: (the model to train, optimizer param groups)."""
    torch.manual_seed(config.seed)  # the head's initialization
    module.reset_classifier(num_classes)
    head = ckpt.head_name(module)
    for p in module.parameters():
        p.requires_grad_(False)
    head_params = list(getattr(module, head).parameters())
    if strategy == "linear":
        for p in head_params:
            p.requires_grad_(True)
        return module, [{"params": head_params, "lr": config.learning_rate}]
    if strategy == "full":
        for p in module.parameters():
            p.requires_grad_(True)
        ids = {id(p) for p in head_params}
        backbone = [p for p in module.parameters() if id(p) not in ids]
        return module, [{"params": backbone, "lr": config.learning_rate}, {"params": head_params, "lr": config.head_lr}]
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=ckpt.LORA_TARGETS,
        modules_to_save=[head],
    )
    model = get_peft_model(module, lora)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    adapters = [p for n, p in named if "lora_" in n]
    heads = [p for n, p in named if "lora_" not in n]  # the head's trainable copy (modules_to_save)
    return model, [{"params": adapters, "lr": config.learning_rate}, {"params": heads, "lr": config.head_lr}]


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer) -> float:
    """One optimizer step on a batch ``x [B, 3, S, S]``, ``y [B]``; bfloat16 autocast on CUDA. Returns the loss."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
        logits = model(x)  # (B, classes)
        loss = nn.functional.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def accuracy(model: nn.Module, loader, device: torch.device) -> float:
    """Top-1 accuracy over a loader (NaN when it is empty)."""
    model.eval()
    right = total = 0
    for x, y in loader:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x.to(device))  # (B, classes)
        right += int((logits.argmax(-1).cpu() == y).sum())
        total += len(y)
    return right / total if total else float("nan")


def run(config: FinetuneConfig, *, on_epoch: Callable[[int], None] | None = None, log=print) -> dict:
    """Fine-tunes ``config.model`` into ``config.output``, resuming there; returns the ``finetune.json`` written.

    Args:
        on_epoch: called with the epoch number after each epoch is saved (tests interrupt a run from here).
        log: where the job's one-line reports go.
    """
    loaded = data.load_examples(config.dataset, config.label, config.image_column)
    examples, excluded = loaded.examples, 0
    if config.exclude:
        examples, excluded = data.exclude(examples, data.store_hashes(config.exclude), progress=config.progress)
        log(f"--exclude {config.exclude}: dropped {excluded} of {len(loaded.examples)} images found in the store")
    if loaded.unlabelled:
        log(f"skipped {loaded.unlabelled} images without a single {config.label!r} label")
    train_set, val_set = data.split(examples, config.val_fraction, config.seed)
    changed = 0
    if config.permute_labels:  # validation keeps the true labels: its accuracy shows what the shuffled model learnt
        permuted = data.permute_labels(train_set, config.seed)
        changed = sum(a.label != b.label for a, b in zip(train_set, permuted, strict=True))
        train_set = permuted
        log(f"--permute-labels: {changed} of {len(train_set)} training labels changed (seed {config.seed})")
    log(f"{len(train_set)} training and {len(val_set)} validation images in {len(loaded.labels)} classes")
    out = config.output
    info = _start_info(config, loaded.labels, excluded, len(train_set), len(val_set))
    if config.permute_labels:
        info["permuted_labels_changed"] = changed
    resume = _read_resume(out, info)
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    module, transform = build_base(
        config.model, random_weights=config.random_weights, seed=config.seed, overrides=dict(config.overrides)
    )
    model, groups = prepare(module, config.strategy, len(loaded.labels), config)
    model.to(device)
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    history: list[dict] = []
    if resume is not None:
        _load_trainable(model, resume["trainable"], config.strategy)
        optimizer.load_state_dict(resume["optimizer"])
        history = resume["history"]
        log(f"resuming {out} after epoch {len(history)}")
    val_loader = _loader(val_set, loaded.labels, transform, config, shuffle_seed=None)
    for epoch in range(len(history), config.epochs):
        loss = _epoch(model, train_set, loaded.labels, transform, config, optimizer, epoch, device)
        acc = accuracy(model, val_loader, device)
        history.append({"epoch": epoch + 1, "train_loss": loss, "val_accuracy": acc})
        log(f"epoch {epoch + 1}/{config.epochs}: train loss {loss:.4f}, validation accuracy {acc:.4f}")
        info = {**info, "history": history, "val_accuracy": acc, "epochs_done": epoch + 1}
        _save(out, model, config.strategy, info, optimizer)
        if on_epoch is not None:
            on_epoch(epoch + 1)
    if resume is not None and len(history) >= config.epochs:
        log(f"{out} already holds {len(history)} finished epochs")
        info = {**info, "history": history, "val_accuracy": history[-1]["val_accuracy"], "epochs_done": len(history)}
    return info


def _epoch(model, examples, labels, transform, config, optimizer, epoch: int, device) -> float:
    """One pass over the training set (seeded order and dropout); the mean loss."""
    torch.manual_seed(config.seed * 1_000_003 + epoch)  # dropout (LoRA) of this epoch
    loader = _loader(examples, labels, transform, config, shuffle_seed=config.seed * 1_000_003 + epoch)
    model.train() if config.strategy != "linear" else model.eval()  # a probe's backbone stays in eval mode
    losses = []
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=not config.progress)
    for x, y in bar:
        losses.append(train_step(model, x.to(device), y.to(device), optimizer))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    return sum(losses) / max(1, len(losses))


def _loader(examples, labels, transform, config: FinetuneConfig, shuffle_seed: int | None):
    generator = None if shuffle_seed is None else torch.Generator().manual_seed(shuffle_seed)
    return torch.utils.data.DataLoader(
        Images(examples, labels, transform),
        batch_size=config.batch_size,
        shuffle=shuffle_seed is not None,
        generator=generator,
        num_workers=config.workers,
    )


def _start_info(config: FinetuneConfig, labels: list[str], excluded: int, n_train: int, n_val: int) -> dict:
    spec = get_spec(config.model)
    return {
        "format": ckpt.FORMAT,
        "model": config.model,
        "base_checkpoint": spec.timm_id,
        "strategy": config.strategy,
        "labels": labels,
        "epochs": config.epochs,
        **{k: v for k, v in config.settings().items() if k not in ("model", "strategy")},
        "excluded": excluded,
        "train_images": n_train,
        "val_images": n_val,
        "vitattn_version": vitattn.__version__,
    }


def _read_resume(out: Path, info: dict) -> dict | None:
    """The resume state in ``out`` when its run had these settings; a ValueError when it had others."""
    path = out / ckpt.RESUME
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    keep = ("epochs", "excluded", "train_images", "val_images", "vitattn_version")
    old = {
        k: v for k, v in state["info"].items() if k not in keep and k not in ("history", "val_accuracy", "epochs_done")
    }
    new = {k: v for k, v in info.items() if k not in keep}
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ValueError(f"{out} holds a run with other settings ({', '.join(diff)}); use another --output")
    return state


def _trainable(model: nn.Module, strategy: str) -> dict[str, torch.Tensor]:
    if strategy == "full":
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}  # buffers too (ResNet batch norm)
    return {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}


def _load_trainable(model: nn.Module, state: dict[str, torch.Tensor], strategy: str) -> None:
    missing = model.load_state_dict(state, strict=strategy == "full")
    if strategy != "full" and missing.unexpected_keys:
        raise ValueError(f"resume state does not fit the model: {missing.unexpected_keys[:5]}")


def _save(out: Path, model: nn.Module, strategy: str, info: dict, optimizer) -> None:
    """The output folder after an epoch: weights, finetune.json, then resume.pt (each replaced atomically)."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    tmp = f".tmp-{os.getpid()}"
    if strategy == "lora":
        target = out / ckpt.ADAPTER
        model.save_pretrained(str(out / (ckpt.ADAPTER + tmp)))
        _replace_dir(out / (ckpt.ADAPTER + tmp), target)
    else:
        head = ckpt.head_name(model)
        state = model.state_dict()
        if strategy == "linear":
            state = {k: v for k, v in state.items() if k.startswith(f"{head}.")}
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(out / (ckpt.WEIGHTS + tmp)))
        os.replace(out / (ckpt.WEIGHTS + tmp), out / ckpt.WEIGHTS)
    (out / (ckpt.INFO + tmp)).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    os.replace(out / (ckpt.INFO + tmp), out / ckpt.INFO)
    resume = {"info": info, "history": info["history"], "trainable": _trainable(model, strategy)}
    torch.save({**resume, "optimizer": optimizer.state_dict()}, out / (ckpt.RESUME + tmp))
    os.replace(out / (ckpt.RESUME + tmp), out / ckpt.RESUME)


def _replace_dir(new: Path, target: Path) -> None:
    import shutil

    old = target.with_name(target.name + ".old")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
