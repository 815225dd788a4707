"""Stages of a model for the cascading randomisation test, and their seeded re-initialisation.

A stage is a group of modules and parameters re-initialised together, listed from the output down (Adebayo et al.
2018, "Sanity Checks for Saliency Maps", NeurIPS, sec. 3.1: "we randomize the weights of a model starting from the
top layer, successively, all the way to the bottom layer"):

* timm ViT: ``head`` (the class head, fc_norm and SigLIP's attention-pooling head, where they have weights), the
  final ``norm``, ``blocks.{L-1}`` ... ``blocks.0``, ``patch_embed`` (the patch projection with the CLS, register
  and position embeddings and CLIP's pre-norm);
* timm ResNet: ``fc``, ``layer4`` ... ``layer1``, ``stem`` (``conv1`` and ``bn1``).

Re-initialisation: every module of a stage that has parameters of its own is reset with its own
``reset_parameters`` (PyTorch's default initialisation: Adebayo et al. re-initialise "from a truncated normal"
with their training initialiser; ours is the initialiser each layer is built with), under a seed per stage;
parameters no ``reset_parameters`` covers (CLS, register and position tokens) are drawn from a truncated normal
with std 0.02, timm's initialisation of those tokens. A LayerNorm resets to weight 1, bias 0, so on
an already random-weight model the ``norm`` stage changes nothing; on trained weights it does.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

TOKEN_STD = 0.02  # timm's trunc_normal_(std=.02) for position (and here CLS / register) tokens
_VIT_HEAD = ("attn_pool", "fc_norm", "head")
_VIT_EMBED = ("patch_embed", "norm_pre")
_VIT_TOKENS = ("cls_token", "reg_token", "pos_embed")


def _has_params(module: nn.Module | None) -> bool:
    return module is not None and any(True for _ in module.parameters())


def model_stages(module: nn.Module) -> list[tuple[str, list[nn.Module], list[nn.Parameter]]]:
    """``(stage name, modules, loose parameters)`` from the output down; stages without weights are left out.

    Raises:
        ValueError: a module that is neither a timm ViT (``blocks``) nor a timm ResNet (``layer1..4``).
    """
    if getattr(module, "blocks", None) is not None:
        head = [getattr(module, n) for n in _VIT_HEAD if _has_params(getattr(module, n, None))]
        blocks = list(module.blocks)
        embed = [getattr(module, n) for n in _VIT_EMBED if _has_params(getattr(module, n, None))]
        tokens = [getattr(module, n) for n in _VIT_TOKENS if isinstance(getattr(module, n, None), nn.Parameter)]
        stages = [("head", head, []), ("norm", [module.norm] if _has_params(module.norm) else [], [])]
        stages += [(f"blocks.{i}", [blocks[i]], []) for i in reversed(range(len(blocks)))]
        stages.append(("patch_embed", embed, tokens))
    elif all(hasattr(module, f"layer{i}") for i in range(1, 5)):
        stages = [("fc", [module.fc], [])]
        stages += [(f"layer{i}", [getattr(module, f"layer{i}")], []) for i in (4, 3, 2, 1)]
        stages.append(("stem", [module.conv1, module.bn1], []))
    else:
        raise ValueError(f"{type(module).__name__}: randomisation stages are defined for timm ViTs and ResNets only")
    return [(name, mods, loose) for name, mods, loose in stages if any(_has_params(m) for m in mods) or loose]


@torch.no_grad()
def reinitialize(modules: list[nn.Module], loose: list[nn.Parameter], seed: int) -> None:
    """Re-initialises the parameters of ``modules`` and ``loose`` in place, reproducibly for ``seed``.

    The global RNG state is left as it was.
    """
    devices = sorted({p.device.index or 0 for m in modules for p in m.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for module in modules:
            for sub in module.modules():
                own = list(sub.parameters(recurse=False))
                if not own:
                    continue
                if hasattr(sub, "reset_parameters"):
                    sub.reset_parameters()
                else:
                    for p in own:
                        nn.init.trunc_normal_(p, std=TOKEN_STD)
        for p in loose:
            nn.init.trunc_normal_(p, std=TOKEN_STD)


@contextmanager
def restored(module: nn.Module):
    """Gives the module back with every parameter and buffer exactly as it entered, whatever happens inside."""
    saved = {k: v.detach().clone() for k, v in module.state_dict().items()}
    try:
        yield module
    finally:
        with torch.no_grad():
            for k, v in module.state_dict().items():
                v.copy_(saved[k])
