"""The fine-tune job and variants as models: tiny ViTs (depth 2, 64 channels) on a separable toy set, CPU only.

Red vs blue images are separable by colour alone, so every strategy must lower the training loss. The random
bases are seeded exactly as ``precompute --random-weights`` builds them, so a variant can be compared with its base.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_app_more_support import TINY, toy_config as _config, toy_set as _toy

import vitattn
from precompute.config import Config
from precompute.job import run as precompute
from vitattn.datasets import load_annotated
from vitattn.finetune import FinetuneConfig, checkpoint as ckpt, data, run
from vitattn.specs import GRADIENT_METHODS


def _base() -> vitattn.Model:
    torch.manual_seed(0)  # what precompute --random-weights --seed 0 builds
    return vitattn.load_model("vit", pretrained=False, device="cpu", **TINY)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Each strategy trained once: output folder and finetune.json."""
    tmp = tmp_path_factory.mktemp("finetune")
    _toy(tmp / "toy")
    out = {}
    for strategy in ("linear", "lora", "full"):
        config = _config(tmp, strategy)
        out[strategy] = (config.output, run(config, log=lambda line: None))
    return out


@pytest.mark.parametrize("strategy", ["linear", "lora", "full"])
def test_each_strategy_trains_and_loads_as_a_variant(runs, strategy):
    folder, info = runs[strategy]
    losses = [h["train_loss"] for h in info["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    assert info["labels"] == ["blue", "red"] and info["epochs_done"] == 3
    assert info["train_images"] + info["val_images"] == 16 and info["val_images"] == 2
    assert 0.0 <= info["val_accuracy"] <= 1.0
    assert json.loads((folder / ckpt.INFO).read_text())["val_accuracy"] == info["val_accuracy"]
    weights = folder / (ckpt.ADAPTER + "/adapter_model.safetensors" if strategy == "lora" else ckpt.WEIGHTS)
    assert weights.is_file()

    model = vitattn.load_model("vit", checkpoint=str(folder), device="cpu")
    spec = model.spec
    assert (spec.name, spec.base, spec.strategy, spec.checkpoint) == (f"vit@{strategy}", "vit", strategy, str(folder))
    assert not spec.classifier and not set(spec.methods) & set(GRADIENT_METHODS)
    assert model.module.num_classes == 2
    # the loaded variant classifies the toy set as the trained model did: every training image by its colour
    images = sorted((folder.parent / "toy").glob("*/*.png"))
    x = torch.stack([model.transform(Image.open(p)) for p in images])  # (16, 3, 64, 64)
    with torch.no_grad():
        predicted = model.module(x).argmax(-1).tolist()
    truth = [info["labels"].index(p.parent.name) for p in images]
    if strategy != "linear":  # a probe on a random backbone may not separate every image in three epochs
        assert np.mean(np.array(predicted) == np.array(truth)) >= 0.75
    model.analyze(Image.open(images[0]))  # maps on the variant work


def test_linear_probe_maps_equal_the_frozen_model_exactly(runs):
    folder, _ = runs["linear"]
    frozen, probe = _base(), vitattn.load_model("vit", checkpoint=str(folder), device="cpu")
    head = ckpt.head_name(frozen.module)
    backbone = {k: v for k, v in frozen.module.state_dict().items() if not k.startswith(f"{head}.")}
    tuned = probe.module.state_dict()
    assert all(torch.equal(v, tuned[k]) for k, v in backbone.items())
    image = Image.open(next((folder.parent / "toy" / "red").glob("*.png")))
    a, b = frozen.analyze(image), probe.analyze(image)
    assert probe.spec.methods == tuple(m for m in frozen.spec.methods if m not in GRADIENT_METHODS)
    for method in probe.spec.methods:
        for layer in a.layers(method):
            assert np.array_equal(a.map(method, layer), b.map(method, layer)), (method, layer)
            if a.has_heads(method):
                assert np.array_equal(a.heads(method, layer), b.heads(method, layer))
    for layer in range(2):
        assert np.array_equal(a.features(layer), b.features(layer))


def test_lora_variant_equals_the_peft_model_it_merges(runs):
    """The merged variant against peft's own unmerged PeftModel.from_pretrained on the same seeded base."""
    from peft import PeftModel

    folder, info = runs["lora"]
    base = _base().module
    base.reset_classifier(len(info["labels"]))
    reference = PeftModel.from_pretrained(base, str(folder / ckpt.ADAPTER)).eval()
    variant = vitattn.load_model("vit", checkpoint=str(folder), device="cpu")
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        want, got = reference(x), variant.module(x)  # (3, 2)
    assert not any("lora" in k for k in variant.module.state_dict())
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # LoRA moved the backbone: the variant's attention differs from the frozen model's
    frozen_attn = _base().analyze(Image.new("RGB", (64, 64), "red")).map("cls", 1)
    assert not np.array_equal(variant.analyze(Image.new("RGB", (64, 64), "red")).map("cls", 1), frozen_attn)


def test_full_variant_holds_the_saved_weights(runs):
    from safetensors.torch import load_file

    folder, _ = runs["full"]
    saved = load_file(str(folder / ckpt.WEIGHTS))
    loaded = vitattn.load_model("vit", checkpoint=str(folder), device="cpu").module.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path):
    _toy(tmp_path / "toy")
    whole = _config(tmp_path, "lora", epochs=2, output=tmp_path / "whole")
    run(whole, log=lambda line: None)

    class Stop(Exception):
        pass

    def stop(epoch: int) -> None:
        raise Stop

    resumed = _config(tmp_path, "lora", epochs=2, output=tmp_path / "resumed")
    with pytest.raises(Stop):
        run(resumed, on_epoch=stop, log=lambda line: None)
    assert json.loads((resumed.output / ckpt.INFO).read_text())["epochs_done"] == 1
    lines = []
    info = run(resumed, log=lines.append)
    assert "resuming" in " ".join(lines) and info["epochs_done"] == 2
    a = (whole.output / ckpt.ADAPTER / "adapter_model.safetensors").read_bytes()
    b = (resumed.output / ckpt.ADAPTER / "adapter_model.safetensors").read_bytes()
    assert a == b
    assert [h["train_loss"] for h in info["history"]] == [
        h["train_loss"] for h in json.loads((whole.output / ckpt.INFO).read_text())["history"]
    ]
    with pytest.raises(ValueError, match="other settings .*lr"):
        run(_config(tmp_path, "lora", epochs=2, output=tmp_path / "resumed", lr=0.5), log=lambda line: None)


@pytest.fixture(scope="module")
def example_store(tmp_path_factory) -> Path:
    """The bundled examples precomputed with the tiny random vit (cls only, no features)."""
    out = tmp_path_factory.mktemp("store") / "store"
    precompute(_store_config(out, ("vit",), {}))
    return out


def _store_config(out: Path, models: tuple[str, ...], checkpoints: dict) -> Config:
    return Config(
        source="examples",
        models=models,
        checkpoints=checkpoints,
        methods=("cls", "rollout"),
        feature_layers="none",
        output=out,
        random_weights=True,
        progress=False,
        overrides={m: TINY for m in models},
    )


@pytest.mark.slow  # a precompute run
def test_exclude_drops_the_images_of_a_store_even_re_encoded(example_store, tmp_path):
    toy = _toy(tmp_path / "toy")
    examples = load_annotated("examples")
    for record in examples[:2]:  # two stored images, decoded and saved again as PNG, among the training images
        record.load().save(toy / "red" / f"{record.id}.png")
    lines = []
    config = _config(tmp_path, "linear", epochs=1, exclude=str(example_store))
    info = run(config, log=lines.append)
    assert "dropped 2 of 18 images" in lines[0]
    assert info["excluded"] == 2 and info["train_images"] + info["val_images"] == 16
    kept, dropped = data.exclude(data.load_examples(str(toy)).examples, data.store_hashes(str(example_store)))
    assert dropped == 2 and not {e.id for e in kept} & {f"red/{r.id}.png" for r in examples[:2]}


@pytest.mark.slow  # a precompute run
def test_precompute_stores_variants_as_models_and_rewrites_nothing_else(example_store, runs, tmp_path):
    from vitattn.store import open_store

    store = tmp_path / "store"
    shutil.copytree(example_store, store)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (store / "models" / "vit").iterdir()}
    checkpoints = {"vit@lora": str(runs["lora"][0]), "vit@linear": str(runs["linear"][0])}
    manifest = precompute(_store_config(store, ("vit", "vit@lora", "vit@linear"), checkpoints))
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (store / "models" / "vit").iterdir()}
    assert after == before  # adding variants rewrote no file of the base model
    assert sorted(p.name for p in (store / "models").iterdir()) == ["vit", "vit@linear", "vit@lora"]
    entry = manifest["models"]["vit@lora"]
    assert (entry["base"], entry["strategy"]) == ("vit", "lora")
    assert entry["variant"]["val_accuracy"] == runs["lora"][1]["val_accuracy"]
    assert entry["variant"]["sha256"] and entry["random_weights"] is True
    with open_store(store) as s:
        assert not s.problems and set(s.models()) == {"vit", "vit@lora", "vit@linear"}
        for image_id in s.image_ids():
            assert np.array_equal(s.map(image_id, "vit@linear", "cls", 1), s.map(image_id, "vit", "cls", 1))
        assert len(s.metrics("vit@lora")["image_id"]) == len(s.metrics("vit")["image_id"])


def test_checkpoint_identity_follows_content(runs, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(runs["linear"][0], folder)
    first = ckpt.identity(str(folder))
    assert first == {"checkpoint": "copy", "sha256": first["sha256"]}
    assert ckpt.identity(str(folder)) == first  # stable
    (folder / ckpt.RESUME).write_bytes(b"resume state does not count")
    assert ckpt.identity(str(folder)) == first
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / ckpt.WEIGHTS))
    save_file({k: v + 1 for k, v in state.items()}, str(folder / ckpt.WEIGHTS))
    assert ckpt.identity(str(folder))["sha256"] != first["sha256"]
    assert ckpt.identity("hf-hub:ns/clip-wikichurches") == {"checkpoint": "hf-hub:ns/clip-wikichurches"}


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_state_dict_files_load_and_mismatched_keys_are_named(tmp_path, suffix):
    from safetensors.torch import save_file

    source = _base().module
    torch.manual_seed(1)
    other = vitattn.load_model("vit", pretrained=False, device="cpu", **TINY).module
    state = {k: v.clone().contiguous() for k, v in other.state_dict().items()}
    path = tmp_path / f"w{suffix}"
    save = (lambda s, p: save_file(s, str(p))) if suffix == ".safetensors" else (lambda s, p: torch.save(s, p))
    save(state, path)
    model = vitattn.load_model("vit", checkpoint=str(path), device="cpu", **TINY)
    assert model.spec.name == "vit@ft" and model.spec.strategy is None
    assert model.module.num_classes == 1000  # the file's head, ImageNet's here; still no classifier spec:
    assert not model.spec.classifier and "agcam" not in model.spec.methods  # as get_spec("vit@ft") says
    assert all(torch.equal(v, model.module.state_dict()[k]) for k, v in state.items())
    assert not torch.equal(source.state_dict()["blocks.0.attn.qkv.weight"], state["blocks.0.attn.qkv.weight"])
    named = vitattn.load_model("vit@full", checkpoint=str(path), device="cpu", **TINY)
    assert (named.spec.name, named.spec.strategy) == ("vit@full", "full")

    bad = {**state, "blocks.0.attn.extra": torch.zeros(3)}
    del bad["blocks.1.mlp.fc1.bias"]
    save(bad, path)
    with pytest.raises(ValueError, match=r"unexpected keys \[blocks.0.attn.extra\]; missing keys \[blocks.1.mlp.fc1"):
        vitattn.load_model("vit", checkpoint=str(path), device="cpu", **TINY)
    save({**state, "pos_embed": torch.zeros(1, 3, 64)}, path)
    with pytest.raises(ValueError, match=r"shapes differ: \[pos_embed \(1, 3, 64\)"):
        vitattn.load_model("vit", checkpoint=str(path), device="cpu", **TINY)


def test_a_state_dict_without_head_weights_gives_a_model_without_a_head(tmp_path):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in _base().module.state_dict().items() if not k.startswith("head.")}
    save_file(state, str(tmp_path / "backbone.safetensors"))
    model = vitattn.load_model("vit@mine", checkpoint=str(tmp_path / "backbone.safetensors"), device="cpu", **TINY)
    assert model.module.num_classes == 0 and model.spec.name == "vit@mine" and "agcam" not in model.spec.methods


def test_bad_checkpoints_give_one_line_errors(tmp_path, runs):
    with pytest.raises(ValueError, match="is a variant: give its weights"):
        vitattn.load_model("vit@lora", device="cpu")
    with pytest.raises(FileNotFoundError, match="no such folder or file"):
        vitattn.load_model("vit", checkpoint=str(tmp_path / "nope"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="must hold finetune.json"):
        vitattn.load_model("vit", checkpoint=str(tmp_path / "empty"), device="cpu")
    with pytest.raises(ValueError, match="expected hf-hub:<namespace>/<name>"):
        vitattn.load_model("vit", checkpoint="hf-hub:not a repo", device="cpu")
    with pytest.raises(ValueError, match="fine-tuned from 'vit', not 'clip'"):
        vitattn.load_model("clip", checkpoint=str(runs["linear"][0]), device="cpu")
    with pytest.raises(ValueError, match="trained with overrides"):
        vitattn.load_model("vit", checkpoint=str(runs["linear"][0]), device="cpu", depth=3)


def test_hub_checkpoints_download_and_fail_with_one_line(hub, runs, tmp_path):
    from huggingface_hub import HfApi

    folder, _ = runs["lora"]
    api = HfApi(endpoint=hub.url)
    api.create_repo("ns/vit-lora")
    api.upload_folder(repo_id="ns/vit-lora", folder_path=str(folder), ignore_patterns=[ckpt.RESUME])
    local = vitattn.load_model("vit", checkpoint=str(folder), device="cpu")
    remote = vitattn.load_model("vit", checkpoint="hf-hub:ns/vit-lora", device="cpu")
    assert remote.spec.name == "vit@lora" and remote.spec.checkpoint == "hf-hub:ns/vit-lora"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(remote.module(x), local.module(x))
    with pytest.raises(RuntimeError, match=r"^could not download checkpoint hf-hub:ns/missing: Repository"):
        vitattn.load_model("vit", checkpoint="hf-hub:ns/missing", device="cpu")


def test_sources_class_folders_datasets_and_annotated(tmp_path):
    import datasets

    toy = _toy(tmp_path / "toy", per_class=3)
    loaded = data.load_examples(str(toy))
    assert loaded.labels == ["blue", "red"] and len(loaded.examples) == 6 and loaded.unlabelled == 0

    images = sorted(toy.glob("*/*.png"))
    features = datasets.Features({"image": datasets.Image(), "style": datasets.ClassLabel(names=["blue", "red"])})
    rows = {"image": [str(p) for p in images], "style": [int(p.parent.name == "red") for p in images]}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "hf"))
    hf = data.load_examples(str(tmp_path / "hf"), label="style")
    assert hf.labels == ["blue", "red"] and [e.label for e in hf.examples] == [p.parent.name for p in images]
    with pytest.raises(ValueError, match="no column 'colour'"):
        data.load_examples(str(tmp_path / "hf"), label="colour")

    annotations = {  # WikiChurches layout; one image has two styles and no single label
        f"{p.stem}.png": {"styles": ["Q46261"] if p.parent.name == "red" else ["Q176483"], "bbox_groups": []}
        for p in images
    }
    annotations[f"{images[0].stem}.png"]["styles"] = ["Q46261", "Q176483"]
    (tmp_path / "wc" / "images").mkdir(parents=True)
    for p in images:
        shutil.copy(p, tmp_path / "wc" / "images" / p.name)
    (tmp_path / "wc" / "building_parts.json").write_text(json.dumps({"meta": [], "annotations": annotations}))
    wc = data.load_examples(str(tmp_path / "wc" / "building_parts.json"), label="styles")
    assert wc.labels == ["Gothic", "Romanesque"] and wc.unlabelled == 1 and len(wc.examples) == 5
    with pytest.raises(ValueError, match="no metadata field 'style'"):
        data.load_examples(str(tmp_path / "wc" / "building_parts.json"), label="style")


def test_split_is_stratified_and_seeded():
    examples = [data.Example(f"{c}{i}", b"", c) for c in "ab" for i in range(10)] + [data.Example("c0", b"", "c")]
    train, val = data.split(examples, 0.2, seed=3)
    assert data.class_counts(val) == {"a": 2, "b": 2} and data.class_counts(train) == {"a": 8, "b": 8, "c": 1}
    assert data.split(examples, 0.2, seed=3) == (train, val) and data.split(examples, 0.2, seed=4) != (train, val)


def test_command_line(tmp_path, capsys):
    from vitattn.finetune.__main__ import main

    _toy(tmp_path / "toy", per_class=3)
    argv = ["--model", "vit", "--strategy", "linear", "--dataset", str(tmp_path / "toy"), "--output"]
    argv += [str(tmp_path / "out"), "--epochs", "1", "--random-weights", "--quiet", "--overrides", json.dumps(TINY)]
    assert main(argv) == 0
    assert "linear fine-tune of vit, validation accuracy" in capsys.readouterr().out
    config = FinetuneConfig.from_args(argv + ["--strategy", "lora"])
    assert (config.learning_rate, config.head_lr, config.lora.r, config.lora.alpha, config.lora.dropout) == (
        1e-4,
        1e-3,
        8,
        32,
        0.1,
    )
    assert FinetuneConfig.from_args(argv + ["--strategy", "full"]).learning_rate == 1e-5
    assert (config.epochs, config.batch_size) == (1, 16)
    for bad, message in (
        (["--model", "resnet50", "--strategy", "lora"], "no attention projections"),
        (["--model", "clip@lora"], "fine-tune a base model"),
        (["--val-fraction", "1"], "strictly between 0 and 1"),
    ):
        with pytest.raises(SystemExit, match=message):
            FinetuneConfig.from_args(argv + bad)
    assert main(argv[:5] + [str(tmp_path / "nowhere")] + argv[6:]) == 1
    assert "no such folder or file" in capsys.readouterr().err


def test_precompute_config_parses_variants(tmp_path, runs):
    folder = str(runs["lora"][0])
    config = Config.from_args(["--models", f"vit,vit@lora={folder},clip@x=hf-hub:ns/clip-ft", "--methods", "cls"])
    assert config.models == ("vit", "vit@lora", "clip@x")
    assert dict(config.checkpoints) == {"vit@lora": folder, "clip@x": "hf-hub:ns/clip-ft"}
    for models, message in (
        ("vit,vit@lora", "variant 'vit@lora' needs its weights"),
        (f"vit={folder}", "name a variant in --models"),
        (f"vit@lora={tmp_path / 'nope'}", "no folder or file"),
    ):
        with pytest.raises(SystemExit, match=message):
            Config.from_args(["--models", models])


@pytest.mark.gpu
def test_finetune_and_variant_on_cuda(tmp_path):
    """On a CUDA device: a LoRA run trains (bfloat16 autocast) and its variant's outputs match on CPU and GPU."""
    assert torch.cuda.is_available()
    _toy(tmp_path / "toy")
    info = run(_config(tmp_path, "lora", device="cuda"), log=lambda line: None)
    assert info["history"][-1]["train_loss"] < info["history"][0]["train_loss"]
    folder = str(tmp_path / "run-lora")
    gpu = vitattn.load_model("vit", checkpoint=folder, device="cuda")
    cpu = vitattn.load_model("vit", checkpoint=folder, device="cpu")
    image = Image.open(next((tmp_path / "toy" / "red").glob("*.png")))
    # CUDA convolutions may run in TF32: agreement to about 1e-3
    np.testing.assert_allclose(gpu.analyze(image).map("cls", 1), cpu.analyze(image).map("cls", 1), atol=2e-3)


@pytest.mark.parametrize("name", [n for n, s in vitattn.MODELS.items() if s.family == "vit"])
def test_every_vit_gets_lora_on_its_attention_projections_and_a_new_head(name, tmp_path):
    """LoRA wraps exactly each block's attn.qkv and attn.proj (not SigLIP's pooling head); each strategy steps."""
    from small_models import small_overrides

    from vitattn.finetune.train import build_base, prepare, train_step

    overrides = small_overrides(name)
    for strategy in ("lora", "linear", "full"):
        config = FinetuneConfig(model=name, strategy=strategy, dataset="-", output=tmp_path, overrides=overrides)
        module, transform = build_base(name, random_weights=True, seed=0, overrides=overrides)
        model, groups = prepare(module, strategy, 3, config)
        if strategy == "lora":
            wrapped = {n.rsplit(".lora_A", 1)[0] for n, _ in model.named_modules() if n.endswith(".lora_A")}
            want = {f"base_model.model.blocks.{i}.attn.{p}" for i in range(2) for p in ("qkv", "proj")}
            assert wrapped == want
        x = torch.stack([transform(Image.new("RGB", (40, 30), c)) for c in ("red", "blue")])  # (2, 3, S, S)
        optimizer = torch.optim.AdamW(groups)
        loss = train_step(model, x, torch.tensor([0, 2]), optimizer)
        assert np.isfinite(loss) and model(x).shape == (2, 3)
