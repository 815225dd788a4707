"""One forward pass of a timm ViT that keeps what the text methods need, inside the autograd graph.

`vitattn.capture.Capture` stores detached outputs; the gradient text methods differentiate a prompt's similarity
with respect to attention maps of this very pass, so these hooks keep the tensors themselves. The hooks are owned by
the `GraphCapture` context and released when it exits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vitattn.capture import Hooks


class GraphCapture(Hooks):
    """Records module outputs (not detached) and a module's input during one forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.outputs: dict[str, torch.Tensor] = {}
        self.inputs: dict[str, torch.Tensor] = {}

    def watch(self, key: str, module: nn.Module) -> None:
        self._handles.append(module.register_forward_hook(lambda _m, _a, out: self.outputs.__setitem__(key, out)))

    def watch_input(self, key: str, module: nn.Module) -> None:
        self._handles.append(module.register_forward_pre_hook(lambda _m, args: self.inputs.__setitem__(key, args[0])))


@dataclass(frozen=True)
class TextPass:
    """The tensors of one forward pass of ``B`` images (every one in the autograd graph when ``grads``)."""

    last_input: torch.Tensor  # (B, T, D) input of the last block
    outputs: list[torch.Tensor]  # per block (B, T, D)
    attentions: list[torch.Tensor]  # per block (B, H, T, T) softmax
    tokens: torch.Tensor  # (B, T, D) after the final norm
    embedding: torch.Tensor  # (B, D_joint) the model's image embedding (timm's forward_head)


def run(module: nn.Module, x: torch.Tensor, *, grads: bool) -> TextPass:
    """Forwards ``x`` ``(B, 3, S, S)``; with ``grads`` the input requires grad, so every attention map is a node of
    the graph that gradients can be taken with respect to. Fused attention must be off (the adapter turns it off)."""
    blocks = list(module.blocks)
    with GraphCapture() as cap, torch.set_grad_enabled(grads):
        for i, block in enumerate(blocks):
            cap.watch(f"attn{i}", block.attn.attn_drop)
            cap.watch(f"out{i}", block)
        cap.watch_input("last", blocks[-1])
        tokens = module.forward_features(x.detach().requires_grad_(grads))  # (B, T, D)
        embedding = module.forward_head(tokens)  # (B, D_joint)
    missing = [i for i in range(len(blocks)) if f"attn{i}" not in cap.outputs]
    if missing:
        raise RuntimeError(f"no attention weights captured at blocks {missing[:4]}: is fused attention off?")
    return TextPass(
        last_input=cap.inputs["last"],
        outputs=[cap.outputs[f"out{i}"] for i in range(len(blocks))],
        attentions=[cap.outputs[f"attn{i}"] for i in range(len(blocks))],
        tokens=tokens,
        embedding=embedding,
    )
