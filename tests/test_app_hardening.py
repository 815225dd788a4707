"""The public app against bad input and a damaged store: every bad request is one clear error, and the app serves on.

Each case runs twice: as a plain handler call (``handlers.<endpoint>``: conftest.py) and through ``gradio_client``
against the app launched once (``app_support.app_server``). Files the server must never hand out are asked for over
HTTP; a store with a truncated file, a missing model and an unknown schema version is launched once."""

from __future__ import annotations

import json
import shutil
import struct
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from app_support import AppServer, api_client, app_server, store_dir
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from small_models import noise_image

from vitattn.ui import AppConfig, Explorer
from vitattn.ui.actions import page
from vitattn.ui.data.config import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS

# -- inputs -----------------------------------------------------------------------------------------------------------

# (endpoint, arguments, message of the plain call, message through the client when Gradio's own check answers first)
BAD_CALLS = [
    ("attention", ("nope", "dinov2", "cls", 1, -1, 0.6), "unknown image id 'nope'", None),
    ("attention", ("../../etc/passwd", "dinov2", "cls", 1, -1, 0.6), r"unknown image id '\.\./\.\./etc/passwd'", None),
    ("image", ("../../etc/passwd",), "unknown image id", None),
    ("image", ("upload-../../../etc/passwd",), "unknown or expired; upload the image again", None),
    ("image", ("x" * 5000,), r"unknown image id 'xxxx.*\(5002 chars\)", None),
    ("similarity", ("/etc/passwd", "dinov2", 1, 0.1, 0.1, 0.5, 0.5, 0.6), "unknown image id '/etc/passwd'", None),
    ("predictions", ("nope", "vit"), "unknown image id 'nope'", None),
    ("attention", ("astronaut", "dinoX", "cls", 1, -1, 0.6), "unknown model 'dinoX'; valid models: dinov2", None),
    ("attention", ("astronaut", "dinov2", "magic", 1, -1, 0.6), "no method 'magic'; valid methods: cls, mean", None),
    ("attention", ("astronaut", "dinov2", "pool", 1, -1, 0.6), "model 'dinov2' has no method 'pool'", None),
    ("layers", ("astronaut", "resnet50", "cls", -1, 0.6), "model 'resnet50' has no method 'cls'", None),
    ("attention", ("astronaut", "dinov2", "cls", 2, -1, 0.6), "layer 2 out of range .* valid layers 0..1", None),
    ("attention", ("astronaut", "dinov2", "cls", -1, -1, 0.6), "layer -1 out of range", None),
    ("attention", ("astronaut", "dinov2", "cls", 9, -1, 0.6), "layer 9 out of range", None),
    ("attention", ("astronaut", "dinov2", "cls", 1, 4, 0.6), "head 4 out of range .* valid heads 0..3", None),
    ("attention", ("astronaut", "dinov2", "cls", 1, "x", 0.6), "head must be a whole number, got 'x'", None),
    ("attention", ("astronaut", "dinov2", "rollout", 1, 0, 0.6), "fuses all heads by definition", None),
    ("heads", ("astronaut", "dinov2", "cls", 3, 0.6), "layer 3 out of range", None),
    ("similarity", ("astronaut", "dinov2", 3, 0.1, 0.1, 0.5, 0.5, 0.6), "layer 3 out of range", None),
    ("similarity", ("astronaut", "dinov2", 1, -0.1, 0.1, 0.5, 0.5, 0.6), "outside", None),
    ("similarity", ("astronaut", "dinov2", 1, 0.1, 0.1, 1.5, 0.5, 0.6), "outside", None),
    ("similarity", ("astronaut", "dinov2", 1, 0.6, 0.1, 0.2, 0.5, 0.6), "bad box: .* inverted", None),
    ("similarity", ("astronaut", "dinov2", 1, 0.5, 0.1, 0.5, 0.6, 0.6), "bad box: .* zero area", None),
    ("metrics", ("astronaut", "dinov2", "cls", 1, -1, "0.1 0.1 1.5 0.5"), "box 0 .* outside", None),
    ("metrics", ("astronaut", "dinov2", "cls", 1, -1, "0.5 0.1 0.2 0.5"), "box 0 .* inverted", None),
    ("metrics", ("astronaut", "dinov2", "cls", 1, -1, "0.2 0.2 0.2 0.5"), "box 0 .* zero area", None),
    ("metrics", ("astronaut", "dinov2", "cls", 1, -1, "a b c d"), "box 0 .* four numbers", None),
    ("metrics", ("astronaut", "dinov2", "cls", 1, -1, "0.1 0.1 0.2 0.2\n" * 101), "more than 100 boxes", None),
    ("leaderboard", (95, "best"), "percentile must be one of", None),
    ("leaderboard", (90, "magic"), "unknown method 'magic'", None),
    ("layer_head", ("dinov2", "pool", 90), "model 'dinov2' has no method 'pool'", None),
    ("breakdown", ("dinov2", "cls", 7, "label", 90), "layer 7 out of range", None),
    (
        "breakdown",
        ("dinov2", "cls", 0, "colour", 90),
        "breakdown by 'colour'",
        None,
    ),
    ("compare", ("dinov2", "nope", 90), "unknown model 'nope'", None),
]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int) -> bytes:
    """A valid grayscale PNG of ``side x side`` zeros: a few hundred KB that decode to ``side**2`` bytes."""
    packer = zlib.compressobj(9)
    row = b"\0" * (side + 1)  # filter byte + pixels
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def make_uploads(folder: Path) -> dict[str, Path]:
    """One file per kind of upload the app must handle (see ``UPLOADS``)."""
    files = {}

    def save(name: str, image: Image.Image, **kw) -> None:
        files[name] = folder / name
        image.save(files[name], **kw)

    (folder / "notes.png").write_text("this is not an image")
    files["notes.png"] = folder / "notes.png"
    (folder / "empty.jpg").write_bytes(b"")
    files["empty.jpg"] = folder / "empty.jpg"
    save("whole.jpg", noise_image(200, 150, seed=1))
    (folder / "truncated.jpg").write_bytes(files["whole.jpg"].read_bytes()[:2000])
    files["truncated.jpg"] = folder / "truncated.jpg"
    (folder / "bomb.png").write_bytes(bomb_png(12_000))  # 144 MP of zeros in ~150 KB
    files["bomb.png"] = folder / "bomb.png"
    header = struct.pack(">IIBBBBB", 8000, 7000, 8, 2, 0, 0, 0)  # a header over the limit, and nothing more
    (folder / "over.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IEND", b""))
    files["over.png"] = folder / "over.png"
    (folder / "huge.bin").write_bytes(b"\x89PNG" + bytes(MAX_UPLOAD_BYTES))  # over the byte limit
    files["huge.bin"] = folder / "huge.bin"
    save("tiny.png", Image.new("RGB", (1, 1), (200, 30, 30)))
    save("large.jpg", Image.new("L", (7000, 6000), 90), quality=50)  # 42 MP, under the limit
    gradient = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    save("deep.png", Image.fromarray(gradient))  # 16-bit grayscale, values far above 255
    save("cmyk.jpg", noise_image(90, 60, seed=2).convert("CMYK"))
    save("palette.png", noise_image(90, 60, seed=3).convert("P"))
    with_hole = noise_image(90, 60, seed=4).convert("P")
    with_hole.info["transparency"] = 0
    save("palette-alpha.png", with_hole, transparency=0)
    rgba = noise_image(90, 60, seed=5).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((90, 60)))
    save("alpha.png", rgba)
    save("gray-alpha.png", noise_image(90, 60, seed=6).convert("LA"))
    return files


# name -> message of the refusal, or None: it works
UPLOADS = {
    "notes.png": "the upload is not an image",
    "empty.jpg": "the upload is empty",
    "truncated.jpg": "the upload is truncated or corrupt",
    "bomb.png": f"too large to decode safely.*the limit is {MAX_UPLOAD_PIXELS:,} pixels",
    "over.png": f"is 8000x7000 = 56,000,000 pixels, over the limit of {MAX_UPLOAD_PIXELS:,}",
    "tiny.png": None,
    "large.jpg": None,
    "deep.png": None,
    "cmyk.jpg": None,
    "palette.png": None,
    "palette-alpha.png": None,
    "alpha.png": None,
    "gray-alpha.png": None,
}


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> dict[str, Path]:
    return make_uploads(tmp_path_factory.mktemp("uploads"))


@pytest.fixture(scope="module")
def client() -> Client:
    return api_client(app_server().url)


def still_serving(client: Client) -> None:
    assert client.predict(api_name="/ping") == "pong"
    _, _, data = client.predict("coffee", "mae", "cls", 1, -1, 0.5, api_name="/attention")
    assert data["source"] == "store"


# -- bad input, plain calls -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint, args, message, _", BAD_CALLS, ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input_is_one_clear_error_in_a_plain_call(handlers, endpoint, args, message, _):
    with pytest.raises(gr.Error, match=message) as caught:
        getattr(handlers, endpoint)(*args)
    assert "Traceback" not in caught.value.message and len(caught.value.message) < 700


@pytest.mark.parametrize("name", list(UPLOADS))
def test_uploads_are_decoded_safely_or_refused_clearly_in_a_plain_call(handlers, explorer, uploads, name):
    refusal = UPLOADS[name]
    if refusal is not None:
        with pytest.raises(gr.Error, match=refusal):
            handlers.analyze(str(uploads[name]), "dinov2")
        assert uploads[name].exists()  # a caller's own file is never deleted
        return
    image_id, picture, data = handlers.analyze(str(uploads[name]), "dinov2")
    assert image_id.startswith("upload-") and data["source"] == "live" and picture.width >= 448
    shown = np.asarray(explorer.item(image_id).picture, dtype=np.float64)
    assert shown.ndim == 3 and shown.shape[2] == 3
    if name == "deep.png":  # 16-bit: scaled by its own range, not clipped to white
        assert shown.min() < 20 and shown.max() > 235


def test_an_upload_over_the_byte_limit_is_refused_before_reading_it(handlers, uploads):
    with pytest.raises(gr.Error, match="over the limit of 20 MiB"):
        handlers.analyze(str(uploads["huge.bin"]), "dinov2")
    with pytest.raises(gr.Error, match="no image: upload one first"):
        handlers.analyze(None, "dinov2")
    with pytest.raises(gr.Error, match="cannot be read"):
        handlers.analyze(str(uploads["huge.bin"].parent / "gone.png"), "dinov2")


def test_a_refused_upload_in_gradios_folder_is_deleted_and_others_are_not(handlers, uploads, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    mine = tmp_path / "0123abcd" / "notes.png"
    mine.parent.mkdir()
    shutil.copy(uploads["notes.png"], mine)
    with pytest.raises(gr.Error, match="not an image"):
        handlers.analyze({"path": str(mine), "meta": {"_type": "gradio.FileData"}}, "dinov2")
    assert not mine.exists()
    elsewhere = {"path": str(uploads["notes.png"]), "meta": {"_type": "gradio.FileData"}}
    with pytest.raises(gr.Error, match="not an image"):
        handlers.analyze(elsewhere, "dinov2")
    assert uploads["notes.png"].exists()  # outside Gradio's upload folder: not ours to delete


def test_an_unexpected_failure_is_one_line_and_the_next_request_is_served(handlers, explorer, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire\n  at line 3")

    with monkeypatch.context() as patched:
        patched.setattr(explorer, "map", broken)
        with pytest.raises(gr.Error) as caught:
            handlers.attention("coffee", "mae", "cls", 1, -1, 0.5)
    assert caught.value.message == "attention failed (RuntimeError: disk on fire at line 3)"
    assert handlers.attention("coffee", "mae", "cls", 1, -1, 0.5)[2]["source"] == "store"


# -- bad input, through the client ------------------------------------------------------------------------------------


@pytest.mark.slow  # the app as a process
@pytest.mark.parametrize(
    "endpoint, args, message, gradio_message", BAD_CALLS, ids=lambda v: v if isinstance(v, str) else None
)
def test_bad_input_is_one_clear_error_through_the_client(client, endpoint, args, message, gradio_message):
    with pytest.raises(AppError, match=gradio_message or message) as caught:
        client.predict(*args, api_name=f"/{endpoint}")
    assert "Traceback" not in str(caught.value)
    assert client.predict(api_name="/ping") == "pong"


@pytest.mark.slow  # the app as a process
@pytest.mark.parametrize("name", list(UPLOADS))
def test_uploads_through_the_client(client, uploads, name):
    refusal = UPLOADS[name]
    if refusal is not None:
        with pytest.raises(AppError, match=refusal):
            client.predict(handle_file(str(uploads[name])), "clip", api_name="/analyze")
        still_serving(client)
        return
    image_id, picture, data = client.predict(handle_file(str(uploads[name])), "clip", api_name="/analyze")
    assert image_id.startswith("upload-") and data["source"] == "live"
    _, data = client.predict(image_id, "clip", 1, 0.5, 0.5, 0.5, 0.5, 0.6, api_name="/similarity")
    assert data["source"] == "live"


@pytest.mark.slow  # the app as a process
def test_an_upload_over_the_size_limit_is_refused_by_the_client_and_the_server(client, uploads):
    with pytest.raises(ValueError, match="exceeds the maximum file size of 20971520 bytes"):
        client.predict(handle_file(str(uploads["huge.bin"])), "clip", api_name="/analyze")
    boundary = "vitattn-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="huge.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + uploads["huge.bin"].read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        app_server().url + "gradio_api/upload",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    assert caught.value.code == 413 and b"maximum allowed size" in caught.value.read()
    assert not [p for p in app_server().files() if p.stat().st_size > MAX_UPLOAD_BYTES]  # nothing kept of it
    still_serving(client)


@pytest.mark.slow  # the app as a process
def test_a_client_cannot_name_a_server_file_as_its_upload(client):
    """A file payload naming a path on the server, sent without the client's upload step, is refused by Gradio."""
    url = app_server().url + "gradio_api/call/analyze"
    payload = {"data": [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, "clip"]}
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        event = json.loads(r.read())["event_id"]
    with urllib.request.urlopen(f"{url}/{event}", timeout=60) as r:
        answer = r.read().decode()
    assert "event: error" in answer and "not uploaded by a user" in answer and "root:" not in answer
    assert Path("/etc/passwd").exists()
    still_serving(client)


@pytest.mark.slow  # the app as a process
@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../../../../../etc/passwd",
        "%2Fetc%2Fpasswd",
        "/proc/self/environ",
        "{root}/app.py",
        "{store}/manifest.json",
        "{temp}/../../../etc/passwd",
        "{temp}/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
        "http://127.0.0.1:{port}/gradio_api/info",
        "file:///etc/passwd",
    ],
)
@pytest.mark.parametrize("route", ["gradio_api/file=", "file=", "gradio_api/file/"])
def test_no_file_outside_the_apps_own_folders_is_served(route, path):
    server = app_server()
    root = Path(__file__).resolve().parent.parent  # the repository: app.py's folder
    path = path.format(root=root, store=store_dir(), temp=server.temp, port=server.port)
    try:
        with urllib.request.urlopen(server.url + route + path, timeout=30) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    assert status in (400, 403, 404), (status, body[:200])
    assert b"root:" not in body and b"PATH=" not in body and b"import gradio" not in body


@pytest.mark.slow  # the app as a process
def test_the_apps_own_pictures_are_served(client):
    picture, _, _ = client.predict("coffee", "mae", "cls", 1, -1, 0.5, api_name="/attention")
    assert Path(picture).is_file()  # fetched by the client from /gradio_api/file=... in Gradio's folder
    assert any(p.suffix == ".jpeg" for p in app_server().files())


@pytest.mark.slow  # the app as a process
def test_the_limits_are_on_the_page():
    with urllib.request.urlopen(app_server().url + "config", timeout=30) as r:
        config = r.read().decode()
    assert "at most 20 MiB and 50 million pixels" in config
    assert json.loads(config)["max_file_size"] == MAX_UPLOAD_BYTES


# -- a damaged store --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> AppServer:
    """The test store with dinov2's maps truncated, every file of clip gone, vit's manifest entry broken and an
    unknown schema version; launched once."""
    folder = tmp_path_factory.mktemp("damaged") / "store"
    shutil.copytree(store_dir(), folder)
    maps = folder / "models" / "dinov2" / "maps-00000.parquet"
    maps.write_bytes(maps.read_bytes()[:1000])
    shutil.rmtree(folder / "models" / "clip")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["schema_version"] = 99
    manifest["models"]["vit"]["num_layers"] = "twelve"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    server = AppServer(folder)
    yield server
    server.stop()


@pytest.mark.slow  # the app as a process
def test_a_damaged_store_starts_says_what_is_unavailable_and_serves_the_rest(damaged):
    client = api_client(damaged.url)
    info = client.predict(api_name="/info")
    problems = "\n".join(info["problems"])
    assert info["mode"] == "store" and "unknown schema version 99" in problems
    assert "model 'clip'" in problems and "files missing" in problems
    assert "manifest entry of vit cannot be used" in problems and "vit" not in info["models"]
    assert client.predict("coffee", "mae", "cls", 1, -1, 0.5, api_name="/attention")[2]["source"] == "store"
    assert client.predict("coffee", "dinov2", "cls", 1, -1, 0.5, api_name="/attention")[2]["source"] == "live"
    _, data = client.predict("coffee", "clip", 1, 0.1, 0.1, 0.4, 0.4, 0.5, api_name="/similarity")
    assert data["source"] == "live"
    board = client.predict(90, "best", api_name="/leaderboard")
    ranked = {row[1] for row in board["data"] if row[0] is not None}
    assert "mae" in ranked and "clip" not in ranked
    problems = "\n".join(client.predict(api_name="/info")["problems"])
    assert "maps-00000.parquet" in problems and "computed live" in problems


def test_the_status_line_of_a_damaged_store_lists_its_problems(tmp_path):
    folder = tmp_path / "store"
    shutil.copytree(store_dir(), folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["schema_version"] = 2
    (folder / "manifest.json").write_text(json.dumps(manifest))
    ex = Explorer.open(AppConfig(store=str(folder), weights="small"))
    status = page.status(ex)
    assert "Problems" in status and "unknown schema version 2" in status
    assert ex.mode == "store" and len(ex.models()) == 9


# -- secrets in messages ----------------------------------------------------------------------------------------------

SECRET = "hf_hardeningSecret0123456789"


def test_a_token_in_an_error_warning_or_status_is_hidden(handlers, explorer, monkeypatch):
    from vitattn.ui.data.errors import redact

    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert (
        redact(f"GET https://huggingface.co?token={SECRET} failed")
        == "GET https://huggingface.co?token=<hidden> failed"
    )
    assert redact("Bearer hf_someOtherToken12345678") == "Bearer <hidden>"

    def leaky(*args, **kwargs):
        raise OSError(f"401 for Authorization: Bearer {SECRET}")

    with monkeypatch.context() as patched:
        patched.setattr(explorer, "map", leaky)
        with pytest.raises(gr.Error) as caught:
            handlers.attention("coffee", "mae", "cls", 1, -1, 0.5)
    assert SECRET not in caught.value.message and "<hidden>" in caught.value.message
    explorer._problem(f"a store error that quotes {SECRET}")
    assert SECRET not in page.status(explorer) and all(SECRET not in p for p in handlers.info()["problems"])


@pytest.mark.filterwarnings("ignore:.*computed live:UserWarning")  # gr.Warning outside a request
def test_a_stored_part_that_failed_is_tried_again_later(handlers, explorer, monkeypatch):
    from vitattn.ui.data import explorer as explorer_module

    item = explorer.item("camera")
    calls = []
    real = explorer.store.map

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("the Hub is unreachable; try again")
        return real(*args, **kwargs)

    monkeypatch.setattr(explorer.store, "map", flaky)
    assert explorer.map(item, "siglip", "mean", 0, None)[1] == "live"
    assert explorer.map(item, "siglip", "mean", 1, None)[1] == "live"  # not asked again at once
    monkeypatch.setattr(explorer_module, "STORE_RETRY_SECONDS", 0.0)
    assert explorer.map(item, "siglip", "mean", 1, None)[1] == "store" and len(calls) == 2
