"""The precompute job's trust outputs on a tiny random-weight run: the sanity table (randomisation curves of the first
images) with its reader, attention flow at the layers asked (--flow-layers), and MaxBoxAccV2 from a store."""

from pathlib import Path

import numpy as np
import pytest
import torch
from small_models import small_overrides

import vitattn
from precompute import Config, run
from precompute.__main__ import main
from vitattn.metrics.boxacc import box_acc, max_box_acc_summary
from vitattn.sanity import SIMILARITY_NAMES, model_randomization, model_stages
from vitattn.store import StoreError, open_store

MODELS = ("vit", "siglip", "resnet50")


def config(out: Path, models=MODELS, **kw) -> Config:
    kw = {"chunk_size": 3, "batch_size": 2, "random_weights": True, "progress": False, "faithfulness_layers": "none",
          "sanity_images": 1, "flow_layers": "-1", **kw}  # fmt: skip
    return Config(output=out, models=models, overrides={m: small_overrides(m) for m in models}, **kw)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trust")
    run(config(out))
    return out


def _model(name: str) -> vitattn.Model:
    torch.manual_seed(0)  # what precompute --random-weights --seed 0 builds
    return vitattn.load_model(name, pretrained=False, device="cpu", **small_overrides(name))


def test_the_sanity_table_holds_the_randomisation_curves_of_the_first_images(store_dir):
    with open_store(store_dir) as store:
        assert not store.problems  # a sanity file per chunk, as every table
        first = store.image_ids()[:1]
        for name in MODELS:
            entry = store.manifest["models"][name]
            assert entry["sanity"] and entry["sanity_images"] == 1
            table = store.sanity(name)
            methods = [m for m in entry["methods"] if m != "flow"]
            assert sorted(set(table["image_id"])) == first and sorted(set(table["method"])) == sorted(methods)
            model = _model(name)
            n_steps = len(model_stages(model.module)) + 1
            assert len(table["step"]) == len(methods) * n_steps
            image = store.image(first[0]).image
            for method in methods:
                rows = model_randomization(model, image, method)  # what the job computed, recomputed here
                pick = (table["image_id"] == first[0]) & (table["method"] == method)
                order = np.argsort(table["step"][pick])
                assert table["stage"][pick][order].tolist() == [r["stage"] for r in rows]
                assert set(table["order"][pick]) == {"top-down"}
                assert set(table["layer"][pick]) == {model.spec.num_layers - 1}
                for key in SIMILARITY_NAMES:
                    np.testing.assert_allclose(table[key][pick][order], [r[key] for r in rows], atol=1e-9)
                for values, h, w, r in zip(table["values"][pick][order], table["grid_h"][pick][order],
                                           table["grid_w"][pick][order], rows, strict=True):  # fmt: skip
                    np.testing.assert_allclose(np.asarray(values, np.float32).reshape(h, w), r["map"], rtol=1e-3,
                                               atol=1e-4)  # fmt: skip


def test_flow_is_stored_at_the_layers_asked_for_vits_only(store_dir):
    with open_store(store_dir) as store:
        assert store.manifest["models"]["vit"]["layers"]["flow"] == [1]
        assert "flow" not in store.manifest["models"]["resnet50"]["methods"]
        image_id = store.image_ids()[0]
        for name in ("vit", "siglip"):
            live = _model(name).analyze(store.image(image_id).image, methods=["flow"], features=False)
            np.testing.assert_allclose(store.map(image_id, name, "flow", 1), live.map("flow", 1), rtol=1e-3, atol=1e-5)
        assert "flow" in set(store.metrics("vit")["method"])  # scored as every map


def test_max_box_acc_summary_from_the_store(store_dir):
    with open_store(store_dir) as store:
        rows = max_box_acc_summary(store, models=["vit"], methods=["cls", "flow"])
        assert [(r["model"], r["method"], r["layer"]) for r in rows] == [("vit", "cls", 0), ("vit", "cls", 1),
                                                                         ("vit", "flow", 1)]  # fmt: skip
        ids = [i for i in store.image_ids() if store.image(i).boxes]
        direct = box_acc([store.map(i, "vit", "cls", 1) for i in ids], [store.image(i).boxes for i in ids])
        assert rows[1]["max_box_acc"] == direct.max_box_acc and rows[1]["n_images"] == len(ids)
        assert all(0 <= r["max_box_acc"] <= 1 and r["max_box_acc@0.5"] == pytest.approx(r["max_box_acc@0.5"])
                   for r in rows)  # fmt: skip


def test_the_first_images_span_chunks_and_later_chunks_hold_empty_files(tmp_path):
    run(config(tmp_path, models=("vit",), methods=("cls",), sanity_images=4, flow_layers="none"))
    with open_store(tmp_path) as store:
        table = store.sanity("vit")
        assert sorted(set(table["image_id"])) == store.image_ids()[:4]  # chunk 0 (3 images) and 1 of chunk 1
        assert not store.problems
    files = sorted(p.name for p in (tmp_path / "models" / "vit").glob("sanity-*.parquet"))
    assert files == ["sanity-00000.parquet", "sanity-00001.parquet", "sanity-00002.parquet"]  # 7 images, chunks of 3


def test_no_sanity_images_no_table(tmp_path):
    run(config(tmp_path, sanity_images=0, flow_layers="none"))
    with open_store(tmp_path) as store:
        assert not store.problems and not store.manifest["models"]["vit"]["sanity"]
        assert "flow" not in store.manifest["models"]["vit"]["methods"]
        with pytest.raises(StoreError, match="randomisation curves"):
            store.sanity("vit")
    assert not list(tmp_path.rglob("sanity-*.parquet"))


def test_command_line_flags(tmp_path, capsys):
    parsed = Config.from_args(["--flow-layers", "0,-1", "--sanity-images", "3", "--models", "vit,resnet50"])
    assert (parsed.flow_layers, parsed.sanity_images) == ("0,-1", 3)
    assert parsed.methods_of("vit")[-1] == "flow" and "flow" not in parsed.methods_of("resnet50")
    assert parsed.flow_layers_of("vit") == (0, 11)
    default = Config.from_args([])  # auto: curves on a GPU only (seconds per method and image on a CPU)
    assert default.sanity_images == (8 if default.resolved_device().startswith("cuda") else 0)
    assert default.flow_layers == "none" and Config.from_args(["--device", "cuda"]).sanity_images == 8
    for argv, message in (
        (["--sanity-images", "-1"], "--sanity-images"),
        (["--flow-layers", "12"], "flow layers must be in -12..11"),
    ):
        with pytest.raises(SystemExit, match=message):
            Config.from_args(argv)
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--flow-layers" in out and "--sanity-images" in out
