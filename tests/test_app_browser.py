"""The page in a real headless chromium (playwright): it loads, every tab renders, and the controls act.

Screenshots of each tab are kept under artifacts/screens/ (ignored by git) to be looked at.
"""

from __future__ import annotations

import pytest
from app_support import ARTIFACTS, app_server
from small_models import noise_image

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENS = ARTIFACTS / "screens"
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def page():
    url = app_server().url
    SCREENS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        page.goto(url)
        yield page
        browser.close()


def src(page, elem_id: str) -> str:
    """The ``src`` of the picture in a component, once it has one."""
    img = page.locator(f"#{elem_id} img").first
    img.wait_for(state="visible")
    return img.get_attribute("src")


def changed(page, elem_id: str, before: str) -> str:
    page.wait_for_function(
        "([id, before]) => { const i = document.querySelector(`#${id} img`); return i && i.src && i.src !== before; }",
        arg=[elem_id, before],
    )
    return src(page, elem_id)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def shot(page, name: str, full: bool = True) -> None:
    """A screenshot of the whole page, or of the window (where error toasts show)."""
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=full)


def test_the_attention_tab_loads_with_a_map_a_strip_and_a_grid(page):
    for elem in ("attention-map", "layer-strip", "head-grid"):
        assert src(page, elem)
    page.get_by_text("Random weights").first.wait_for()
    page.locator("#attention-map img").first.wait_for()
    shot(page, "1-attention")


def test_moving_the_layer_slider_changes_the_picture(page):
    open_tab(page, "Attention")
    before = src(page, "attention-map")
    slider = page.locator("#layer input[type=range]")
    slider.focus()
    slider.press("ArrowLeft")  # layer 1 -> 0
    after = changed(page, "attention-map", before)
    assert after != before
    shot(page, "1-attention-layer0")


def test_clicking_an_expert_box_gives_a_similarity_map(page):
    open_tab(page, "Similarity")
    src(page, "click-surface")
    before = src(page, "similarity-map")
    surface = page.locator("#click-surface img").first
    box = surface.bounding_box()
    # astronaut's second box (hair, 0.295..0.59 x 0.025..0.25), away from the face box inside it
    surface.click(position={"x": box["width"] * 0.32, "y": box["height"] * 0.05})
    changed(page, "similarity-map", before)
    assert page.locator("input[aria-label='x0']").input_value() in ("0.295", "0.3")
    shot(page, "2-similarity")


def test_the_iou_tab_shows_the_leaderboard_and_the_layer_head_grid(page):
    open_tab(page, "IoU")
    page.get_by_text("baseline: random").first.wait_for()
    src(page, "layer-head")
    legend = page.locator("#layer-curves .role-legend").first
    legend.wait_for()
    labels = legend.locator("text").all_text_contents()
    assert {"dinov2", "resnet50"} <= set(labels)  # one colour per model (its method is in the hover)
    plot, key = page.locator("#layer-curves").bounding_box(), legend.bounding_box()
    assert key["y"] + key["height"] <= plot["y"] + plot["height"]  # the legend is inside the plot's box, visible
    shot(page, "3-iou")


def error_toast(page, text: str) -> None:
    page.locator(".toast-body").filter(has_text=text).first.wait_for()
    page.wait_for_timeout(400)  # the toast fades in: let a screenshot show it


def dismiss_toasts(page) -> None:
    for toast in page.locator(".toast-body").all():
        toast.get_by_role("button").last.click()


def test_a_bad_box_shows_a_clear_error_and_the_page_keeps_working(page):
    open_tab(page, "Similarity")
    before = src(page, "similarity-map")
    page.locator("input[aria-label='x0']").fill("0.9")
    page.locator("input[aria-label='x1']").fill("0.2")
    page.get_by_role("button", name="Show", exact=True).click()
    error_toast(page, "inverted")
    shot(page, "5-bad-box", full=False)
    dismiss_toasts(page)
    page.locator("input[aria-label='x0']").fill("0.1")
    page.get_by_role("button", name="Show", exact=True).click()
    changed(page, "similarity-map", before)


def test_uploading_a_file_that_is_not_an_image_or_too_large_shows_a_clear_error(page, tmp_path):
    open_tab(page, "Your image")
    notes = tmp_path / "notes.png"
    notes.write_text("this is not an image")
    page.locator("#upload input[type=file]").set_input_files(str(notes))
    page.get_by_role("button", name="Analyse").click()
    error_toast(page, "the upload is not an image")
    shot(page, "5-upload-not-an-image", full=False)
    page.locator("#upload").get_by_role("button", name="Remove Image").click()
    dismiss_toasts(page)
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG" + bytes(21 * 2**20))
    page.locator("#upload input[type=file]").set_input_files(str(huge))
    error_toast(page, "exceed the maximum allowed size of 20.0 Mb")
    shot(page, "5-upload-too-large", full=False)
    dismiss_toasts(page)


def test_uploading_an_image_gives_a_map(page, tmp_path):
    open_tab(page, "Your image")
    path = tmp_path / "upload.png"
    noise_image(160, 120, seed=11).save(path)
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.locator("#upload img").first.wait_for(state="visible")  # uploaded to the server
    page.get_by_role("button", name="Analyse").click()
    assert src(page, "upload-map")
    page.wait_for_function(  # the upload became the current image
        "() => document.querySelector('#image-id input')?.value.startsWith('upload-')"
    )
    assert page.locator("#upload-id textarea, #upload-id input").first.input_value().startswith("upload-")
    shot(page, "4-your-image")
    open_tab(page, "Attention")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#attention-map img')].some(i => i.complete && i.naturalWidth === 448)"
    )
    shot(page, "4-your-image-attention")
