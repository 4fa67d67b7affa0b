"""`mnistlab report DIR --pdf`: report.pdf printed by Debian's Chromium through Playwright, and
a one-line install hint (exit 2) where either is missing.

Not in the same module as the shared `browser` fixture: write_pdf starts its own Playwright,
and two sync Playwright sessions cannot run at once in one thread."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_report import record, write_ledger
from test_report_views import tour

from mnistlab.cli import main
from mnistlab.report import plots

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"needs Debian's chromium at {CHROMIUM} (make browser)"
)


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_pdf_is_a4_and_complete(tmp_path, capsys, lang):
    pytest.importorskip("playwright.sync_api", reason="needs playwright")
    sweep = write_ledger(tmp_path / "s", tour())
    assert main(["report", str(sweep), "--pdf", "--lang", lang]) == 0
    pdf = sweep / "report" / "report.pdf"
    assert capsys.readouterr().out.splitlines()[-1] == f"pdf: {pdf}"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 100_000
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert boxes, "no page boxes found"
    for width, height in boxes:  # A4 portrait: 595 x 842 points
        assert abs(float(width) - 595.3) < 1.5 and abs(float(height) - 841.9) < 1.5
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert pages >= 4
    if lang == "zh" and plots.cjk_font() and "Noto" in plots.cjk_font():
        # Chinese text printed with the CJK font (embedded as a subset), not as empty boxes.
        assert re.search(rb"/FontName\s*/[A-Z]{6}\+Noto\w*CJK", data)


def test_pdf_without_chromium_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MNISTLAB_CHROMIUM", str(tmp_path / "no-chromium"))
    sweep = write_ledger(tmp_path / "s", [record()])
    assert main(["report", str(sweep), "--pdf"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("mnistlab: error: --pdf needs Playwright and Chromium: ")
    assert "apt-get install chromium" in err and f"no Chromium at {tmp_path / 'no-chromium'}" in err
    assert not (sweep / "report").exists()


def test_pdf_without_playwright_names_it(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_playwright(name, *args, **kwargs):
        if name.startswith("playwright"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_playwright)
    sweep = write_ledger(tmp_path / "s", [record()])
    assert main(["report", str(sweep), "--pdf"]) == 2
    err = capsys.readouterr().err
    assert "pip install playwright" in err and "(playwright is not installed)" in err
