"""Features stored as int8 with one scale per token: the quantizer against cases worked out by hand, and the store's
round trip (``--feature-dtype int8``): ``store.features`` gives float32 back, the dtype is in the manifest and the
settings, and changing it redoes the units.

Run: python -m pytest tests/test_quantize.py -q
"""

import numpy as np
import pyarrow.parquet as pq
import pytest
from small_models import small_model, small_overrides

from precompute import Config, Unit, run
from vitattn.datasets import load_examples
from vitattn.store import open_store, table_path
from vitattn.store.quantize import dequantize_int8, quantize_int8, round_trip


def test_a_token_worked_out_by_hand():
    tokens = np.array([[1.0, -0.6, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0], [-254.0, 127.0, 1.0, 0.4]], np.float32)
    q, scale = quantize_int8(tokens)
    assert q.dtype == np.int8 and scale.dtype == np.float32
    np.testing.assert_allclose(scale, [1 / 127, 0.0, 2.0], rtol=1e-7)  # absmax / 127 per token; zeros: 0
    assert q.tolist() == [[127, -76, 32, 0], [0, 0, 0, 0], [-127, 64, 0, 0]]  # 63.5 -> 64, 0.5 -> 0: half to even
    back = dequantize_int8(q, scale)
    assert back[0, 0] == pytest.approx(1.0) and back[2, 0] == -254.0 and (back[1] == 0).all()


def test_the_error_is_at_most_half_a_step_per_token():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(50, 64)).astype(np.float32) * rng.uniform(0.01, 100, size=(50, 1)).astype(np.float32)
    q, scale = quantize_int8(tokens)
    error = np.abs(dequantize_int8(q, scale) - tokens)  # [50, 64]
    assert (error <= scale[:, None] / 2 * (1 + 1e-5)).all()
    assert (np.abs(q).max(axis=1) == 127).all()  # every token uses the whole range
    np.testing.assert_array_equal(round_trip(tokens, "int8"), dequantize_int8(q, scale))


@pytest.mark.parametrize("bad", [np.zeros((2, 3, 4)), np.array([[1.0, np.nan]]), np.array([[np.inf, 0.0]])])
def test_refused(bad):
    with pytest.raises(ValueError):
        quantize_int8(bad)
    with pytest.raises(ValueError, match="feature dtype 'int4'"):
        round_trip(np.zeros((1, 2)), "int4")


def config(out, dtype: str) -> Config:
    small = {"vit": small_overrides("vit")}
    return Config(output=out, models=("vit",), methods=("cls",), feature_layers="0,-1", feature_dtype=dtype,
                  faithfulness_layers="none", overrides=small, chunk_size=4, random_weights=True,
                  progress=False)  # fmt: skip


def payload(path) -> int:
    """Bytes of the feature columns (values, and scale) in a file, without the per-row-group keys and footer."""
    meta = pq.ParquetFile(path).metadata
    return sum(
        meta.row_group(g).column(c).total_compressed_size
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
        if meta.row_group(g).column(c).path_in_schema.split(".")[0] in ("values", "scale")
    )


def test_the_store_round_trip_in_int8(tmp_path):
    run(config(tmp_path / "f16", "float16"))
    run(config(tmp_path / "i8", "int8"))
    f16, i8 = open_store(tmp_path / "f16"), open_store(tmp_path / "i8")
    assert i8.manifest["models"]["vit"]["feature_dtype"] == "int8"
    assert f16.manifest["models"]["vit"]["feature_dtype"] == "float16"
    analyses = small_model("vit").analyze([r.load() for r in load_examples()], methods=["cls"], batch_size=4)
    for image_id, analysis in zip(i8.image_ids(), analyses, strict=True):
        for layer in (0, 1):
            stored = i8.features(image_id, "vit", layer)
            assert stored.dtype == np.float32 and stored.shape == analysis.features(layer).shape
            np.testing.assert_allclose(stored, round_trip(analysis.features(layer), "int8"), rtol=1e-6, atol=1e-7)
    schema = pq.read_schema(tmp_path / "i8" / table_path("features", 0, "vit"))
    assert str(schema.field("values").type) == "binary" and str(schema.field("scale").type) == "list<element: float>"
    size = {d: payload(tmp_path / d / table_path("features", 0, "vit")) for d in ("f16", "i8")}
    assert size["i8"] < 0.6 * size["f16"]  # int8 bytes and one float32 per token (of 64 values) against float16
    assert i8.map("coffee", "vit", "cls", 1).shape == (4, 4)  # the rest of the store is as before


def test_changing_the_dtype_redoes_the_model_units(tmp_path):
    run(config(tmp_path, "float16"))
    redone: list[Unit] = []
    run(config(tmp_path, "int8"), on_unit=redone.append)
    assert {u.model for u in redone} == {"vit"} and len(redone) == 2  # 7 images in chunks of 4
    assert open_store(tmp_path).manifest["models"]["vit"]["feature_dtype"] == "int8"
