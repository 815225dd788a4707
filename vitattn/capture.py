"""Owned forward hooks: capture module outputs (and their gradients) for one call, then release.

Hooks live in a context manager so none outlives the call that needed it, and a hook that never fired is an
error rather than an empty map (for instance fused attention left on, which computes no weights).
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

H = TypeVar("H", bound="Hooks")


class Hooks:
    """Owns hook handles (``self._handles``) and removes them all on ``release`` or when its ``with`` block ends."""

    def __init__(self) -> None:
        self._handles: list = []

    def release(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self: H) -> H:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class Capture(Hooks):
    """Records the output of named modules during a forward pass, and optionally their gradients.

    Usage::

        with Capture() as cap:
            cap.watch("attn0", model.blocks[0].attn.attn_drop, grad=True)
            logits = model(x)
            logits[:, 0].sum().backward()
        cap.outputs["attn0"], cap.grads["attn0"]
    """

    def __init__(self) -> None:
        super().__init__()
        self.outputs: dict[str, torch.Tensor] = {}
        self.grads: dict[str, torch.Tensor] = {}
        self._watched: set[str] = set()
        self._want_grad: set[str] = set()

    def watch(self, key: str, module: nn.Module, *, grad: bool = False) -> None:
        """Records ``module``'s output under ``key`` (detached); with ``grad``, also the gradient flowing into it."""

        def hook(_module, _inputs, output):
            if key in self.outputs:
                raise RuntimeError(f"hook {key!r} fired twice in one forward pass")
            if not isinstance(output, torch.Tensor):
                raise RuntimeError(f"hook {key!r}: expected a tensor output, got {type(output).__name__}")
            self.outputs[key] = output.detach()
            if grad and output.requires_grad:
                self._handles.append(output.register_hook(lambda g: self.grads.__setitem__(key, g.detach())))

        self._handles.append(module.register_forward_hook(hook))
        self._watched.add(key)
        if grad:
            self._want_grad.add(key)

    def cut_input(self, module: nn.Module) -> None:
        """Detaches ``module``'s first input, so no gradient flows back through it (the module's own output still
        carries gradients to what comes after it)."""
        self._handles.append(module.register_forward_pre_hook(lambda _m, args: (args[0].detach(), *args[1:])))

    def leaf_output(self, module: nn.Module) -> None:
        """Makes ``module``'s output a leaf that requires grad, so its gradient exists even when nothing before it
        requires grad. Call before ``watch`` on the same module: hooks run in registration order."""
        self._handles.append(module.register_forward_hook(lambda _m, _a, out: out.detach().requires_grad_()))

    def require(self, *, grads: bool = False) -> None:
        """Raises if a watched output (or, with ``grads``, a gradient) was not captured."""
        missing = sorted(self._watched - set(self.outputs))
        if missing:
            raise RuntimeError(f"hooks matched nothing for {missing[:4]}{'...' if len(missing) > 4 else ''}")
        if grads:
            missing = sorted(self._want_grad - set(self.grads))
            if missing:
                raise RuntimeError(f"no gradient reached {missing[:4]}; was the backward pass run?")
