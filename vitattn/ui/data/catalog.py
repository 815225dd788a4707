"""What the app can show: models with their methods, layers and heads; images with their boxes; checked inputs.

Every ``check_*`` function turns a plain input (a name, a number, four numbers) into a checked value or raises
``gr.Error`` with a message naming the valid choices, so the page and API clients see the same clear errors.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image

from vitattn.boxes import LabeledBox, check_box
from vitattn.images import MAX_PIXELS, open_image
from vitattn.render import MAX_SIDE, MIN_SIDE, fit
from vitattn.specs import ON_REQUEST_METHODS, ModelSpec, get_spec
from vitattn.ui.data.errors import brief, fail

FUSED = -1  # the head value meaning "all heads fused", as in the metrics tables
HEADLESS_METHODS = ("rollout", "gradcam", "gae", "flow")  # fuse heads by definition: no per-head maps
LAST_LAYER_METHODS = ("pool",)  # SigLIP's pooling head belongs to the last layer only
# Attention flow (vitattn.methods.flow) is computed only when asked: one max-flow per patch and layer, seconds per
# image on a CPU for a ViT-B/16. Live, the app offers it at the last layer only (one layer's cost); a store offers
# the layers its job computed (--flow-layers).
FLOW_COST = "flow: a max-flow per patch, ~5 s per image live on CPU for a ViT-B/16 (last layer only)"
ANALYSIS_SIDE = 1024  # uploads are kept at most this large (the models see 224 px)
MAX_BOXES = 100  # of your own boxes scored at once


@dataclass(frozen=True)
class ModelInfo:
    """A model as the app offers it: which methods, at which layers, with how many heads."""

    name: str
    title: str
    methods: tuple[str, ...]
    layers: dict[str, tuple[int, ...]]  # method -> layers that have maps
    heads: dict[str, int]  # method -> number of per-head maps (0: heads fused by definition)
    num_layers: int
    grid: tuple[int, int]
    classifier: bool
    feature_layers: tuple[int, ...]
    family: str = "vit"  # "vit": layers are transformer blocks; "resnet": layers are the 4 stages

    def layer_name(self, layer: int) -> str:
        """A layer as the page names it: "layer 7" for a ViT block, "stage 3 (layer3)" for a ResNet stage."""
        return f"stage {layer + 1} (layer{layer + 1})" if self.family == "resnet" else f"layer {layer}"

    def depth(self, layer: int) -> float:
        """Normalised depth ``(layer + 1) / num_layers`` in (0, 1]: ViT blocks and ResNet stages on one axis."""
        return (layer + 1) / self.num_layers

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ModelInfo:
        """What live inference computes for a model (``Model.analyze`` with every method)."""
        last = spec.num_layers - 1
        methods = spec.methods + (ON_REQUEST_METHODS if spec.family == "vit" else ())  # flow: live, on request
        single = LAST_LAYER_METHODS + ON_REQUEST_METHODS
        return cls(
            name=spec.name,
            title=spec.title,
            methods=methods,
            layers={m: (last,) if m in single else tuple(range(spec.num_layers)) for m in methods},
            heads={m: 0 if m in HEADLESS_METHODS else spec.num_heads for m in methods},
            num_layers=spec.num_layers,
            grid=spec.grid,
            classifier=spec.classifier,
            feature_layers=tuple(range(spec.num_layers)),
            family=spec.family,
        )

    @classmethod
    def from_manifest(cls, name: str, entry: dict) -> ModelInfo:
        """A model as a store's manifest describes it."""
        spec = get_spec(name)
        methods = tuple(entry["methods"])
        return cls(
            name=name,
            title=spec.title,
            methods=methods,
            layers={m: tuple(int(v) for v in entry["layers"][m]) for m in methods},
            heads={m: int(entry["heads"].get(m, 0)) for m in methods},
            num_layers=int(entry["num_layers"]),
            grid=(int(entry["grid"][0]), int(entry["grid"][1])),
            classifier=bool(entry.get("classifier", spec.classifier)),
            feature_layers=tuple(int(v) for v in entry["feature_layers"]),
            family=str(entry.get("family", spec.family)),
        )

    def check_method(self, method: str) -> str:
        if method not in self.methods:
            raise fail(f"model {self.name!r} has no method {brief(method)}; valid methods: {', '.join(self.methods)}")
        return method

    def check_layer(self, method: str, layer: float | int) -> int:
        """The layer as an int, if ``method`` has maps there."""
        valid = self.layers[self.check_method(method)]
        value = integer(layer, "layer")
        if value not in valid:
            raise fail(f"layer {layer!r} out of range for {self.name}/{method}: valid layers {_span(valid)}")
        return value

    def check_head(self, method: str, head: float | int | None) -> int | None:
        """``None`` for all heads fused (``head`` is -1 or None), else the head number if the method has heads."""
        if head is None:
            return None
        value = integer(head, "head")
        if value == FUSED:
            return None
        n = self.heads[self.check_method(method)]
        if n == 0:
            raise fail(f"method {brief(method)} of {self.name} fuses all heads by definition; use head -1 (all fused)")
        if not 0 <= value < n:
            raise fail(
                f"head {value} out of range for {self.name}/{method}: valid heads 0..{n - 1}, or -1 for all fused"
            )
        return value

    def check_feature_layer(self, layer: float | int) -> int:
        value = integer(layer, "layer")
        if not 0 <= value < self.num_layers:
            raise fail(f"layer {layer!r} out of range for {self.name}: valid layers 0..{self.num_layers - 1}")
        return value


def integer(value: object, what: str) -> int:
    """``value`` as an int (a float that is a whole number is accepted, numpy's numbers too), else a one-line
    ``gr.Error``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise fail(f"{what} must be a whole number, got {brief(value)}")
    return int(value)


def _span(values: Sequence[int]) -> str:
    values = list(values)
    if len(values) > 1 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}"
    return ", ".join(map(str, values))


@dataclass(frozen=True, eq=False)
class Item:
    """One image the app can show: a display-size picture, its boxes, and how to get the image for inference."""

    id: str
    origin: str  # "store", "examples" or "upload"
    picture: Image.Image  # RGB, at most render.MAX_SIDE on its long side
    boxes: tuple[LabeledBox, ...]
    meta: dict = field(default_factory=dict)
    key: str = ""  # identifies the content for the live-analysis cache
    full: Callable[[], Image.Image] | None = None  # the image given to the model; default: the picture

    def image(self) -> Image.Image:
        return self.full() if self.full is not None else self.picture


def read_upload(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decodes uploaded bytes into an upright RGB image (``vitattn.images.open_image``: the pixel count is checked
    from the header before decoding), refusing what is empty, not an image, truncated or over ``max_pixels``."""
    try:
        return open_image(data, name="the upload", max_pixels=max_pixels)
    except ValueError as e:
        message = str(e)
        if "too large" in message:  # PIL's own bomb check answered first: name this app's limit too
            message += f" (the limit is {max_pixels:,} pixels)"
        raise fail(message) from None


def display(image: Image.Image) -> Image.Image:
    """The picture a view draws on: the image scaled into ``[MIN_SIDE, MAX_SIDE]`` on its long side."""
    return fit(image, MAX_SIDE, MIN_SIDE)


def upload_item(image_id: str, key: str, image: Image.Image) -> Item:
    kept = fit(image, ANALYSIS_SIDE)
    return Item(id=image_id, origin="upload", picture=display(kept), boxes=(), key=key, full=lambda: kept)


def parse_boxes(text: str | None) -> tuple[LabeledBox, ...]:
    """Boxes typed as text: one per line (or separated by ``;``), ``x0 y0 x1 y1 [label]``, normalized to [0, 1].

    Commas may separate the numbers. An empty text means no boxes; at most ``MAX_BOXES``.
    """
    if text is not None and not isinstance(text, str):
        raise fail(f"boxes must be text (x0 y0 x1 y1 [label] per line), got {brief(text)}")
    boxes = []
    for line in (p.strip() for p in (text or "").replace(";", "\n").splitlines()):
        if not line:
            continue
        if len(boxes) == MAX_BOXES:
            raise fail(f"more than {MAX_BOXES} boxes; score at most {MAX_BOXES} at a time")
        parts = line.replace(",", " ").split()
        try:
            box = check_box(parts[:4], what=f"box {len(boxes)} ({brief(line)})")
        except ValueError as e:
            raise fail(f"{e}; write one box per line as x0 y0 x1 y1 [label], normalized to [0, 1]") from None
        boxes.append(LabeledBox(box, " ".join(parts[4:])))
    return tuple(boxes)


def format_boxes(boxes: Sequence[LabeledBox]) -> str:
    """The text form of ``parse_boxes``."""
    return "\n".join(" ".join(f"{v:.3f}" for v in b.box) + (f" {b.label}" if b.label else "") for b in boxes)
