"""The text tower of a language-supervised model, in the joint image-text space of its image tower.

The image towers are timm's (`vitattn.specs`); the text towers are open_clip's, built from the same checkpoint:

* clip: open_clip ``ViT-B-16-quickgelu`` / ``openai`` (OpenAI's weights, from the Hub repo
  ``timm/vit_base_patch16_clip_224.openai``, the repo timm's image tower is read from); BPE vocabulary shipped
  with open_clip.
* siglip: open_clip ``ViT-B-16-SigLIP`` / ``webli`` (Hub ``timm/ViT-B-16-SigLIP``; big_vision's B/16 WebLI
  checkpoint, of which ``timm/vit_base_patch16_siglip_224.webli`` is the image tower); its SentencePiece tokenizer
  comes from the Hub (``timm/ViT-B-16-SigLIP``).
* siglip2: open_clip ``ViT-B-16-SigLIP2`` / ``webli`` (Hub ``timm/ViT-B-16-SigLIP2``; image tower
  ``timm/vit_base_patch16_siglip_224.v2_webli``); Gemma tokenizer from the Hub.

open_clip loads these text towers exactly (its own configs and weights); transformers would need a second,
separately converted copy. The image embedding these text embeddings are compared with is the timm module's own
output (`image_embedding`): CLIP's projected CLS token, SigLIP's attention-pooled token. Whether the two towers of
the pretrained checkpoints agree cannot be checked without the weights: check once that an image ranks its own
caption first (`vitattn.text.caption_ranks`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..hub import check_files_reachable
from .specs import check_prompts, check_text
from .templates import expand

SEED = 0  # random text towers (pretrained=False) are built under this seed, whatever the global RNG holds
BATCH = 256  # texts per forward of the text tower


# open_clip builds a whole CLIP; the random text towers get this tiny image tower, dropped right after.
_TINY_VISION = {"image_size": 32, "layers": 1, "width": 32, "head_width": 32, "patch_size": 16}


class TextTower:
    """An open_clip text encoder and its tokenizer; `encode` gives L2-normalised joint-space embeddings."""

    def __init__(self, model: torch.nn.Module, tokenizer, device: torch.device):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self._cache: dict[tuple[str, tuple[str, ...]], torch.Tensor] = {}

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """``(N, D)`` float32 L2-normalised embeddings of the texts as given."""
        out = []
        for start in range(0, len(texts), BATCH):
            tokens = self.tokenizer(list(texts[start : start + BATCH])).to(self.device)  # (n, context)
            out.append(F.normalize(self.model.encode_text(tokens).float(), dim=-1))  # (n, D)
        return torch.cat(out).cpu()

    def encode(self, prompts: Sequence[str], templates: str | Sequence[str] | None = None) -> torch.Tensor:
        """``(P, D)`` float32 L2-normalised prompt embeddings.

        With templates, each prompt is the average of its templated embeddings, renormalised (Radford et al. 2021,
        sec. 3.1.4, and OpenAI's zero-shot notebook). Results are cached per prompt and templates.
        """
        prompts = check_prompts(prompts)
        texts = expand(prompts, templates)  # one tuple of texts per prompt
        missing = [(p, t) for p, t in zip(prompts, texts, strict=True) if (p, t) not in self._cache]
        if missing:
            flat = [s for _, t in missing for s in t]
            emb = self.encode_texts(flat)  # (sum n_p, D)
            start = 0
            for key in missing:
                n = len(key[1])
                self._cache[key] = F.normalize(emb[start : start + n].mean(0), dim=-1)  # (D,)
                start += n
        return torch.stack([self._cache[(p, t)] for p, t in zip(prompts, texts, strict=True)])  # (P, D)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "spiece.model")
TOKENIZER_WAY_OUT = (
    "text maps of this model need its tokenizer even with random weights: --text-methods none (precompute) skips "
    "them, or HF_HUB_OFFLINE=1 with a Hugging Face cache that holds it (run once with network access to fill it)"
)


def load_tower(name: str, *, pretrained: bool, embed_dim: int, shrink: dict | None, device: torch.device) -> TextTower:
    """The text tower of model ``name``.

    Args:
        name: a model with a text tower (`TOWERS`).
        pretrained: load the checkpoint's weights through open_clip (downloads from the Hub); False builds the
            same architecture with random weights under `SEED`.
        embed_dim: the joint space's dimension (the image tower's output), for a random tower.
        shrink: for a random tower of a shrunk image tower (tests): text ``layers``, ``width`` and ``heads``.
        device: where to run it.
    """
    import open_clip

    spec = check_text(name)
    if pretrained:
        try:
            model = open_clip.create_model(spec.open_clip_name, pretrained=spec.pretrained_tag)
        except Exception as e:
            raise RuntimeError(
                f"could not load the text tower of {name} (open_clip {spec.open_clip_name}/{spec.pretrained_tag}, "
                f"Hub {spec.hf_hub}): {e}"
            ) from e
    else:
        cfg = open_clip.get_model_config(spec.open_clip_name)
        text_cfg = {**cfg["text_cfg"], **(shrink or {})}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            model = open_clip.create_model(
                spec.open_clip_name, pretrained=None, embed_dim=embed_dim, vision_cfg=_TINY_VISION, text_cfg=text_cfg
            )
    model.visual = None  # the image tower is timm's (vitattn.models)
    model = model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    hub_tokenizer = open_clip.get_model_config(spec.open_clip_name)["text_cfg"].get("hf_tokenizer_name")
    if hub_tokenizer:  # SigLIP's SentencePiece / Gemma tokenizers come from the Hub, random weights or not
        check_files_reachable(f"the tokenizer files of {name}", hub_tokenizer, "tokenizer.json", TOKENIZER_FILES,
                              TOKENIZER_WAY_OUT)  # fmt: skip
    return TextTower(model, open_clip.get_tokenizer(spec.open_clip_name), device)
