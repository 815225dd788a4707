"""--permute-labels (Adebayo et al. 2018's data randomisation): the fine-tune job trains on shuffled labels, seeded
and reproducible; validation keeps the true labels."""

from __future__ import annotations

import json

import pytest
import torch
from test_app_more_support import toy_config, toy_set

from vitattn.finetune import FinetuneConfig, checkpoint as ckpt, data, run


def _examples(n_per_class: int = 10) -> list[data.Example]:
    return [data.Example(f"{c}{i}", b"", c) for c in "abc" for i in range(n_per_class)]


def test_permute_labels_permutes_reproducibly_and_keeps_the_counts():
    examples = _examples()
    permuted = data.permute_labels(examples, seed=0)
    assert [e.id for e in permuted] == [e.id for e in examples]  # the same images, in order
    assert data.class_counts(permuted) == data.class_counts(examples)  # a permutation of the labels
    changed = sum(a.label != b.label for a, b in zip(examples, permuted, strict=True))
    assert changed >= len(examples) // 2  # expected 2/3 of 30 with 3 balanced classes
    assert data.permute_labels(examples, seed=0) == permuted  # reproducible
    assert data.permute_labels(examples, seed=1) != permuted  # the seed matters
    assert examples == _examples()  # the input is left alone


def test_a_run_with_permuted_labels_trains_on_them_and_records_it(tmp_path):
    toy_set(tmp_path / "toy")
    logs: list[str] = []
    config = toy_config(tmp_path, "linear", epochs=1, permute_labels=True)
    info = run(config, log=logs.append)
    assert info["permute_labels"] is True and info["permuted_labels_changed"] > 0
    assert any(line.startswith("--permute-labels:") for line in logs)
    saved = json.loads((config.output / ckpt.INFO).read_text())
    assert saved["permute_labels"] is True
    again = run(toy_config(tmp_path, "linear", epochs=1, permute_labels=True, output=tmp_path / "again"),
                log=lambda line: None)  # fmt: skip
    assert again["permuted_labels_changed"] == info["permuted_labels_changed"]
    honest = run(toy_config(tmp_path, "linear", epochs=1, output=tmp_path / "honest"), log=lambda line: None)
    assert "permute_labels" not in honest
    names = (config.output.name, "again", "honest")
    weights = {name: ckpt.read_state(tmp_path / name / ckpt.WEIGHTS) for name in names}
    head = [k for k in weights["again"] if k.startswith("head.")]
    assert head and all(torch.equal(weights[config.output.name][k], weights["again"][k]) for k in head)
    assert not all(torch.equal(weights["honest"][k], weights["again"][k]) for k in head)  # other labels, other head
    with pytest.raises(ValueError, match="permute_labels"):  # a run folder does not resume with the other setting
        run(toy_config(tmp_path, "linear", epochs=2, output=tmp_path / "again"), log=lambda line: None)


def test_the_command_line_flag():
    argv = ["--model", "vit", "--strategy", "linear", "--dataset", "x", "--output", "y"]
    assert not FinetuneConfig.from_args(argv).permute_labels
    assert FinetuneConfig.from_args(argv + ["--permute-labels"]).permute_labels
