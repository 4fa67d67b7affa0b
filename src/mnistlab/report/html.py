"""index.html: one self-contained page, readable offline and printable on A4.

Figures are embedded as base64 data URIs, styles are inline, there is no script, and a
Content-Security-Policy forbids loading anything else, so the file can be mailed or opened
from any folder. Every string that came from a config or a result is passed through
html.escape.

Printing (or `--pdf`) uses the @media print rules: A4 portrait, no navigation, tables in a
smaller font whose text cells may wrap (numbers never do), figures scaled to the page width
and kept whole on one page.
"""

from __future__ import annotations

import base64
from html import escape

from .document import Block, Bullets, Heading, Image, Paragraph, TableBlock
from .tables import NUMERIC

# "99.28", "61,990", "99.28 ± 0.04", "3 of 8", "8 / 8", "98.1–99.0", "—": right-aligned.
LONG_CELL = 40  # characters: notes and error messages, not names or values
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

# A4 is 210 mm wide; with 12 mm margins the printed column is 186 mm (about 703 CSS px).
PAGE_MARGIN_MM = 12

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans CJK SC",
       "Noto Sans SC", "Microsoft YaHei", sans-serif; color: #222; margin: 0;
       background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 1.5em 2em 4em; background: #fff; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { margin-top: 1.4em; font-size: 1.1em; }
nav a { margin-right: 1em; }
.note { color: #555; font-size: 0.9em; font-style: italic; }
.callout { border-left: 4px solid #c62828; background: #fdecea; padding: 0.6em 0.9em;
           font-weight: 600; }
.scroll { overflow-x: auto; }
.caption { font-weight: 600; margin: 0.8em 0 0.2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; white-space: nowrap; }
td.long { min-width: 14em; }
tr.bad td { background: #fdecea; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
li { margin-bottom: 0.4em; }
@page { size: A4 portrait; margin: MARGINmm; }
@media print {
  body { background: #fff; font-size: 10pt; line-height: 1.35; }
  main { max-width: none; margin: 0; padding: 0; }
  nav { display: none; }
  .scroll { overflow: visible; }
  table { font-size: 8pt; max-width: 100%; }  /* 8 pt: the smallest print the report allows */
  th, td { padding: 0.12em 0.3em; overflow-wrap: break-word; }
  td.num { white-space: nowrap; }
  td.long { overflow-wrap: anywhere; min-width: 9em; }
  tr, figure, img { break-inside: avoid; page-break-inside: avoid; }
  h2, h3, .caption { break-after: avoid; page-break-after: avoid; }
  figure { margin: 0.6em 0 1em; }
  figure img { max-width: 100%; max-height: 240mm; width: auto; height: auto; border: none; }
  a { color: inherit; text-decoration: none; }
}
""".replace("MARGIN", str(PAGE_MARGIN_MM))


def _kind(cell: str) -> str:
    """num: right-aligned, never wrapped; long: free text that may wrap anywhere in print."""
    if NUMERIC.match(cell):
        return "num"
    return "long" if len(cell) > LONG_CELL else "txt"


def _table(block: TableBlock, also_as: str) -> str:
    table = block.table
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    rows = []
    for i, row in enumerate(table.rows):
        bad = i < len(table.bad) and table.bad[i]
        cells = "".join(f'<td class="{_kind(c)}">{escape(c)}</td>' for c in row)
        rows.append(f'<tr class="bad">{cells}</tr>' if bad else f"<tr>{cells}</tr>")
    if not rows:
        rows.append(f'<tr><td colspan="{len(table.columns)}">(none)</td></tr>')
    parts = []
    if table.caption:
        parts.append(f'<p class="caption">{escape(table.caption)}</p>')
    parts.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>')
    parts += rows
    parts.append("</tbody></table></div>")
    parts += [f'<p class="note">{escape(n)}</p>' for n in table.notes]
    if block.files:
        links = ", ".join(f'<a href="{escape(f)}">{escape(f)}</a>' for f in block.files)
        # The template is ours (the catalogue); only the file names are data, escaped above.
        parts.append(f'<p class="note">{escape(also_as).replace("{links}", links)}</p>')
    return "\n".join(parts)


def render_html(
    blocks: list[Block], title: str, lang: str = "en", also_as: str = "Also as {links}."
) -> str:
    body = []
    nav = [b for b in blocks if isinstance(b, Heading) and b.level == 2 and b.anchor]
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f' id="{escape(block.anchor)}"' if block.anchor else ""
            body.append(f"<h{block.level}{anchor}>{escape(block.text)}</h{block.level}>")
            if block.level == 1 and nav:
                links = "".join(f'<a href="#{escape(h.anchor)}">{escape(h.text)}</a>' for h in nav)
                body.append(f"<nav>{links}</nav>")
        elif isinstance(block, Paragraph):
            cls = ' class="callout"' if block.callout else ' class="note"' if block.note else ""
            body.append(f"<p{cls}>{escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{escape(item)}</li>" for item in block.items)
            body.append(f"<ul>{items}</ul>")
        elif isinstance(block, TableBlock):
            body.append(_table(block, also_as))
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode("ascii")
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{escape(block.alt)}">'
                f'<figcaption class="note">{escape(block.caption or block.filename)}</figcaption>'
                "</figure>"
            )
    html_lang = "zh-CN" if lang == "zh" else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{html_lang}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # An empty icon: otherwise browsers ask for /favicon.ico, which the policy refuses.
        '<link rel="icon" href="data:,">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body><main>\n"
        + "\n".join(body)
        + "\n</main></body>\n</html>\n"
    )
