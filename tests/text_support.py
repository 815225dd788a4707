"""Test support for text towers: a small tokenizer served from the local Hub under the repos open_clip reads
SigLIP's and SigLIP 2's tokenizers from (the real ones cannot be downloaded here)."""

from __future__ import annotations

import json

from huggingface_hub import CommitOperationAdd, HfApi

from vitattn.text.tower import TOWERS

WORDS = "a an the of photo church rose window portal tower tracery nave apse bad good small large".split()


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
