"""A newcomer's first precompute: faithfulness chosen by device, the cost said in one line before the work, and a
progress bar counting images."""

from __future__ import annotations

import json

import pytest
from small_models import noise_image, small_model, small_overrides

import vitattn
from precompute import Config
from precompute.__main__ import main
from precompute.estimate import FAITHFULNESS_PASSES, FORWARD_EFFICIENCY, describe, model_cost, sanity_clause
from vitattn.store.writer import map_rows


def test_faithfulness_defaults_by_device():
    assert Config.from_args(["--device", "cpu"]).faithfulness_layers == "none"  # 78 passes per map: off on a CPU
    assert Config.from_args(["--device", "cuda"]).faithfulness_layers == "-1"  # the last layer on a GPU
    assert Config.from_args(["--device", "cpu", "--faithfulness-layers", "-1"]).faithfulness_layers == "-1"
    assert Config(device="cuda:1", faithfulness_layers="auto").faithfulness_layers == "-1"
    assert Config().faithfulness_layers == "-1"  # the library's Config keeps its default; the command says auto


@pytest.mark.parametrize("name", list(vitattn.MODELS))
def test_the_estimate_counts_the_maps_the_job_scores(name):
    """The estimate's map count is the number of maps an analysis of every method gives (every layer and head)."""
    model = small_model(name)
    config = Config(models=(name,), overrides={name: small_overrides(name)}, random_weights=True)
    rows = map_rows(model.analyze(noise_image(), methods=list(config.methods_of(name))))
    cost = model_cost(config, name)
    assert cost.maps == len(rows)
    assert cost.faithfulness_maps == len(config.methods_of(name))  # the fused map of each method, last layer


def test_the_line_says_the_cost_and_the_flag():
    config = Config(models=("vit",), random_weights=True, faithfulness_layers="auto", device="cpu")
    off = describe(config, {"vit": 7}, "cpu", 1e11)
    assert off.startswith("precompute: 7 images x 1 model (vit) on cpu: ") and "\n" not in off
    assert "faithfulness off (the default on a CPU): --faithfulness-layers -1 turns it on" in off
    on = describe(Config(models=("vit",), random_weights=True, faithfulness_layers="-1"), {"vit": 7}, "cuda", 1e14)
    passes = 7 * len(Config(models=("vit",)).methods_of("vit")) * FAITHFULNESS_PASSES
    assert f"faithfulness ({passes:,} forward passes, 78 per map)" in on and "--faithfulness-layers none skips it" in on


def test_the_line_says_what_the_sanity_curves_cost_and_the_flag():
    off = Config(models=("vit",), random_weights=True, sanity_images="auto", device="cpu")
    assert off.sanity_images == 0
    assert "sanity curves off (the default on a CPU): --sanity-images 8 adds them" in sanity_clause(
        off, {"vit": 7}, "cpu", 1e11
    )
    on = Config(models=("vit",), random_weights=True, sanity_images=2, methods=("cls",))
    line = sanity_clause(on, {"vit": 7}, "cpu", 1e11)
    # 2 images x 1 method x (the intact model, then 12 blocks, head, norm and patch embedding reset) analyze passes
    seconds = 2 * 1 * 16 * model_cost(on, "vit").passes * model_cost(on, "vit").flops / (1e11 * FORWARD_EFFICIENCY)
    assert f"sanity curves on the first 2 images about {seconds:.0f} s: --sanity-images 0 skips them" in line


def test_the_command_prints_the_line_then_a_bar_of_images(tmp_path, capsys):
    args = ["--models", "vit", "--random-weights", "--output", str(tmp_path / "store"), "--methods", "cls"]
    args += ["--feature-layers", "none", "--device", "cpu", "--overrides", json.dumps({"vit": small_overrides("vit")})]
    args += ["--batch-size", "2"]
    assert main(args) == 0
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith("precompute: 7 images x 1 model (vit) on cpu:") and "--faithfulness-layers -1" in first
    assert "7/7" in err and ("img/s" in err or "s/img" in err)  # tqdm: images done and the rate
    assert "2/7" in err and "4/7" in err and "6/7" in err  # it moves per analysed batch, not per unit
