"""Checkpoints of variants: the fine-tune output folder, state-dict files and Hub repos, applied to a base module.

A fine-tune output folder (written by ``python -m vitattn.finetune``)::

    finetune.json            format, base model, strategy, label names, settings, per-epoch history, val accuracy
    weights.safetensors      full: every weight (head included); linear: the new head only
    adapter/                 lora: the peft adapter (adapter_config.json, adapter_model.safetensors), head included
    resume.pt                the trainable state after the last finished epoch (for resuming; may be deleted)

A checkpoint is one of: such a folder; a ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` state dict of the whole
architecture (timm names; a ``module.`` prefix and ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers are
unwrapped); or ``hf-hub:<namespace>/<name>`` (a pushed output folder if the repo has ``finetune.json``, else its
``model.safetensors`` or ``pytorch_model.bin``).

The head: a fine-tuned model's head is the one it was trained with (e.g. the style classes), not ImageNet's; its
label names are in ``finetune.json``. A state dict without head weights gives a model without a head. Attention
maps do not depend on the head; see `vitattn.specs.variant_of` for the gradient methods.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

FORMAT = "vitattn-finetune/1"
INFO = "finetune.json"
WEIGHTS = "weights.safetensors"
ADAPTER = "adapter"
RESUME = "resume.pt"
HUB_PREFIX = "hf-hub:"
HUB_REPO = re.compile(r"^hf-hub:([A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*)(?:@([A-Za-z0-9._/-]+))?$")
STATE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
LORA_TARGETS = r".*\.attn\.(qkv|proj)"  # timm attention projections (peft full-matches a regex string)


def head_name(module: nn.Module) -> str:
    """The classifier attribute of a timm model (``head`` for ViTs, ``fc`` for ResNets)."""
    return str(module.pretrained_cfg.get("classifier", "head"))


def num_outputs(module: nn.Module) -> int:
    """Outputs of the model's head (0 when it has none)."""
    return int(getattr(module, "num_classes", 0) or 0)


def locate(checkpoint: str, *, cache_dir: str | Path | None = None) -> Path:
    """The local folder or file of a checkpoint, downloading ``hf-hub:ns/name[@revision]`` first.

    Raises:
        FileNotFoundError: a local path that does not exist.
        ValueError: a local path that is neither a fine-tune folder nor a state-dict file.
        RuntimeError: a Hub checkpoint that cannot be downloaded (the message says why).
    """
    if not isinstance(checkpoint, str) or not checkpoint:
        raise ValueError(f"checkpoint must be a folder, a state-dict file or hf-hub:ns/name, got {checkpoint!r}")
    if checkpoint.startswith(HUB_PREFIX):
        return _download(checkpoint, cache_dir)
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {checkpoint!r}: no such folder or file")
    if path.is_dir() and not (path / INFO).is_file():
        raise ValueError(
            f"checkpoint {checkpoint!r}: a folder must hold {INFO} (written by python -m vitattn.finetune)"
        )
    if path.is_file() and path.suffix not in STATE_SUFFIXES:
        raise ValueError(f"checkpoint {checkpoint!r}: a state-dict file must end in {', '.join(STATE_SUFFIXES)}")
    return path


def _download(checkpoint: str, cache_dir: str | Path | None) -> Path:
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError

    match = HUB_REPO.fullmatch(checkpoint)
    if match is None:
        raise ValueError(f"checkpoint {checkpoint!r}: expected hf-hub:<namespace>/<name>[@<revision>]")
    repo, revision = match[1], match[2]
    cache = None if cache_dir is None else str(cache_dir)
    try:
        try:
            hf_hub_download(repo, INFO, revision=revision, cache_dir=cache)
            return Path(snapshot_download(repo, revision=revision, cache_dir=cache))
        except EntryNotFoundError:
            pass
        for name in ("model.safetensors", "pytorch_model.bin"):
            try:
                return Path(hf_hub_download(repo, name, revision=revision, cache_dir=cache))
            except EntryNotFoundError:
                continue
    except Exception as e:  # network, missing repo, auth: one line naming the checkpoint
        raise RuntimeError(f"could not download checkpoint {checkpoint}: {type(e).__name__}: {_first_line(e)}") from e
    raise RuntimeError(f"checkpoint {checkpoint}: the repo has no {INFO}, model.safetensors or pytorch_model.bin")


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [""])[0][:300]


def read_info(path: Path) -> dict | None:
    """The ``finetune.json`` of a fine-tune folder, None for a state-dict file."""
    if not path.is_dir():
        return None
    info = json.loads((path / INFO).read_text(encoding="utf-8"))
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ValueError(f"{path / INFO}: not a {FORMAT} file (format {info.get('format')!r})")
    return info


def identity(checkpoint: str) -> dict:
    """What a checkpoint is, for settings digests: the Hub id as given, or a local checkpoint's name and a sha256
    of its content (weights and finetune.json; not resume.pt), so changed weights change the digest and a moved
    folder does not."""
    if checkpoint.startswith(HUB_PREFIX):
        return {"checkpoint": checkpoint}
    path = locate(checkpoint)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != RESUME) if path.is_dir() else [path]
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return {"checkpoint": path.name, "sha256": _content_hash(str(path), stamp)}


@lru_cache(maxsize=64)
def _content_hash(root: str, stamp: tuple) -> str:
    h = hashlib.sha256()
    for name, _, _ in stamp:
        h.update(str(Path(name).relative_to(root) if name != root else Path(name).name).encode())
        with open(name, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` or torch file (``weights_only``), unwrapped and without ``module.``."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"checkpoint {path.name}: not a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def fit_head(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Resizes the module's head to the checkpoint's (``reset_classifier``); no head weights: no head."""
    weight = state.get(f"{head_name(module)}.weight")
    if weight is None:
        if num_outputs(module):
            module.reset_classifier(0)
    elif weight.ndim == 2 and weight.shape[0] != num_outputs(module):
        module.reset_classifier(int(weight.shape[0]))


def load_state(module: nn.Module, state: dict[str, torch.Tensor], where: str, *, partial: bool = False) -> None:
    """Loads ``state`` into ``module``; keys or shapes that do not match raise a ValueError naming them.

    Args:
        partial: the state holds only some of the module's weights (a linear probe's head); missing keys are fine.
    """
    own = module.state_dict()
    unexpected = [k for k in state if k not in own]
    missing = [] if partial else [k for k in own if k not in state]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in state
        if k in own and state[k].shape != own[k].shape
    ]
    if unexpected or missing or shapes:
        parts = [
            f"{label} {_few(keys)}"
            for label, keys in (("unexpected keys", unexpected), ("missing keys", missing), ("shapes differ:", shapes))
            if keys
        ]
        raise ValueError(f"checkpoint {where} does not match the base architecture: {'; '.join(parts)}")
    module.load_state_dict(state, strict=not partial)


def _few(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}{f', ... ({len(keys)} in all)' if len(keys) > limit else ''}]"


def apply_folder(module: nn.Module, folder: Path, info: dict) -> nn.Module:
    """Puts a fine-tune folder's weights into ``module`` (the base, built as ``info`` says): the whole state (full),
    the head (linear) or the LoRA adapter merged into the weights and the head (lora). Returns the module."""
    strategy = info.get("strategy")
    module.reset_classifier(len(info["labels"]))
    if strategy in ("full", "linear"):
        state = read_state(folder / WEIGHTS)
        head = head_name(module)
        if strategy == "linear" and (bad := [k for k in state if not k.startswith(f"{head}.")]):
            raise ValueError(f"checkpoint {folder}: a linear probe holds head weights only, found {_few(bad)}")
        load_state(module, state, str(folder), partial=strategy == "linear")
        return module
    if strategy == "lora":
        return merge_lora(module, folder / ADAPTER)
    raise ValueError(f"{folder / INFO}: unknown strategy {strategy!r}")


def merge_lora(module: nn.Module, adapter: Path) -> nn.Module:
    """The module with a peft LoRA adapter merged into its weights (``merge_and_unload``); adapter keys that do not
    match the module raise a ValueError naming them."""
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    config = LoraConfig.from_pretrained(str(adapter))
    state = load_file(str(adapter / "adapter_model.safetensors"))
    peft_model = get_peft_model(module, config)
    expected = set(get_peft_model_state_dict(peft_model))
    unexpected, missing = sorted(set(state) - expected), sorted(expected - set(state))
    if unexpected or missing:
        parts = [
            f"{label} {_few(keys)}"
            for label, keys in (("unexpected keys", unexpected), ("missing keys", missing))
            if keys
        ]
        raise ValueError(f"adapter {adapter} does not match the base architecture: {'; '.join(parts)}")
    set_peft_model_state_dict(peft_model, state)
    return peft_model.merge_and_unload()
