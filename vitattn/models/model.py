"""`Model`: a loaded network, its adapter and input transform; `analyze` turns images into `Analysis` values."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from ..analysis import Analysis, LayerMaps, readonly
from ..headstats import head_stats
from ..labels import imagenet_labels
from ..methods import METHODS
from ..specs import GRADIENT_METHODS, ON_REQUEST_METHODS, ModelSpec
from ..trace import Maps, Trace
from .transform import Transform


class Model:
    """A model ready to analyze images. ``module`` and ``transform`` are exposed for use with other tools."""

    def __init__(
        self,
        spec: ModelSpec,
        module: torch.nn.Module,
        adapter,
        transform: Transform,
        device: torch.device,
        *,
        pretrained: bool = True,
        overrides: dict | None = None,
    ):
        self.spec = spec
        self.module = module
        self.adapter = adapter
        self.transform = transform
        self.device = device
        self.pretrained = pretrained  # public weights (the text tower, loaded on demand, follows)
        self.overrides = dict(overrides or {})  # timm keyword arguments the module was built with (tests)
        self._text_tower = None

    def __repr__(self) -> str:
        return f"Model({self.spec.name!r}, {self.spec.timm_id}, grid={self.spec.grid}, device={self.device})"

    def analyze(
        self,
        images: Image.Image | Sequence[Image.Image],
        *,
        methods: Sequence[str] | None = None,
        target: int | Sequence[int] | None = None,
        features: bool = True,
        batch_size: int = 8,
        stats: bool = False,
        flow_layers: Sequence[int] | None = None,
        prompts: str | Sequence[str] | None = None,
        templates: str | Sequence[str] | None = None,
        text_methods: Sequence[str] | None = None,
    ) -> Analysis | list[Analysis]:
        """Every map (all methods, layers, heads) and feature of one image, or of a list of images in batches.

        Args:
            images: a PIL image (any mode, any size) or a list of them.
            methods: subset of ``spec.methods`` (default: all). Gradient methods add one backward pass. A ViT also
                computes ``flow`` (attention flow, `vitattn.methods.flow`) when it is named here; it is never in
                the default, as it costs one max-flow per patch and layer.
            target: ImageNet class explained by gradient methods, per image or for all (default: top-1). Models
                without a class head explain their own image embedding (see `vitattn.models.vit`).
            features: also keep the patch features of every layer.
            batch_size: images per forward pass.
            stats: also compute the per-head attention statistics (`vitattn.headstats`) into
                ``Analysis.head_stats``; ViTs only.
            flow_layers: the layers ``flow`` is computed at (negative: from the end; default: the last).
            prompts: text prompts (models with a text tower: `vitattn.text.TOWERS`); their maps are read with
                ``a.map(method, layer, prompt=p)``. With prompts, ``methods=()`` computes the text maps only.
            templates: prompt templates (`encode_text`).
            text_methods: subset of `vitattn.text.TEXT_METHODS` (default: all) computed for the prompts.

        Returns:
            One `Analysis` for an image, a list for a list.
        """
        single = isinstance(images, Image.Image)
        batch = [images] if single else list(images)
        text = None if prompts is None else self._check_text(prompts, templates, text_methods)
        methods = () if text is not None and methods is not None and len(methods) == 0 else self._check_methods(methods)
        targets = self._check_targets(target, len(batch))
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if stats and self.spec.family != "vit":
            raise ValueError(f"model {self.spec.name!r} has no attention heads; head statistics need a ViT")
        out: list[Analysis] = []
        for start in range(0, len(batch), batch_size):
            chunk = batch[start : start + batch_size]
            tgt = None if targets is None else targets[start : start + batch_size]
            done = self._analyze_batch(chunk, methods, tgt, features, stats, flow_layers)
            if text is not None:
                done = self._add_text(chunk, done, *text)
            out.extend(done)
        return out[0] if single else out

    @property
    def text_tower(self):
        """The text tower of the same checkpoint (`vitattn.text.tower`), loaded on first use."""
        if self._text_tower is None:
            from ..text.tower import load_tower

            width = {"layers": "depth", "width": "embed_dim", "heads": "num_heads"}
            shrink = {k: int(self.overrides[v]) for k, v in width.items() if v in self.overrides} or None
            joint = int(getattr(self.module, "num_classes", 0) or self.module.num_features)
            self._text_tower = load_tower(
                self.spec.name, pretrained=self.pretrained, embed_dim=joint, shrink=shrink, device=self.device
            )
        return self._text_tower

    def encode_text(self, prompts: str | Sequence[str], templates: str | Sequence[str] | None = None) -> np.ndarray:
        """L2-normalised embeddings ``(P, D)`` float32 of prompts in the model's joint image-text space.

        Args:
            prompts: one string or a list of them.
            templates: None (prompts as given), ``"imagenet80"`` (OpenAI's 80 ImageNet templates) or a list of
                strings with one ``{}`` each; each prompt's templated embeddings are averaged and renormalised.

        Raises:
            ValueError: a model without a text tower (naming those with one), or bad prompts or templates.
        """
        from ..text.specs import check_text

        check_text(self.spec.name)
        return self.text_tower.encode(prompts, templates).numpy().astype(np.float32)

    def image_embeddings(self, images: Image.Image | Sequence[Image.Image]) -> np.ndarray:
        """L2-normalised image embeddings ``(N, D)`` float32: the timm module's own output (for CLIP the projected CLS
        token, for SigLIP the attention-pooled token), the space `encode_text` embeds text in."""
        batch = [images] if isinstance(images, Image.Image) else list(images)
        x = torch.stack([self.transform(im) for im in batch]).to(self.device)  # (N, 3, S, S)
        with torch.no_grad():
            out = self.module.forward_head(self.module.forward_features(x))  # (N, D)
        return torch.nn.functional.normalize(out.float(), dim=-1).cpu().numpy()

    def _check_text(self, prompts, templates, text_methods) -> tuple:
        from ..text.compute import check_methods
        from ..text.specs import check_prompts, check_text
        from ..text.templates import resolve

        check_text(self.spec.name)
        resolve(templates)
        return check_prompts(prompts), templates, check_methods(text_methods)

    def _add_text(self, images, analyses: list[Analysis], prompts, templates, methods) -> list[Analysis]:
        from ..text.compute import text_maps

        x = torch.stack([self.transform(im) for im in images]).to(self.device)  # (B, 3, S, S)
        maps = text_maps(self, x, prompts, templates, methods)
        return [dataclasses.replace(a, text=t) for a, t in zip(analyses, maps, strict=True)]

    def _analyze_batch(self, images, methods, targets, features, stats, flow_layers=None) -> list[Analysis]:
        x = torch.stack([self.transform(im) for im in images]).to(self.device)  # (B, 3, S, S)
        grads = any(m in GRADIENT_METHODS for m in methods)
        tgt = None if targets is None else torch.tensor(targets, dtype=torch.long)
        cam = any(m in GRADIENT_METHODS for m in methods if m != "gae")  # Grad-CAM / AG-CAM gradients
        relevance = {"relevance": True} if "gae" in methods else {}  # GAE's whole-network gradient (ViTs only)
        trace = self.adapter.trace(x, grads=cam, targets=tgt, **relevance)
        on_request = {"flow": {"layers": flow_layers}}  # keyword arguments of the methods computed only when asked
        per_method = {m: _to_numpy(METHODS[m](trace, **on_request.get(m, {}))) for m in methods}
        feats = [f.float().cpu().numpy() for f in trace.features] if features else []
        preds = self._top5(trace)
        per_stat = {k: v.cpu().numpy() for k, v in head_stats(trace, self.spec.patch_size).items()} if stats else None
        return [
            Analysis(
                model=self.spec.name,
                grid=tuple(trace.grids[-1]),
                num_heads=self.spec.num_heads,
                image_size=im.size,
                maps={m: {layer: _pick(v, b) for layer, v in maps.items()} for m, maps in per_method.items()},
                feats={layer: readonly(f[b]) for layer, f in enumerate(feats)},
                predictions=None if preds is None else preds[b],
                target=None if trace.targets is None or not grads else int(trace.targets[b]),
                head_stats=None if per_stat is None else {k: readonly(v[b]) for k, v in per_stat.items()},
            )
            for b, im in enumerate(images)
        ]

    def _top5(self, trace: Trace) -> list[tuple[tuple[str, float], ...]] | None:
        if trace.logits is None or not self.spec.classifier:
            return None
        probs = trace.logits.float().softmax(-1).cpu()  # (B, 1000)
        top = probs.topk(5, dim=-1)
        labels = imagenet_labels()
        return [
            tuple((labels[int(i)], float(p)) for p, i in zip(ps, idx, strict=True))
            for ps, idx in zip(top.values, top.indices, strict=True)
        ]

    def _check_methods(self, methods: Sequence[str] | None) -> tuple[str, ...]:
        if methods is None:
            return self.spec.methods
        methods = (methods,) if isinstance(methods, str) else tuple(methods)
        offered = self.spec.methods + (ON_REQUEST_METHODS if self.spec.family == "vit" else ())
        bad = [m for m in methods if m not in offered]
        if bad or not methods:
            raise ValueError(f"model {self.spec.name!r} has no method {bad or methods}; valid: {offered}")
        return methods

    def _check_targets(self, target, n: int) -> list[int] | None:
        if target is None:
            return None
        if not self.spec.classifier:
            raise ValueError(f"model {self.spec.name!r} is not a classifier; target must be None")
        targets = [target] * n if isinstance(target, (int, np.integer)) else list(target)
        if len(targets) != n or not all(isinstance(t, (int, np.integer)) and 0 <= t < 1000 for t in targets):
            raise ValueError(f"target must be an ImageNet class index 0..999 (or one per image), got {target!r}")
        return [int(t) for t in targets]


def _to_numpy(maps: dict[int, Maps]) -> dict[int, tuple[np.ndarray | None, np.ndarray]]:
    """Batch tensors to CPU float32 numpy, one transfer per layer."""

    def host(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t.detach().float().cpu().numpy()

    return {layer: (host(m.heads), host(m.fused)) for layer, m in maps.items()}


def _pick(value: tuple[np.ndarray | None, np.ndarray], b: int) -> LayerMaps:
    heads, fused = value
    return LayerMaps(fused=readonly(fused[b]), heads=None if heads is None else readonly(heads[b]))
