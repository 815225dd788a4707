"""The store read back from a local folder: every map and feature equals `analyze`, tables equal their sources,
errors name what is valid, damage is reported and the rest keeps working.

Run: python -m pytest tests/test_store.py -q
"""

import json
import shutil
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from small_models import small_model, small_overrides

import vitattn
from precompute import Config, run
from vitattn.datasets import load_examples
from vitattn.metrics import (
    BASELINE_NAMES,
    BOX_COLUMNS,
    FUSED_HEAD,
    METRIC_NAMES,
    METRICS_COLUMNS,
    baseline_metrics,
    score_batch,
)
from vitattn.store import SCHEMA_VERSION, StoreError, open_store
from vitattn.store.layout import MODEL_TABLES, table_path

MODELS = list(vitattn.MODELS)
CHUNK = 3  # 7 examples -> chunks of 3, 3 and 1 images


def float16_close(stored: np.ndarray, expected: np.ndarray) -> None:
    assert stored.dtype == np.float32 and stored.shape == expected.shape
    np.testing.assert_allclose(stored, expected, rtol=2**-10, atol=1e-6)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A store of the bundled examples under every model (small random-weight variants)."""
    out = tmp_path_factory.mktemp("store")
    overrides = {name: small_overrides(name) for name in MODELS}
    run(Config(output=out, random_weights=True, overrides=overrides, chunk_size=CHUNK, batch_size=2, progress=False))
    return out


@pytest.fixture(scope="module")
def store(folder):
    return open_store(folder)


@pytest.fixture(scope="module")
def records():
    return {r.id: r for r in load_examples()}


@pytest.fixture(scope="module")
def analyses(records):
    """`analyze` of the examples under each model, computed once: name -> image id -> Analysis."""
    images = [r.load() for r in records.values()]
    out = {}
    for name in MODELS:
        stats = vitattn.MODELS[name].family == "vit"  # head statistics: ViTs only, as the job asks
        out[name] = dict(zip(records, small_model(name).analyze(images, batch_size=4, stats=stats), strict=True))
    return out


@pytest.mark.parametrize("name", MODELS)
def test_every_map_equals_analyze(store, analyses, name):
    entry = store.manifest["models"][name]
    for image_id, analysis in analyses[name].items():
        assert list(entry["layers"]) == list(analysis.methods)
        for method in analysis.methods:
            assert entry["layers"][method] == list(analysis.layers(method))
            for layer in analysis.layers(method):
                float16_close(store.map(image_id, name, method, layer), analysis.map(method, layer))
                if analysis.has_heads(method):
                    heads = analysis.heads(method, layer)
                    assert entry["heads"][method] == heads.shape[0]
                    for head in range(heads.shape[0]):
                        float16_close(store.map(image_id, name, method, layer, head), heads[head])


@pytest.mark.parametrize("name", MODELS)
def test_every_feature_equals_analyze(store, analyses, name):
    entry = store.manifest["models"][name]
    assert entry["feature_layers"] == list(range(entry["num_layers"]))
    for image_id, analysis in analyses[name].items():
        for layer in entry["feature_layers"]:
            stored, exact = store.features(image_id, name, layer), analysis.features(layer)
            if entry["feature_dtype"] == "float16":
                float16_close(stored, exact)
            else:  # int8, the default: within half a step (max |token| / 127 / 2) of every value
                assert entry["feature_dtype"] == "int8" and stored.dtype == np.float32
                step = np.abs(exact).max(axis=1, keepdims=True) / 127  # [N, 1]
                assert (np.abs(stored - exact) <= 0.5 * step * (1 + 1e-3) + 1e-6).all()


def test_images_boxes_and_meta_round_trip(store, records):
    assert store.image_ids() == sorted(records)
    for image_id, record in records.items():
        stored = store.image(image_id)
        original = record.load()
        assert stored.id == image_id and stored.image.mode == "RGB"
        assert (stored.width, stored.height) == original.size == stored.image.size
        assert np.array_equal(np.asarray(stored.image), np.asarray(original))
        assert stored.boxes == record.boxes and stored.meta == record.meta
    stored = store.image("coffee")
    stored.image.paste((0, 0, 0), (0, 0, 50, 50))  # a copy: the cache is not touched
    assert np.array_equal(np.asarray(store.image("coffee").image), np.asarray(records["coffee"].load()))


def test_manifest(store, folder):
    manifest = store.manifest
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["vitattn_version"] == vitattn.__version__
    assert manifest["created"].endswith("Z") and manifest["source"] == "examples"
    assert store.models() == MODELS and store.random_weights and store.problems == []
    for name, entry in manifest["models"].items():
        spec = vitattn.MODELS[name]
        assert entry["checkpoint"] == spec.timm_id and entry["random_weights"] is True
        assert entry["methods"] == list(spec.methods) and entry["overrides"] == json.loads(
            json.dumps(small_overrides(name))
        )
        assert {"num_layers", "num_heads", "grid", "feature_layers"} <= set(entry)
    assert manifest["models"]["resnet50"]["heads"] == {"gradcam": 0}
    assert store.revision is None and store.location == str(folder)


def test_metrics_table_equals_score_batch_of_the_stored_maps(store, records):
    table = store.metrics()
    assert tuple(table) == METRICS_COLUMNS
    n_maps = sum(
        (1 + e["heads"][m]) * len(layers)
        for e in store.manifest["models"].values()
        for m, layers in e["layers"].items()
    )
    assert len(table["image_id"]) == n_maps * len(records)
    vit = store.metrics("vit")
    assert set(vit["model"]) == {"vit"} and len(vit["image_id"]) == len(table["image_id"][table["model"] == "vit"])
    rows = (vit["image_id"] == "astronaut") & (vit["method"] == "cls") & (vit["layer"] == 1)
    heads = vit["head"][rows]
    maps = np.stack([store.map("astronaut", "vit", "cls", 1, None if h == FUSED_HEAD else int(h)) for h in heads])
    scores = score_batch(maps, records["astronaut"].boxes)
    for name in METRIC_NAMES:  # the job scores with the batched scorer: the numpy reference's numbers to rounding
        np.testing.assert_allclose(vit[name][rows], scores.metrics[name], rtol=0, atol=1e-6, err_msg=name)
    boxes = store.box_metrics("vit")
    assert tuple(boxes) == BOX_COLUMNS
    box_rows = (boxes["image_id"] == "astronaut") & (boxes["method"] == "cls") & (boxes["layer"] == 1)
    n_boxes = len(records["astronaut"].boxes)
    assert list(boxes["label"][box_rows][:n_boxes]) == [b.label for b in records["astronaut"].boxes]
    np.testing.assert_array_equal(boxes["iou"][box_rows], scores.box_iou.ravel())


def test_baselines_on_each_models_grid(store, records):
    table = store.baselines()
    assert {"image_id", "model", "grid_h", "grid_w", "baseline", *METRIC_NAMES, "prompt"} == set(table)
    assert len(table["image_id"]) == len(BASELINE_NAMES) * len(records) * len(MODELS)
    for model in ("vit", "resnet50"):
        rows = store.baselines(model)
        grid = tuple(store.manifest["models"][model]["grid"])
        expected = baseline_metrics(records["cell"].boxes, image=np.asarray(records["cell"].load()), grid=grid)
        for baseline, values in expected.items():
            row = (rows["image_id"] == "cell") & (rows["baseline"] == baseline)
            assert row.sum() == 1 and (rows["grid_h"][row][0], rows["grid_w"][row][0]) == grid
            for name in METRIC_NAMES:  # scored by the batched scorer: the numpy reference's numbers to rounding
                assert rows[name][row][0] == pytest.approx(values[name], abs=1e-6), name


def test_errors_name_what_is_valid(store):
    with pytest.raises(StoreError, match="model 'nope' is not in this store; models: dinov2, dinov3"):
        store.map("coffee", "nope", "cls", 0)
    with pytest.raises(StoreError, match="image 'nope' is not in this store; images: astronaut, camera"):
        store.map("nope", "vit", "cls", 0)
    with pytest.raises(StoreError, match="no method 'gradcam' in this store; valid methods: cls, mean, rollout, agcam"):
        store.map("coffee", "vit", "gradcam", 0)
    with pytest.raises(StoreError, match=r"layer 5 is not in this store for vit/cls; valid layers: 0\.\.1"):
        store.map("coffee", "vit", "cls", 5)
    with pytest.raises(StoreError, match=r"head 4 out of range for vit/cls: valid heads 0\.\.3"):
        store.map("coffee", "vit", "cls", 0, 4)
    with pytest.raises(StoreError, match="fuses all heads by definition; use head=None"):
        store.map("coffee", "vit", "rollout", 0, 0)
    with pytest.raises(StoreError, match=r"layer True is not in this store"):
        store.map("coffee", "vit", "cls", True)
    with pytest.raises(StoreError, match=r"valid layers: 0\.\.3"):
        store.features("coffee", "resnet50", 4)
    for trick in ("../coffee", "a/b", "", "/etc/passwd", ".hidden", None):
        with pytest.raises(StoreError, match="not a safe identifier"):
            store.image(trick)
    with pytest.raises(StoreError, match="not in this store"):
        store.metrics("nope")
    assert issubclass(StoreError, ValueError)


def test_opening_a_folder_that_is_no_store(tmp_path):
    with pytest.raises(StoreError, match="no manifest.json; not a vitattn store"):
        open_store(tmp_path)
    with pytest.raises(StoreError, match="not a folder"):
        open_store(tmp_path / "missing")
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(StoreError, match="not valid json"):
        open_store(tmp_path)


def test_layout_sorted_files_and_row_groups(folder, store):
    for model in MODELS:
        for table in MODEL_TABLES:
            assert (folder / table_path(table, 0, model)).is_file()
    maps = pq.ParquetFile(folder / table_path("maps", 0, "vit"))
    assert maps.metadata.num_row_groups == CHUNK  # one row group per image
    ids = [maps.metadata.row_group(i).column(0).statistics.min for i in range(CHUNK)]
    assert ids == ["astronaut", "camera", "cell"]
    assert maps.metadata.row_group(0).sorting_columns[0].column_index == 0
    features = pq.ParquetFile(folder / table_path("features", 1, "resnet50"))
    assert features.metadata.num_row_groups == CHUNK * 4  # one per (image, layer)
    images = pq.ParquetFile(folder / table_path("images", 2))
    assert images.metadata.num_row_groups == 1 and images.read().column("image_id").to_pylist() == ["rocket"]
    assert not list(folder.glob("**/.*tmp*"))  # no temporary file left behind
    card = (folder / "README.md").read_text()
    for table in ("images", *MODEL_TABLES):
        assert f"config_name: {table}" in card
    assert "models/*/maps-*.parquet" in card and "random weights" in card


def test_damaged_parts_are_reported_and_the_rest_keeps_working(folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    truncated = copy / table_path("maps", 0, "vit")
    truncated.write_bytes(truncated.read_bytes()[:1000])
    (copy / table_path("features", 1, "clip")).unlink()
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    store = open_store(copy)
    assert any("unknown schema version 99" in p for p in store.problems)
    assert any("model 'clip': 1 of 21 files missing (models/clip/features-00001.parquet)" in p for p in store.problems)
    with pytest.raises(StoreError, match="models/vit/maps-00000.parquet is damaged"):
        store.map("astronaut", "vit", "cls", 0)
    assert any("models/vit/maps-00000.parquet is damaged" in p for p in store.problems)
    with pytest.raises(StoreError, match="damaged"):  # remembered: not read again
        store.map("camera", "vit", "cls", 0)
    with pytest.raises(StoreError, match="features-00001.parquet is missing"):
        store.features("chelsea", "clip", 0)
    assert store.map("chelsea", "vit", "cls", 0).shape == (4, 4)  # another chunk of the same model
    assert store.features("astronaut", "clip", 0).shape == (16, 64)
    assert store.image("astronaut").width == 512
    assert len(store.metrics("vit")["image_id"]) == len(open_store(folder).metrics("vit")["image_id"])


def test_damaged_metrics_file_is_skipped(folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / table_path("metrics", 2, "vit")).write_bytes(b"PAR1 not really")
    store = open_store(copy)
    assert set(store.metrics("vit")["image_id"]) == {"astronaut", "camera", "cell", "chelsea", "coffee", "retina"}
    assert any("models/vit/metrics-00002.parquet is damaged" in p for p in store.problems)


def test_repeated_views_come_from_memory(folder, monkeypatch):
    store = open_store(folder)
    reads = []
    original = store._files.open
    monkeypatch.setattr(store._files, "open", lambda rel: reads.append(rel) or original(rel))
    first = store.map("coffee", "dinov2", "mean", 1, 2)
    store.map("coffee", "dinov2", "cls", 0)  # same image: same row group
    store.map("camera", "dinov2", "cls", 0)  # same file, another row group: the footer is reused
    again = store.map("coffee", "dinov2", "mean", 1, 2)
    assert reads == ["models/dinov2/maps-00001.parquet", "models/dinov2/maps-00000.parquet"]
    assert np.array_equal(first, again) and first is not again
    again[0, 0] = 1e6  # views are copies
    assert store.map("coffee", "dinov2", "mean", 1, 2)[0, 0] != 1e6


def test_cache_is_bounded(folder):
    store = open_store(folder, cache_bytes=100_000)  # resnet50 features: 295, 147, 74 and 37 KB per image
    for image_id in store.image_ids():
        for layer in (0, 1, 2, 3):
            store.features(image_id, "resnet50", layer)
    assert 0 < store._cache.size <= 100_000 and 0 < len(store._cache) <= 2
    store.close()
    assert store.features("coffee", "resnet50", 3).shape == (9, 2048)


def test_views_from_many_threads(store):
    expected = {i: store.map(i, "clip", "cls", 1) for i in store.image_ids()}
    fresh = open_store(store.location)
    errors = []

    def work(image_id):
        try:
            for _ in range(5):
                assert np.array_equal(fresh.map(image_id, "clip", "cls", 1), expected[image_id])
        except Exception as e:  # noqa: BLE001 - collected and re-raised below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in store.image_ids() * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_tables_written_by_another_version_still_read(folder, tmp_path):
    """A metric added to vitattn after a store was made is NaN in its rows; a column this version lacks is kept."""
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    path = copy / table_path("metrics", 0, "vit")
    old = pq.read_table(path)
    old = old.drop_columns(["coverage"]).append_column("future_metric", pa.array(np.ones(old.num_rows)))
    pq.write_table(old, path)
    table = open_store(copy).metrics("vit")
    assert tuple(table)[: len(METRICS_COLUMNS)] == METRICS_COLUMNS and "future_metric" in table
    from_old = np.isin(table["image_id"], ["astronaut", "camera", "cell"])
    assert np.isnan(table["coverage"][from_old]).all() and not np.isnan(table["coverage"][~from_old]).any()
    assert (table["future_metric"][from_old] == 1).all() and np.isnan(table["future_metric"][~from_old]).all()


# ---------------------------------------------------------------------------------------------- predictions, meta


@pytest.mark.parametrize("name", MODELS)
def test_predictions_equal_analyze(store, analyses, name):
    entry = store.manifest["models"][name]
    assert entry["predictions"] is vitattn.MODELS[name].classifier
    for image_id, analysis in analyses[name].items():
        stored = store.predictions(image_id, name)
        if analysis.predictions is None:
            assert stored is None
            continue
        assert [label for label, _ in stored] == [label for label, _ in analysis.predictions]
        np.testing.assert_allclose([p for _, p in stored], [p for _, p in analysis.predictions], rtol=1e-4)
    with pytest.raises(StoreError, match="image 'nope' is not in this store"):
        store.predictions("nope", name)


def test_predictions_table_holds_the_target(folder):
    table = pq.read_table(folder / table_path("predictions", 0, "resnet50")).to_pylist()
    assert [r["rank"] for r in table if r["image_id"] == "astronaut"] == [0, 1, 2, 3, 4]
    assert all(r["target"] is not None and 0 <= r["target"] < 1000 for r in table)  # gradcam explains the top-1
    assert not (folder / table_path("predictions", 0, "dinov2")).exists()  # no classifier head, no file


def test_image_meta_reads_the_meta_column_only(store, records, monkeypatch):
    fresh = open_store(store.location)
    read_columns = []
    original = pq.ParquetFile.read
    monkeypatch.setattr(
        pq.ParquetFile,
        "read",
        lambda self, columns=None, **kw: read_columns.append(columns) or original(self, columns, **kw),
    )
    meta = fresh.image_meta()
    assert meta == {i: r.meta for i, r in sorted(records.items())}
    assert read_columns == [["image_id", "meta"]] * 3  # one read per images file, two small columns
    meta["coffee"]["license"] = "changed"  # a copy
    assert fresh.image_meta()["coffee"]["license"] != "changed" and len(read_columns) == 3  # from memory


# ---------------------------------------------------------------------------------------------- damaged stores


def damaged_copy(folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    return copy


@pytest.mark.parametrize("damage", ["truncated", "not json", "not a manifest", "no images list", "missing"])
def test_a_damaged_manifest_is_rebuilt_from_the_data_files(folder, tmp_path, damage):
    copy = damaged_copy(folder, tmp_path)
    manifest = copy / "manifest.json"
    text = manifest.read_text()
    if damage == "truncated":
        manifest.write_text(text[: len(text) // 2])
    elif damage == "not json":
        manifest.write_bytes(b"\x00\xff garbage")
    elif damage == "not a manifest":
        manifest.write_text("[1, 2, 3]")
    elif damage == "no images list":
        manifest.write_text(json.dumps({**json.loads(text), "images": "all"}))
    else:
        manifest.unlink()
    store = open_store(copy)
    assert "rebuilt from the data files (9 models, 7 images)" in store.problems[0] and len(store.problems) == 1
    original = open_store(folder)
    assert sorted(store.models()) == sorted(original.models()) and store.image_ids() == original.image_ids()
    for key in ("chunk_size", "random_weights"):
        assert store.manifest[key] == original.manifest[key]
    assert store.manifest["models"] == original.manifest["models"]
    np.testing.assert_array_equal(
        store.map("rocket", "clip", "rollout", 1), original.map("rocket", "clip", "rollout", 1)
    )
    assert store.predictions("cell", "vit") == original.predictions("cell", "vit")
    assert len(store.metrics()["image_id"]) == len(original.metrics()["image_id"])


def test_a_rebuilt_manifest_keeps_chunks_when_files_are_missing(folder, tmp_path):
    copy = damaged_copy(folder, tmp_path)
    (copy / "manifest.json").write_text("{")
    (copy / table_path("images", 1)).unlink()  # chunk 1's ids come from a model's files instead
    for path in (copy / "models/clip").iterdir():
        path.write_bytes(b"PAR1")  # every clip file damaged: clip is left out
    store = open_store(copy)
    assert store.image_ids() == open_store(folder).image_ids() and "clip" not in store.models()
    assert store.map("chelsea", "vit", "cls", 0).shape == (4, 4)  # chunk 1
    with pytest.raises(StoreError, match="images-00001.parquet is missing"):
        store.image("chelsea")
    assert store.image("rocket").width > 0  # chunk 2


def test_a_folder_with_a_damaged_manifest_and_no_data_is_no_store(tmp_path):
    (tmp_path / "manifest.json").write_text("{")
    (tmp_path / "images").mkdir()
    (tmp_path / "images/images-00000.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(StoreError, match="not valid json"):
        open_store(tmp_path)


def test_a_model_with_every_file_missing(folder, tmp_path):
    copy = damaged_copy(folder, tmp_path)
    shutil.rmtree(copy / "models/vit")
    store = open_store(copy)
    assert len(store.problems) == 1 and store.problems[0].startswith("model 'vit': 24 of 24 files missing")
    with pytest.raises(StoreError, match="maps-00000.parquet is missing"):
        store.map("astronaut", "vit", "cls", 0)
    with pytest.raises(StoreError, match="predictions-00000.parquet is missing"):
        store.predictions("astronaut", "vit")
    assert len(store.metrics("vit")["image_id"]) == 0  # an empty table, not an error
    assert store.map("astronaut", "vit32", "cls", 0).shape == (3, 3)


def test_damaged_images_and_predictions_files(folder, tmp_path):
    copy = damaged_copy(folder, tmp_path)
    (copy / table_path("images", 0)).write_bytes(b"PAR1" + b"\0" * 100)
    path = copy / table_path("predictions", 1, "vit32")
    path.write_bytes(path.read_bytes()[:-50])
    store = open_store(copy)
    assert sorted(store.image_meta()) == ["chelsea", "coffee", "retina", "rocket"]  # chunk 0 left out
    assert any("images/images-00000.parquet is damaged" in p for p in store.problems)
    with pytest.raises(StoreError, match="predictions of vit32 for 'coffee' are unavailable: .* is damaged"):
        store.predictions("coffee", "vit32")
    assert len(store.predictions("rocket", "vit32")) == 5


# ---------------------------------------------------------------------------------------- head stats, faithfulness


@pytest.mark.parametrize("name", MODELS)
def test_head_stats_equal_analyze(store, analyses, name):
    if vitattn.MODELS[name].family != "vit":
        assert "headstats" not in store.manifest["models"][name] or not store.manifest["models"][name]["headstats"]
        with pytest.raises(StoreError, match=f"model '{name}' has no head statistics"):
            store.head_stats(name)
        return
    table = store.head_stats(name)
    assert tuple(table) == ("image_id", "model", "layer", "head", "distance_px", "entropy", "prefix_share")
    for image_id, analysis in analyses[name].items():
        rows = table["image_id"] == image_id
        n_layers, n_heads = analysis.head_stats["distance_px"].shape
        assert rows.sum() == n_layers * n_heads
        assert list(zip(table["layer"][rows], table["head"][rows], strict=True)) == [
            (layer, head) for layer in range(n_layers) for head in range(n_heads)
        ]
        for stat, values in analysis.head_stats.items():
            # the job analyzed in batches of 2, the fixture of 4: float32 rounding differs in the last bits
            np.testing.assert_allclose(table[stat][rows], values.astype(np.float32).ravel(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["vit", "siglip", "resnet50"])
def test_faithfulness_equals_evaluate_batch_of_the_stored_maps(store, records, name):
    """The last layer's fused map of every method, as stored, through `evaluate_batch` again: the same curves."""
    from vitattn.faithfulness import evaluate_batch

    entry = store.manifest["models"][name]
    last = entry["num_layers"] - 1
    assert entry["faithfulness"] is True and entry["faithfulness_layers"] == [last]
    table = store.faithfulness(name)
    methods = [m for m in entry["methods"] if last in entry["layers"][m]]
    assert len(table["image_id"]) == len(records) * len(methods) and set(table["layer"]) == {last}
    image_id = "coffee"
    rows = np.flatnonzero(table["image_id"] == image_id)
    assert [table["method"][k] for k in rows] == sorted(methods)
    image = records[image_id].load()
    maps = [store.map(image_id, name, table["method"][k], last) for k in rows]
    expected = evaluate_batch(small_model(name), [image] * len(rows), maps, steps=20, mode="blur")
    for k, f in zip(rows, expected, strict=True):
        assert table["score"][k] == f.score and table["mode"][k] == "blur"
        for column in ("auc_deletion", "auc_insertion", "abpc", "auc_random_deletion", "auc_random_insertion"):
            assert table[column][k] == pytest.approx(getattr(f, column), abs=1e-6)
        for column in ("fractions", "deletion", "insertion", "random_deletion", "random_insertion"):
            np.testing.assert_allclose(table[column][k], getattr(f, column), atol=1e-6)


def test_the_new_tables_are_in_the_card_and_layout(folder):
    card = (folder / "README.md").read_text()
    assert "config_name: headstats" in card and "config_name: faithfulness" in card
    assert (folder / table_path("headstats", 0, "dinov2")).is_file()
    assert not (folder / table_path("headstats", 0, "resnet50")).exists()
    assert (folder / table_path("faithfulness", 2, "resnet50")).is_file()
