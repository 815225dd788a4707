"""Cost of the text methods per image and per prompt beside a plain forward, and of the text tower per prompt.

    python -m bench.text [--models clip,siglip] [--prompts 4] [--repeats 3] [--device cpu] [--local-hub]

Full-size ViT-B/16 towers with random weights (speed does not depend on the values). "plain" is the image tower as
timm ships it for inference (fused SDPA attention, no hooks, no_grad). Each text method is timed alone on one image
(`vitattn.text.compute.text_maps`: one forward, then for LeGrad and GAE one backward per prompt and layer they need)
with 1 and with ``--prompts`` prompts; the prompts' embeddings are cached by then, so the text tower is not in these
figures. Each is timed alternately with the plain forward, and "x plain" is the median of the pairs' ratios (robust to
a loaded machine); "per extra prompt" is ``(ratio(P) - ratio(1)) / (P - 1)``. The text tower is timed on its own:
per prompt as given, and per prompt through the 80 ImageNet templates (80 texts each).

SigLIP's tokenizers come from the Hub; ``--local-hub`` serves the tests' word-level tokenizer from a local Hub server
(tests/hubserver.py), so that the towers run offline (tokenizing is then not SigLIP's SentencePiece, a negligible part).
"""

from __future__ import annotations

import contextlib
import copy
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import vitattn
from bench.common import median, once, parser
from vitattn.text import TEXT_METHODS, imagenet80
from vitattn.text.compute import text_maps

WORDS = ["church", "rose window", "portal", "tower", "tracery", "nave", "apse", "window", "a photo of a church"]


def against(plain, fn, repeats: int) -> tuple[float, float]:
    """Median time of ``fn`` and median ratio to ``plain``, run alternately so both see the same machine load."""
    plain(), fn()  # warm-up
    pairs = [(once(plain), once(fn)) for _ in range(repeats)]
    return statistics.median(t for _, t in pairs), statistics.median(t / p for p, t in pairs)


@contextlib.contextmanager
def local_hub(enabled: bool):
    if not enabled:
        yield
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from hubserver import HubServer, point_client_at
    from text_support import serve_tokenizers

    with tempfile.TemporaryDirectory() as home, HubServer() as hub, point_client_at(hub.url, Path(home)):
        serve_tokenizers(hub)
        yield


def bench_model(name: str, args) -> None:
    torch.manual_seed(0)
    model = vitattn.load_model(name, pretrained=False, device=args.device)
    plain = copy.deepcopy(model.module)
    for m in plain.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = True
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    x = model.transform(image)[None].to(model.device)

    def run_plain() -> None:
        with torch.no_grad():
            plain(x)

    t_plain = median(run_plain, args.repeats)
    print(f"\n{name} ({model.spec.timm_id}), device {model.device}: plain forward {t_plain * 1000:.0f} ms")
    n = args.prompts
    print(f"| method | 1 prompt (ms) | x plain | {n} prompts (ms) | x plain | per extra prompt (x plain) |")
    print("|---|---|---|---|---|---|")
    prompts = WORDS[:n]
    for method in TEXT_METHODS:
        t1, r1 = against(run_plain, lambda m=method: text_maps(model, x, prompts[:1], None, (m,)), args.repeats)
        tp, rp = against(run_plain, lambda m=method: text_maps(model, x, prompts, None, (m,)), args.repeats)
        extra = (rp - r1) / max(n - 1, 1)
        print(f"| {method} | {t1 * 1000:.0f} | {r1:.2f} | {tp * 1000:.0f} | {rp:.2f} | {extra:.2f} |")
    tower = model.text_tower
    texts = [f"{w} {i}" for i in range(8) for w in WORDS][:64]
    t_texts = median(lambda: tower.encode_texts(texts), args.repeats) / len(texts)
    templated = [t.replace("{}", "rose window") for t in imagenet80()]
    t_80 = median(lambda: tower.encode_texts(templated), args.repeats)
    print(f"text tower: {t_texts * 1000:.1f} ms per prompt as given (batches of {len(texts)}), "
          f"{t_80 * 1000:.0f} ms per prompt through the 80 ImageNet templates")  # fmt: skip


def main() -> None:
    p = parser(__doc__, repeats=3, device="cpu")
    p.add_argument("--models", default="clip,siglip")
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--local-hub", action="store_true", help="serve SigLIP's tokenizers from a local Hub (offline)")
    args = p.parse_args()
    print(f"torch threads {torch.get_num_threads()}, load average at the start {os.getloadavg()}")
    with local_hub(args.local_hub):
        for name in args.models.split(","):
            bench_model(name, args)


if __name__ == "__main__":
    main()
