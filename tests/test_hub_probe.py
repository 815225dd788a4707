"""Pretrained weights with the Hub unreachable: ``vitattn.load_model`` fails at once in one line naming the model,
the file and the way out (``vitattn.hub.check_weights_reachable``), and the way out it names works.

Against the local Hub server (tests/hubserver.py) with its port closed, and a real Hugging Face cache; no mocks of
the client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, hf_hub_download
from safetensors.torch import save_file

import vitattn
from vitattn.hub import WeightsUnreachable, check_weights_reachable, hub_repo

SMALL = {"depth": 2, "embed_dim": 64, "num_heads": 4, "img_size": 64}
ROOT = Path(__file__).resolve().parents[1]


def test_unreachable_hub_and_empty_cache_fail_in_one_line(hub):
    with hub.offline():  # the port refuses connections, as an unreachable Hub
        start = time.perf_counter()
        with pytest.raises(WeightsUnreachable) as err:
            vitattn.load_model("clip", pretrained=True)
        took = time.perf_counter() - start
    message = str(err.value)
    print(f"failed after {took:.2f} s: {message}")  # the README's figure (no limit asserted here)
    assert "\n" not in message
    assert "the weights of clip (timm/vit_base_patch16_clip_224.openai, model.safetensors)" in message
    assert "not cached and the Hub is unreachable" in message and hub.url in message
    assert "pretrained=False" in message and "HF_HUB_OFFLINE=1" in message
    assert hub.log == []  # the Hub client's retries never started


def test_offline_mode_with_an_empty_cache_says_so(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnreachable, match="HF_HUB_OFFLINE is set and the cache does not hold them"):
        vitattn.load_model("resnet50", pretrained=True)
    with pytest.raises(WeightsUnreachable, match="start the app with --random-weights"):
        check_weights_reachable("dinov2", "start the app with --random-weights")  # the app's own way out
    assert hub.log == []


def test_random_weights_need_no_hub(hub):
    with hub.offline():
        assert vitattn.load_model("vit", pretrained=False, **SMALL).spec.num_layers == 2


def test_the_way_out_a_filled_cache_with_hf_hub_offline(hub, tmp_path):
    """The weights put on the (local) Hub and downloaded once into the cache; then, with the Hub unreachable and
    HF_HUB_OFFLINE=1, ``pretrained=True`` loads them from the cache."""
    torch.manual_seed(3)
    weights = vitattn.load_model("vit", pretrained=False, **SMALL).module.state_dict()
    repo, file = hub_repo("vit")
    save_file({k: v.contiguous() for k, v in weights.items()}, tmp_path / file)
    api = HfApi(endpoint=hub.url)
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=str(tmp_path / file), path_in_repo=file, repo_id=repo)
    hf_hub_download(repo, file)  # fills the cache under the fixture's HF_HOME
    check_weights_reachable("vit")  # cached: no probe, no error
    script = (
        "import json, sys, vitattn\n"
        f"m = vitattn.load_model('vit', pretrained=True, device='cpu', **{SMALL!r})\n"
        "print(json.dumps(float(m.module.blocks[1].attn.qkv.weight.sum())))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    with hub.offline():
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = float(weights["blocks.1.attn.qkv.weight"].sum())
    assert np.isclose(json.loads(done.stdout.strip().splitlines()[-1]), expected, rtol=1e-6)


def test_a_siglip_text_tower_without_its_tokenizer_fails_in_one_line(hub):
    """SigLIP's tokenizer comes from the Hub even with random weights: unreachable and not cached, text maps fail at
    once naming the tokenizer's repo and the way out (instead of transformers' retries for about 50 s)."""
    from vitattn.text.tower import load_tower

    with hub.offline(), pytest.raises(WeightsUnreachable) as err:
        load_tower("siglip", pretrained=False, embed_dim=64, shrink={"layers": 1}, device=torch.device("cpu"))
    message = str(err.value)
    assert "\n" not in message and "the tokenizer files of siglip (timm/ViT-B-16-SigLIP, tokenizer.json)" in message
    assert "--text-methods none" in message and hub.url in message
    assert hub.log == []


def test_the_precompute_command_says_the_way_out_in_one_line(hub, tmp_path, capsys):
    from precompute.__main__ import main

    args = ["--models", "siglip", "--random-weights", "--methods", "mean", "--feature-layers", "none"]
    args += ["--overrides", json.dumps({"siglip": SMALL}), "--output", str(tmp_path / "store"), "--quiet"]
    with hub.offline():
        assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and err[0].startswith("precompute: the tokenizer files of siglip") and "Traceback" not in err[0]
    )
    assert "--text-methods none (precompute) skips them" in err[0]
