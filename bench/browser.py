"""A person's wait in a real browser: from a control change to the settled picture, per kind of control.

    python -m bench.browser [--store DIR] [--model dinov2] [--repeats 20]

Without ``--store``, the precompute job builds a store of the full-size ``--model`` with random weights on the
bundled examples (``bench.app.build_store``; speed does not depend on the values). ``python app.py`` is launched on
it and headless chromium (playwright, ``/usr/bin/chromium``) loads the page at 1400x1000. Every view is first
visited once (a cached store: the first read of a map from disk is not what this measures). Then, ``--repeats``
times per kind, one control is changed as a person does, and the time runs from that input (its pointer-down or
key-down, as the page's own clock saw it) until the Attention picture shows the
new view (its ``src`` changed and the image decoded):

- layer: the layer slider, one step (keyboard arrow on the focused slider, as a person stepping through layers);
- head: the head dropdown, clicked open, then (timed) an option clicked;
- image: the image dropdown, clicked open, then (timed) an option clicked;
- opacity: a click on the opacity slider's track;
- mask: the "Outline the pixels IoU keeps" checkbox.

Printed: p50 and p90 per kind, and the queue requests each change caused. Goal: p50 under 250 ms.
"""

from __future__ import annotations

import statistics

from bench.app import launch, store_or_built
from bench.common import parser

CHROMIUM = "/usr/bin/chromium"
SETTLED = """([before]) => { const i = document.querySelector('#attention-map img');
  return i && i.src && i.src !== before && i.complete && i.naturalWidth > 0
    && performance.now() - window.__vitattn_input; }"""
# The moment of the person's input, taken by the page itself (the capture phase sees it first): playwright's own
# waits before it clicks (an option list still sliding open) are not the app's latency.
INPUT_CLOCK = """for (const kind of ['pointerdown', 'keydown']) {
  document.addEventListener(kind, () => { window.__vitattn_input = performance.now(); }, true); }"""


def quantiles(times: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(times, n=10, method="inclusive")
    return statistics.median(times), q[8]


class Page:
    """The app in chromium, with a count of queue requests."""

    def __init__(self, page):
        self.page = page
        self.sent = 0
        page.on("request", lambda r: setattr(self, "sent", self.sent + ("/queue/join" in r.url)))

    def src(self) -> str:
        return self.page.locator("#attention-map img").first.get_attribute("src") or ""

    def timed(self, action) -> tuple[float, int]:
        """Seconds from the input ``action`` makes (its pointer-down or key-down, as the page saw it) to the new
        picture shown, and the requests sent meanwhile (and just after)."""
        before, sent = self.src(), self.sent
        action()
        elapsed_ms = self.page.wait_for_function(SETTLED, arg=[before], polling="raf").json_value()
        self.page.wait_for_timeout(300)  # requests that follow (a second run) count too
        return elapsed_ms / 1000, self.sent - sent

    def pick(self, label: str, option: str) -> tuple[float, int]:
        """Opens a dropdown with a click (not timed: the person looks for the option), then a timed click on it."""
        top = self.page.locator("#top-controls")
        top.get_by_label(label, exact=True).click()
        choice = self.page.get_by_role("option", name=option, exact=True)
        choice.wait_for()
        return self.timed(choice.click)


def measure(url: str, model: str, images: list[str], repeats: int) -> dict[str, list[tuple[float, int]]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[tuple[float, int]]] = {k: [] for k in ("layer", "head", "image", "opacity", "mask")}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(INPUT_CLOCK)
        page.set_default_timeout(60_000)
        page.goto(url)
        page.locator("#attention-map img").first.wait_for()
        w = Page(page)
        slider = page.locator("#layer input[type=range]")
        for image in [*images[1:], images[0]]:  # warm: every image once (the first is shown), every layer once
            w.pick("Image", image)
        slider.focus()
        for key in ("Home", *["ArrowRight"] * 11):  # every layer once
            slider.press(key)
            page.wait_for_timeout(400)
        for k in range(repeats):
            slider.focus()
            out["layer"].append(w.timed(lambda k=k: slider.press("ArrowLeft" if k % 2 == 0 else "ArrowRight")))
            head = [*(f"head {h}" for h in range(4)), "all heads fused"][k % 5]  # the current one is never picked
            out["head"].append(w.pick("Head", head))
            out["image"].append(w.pick("Image", images[(k + 1) % len(images)]))
            box = page.locator("#opacity input[type=range]").bounding_box()
            x = box["width"] * (0.3 + 0.4 * (k % 2))
            out["opacity"].append(
                w.timed(lambda x=x: page.locator("#opacity input[type=range]").click(position={"x": x, "y": 5}))
            )
            out["mask"].append(w.timed(lambda: page.get_by_label("Outline the pixels IoU keeps").click()))
        browser.close()
    return out


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__, model="dinov2", repeats=20, device=None)
    p.add_argument("--store", default=None, help="an existing store (default: build one in a temporary folder)")
    args = p.parse_args(argv)
    with store_or_built(args.store, args.model, "vitattn-bench-browser-") as store:
        process, url = launch(store)
        try:
            from vitattn.store import open_store

            images = open_store(store).image_ids()
            results = measure(url, args.model, images, args.repeats)
        finally:
            process.terminate()
            process.wait()
    print(f"{args.model}, {len(images)} images, {args.repeats} changes per kind, chromium 1400x1000, cached views")
    print(f"{'control':<10}{'p50 ms':>10}{'p90 ms':>10}{'requests':>10}")
    medians = []
    for kind, rows in results.items():
        p50, p90 = quantiles([s for s, _ in rows])
        medians.append(p50)
        print(f"{kind:<10}{p50 * 1000:>10.0f}{p90 * 1000:>10.0f}{max(n for _, n in rows):>10}")
    worst = max(medians)
    print(
        f"goal: p50 < 250 ms for every kind: {'met' if worst < 0.25 else 'not met'} (worst p50 {worst * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
