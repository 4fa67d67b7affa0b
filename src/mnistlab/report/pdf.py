"""report.pdf: index.html printed to A4 by headless Chromium, driven through Playwright.

Chromium is the system's (Debian's `chromium` package at /usr/bin/chromium, or the path in
$MNISTLAB_CHROMIUM); Playwright never downloads a browser here. The page prints with its own
@media print rules (html.py), so the PDF and a browser's "Print" show the same pages.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError
from .html import PAGE_MARGIN_MM

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
INSTALL_HINT = (
    "--pdf needs Playwright and Chromium: pip install playwright (or 'mnistlab[test]') and "
    "apt-get install chromium, or set MNISTLAB_CHROMIUM to a Chromium binary"
)


def chromium_path() -> Path:
    return Path(os.environ.get("MNISTLAB_CHROMIUM") or CHROMIUM)


def check_pdf_support() -> None:
    """Raise a one-line UserError naming what to install, before any work is done."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise UserError(f"{INSTALL_HINT} (playwright is not installed)") from None
    path = chromium_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise UserError(f"{INSTALL_HINT} (no Chromium at {path})")


def write_pdf(index_html: Path, pdf_path: Path, timeout_s: float = 120) -> Path:
    """Print `index_html` to `pdf_path` (A4 portrait, backgrounds on)."""
    check_pdf_support()
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(chromium_path()), args=CHROMIUM_ARGS, timeout=timeout_s * 1000
            )
            try:
                page = browser.new_page()
                page.goto(Path(index_html).resolve().as_uri(), timeout=timeout_s * 1000)
                page.emulate_media(media="print")
                margin = f"{PAGE_MARGIN_MM}mm"
                page.pdf(
                    path=str(pdf_path),
                    format="A4",
                    print_background=True,
                    margin={"top": margin, "bottom": margin, "left": margin, "right": margin},
                )
            finally:
                browser.close()
    except PlaywrightError as exc:
        first = (str(exc).strip().splitlines() or ["unknown error"])[0]
        raise UserError(f"{pdf_path}: Chromium could not print the report ({first})") from None
    return pdf_path
