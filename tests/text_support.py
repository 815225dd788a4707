"""Test support for text towers: a small tokenizer served from the local Hub under the repos open_clip reads
SigLIP's and SigLIP 2's tokenizers from (the real ones cannot be downloaded here)."""

from __future__ import annotations

import json

from huggingface_hub import CommitOperationAdd, HfApi

from vitattn.text import TOWERS

WORDS = ("a", "an", "the", "of", "photo", "church", "rose", "window", "portal", "tower", "tracery", "nave", "apse")


def tokenizer_files() -> dict[str, bytes]:
    """A word-level fast tokenizer (``tokenizers``) with SigLIP's special tokens, as transformers saves one."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "pad_token": "<pad>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "model_max_length": 64,
    }
    return {"tokenizer.json": tok.to_str().encode(), "tokenizer_config.json": json.dumps(config).encode()}


def serve_tokenizers(hub) -> None:
    """Puts the test tokenizer in the Hub repo of every text tower that reads its tokenizer from the Hub."""
    api = HfApi(endpoint=hub.url)
    for spec in TOWERS.values():
        if spec.open_clip_name.startswith("ViT-B-16-SigLIP"):
            api.create_repo(spec.hf_hub, exist_ok=True)
            ops = [CommitOperationAdd(name, data) for name, data in tokenizer_files().items()]
            api.create_commit(spec.hf_hub, ops, commit_message="tokenizer")


# --------------------------------------------------------------------------------- float64 re-forward from weights


def _f64(t):
    return t.detach().double()


def layer_norm(x, norm):
    """LayerNorm written out: (x - mean) / sqrt(var + eps) * w + b."""
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / (var + norm.eps).sqrt() * _f64(norm.weight) + _f64(norm.bias)


def linear(x, lin):
    return x @ _f64(lin.weight).T + (0 if lin.bias is None else _f64(lin.bias))


def activation(x, act):
    """timm's QuickGELU (CLIP) or GELU (SigLIP, exact or tanh), written out."""
    import torch

    name = type(act).__name__
    if name == "QuickGELU":
        return x * torch.sigmoid(1.702 * x)
    if name == "GELU":
        if getattr(act, "approximate", "none") == "tanh":
            return 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x**3)))
        return 0.5 * x * (1 + torch.erf(x / 2**0.5))
    raise AssertionError(f"unexpected activation {name}")


def mlp(x, m):
    return linear(activation(linear(x, m.fc1), m.act), m.fc2)


def heads_qkv(x, attn):
    """q, k, v (B, H, T, hd) from the block's qkv weight and bias."""
    b, t, d = x.shape
    h = attn.num_heads
    qkv = linear(x, attn.qkv).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]


def merge(y, attn):
    b, h, t, hd = y.shape
    return linear(y.transpose(1, 2).reshape(b, t, h * hd), attn.proj)


def block_forward(x, block):
    """A pre-norm ViT block written out in float64; returns (output, softmax attention (B, H, T, T))."""
    q, k, v = heads_qkv(layer_norm(x, block.norm1), block.attn)
    a = ((q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5).softmax(-1)
    x = x + merge(a @ v, block.attn)
    return x + mlp(layer_norm(x, block.norm2), block.mlp), a


def first_block_input(model, image):
    """The tokens entering block 0 (patch + position embedding, CLS, pre-norm), float64."""
    import torch

    x = model.transform(image)[None]
    seen = {}
    handle = model.module.blocks[0].register_forward_pre_hook(lambda _m, args: seen.__setitem__("x", args[0]))
    try:
        with torch.no_grad():
            model.module.forward_features(x)
    finally:
        handle.remove()
    return _f64(seen["x"])
