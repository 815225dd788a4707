"""Loaders of annotated image sets: tiny WikiChurches, COCO and Hugging Face datasets written into tmp_path.

python -m pytest tests/test_datasets.py -q
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

import vitattn.datasets as vd
from vitattn.boxes import check_box
from vitattn.datasets import AnnotatedImage, load_annotated, load_coco, load_examples, load_wikichurches

# ---------------------------------------------------------------- helpers


def write_image(path: Path, size: tuple[int, int], color=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def png_bytes(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_json(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


# ---------------------------------------------------------------- WikiChurches

META = [{"name": "Portal", "parents": []}, {"name": "Rose Window", "parents": [2]}, {"name": "Window", "parents": []}]


def church_doc() -> dict:
    """Two images: one keyed with its extension, one without; a clamped box; int and string labels."""
    return {
        "meta": META,
        "info": "extra keys are ignored",
        "annotations": {
            "Q2_wd0": {
                "styles": ["Q46261", "Q999"],
                "bbox_groups": [{"group_label": "facade", "elements": [{"left": 0.5, "top": 0.0, "width": 0.5,
                                                                        "height": 1.0, "label": "tower"}]}],
            },
            "Q1_wd0.jpg": {
                "styles": ["Q176483"],
                "bbox_groups": [
                    {"group_label": 0, "elements": [
                        {"left": 0.125, "top": 0.25, "width": 0.5, "height": 0.375, "label": 0},
                        {"left": -0.0625, "top": 0.5, "width": 0.25, "height": 0.25, "label": 1},
                    ]},
                    {"group_label": 2, "elements": [{"left": 0.875, "top": 0.75, "width": 0.25, "height": 0.25,
                                                     "label": 1}]},
                ],
            },
        },
    }  # fmt: skip


@pytest.fixture
def churches(tmp_path: Path) -> Path:
    write_image(tmp_path / "images" / "Q1_wd0.jpg", (64, 32))  # non-square
    write_image(tmp_path / "images" / "Q2_wd0.png", (16, 16))
    return write_json(tmp_path / "building_parts.json", church_doc())


def test_wikichurches_boxes_labels_and_styles(churches: Path):
    q1, q2 = load_wikichurches(churches)
    assert [q1.id, q2.id] == ["Q1_wd0", "Q2_wd0"]
    assert q1.path == churches.parent / "images" / "Q1_wd0.jpg"
    assert q2.path == churches.parent / "images" / "Q2_wd0.png"
    assert [b.box for b in q1.boxes] == [
        (0.125, 0.25, 0.625, 0.625),  # left/top/width/height -> corners
        (0.0, 0.5, 0.1875, 0.75),  # negative left clamped to 0, right edge kept at -0.0625 + 0.25
        (0.875, 0.75, 1.0, 1.0),  # right and bottom clamped to 1
    ]
    assert [(b.label, b.group) for b in q1.boxes] == [
        ("Portal", "Portal"),
        ("Rose Window", "Portal"),
        ("Rose Window", "Window"),
    ]
    assert q1.boxes[1].extra == {"label_id": 1}
    assert [(b.box, b.label, b.group) for b in q2.boxes] == [((0.5, 0.0, 1.0, 1.0), "tower", "facade")]
    assert q1.meta["styles"] == ["Gothic"]
    assert q2.meta["styles"] == ["Romanesque", "Q999"]
    assert q2.meta["style_ids"] == ["Q46261", "Q999"]
    assert q1.load().size == (64, 32)


def test_wikichurches_image_dir_argument(churches: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    (churches.parent / "images").rename(elsewhere)
    assert [r.path.parent for r in load_wikichurches(churches, elsewhere)] == [elsewhere, elsewhere]


def entry(doc: dict, **changes) -> dict:
    """The church doc with image 'Q1_wd0.jpg' changed."""
    doc["annotations"]["Q1_wd0.jpg"].update(changes)
    return doc


def element(doc: dict, **changes) -> dict:
    """The church doc with its image 'Q1_wd0.jpg', group 1, element 0 changed; a value of None deletes the key."""
    item = doc["annotations"]["Q1_wd0.jpg"]["bbox_groups"][1]["elements"][0]
    item.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del item[key]
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: element(d, width=-0.1), ", group 1, element 0: width is negative (-0.1)"),
        (lambda d: element(d, height=-0.5), ", group 1, element 0: height is negative (-0.5)"),
        (lambda d: element(d, height=None), ", group 1, element 0: missing 'height'"),
        (lambda d: element(d, left="0.1"), ", group 1, element 0: 'left' must be a finite number, got '0.1'"),
        (lambda d: element(d, label=7), ", group 1, element 0: label 7 is not an index into the file's 'meta' list"),
        (lambda d: element(d, left=1.5), ", group 1, element 0 (1.0, 0.75, 1.0, 1.0) has zero area"),  # off the image
        (lambda d: entry(d, bbox_groups={}), ": 'bbox_groups' must be a list"),
        (lambda d: entry(d, bbox_groups=["x"]), ", group 0: expected an object"),
    ],
)
def test_wikichurches_malformed_entries_name_file_and_entry(churches: Path, change, message: str):
    write_json(churches, change(church_doc()))
    with pytest.raises(ValueError, match=re.escape("building_parts.json: image 'Q1_wd0.jpg'" + message)):
        load_wikichurches(churches)


def test_wikichurches_malformed_file(churches: Path):
    churches.write_text('{"annotations": [1, 2]}')
    with pytest.raises(ValueError, match=r"building_parts\.json: expected an object whose 'annotations'"):
        load_wikichurches(churches)
    churches.write_text("{not json")
    with pytest.raises(ValueError, match=r"building_parts\.json: not valid JSON"):
        load_wikichurches(churches)


def test_wikichurches_missing_image_names_id_and_folder(churches: Path):
    (churches.parent / "images" / "Q2_wd0.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"image 'Q2_wd0'.* in .*images"):
        load_wikichurches(churches)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "a/b", "", ".hidden", "x" * 129, "sp ace"])
def test_unsafe_ids_are_refused(churches: Path, bad: str):
    doc = church_doc()
    doc["annotations"][bad] = doc["annotations"].pop("Q2_wd0")
    write_json(churches, doc)
    with pytest.raises(ValueError, match="not a safe identifier"):
        load_wikichurches(churches)
    with pytest.raises(ValueError, match="not a safe identifier"):
        AnnotatedImage(bad, (), {}, Path("x.jpg"))


def test_is_safe_id_is_check_ids_rule():
    for value in ("astronaut", "IMG_0001.rf.abc", "a" * 128):
        assert vd.is_safe_id(value) and vd.check_id(value) == value
    for value in ("../", "", ".hidden", "a b", "a" * 129, 397133, None):
        assert vd.is_safe_id(value) is False
        with pytest.raises(ValueError, match="not a safe identifier"):
            vd.check_id(value)


def test_make_safe_id():
    assert vd.make_safe_id("../../etc/passwd") == "etc_passwd"
    assert vd.make_safe_id(397133) == "397133"
    assert vd.make_safe_id("IMG 0001.rf.abc") == "IMG_0001.rf.abc"
    with pytest.raises(ValueError, match="not a safe identifier"):
        vd.make_safe_id("../")


# ---------------------------------------------------------------- COCO


def coco_doc() -> dict:
    return {
        "info": {"description": "tiny"},
        "images": [
            {"id": 7, "file_name": "wide.jpg", "width": 256, "height": 128},
            {"id": 8, "file_name": "sub/square.png", "width": 64, "height": 64},
            {"id": 9, "file_name": "unannotated.jpg", "width": 10, "height": 10},
        ],
        "categories": [{"id": 1, "name": "cat", "supercategory": "animal"}, {"id": 3, "name": "cup"}],
        "annotations": [
            {"id": 100, "image_id": 7, "category_id": 1, "bbox": [32, 16, 64, 32], "iscrowd": 0},
            {"id": 101, "image_id": 7, "category_id": 3, "bbox": [240, 0, 32, 16], "iscrowd": 1},
            {"id": 102, "image_id": 8, "category_id": 3, "bbox": [0, 0, 16, 64]},
        ],
    }


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    write_image(tmp_path / "imgs" / "wide.jpg", (256, 128))
    write_image(tmp_path / "imgs" / "sub" / "square.png", (64, 64))
    return write_json(tmp_path / "instances.json", coco_doc())


def test_coco_pixel_boxes_to_convention(coco: Path):
    square, wide = load_coco(coco, coco.parent / "imgs")  # image 9 has no annotation: skipped
    assert [square.id, wide.id] == ["square", "wide"]
    assert (wide.width, wide.height, wide.meta["coco_id"]) == (256, 128, 7)
    assert [b.box for b in wide.boxes] == [(0.125, 0.125, 0.375, 0.375), (0.9375, 0.0, 1.0, 0.125)]  # 2nd clamped
    assert [(b.label, b.group, b.extra["iscrowd"]) for b in wide.boxes] == [("cat", "animal", False), ("cup", "", True)]
    assert wide.boxes[1].extra["annotation_id"] == 101
    assert square.boxes[0].box == (0.0, 0.0, 0.25, 1.0)
    assert square.path == coco.parent / "imgs" / "sub" / "square.png"


def coco_with(change) -> dict:
    doc = coco_doc()
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["annotations"][0].update(category_id=2), r"annotation 0 \(id 100\): category_id 2 is not in"),
        (lambda d: d["annotations"][1].update(image_id=99), r"annotation 1 \(id 101\): image_id 99 is not in"),
        (lambda d: d["annotations"][2].update(bbox=[1, 2, 3]), r"annotation 2 \(id 102\): bbox must be four numbers"),
        (lambda d: d["annotations"][2].update(bbox=[1, 2, -3, 4]), r"annotation 2 \(id 102\): .*negative width"),
        (lambda d: d["annotations"][0].pop("bbox"), r"annotation 0 \(id 100\): missing 'bbox'"),
        (lambda d: d["images"][1].update(width=0), r"image 1: width must be positive"),
        (lambda d: d["images"][0].update(file_name="../../etc/passwd"), r"image 0: file name '\.\./\.\./etc/passwd'"),
        (lambda d: d["images"][0].update(file_name="/etc/passwd"), r"image 0: file name '/etc/passwd'"),
        (lambda d: d.pop("categories"), r"missing 'categories'"),
    ],
)
def test_coco_malformed_entries_name_file_and_entry(coco: Path, change, message: str):
    write_json(coco, coco_with(change))
    with pytest.raises(ValueError, match=r"instances\.json: " + message):
        load_coco(coco, coco.parent / "imgs")


def test_coco_missing_image_names_id_and_folder(coco: Path):
    (coco.parent / "imgs" / "wide.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"image 'wide': wide\.jpg not found in .*imgs"):
        load_coco(coco, coco.parent / "imgs")


def test_duplicate_ids_are_refused(coco: Path):
    write_image(coco.parent / "imgs" / "other" / "wide.png", (8, 8))
    write_json(coco, coco_with(lambda d: d["images"][1].update(file_name="other/wide.png")))
    with pytest.raises(ValueError, match="instances.json: two images have the id 'wide'"):
        load_coco(coco, coco.parent / "imgs")


# ---------------------------------------------------------------- the record


def test_load_applies_exif_orientation(tmp_path: Path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))  # stored: red left half, blue right half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    upright = AnnotatedImage("rotated", (), {}, tmp_path / "rotated.jpg").load()
    assert upright.size == (20, 40)
    assert upright.mode == "RGB"
    top, bottom = upright.getpixel((10, 5)), upright.getpixel((10, 35))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # red on top, blue below


def test_load_from_bytes_and_unreadable_files(tmp_path: Path):
    gray = io.BytesIO()
    Image.new("L", (6, 4), 128).save(gray, format="PNG")
    assert AnnotatedImage("bytes", (), {}, None, gray.getvalue()).load().mode == "RGB"
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"image 'junk' .*junk\.jpg.* is not an image PIL can read"):
        AnnotatedImage("junk", (), {}, tmp_path / "junk.jpg").load()
    with pytest.raises(FileNotFoundError, match=r"image 'gone': file not found"):
        AnnotatedImage("gone", (), {}, tmp_path / "gone.jpg").load()
    with pytest.raises(ValueError, match="exactly one of path and data"):
        AnnotatedImage("both", (), {}, tmp_path / "junk.jpg", b"x")


# ---------------------------------------------------------------- bundled examples


def test_bundled_examples():
    examples = load_examples()
    assert 5 <= len(examples) <= 8
    assert [r.id for r in examples] == sorted(r.id for r in examples)
    sources = (vd.EXAMPLES_DIR / "SOURCES.md").read_text()
    shapes = set()
    for record in examples:
        assert re.fullmatch(vd.SAFE_ID, record.id)
        assert record.path.parent == vd.EXAMPLES_DIR
        assert f"`{record.path.name}`" in sources
        assert record.path.stat().st_size < 200_000
        image = record.load()
        assert image.size == (record.width, record.height)
        shapes.add((image.width > image.height) - (image.width < image.height))
        assert record.boxes and all(check_box(b.box) == b.box and b.label for b in record.boxes)
        assert record.meta["license"] and record.meta["source"]
    assert shapes == {-1, 0, 1}  # portrait, square and landscape images


# ---------------------------------------------------------------- Hugging Face datasets


@pytest.fixture
def detection_dataset():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {
            "image_id": datasets.Value("int64"),
            "image": datasets.Image(),
            "objects": {
                "bbox": datasets.List(datasets.List(datasets.Value("float32"), length=4)),
                "category": datasets.List(datasets.ClassLabel(names=["portal", "rose window", "tower"])),
            },
        }
    )
    rows = {
        "image_id": [42, 5],
        "image": [{"bytes": png_bytes((200, 100)), "path": None}, {"bytes": png_bytes((50, 50)), "path": None}],
        "objects": [
            {"bbox": [[20.0, 10.0, 50.0, 40.0], [0.0, 0.0, 200.0, 100.0]], "category": [1, 2]},
            {"bbox": [[5.0, 5.0, 20.0, 10.0]], "category": [0]},
        ],
    }
    return datasets.Dataset.from_dict(rows, features=features)


def approx(box: tuple[float, ...]):
    return pytest.approx(box, abs=1e-12)


def check_detection(records: list[AnnotatedImage]):
    assert [r.id for r in records] == ["42", "5"]  # sorted as strings
    first, second = records
    assert (first.width, first.height) == (200, 100)
    assert [b.box for b in first.boxes] == [approx((0.1, 0.1, 0.35, 0.5)), (0.0, 0.0, 1.0, 1.0)]  # [20, 10, 50, 40]
    assert [b.label for b in first.boxes] == ["rose window", "tower"]
    assert [(b.box, b.label) for b in second.boxes] == [(approx((0.1, 0.1, 0.5, 0.3)), "portal")]  # [5, 5, 20, 10]
    assert first.load().size == (200, 100)
    assert first.path is None and first.data


def test_hf_detection_from_save_to_disk(detection_dataset, tmp_path: Path):
    detection_dataset.save_to_disk(str(tmp_path / "saved"))
    check_detection(vd.load_hf_detection(tmp_path / "saved"))
    check_detection(load_annotated(f"{tmp_path / 'saved'}::train"))


def test_hf_detection_from_local_parquet_folder(detection_dataset, tmp_path: Path):
    detection_dataset.to_parquet(str(tmp_path / "repo" / "data" / "train-00000-of-00001.parquet"))
    check_detection(vd.load_hf_detection(tmp_path / "repo", cache_dir=tmp_path / "cache"))


def test_hf_detection_row_ids_and_formats(detection_dataset, tmp_path: Path):
    ds = detection_dataset.remove_columns("image_id")
    ds.save_to_disk(str(tmp_path / "saved"))
    records = vd.load_hf_detection(tmp_path / "saved", bbox_format="xyxy")
    assert [r.id for r in records] == ["0", "1"]
    assert records[0].boxes[0].box == approx((0.1, 0.1, 0.25, 0.4))  # [20, 10, 50, 40] read as pixel corners
    with pytest.raises(ValueError, match=r"row 0, object 0 .* has zero area"):
        vd.load_hf_detection(tmp_path / "saved", bbox_format="xywh_norm")  # pixels read as normalized: clamped away
    with pytest.raises(ValueError, match="no column 'boxes'"):
        vd.load_hf_detection(tmp_path / "saved", objects_column="boxes")


@pytest.mark.parametrize(
    ("fmt", "bbox", "expected"),
    [
        ("coco", [50, 25, 100, 50], (0.25, 0.25, 0.75, 0.75)),
        ("xyxy", [50, 25, 150, 75], (0.25, 0.25, 0.75, 0.75)),
        ("xywh_norm", [0.25, 0.25, 0.5, 0.5], (0.25, 0.25, 0.75, 0.75)),
        ("xyxy_norm", [0.25, 0.25, 0.75, 0.75], (0.25, 0.25, 0.75, 0.75)),
        ("yolo", [0.5, 0.5, 0.5, 0.5], (0.25, 0.25, 0.75, 0.75)),
    ],
)
def test_bbox_formats(fmt: str, bbox: list[float], expected: tuple):
    assert vd.BBOX_FORMATS[fmt](bbox, 200, 100, "box") == expected


# ---------------------------------------------------------------- the spec string


def test_load_annotated_dispatch(churches: Path, coco: Path):
    assert [r.id for r in load_annotated("examples")] == [r.id for r in load_examples()]
    assert [r.id for r in load_annotated(str(churches))] == ["Q1_wd0", "Q2_wd0"]
    assert [r.id for r in load_annotated(str(churches.parent))] == ["Q1_wd0", "Q2_wd0"]  # folder with the json
    assert [r.id for r in load_annotated(f"{coco}::{coco.parent / 'imgs'}")] == ["square", "wide"]
    examples_json = vd.EXAMPLES_DIR / "annotations.json"
    assert [r.id for r in load_annotated(f"{examples_json}::{vd.EXAMPLES_DIR}")] == [r.id for r in load_examples()]


def test_load_annotated_hub_spec(monkeypatch):
    calls = []
    monkeypatch.setattr(vd, "load_hf_detection", lambda *a, **k: calls.append((a, k)) or [])
    load_annotated("hf://datasets/ns/church-parts")
    load_annotated("hf://datasets/ns/church-parts@v1.0::validation")
    assert calls == [
        (("ns/church-parts", "train"), {"revision": None}),
        (("ns/church-parts", "validation"), {"revision": "v1.0"}),
    ]
    with pytest.raises(ValueError, match=r"expected hf://datasets/<namespace>/<name>"):
        load_annotated("hf://models/ns/vit")


def test_load_annotated_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no file or folder"):
        load_annotated(str(tmp_path / "nope.json"))
    write_json(tmp_path / "other.json", {"hello": 1})
    with pytest.raises(ValueError, match=r"other\.json: not a WikiChurches .*, COCO .* or vitattn-boxes/1"):
        load_annotated(str(tmp_path / "other.json"))
