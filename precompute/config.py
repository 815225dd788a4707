"""The job's configuration: one frozen dataclass, parsed once from the command line and passed down."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vitattn.cli import config_from
from vitattn.hub import REPO_ID
from vitattn.specs import ALL_METHODS, MODELS, get_spec
from vitattn.store.quantize import FEATURE_DTYPES
from vitattn.text import TEMPLATE_SETS, TEXT_METHODS, has_text

ENGINES = ("local", "ray")
TEXT_DEFAULT = "naclip,legrad"  # --text-methods


@dataclass(frozen=True)
class Config:
    """What to compute and where to put it."""

    source: str = "examples"  # annotated image set: a `vitattn.datasets.load_annotated` spec
    models: tuple[str, ...] = tuple(MODELS)  # model names (vitattn.MODELS)
    methods: tuple[str, ...] | None = None  # map methods; each model computes those it supports (None: all)
    feature_layers: str = "all"  # "all", "none", or comma-separated layers ("-1" is the last)
    feature_dtype: str = "int8"  # how patch features are stored: "int8" (one scale per token) or "float16"
    # Deletion/insertion of each method's fused map at these layers ("none": skip; "auto": the last layer on a GPU,
    # none on a CPU, where its 78 forward passes per map dominate; the command's default).
    faithfulness_layers: str = "-1"
    flow_layers: str = "none"  # attention flow (ViTs) at these layers: "none", "all" or "0,5,-1" (costly: see docs)
    # Randomisation curves (vitattn.sanity) of the fused maps on the first images; 0: none; "auto" (the default here
    # and on the command line): 8 on a GPU, none on a CPU, where one ViT-B/16 curve costs seconds per method and image.
    sanity_images: int | str = "auto"
    # text maps of each box label (models with a text tower); the command line's default is TEXT_DEFAULT, this one
    # () so that code building stores of random-weight SigLIPs needs no Hub for their tokenizers unless it asks
    text_methods: tuple[str, ...] = ()
    templates: str = "imagenet80"  # prompt templates of the labels: "imagenet80" or "none" (the label as given)
    batch_size: int = 8  # images per forward pass
    device: str | None = None  # "cuda", "cpu", ...; None: CUDA when available
    output: Path = Path("store")  # the store folder; also where an interrupted run is resumed from
    chunk_size: int = 32  # images per unit of work (and per data file)
    shard: tuple[int, int] = (0, 1)  # (i, n): this run computes the chunks c with c % n == i
    push_to_hub: str | None = None  # "namespace/name": push the store as one commit after the run
    private: bool = False  # create the Hub repo private
    random_weights: bool = False  # random weights: no download; for tests and dry runs (the manifest says so)
    seed: int = 0  # torch seed before building each random-weight model
    resolution: int = 224  # side of the grid metrics are computed on
    progress: bool = True  # tqdm progress bar
    engine: str = "local"  # "local": this process; "ray": model workers on a Ray cluster (precompute/ray_engine.py)
    ray_address: str | None = None  # Ray: "auto", "ray://host:10001", ...; None: a running cluster or a local one
    gpus_per_worker: float | None = None  # Ray: GPUs per model worker; None: 1 when the cluster has GPUs, else 0
    ray_workers: int | None = None  # Ray: model workers; None: as many as the cluster's GPUs (or CPUs) allow
    # Test-only: timm keyword arguments per model (e.g. depth=2) to build tiny variants; recorded in the manifest.
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Variants: model name -> checkpoint (fine-tune folder, state-dict file or hf-hub:ns/name), from
    # --models clip,clip@lora=runs/clip-lora; each variant is stored as a model of its own.
    checkpoints: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "overrides", MappingProxyType({k: dict(v) for k, v in self.overrides.items()}))
        if self.faithfulness_layers == "auto":
            on_gpu = self.resolved_device().startswith("cuda")
            object.__setattr__(self, "faithfulness_layers", "-1" if on_gpu else "none")
        if self.sanity_images == "auto":
            object.__setattr__(self, "sanity_images", 8 if self.resolved_device().startswith("cuda") else 0)
        object.__setattr__(self, "output", Path(self.output))
        for name in self.models:
            get_spec(name)  # raises naming the valid ones
        if not self.models or len(set(self.models)) != len(self.models):
            raise ValueError(f"models must be distinct and at least one, got {self.models}")
        bad = [m for m in self.methods or () if m not in ALL_METHODS]
        if bad or self.methods == ():
            raise ValueError(f"unknown method(s) {bad or '(none given)'}; valid methods: {', '.join(ALL_METHODS)}")
        unknown = set(self.overrides) - set(self.models)
        if unknown:
            raise ValueError(f"overrides for models not in the run: {sorted(unknown)}")
        self._check_variants()
        self._check_models()
        self._check_text()
        i, n = self.shard
        if not 0 <= i < n:
            raise ValueError(f"shard {i}/{n}: need 0 <= i < n")
        if isinstance(self.sanity_images, bool) or not isinstance(self.sanity_images, int) or self.sanity_images < 0:
            raise ValueError(f"--sanity-images {self.sanity_images!r}: expected 0 or a positive number of images")
        if self.batch_size < 1 or self.chunk_size < 1 or self.resolution < 1:
            raise ValueError("batch size, chunk size and resolution must be positive")
        if self.push_to_hub is not None and not REPO_ID.fullmatch(self.push_to_hub):
            raise ValueError(f"--push-to-hub {self.push_to_hub!r}: expected namespace/name")
        if self.feature_dtype not in FEATURE_DTYPES:
            raise ValueError(f"--feature-dtype {self.feature_dtype!r}: expected one of {', '.join(FEATURE_DTYPES)}")
        self._check_engine()

    def _check_text(self) -> None:
        object.__setattr__(self, "text_methods", tuple(self.text_methods))
        bad = [m for m in self.text_methods if m not in TEXT_METHODS]
        if bad or len(set(self.text_methods)) != len(self.text_methods):
            raise ValueError(f"--text-methods {','.join(self.text_methods)}: valid: none or {', '.join(TEXT_METHODS)}")
        if self.templates not in (*TEMPLATE_SETS, "none"):
            raise ValueError(f"--templates {self.templates!r}: expected none or {', '.join(TEMPLATE_SETS)}")

    def text_methods_of(self, name: str) -> tuple[str, ...]:
        """The text methods computed for a model: those asked, if it has a text tower (variants have none)."""
        return self.text_methods if has_text(name) else ()

    def _check_engine(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"--engine {self.engine!r}: expected one of {', '.join(ENGINES)}")
        if self.engine == "local":
            ray_options = (self.ray_address, self.gpus_per_worker, self.ray_workers)
            if any(v is not None for v in ray_options):
                raise ValueError("--ray-address, --gpus-per-worker and --ray-workers need --engine ray")
            return
        if self.gpus_per_worker is not None and self.gpus_per_worker < 0:
            raise ValueError(f"--gpus-per-worker {self.gpus_per_worker}: must be 0 or more")
        if self.ray_workers is not None and self.ray_workers < 1:
            raise ValueError(f"--ray-workers {self.ray_workers}: must be at least 1")
        if importlib.util.find_spec("ray") is None:
            raise ValueError("--engine ray needs Ray, which is not installed: pip install -r requirements-ray.txt")

    def _check_variants(self) -> None:
        """Every variant in ``models`` has a checkpoint and every checkpoint names a variant in ``models``."""
        object.__setattr__(self, "checkpoints", MappingProxyType(dict(self.checkpoints)))
        for name in self.models:
            if get_spec(name).is_variant and name not in self.checkpoints:
                raise ValueError(f"variant {name!r} needs its weights: --models {name}=FOLDER|FILE|hf-hub:ns/name")
        for name, checkpoint in self.checkpoints.items():
            if name not in self.models or not get_spec(name).is_variant:
                raise ValueError(f"checkpoint for {name!r}: name a variant in --models, e.g. {name}@lora={checkpoint}")
            if not checkpoint.startswith("hf-hub:") and not Path(checkpoint).exists():
                raise ValueError(f"checkpoint of {name!r}: no folder or file {checkpoint!r}")

    def _check_models(self) -> None:
        """Every model supports at least one of the methods asked and has the feature layers asked, so that a run
        never stops at its third model, hours in, on an option the first check could have refused."""
        parse_layers(self.feature_layers, 1 << 20)  # the syntax, with its own message
        parse_layers(self.faithfulness_layers, 1 << 20)
        parse_layers(self.flow_layers, 1 << 20)
        problems = []
        for name in self.models:
            spec = get_spec(name)
            if not (spec.methods if self.methods is None else [m for m in spec.methods if m in self.methods]):
                supported = ", ".join(get_spec(name).methods)
                problems.append(f"model {name!r} supports none of the methods asked (it supports {supported})")
            n = self.num_layers(name)
            checks = [("feature", self.feature_layers), ("faithfulness", self.faithfulness_layers)]
            for what, text in checks + ([("flow", self.flow_layers)] if get_spec(name).family == "vit" else []):
                try:
                    parse_layers(text, n)
                except ValueError:
                    problems.append(f"model {name!r} has {n} layers: {what} layers must be in {-n}..{n - 1}")
        if problems:
            shown = f"--feature-layers {self.feature_layers!r}, --faithfulness-layers {self.faithfulness_layers!r}, "
            shown += f"--flow-layers {self.flow_layers!r}, --methods {','.join(self.methods or ('all',))}"
            raise ValueError(f"{'; '.join(problems)} ({shown})")

    def resolved_device(self) -> str:
        """The device the models run on: ``device``, else CUDA when available, else the CPU."""
        if self.device is not None:
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def num_layers(self, name: str) -> int:
        """Blocks (ResNet: stages) of a model as this run builds it (``depth`` overrides a ViT's)."""
        spec = get_spec(name)
        if spec.family == "vit":
            return int(self.overrides.get(name, {}).get("depth", spec.num_layers))
        return spec.num_layers

    def methods_of(self, name: str) -> tuple[str, ...]:
        """The methods computed for a model: those asked for that it supports, in the spec's order."""
        spec = get_spec(name)
        methods = spec.methods if self.methods is None else tuple(m for m in spec.methods if m in self.methods)
        return methods + (("flow",) if self.flow_layers_of(name) else ())

    def flow_layers_of(self, name: str) -> tuple[int, ...]:
        """The layers attention flow is computed at for a model (--flow-layers; ViTs only, none for a ResNet)."""
        if get_spec(name).family != "vit":
            return ()
        return parse_layers(self.flow_layers, self.num_layers(name))

    @classmethod
    def from_args(cls, argv: Sequence[str] | None = None) -> Config:
        args = parser().parse_args(argv)
        shard = re.fullmatch(r"(\d+)/(\d+)", args.shard)
        if shard is None:
            raise SystemExit(f"--shard {args.shard!r}: expected i/n, e.g. 0/4")
        try:
            return config_from(
                cls,
                args,
                models=tuple(n.partition("=")[0] for n in _names(args.models, tuple(MODELS))),
                checkpoints=dict(n.split("=", 1) for n in _names(args.models, ()) if "=" in n),
                methods=_names(args.methods, None),
                text_methods=() if args.text_methods == "none" else _names(args.text_methods, TEXT_METHODS),
                output=Path(args.output),
                shard=(int(shard[1]), int(shard[2])),
                progress=not args.quiet,
                overrides=json.loads(args.overrides) if args.overrides else {},
            )
        except ValueError as e:
            raise SystemExit(f"precompute: {e}") from None


def parse_layers(text: str, num_layers: int) -> tuple[int, ...]:
    """``all`` / ``none`` / ``"0,5,-1"`` -> sorted distinct layers of a model with ``num_layers`` layers."""
    if text == "all":
        return tuple(range(num_layers))
    if text == "none":
        return ()
    try:
        asked = [int(t) for t in text.split(",")]
    except ValueError:
        raise ValueError(f"feature layers {text!r}: expected all, none or comma-separated integers") from None
    bad = [layer for layer in asked if not -num_layers <= layer < num_layers]
    if bad:
        raise ValueError(f"feature layers {bad} out of range for a model with {num_layers} layers")
    return tuple(sorted({layer % num_layers for layer in asked}))


def _names(text: str | None, default):
    return default if text in (None, "all") else tuple(t.strip() for t in text.split(",") if t.strip())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m precompute",
        description="Compute every map, feature and metric of an annotated image set into a store (Parquet).",
    )
    p.add_argument("--source", default="examples", help="annotated image set (load_annotated spec; default: examples)")
    p.add_argument(
        "--models",
        default="all",
        help=f"comma-separated models or 'all' ({', '.join(MODELS)}); a variant: clip@lora=FOLDER|FILE|hf-hub:ns/name",
    )
    p.add_argument("--methods", default="all", help=f"comma-separated methods or 'all' ({', '.join(ALL_METHODS)})")
    p.add_argument("--feature-layers", default="all", help="'all', 'none' or comma-separated layers (-1: last)")
    p.add_argument(
        "--feature-dtype",
        default="int8",
        choices=FEATURE_DTYPES,
        help="store features as int8 with one scale per token (half the bytes) or float16 (default int8; see README)",
    )
    p.add_argument(
        "--faithfulness-layers",
        default="auto",
        help="deletion/insertion curves of each method's fused map at these layers: 'none', 'all' or comma-separated "
        "(default auto: -1, the last, on a GPU; none on a CPU, where its 78 forward passes per map dominate)",
    )
    p.add_argument(
        "--flow-layers",
        default="none",
        help="attention flow (Abnar & Zuidema 2020) of every ViT at these layers: 'none' (default), 'all' or "
        "comma-separated; one max-flow per patch and layer, seconds per image (docs/trust.md)",
    )
    p.add_argument(
        "--sanity-images",
        type=lambda v: v if v == "auto" else int(v),
        default="auto",
        help="model-parameter randomisation curves of each method's fused map at the last layer on the first N "
        "images of the set (0: none; default auto: 8 on a GPU, none on a CPU, where a curve takes seconds)",
    )
    p.add_argument(
        "--text-methods",
        default=TEXT_DEFAULT,
        help=f"text maps of every box label for models with a text tower: 'none', 'all' or comma-separated "
        f"({', '.join(TEXT_METHODS)}; default naclip,legrad)",
    )
    p.add_argument(
        "--templates",
        default="imagenet80",
        choices=(*TEMPLATE_SETS, "none"),
        help="prompt templates the labels go through (default imagenet80: OpenAI's 80 ImageNet templates)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: CUDA when available)")
    p.add_argument("--output", default="store", help="store folder; a rerun resumes there (default: store)")
    p.add_argument("--chunk-size", type=int, default=32, help="images per unit of work and data file (default 32)")
    p.add_argument("--shard", default="0/1", help="i/n: compute the chunks c with c %% n == i (default 0/1)")
    p.add_argument("--push-to-hub", default=None, metavar="NS/NAME", help="push the store to this Hub dataset")
    p.add_argument("--private", action="store_true", help="create the Hub dataset private")
    p.add_argument("--random-weights", action="store_true", help="random weights, no download (tests, dry runs)")
    p.add_argument("--seed", type=int, default=0, help="torch seed for random weights (default 0)")
    p.add_argument("--resolution", type=int, default=224, help="grid side metrics are computed on (default 224)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--engine", default="local", choices=ENGINES, help="local (this process) or ray (default local)")
    p.add_argument("--ray-address", default=None, help="Ray: cluster address, e.g. auto or ray://head:10001")
    p.add_argument("--gpus-per-worker", type=float, default=None, help="Ray: GPUs per model worker (default 1 or 0)")
    p.add_argument("--ray-workers", type=int, default=None, help="Ray: model workers (default: as many as fit)")
    p.add_argument("--overrides", default=None, help=argparse.SUPPRESS)  # test-only: json {model: timm kwargs}
    return p
