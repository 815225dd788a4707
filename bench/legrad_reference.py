"""Checks vitattn's `legrad` against the authors' package (``legrad-torch`` 1.1) on the same random weights.

``legrad-torch`` pins ``open-clip-torch<=2.23``, so it cannot live in vitattn's environment; install it with its
pinned open_clip into a throwaway folder and point this script at it (nothing of theirs is in this repository)::

    pip install --target /tmp/legrad_ref --no-deps legrad-torch==1.1 open-clip-torch==2.23.0 einops
    python -m bench.legrad_reference --ref /tmp/legrad_ref

CLIP: a small open_clip 2.23 ViT-B/16-style CLIP with QuickGELU, random weights, converted into the timm
architecture vitattn loads (timm's own OpenAI-CLIP converter). SigLIP: open_clip 2.23's ``ViT-B-16-SigLIP`` with a
random timm trunk, which vitattn runs as it is. Both sides get the same image tensor and the same random unit text
embeddings. The authors' maps are min-max normalised and upsampled to pixels; vitattn's patch maps get the same
post-processing here (bilinear x16, min-max; CLIP upsamples before the min-max, SigLIP after, as their code does).
Prints the largest absolute difference per model and prompt.
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch
import torch.nn.functional as F

TINY_CLIP = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 64, "layers": 4, "width": 64, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
}


def min_max(m: torch.Tensor) -> torch.Tensor:
    flat = m.flatten(-2)
    lo, hi = flat.min(-1, keepdim=True)[0], flat.max(-1, keepdim=True)[0]
    return ((flat - lo) / (hi - lo)).reshape(m.shape)


def up(m: torch.Tensor) -> torch.Tensor:
    return F.interpolate(m, scale_factor=16, mode="bilinear")


def check_clip(open_clip, legrad) -> list[float]:
    import timm
    from timm.models.vision_transformer import checkpoint_filter_fn

    from vitattn.methods.legrad import legrad_clip
    from vitattn.text import forward

    open_clip.factory._MODEL_CONFIGS["tiny-quickgelu"] = TINY_CLIP
    torch.manual_seed(0)
    theirs = open_clip.create_model("tiny-quickgelu").eval()
    ours = timm.create_model(
        "vit_base_patch16_clip_quickgelu_224", pretrained=False, img_size=64, depth=4, embed_dim=64, num_heads=4,
        num_classes=32,
    ).eval()  # fmt: skip
    ours.load_state_dict(checkpoint_filter_fn(theirs.state_dict(), ours))
    for m in ours.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = False
    x = torch.randn(1, 3, 64, 64)
    text = F.normalize(torch.randn(2, 32), dim=-1)
    tp = forward.run(ours, x, grads=True)
    mine = legrad_clip(ours, tp.outputs, tp.attentions, text, 1, (4, 4))[3]  # (1, P, 4, 4)
    wrapped = legrad.LeWrapper(theirs)  # it makes the last layers' weights require grad: their graph's roots
    ref = wrapped.compute_legrad_clip(text_embedding=text, image=x).detach()  # (1, P, 64, 64)
    print(f"clip: legrad-torch maps' standard deviation per prompt {ref.std((2, 3))[0].tolist()}")
    return [float((min_max(up(mine))[0, p] - ref[0, p]).abs().max()) for p in range(2)]


def check_siglip(open_clip, legrad) -> list[float]:
    from vitattn.methods.legrad import legrad_siglip
    from vitattn.text import forward

    torch.manual_seed(0)
    theirs = open_clip.create_model("ViT-B-16-SigLIP").eval()
    trunk = copy.deepcopy(theirs.visual.trunk)
    for m in trunk.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = False
    x = torch.randn(1, 3, 224, 224)
    text = F.normalize(torch.randn(2, 768), dim=-1)
    empty = F.normalize(torch.randn(1, 768), dim=-1)
    tp = forward.run(trunk, x, grads=True)
    wrapped = legrad.LeWrapper(theirs)
    wrapped.empty_embedding = empty.t()  # what _init_empty_embedding sets (it would download the tokenizer)
    out = []
    for p in range(2):  # their SigLIP path sums the prompts of one image: one prompt at a time
        mine = legrad_siglip(trunk, tp.outputs, text[p : p + 1], empty, (14, 14))[11]  # (1, 1, 14, 14)
        ref = wrapped.compute_legrad_siglip(text_embedding=text[p : p + 1], image=x).detach()
        out.append(float((up(min_max(mine)) - ref).abs().max()))
        print(
            f"siglip prompt {p}: legrad-torch map's std {float(ref.std()):.3f}, zeroed by the correction "
            f"{float((mine == 0).float().mean()):.0%} of patches"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", required=True, help="folder holding legrad-torch 1.1 and open-clip-torch 2.23")
    args = parser.parse_args()
    sys.path.insert(0, args.ref)
    import legrad
    import open_clip

    if not open_clip.__file__.startswith(args.ref):
        raise SystemExit(f"open_clip was imported from {open_clip.__file__}, not from {args.ref}")
    with torch.random.fork_rng():
        print(f"clip: max |vitattn - legrad-torch| per prompt = {check_clip(open_clip, legrad)}")
        print(f"siglip: max |vitattn - legrad-torch| per prompt = {check_siglip(open_clip, legrad)}")


if __name__ == "__main__":
    main()
