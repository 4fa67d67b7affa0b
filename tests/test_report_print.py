"""index.html printed to A4 portrait by headless Chromium: every table within the page width,
every figure whole on the page; in English and in Chinese."""

from __future__ import annotations

import pytest
from test_report import history, record, write_ledger
from test_report_views import tour

from mnistlab.report import build_report
from mnistlab.report.html import PAGE_MARGIN_MM

MM = 96 / 25.4  # CSS pixels per millimetre
CONTENT_WIDTH = round((210 - 2 * PAGE_MARGIN_MM) * MM)  # A4 portrait, inside the margins
CONTENT_HEIGHT = round((297 - 2 * PAGE_MARGIN_MM) * MM)


def wide_sweep() -> list[dict]:
    """The quick tour plus what makes tables wide: extra grid fields, seeds, long errors,
    diverged runs and a 3 x 4 grid."""
    records = tour()
    for lr in (1e-3, 5e-3, 5e-4):
        for d in (0.25, 0.3, 0.5, 0.75):
            records.append(
                record(
                    "wrn16_4",
                    lr,
                    d,
                    val_acc=0.97 + lr,
                    test_used=1000,
                    batch_size=128,
                    optimizer="adamw",
                    weight_decay=0.05,
                    label_smoothing=0.1,
                )
            )
    records += [
        record("m5", 2e-3, 0.25, seed=s, val_acc=0.98 + s / 1000, test_used=1000) for s in range(3)
    ]
    records.append(
        record(
            "m5",
            9e-2,
            0.25,
            status="failed",
            hist=[],
            error="RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB "
            "total capacity; 77.20 GiB already allocated; 1.02 GiB free; 77.50 GiB reserved)",
        )
    )
    records.append(
        record(
            "m5", 5e-1, 0.25, status="diverged", hist=history(2) + [{"epoch": 3}], test_used=1000
        )
    )
    return records


def measure(page, index) -> dict:
    page.set_viewport_size({"width": CONTENT_WIDTH, "height": CONTENT_HEIGHT})
    page.emulate_media(media="print")
    page.goto(index.as_uri())
    page.wait_for_load_state("load")
    return page.evaluate(
        """() => ({
          page: document.documentElement.scrollWidth,
          tables: [...document.querySelectorAll('table')].map(t => t.scrollWidth),
          images: [...document.querySelectorAll('img')].map(i => {
            const r = i.getBoundingClientRect();
            return {left: r.left, right: r.right, width: r.width, height: r.height,
                    natural: i.naturalWidth, alt: i.alt};
          }),
        })"""
    )


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a4_print_shows_every_column_and_every_figure_whole(browser, tmp_path, lang):
    index = build_report(write_ledger(tmp_path / "s", wide_sweep()), lang=lang)
    page = browser.new_page()
    try:
        found = measure(page, index)
        headers = page.eval_on_selector_all(
            "table", "ts => ts.map(t => [...t.querySelectorAll('th')].map(h => h.textContent))"
        )
    finally:
        page.close()
    assert found["page"] <= CONTENT_WIDTH
    assert len(found["tables"]) >= 8
    for width in found["tables"]:
        assert width <= CONTENT_WIDTH, (width, CONTENT_WIDTH)
    assert len(found["images"]) >= 10
    for image in found["images"]:
        assert image["natural"] > 0, image
        assert image["left"] >= 0 and image["right"] <= CONTENT_WIDTH + 0.5, image
        assert image["height"] <= CONTENT_HEIGHT, image  # a figure never spans two pages
    if lang == "en":  # the key columns come first; the wide detail is in a second table
        best = headers[0]
        assert best[:3] == ["model", "lr", "dropout"]
        assert best.index("val acc (%)") < best.index("test acc (%)") < best.index("time (s)")
        assert "run" not in best and "params" not in best
        assert headers[1][:2] == ["model", "params"] and "run" in headers[1]
