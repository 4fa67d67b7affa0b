"""index.html: one self-contained page, readable offline.

Figures are embedded as base64 data URIs, styles are inline, there is no script, and a
Content-Security-Policy forbids loading anything else, so the file can be mailed or opened
from any folder. Every string that came from a config or a result is passed through
html.escape.
"""

from __future__ import annotations

import base64
import re
from html import escape

from .document import Block, Bullets, Heading, Image, Paragraph, TableBlock

# "99.28", "61,990", "99.28 ± 0.04", "3 of 8", "8 / 8", "—": right-aligned like numbers.
NUMERIC = re.compile(r"^(—|[-+]?[\d.,]+(\s*(±|of|/)\s*[\d.,]+)?)$")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 0; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 1.5em 2em 4em; background: #fff; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
nav a { margin-right: 1em; }
.note { color: #555; font-size: 0.9em; font-style: italic; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; text-align: left; }
th { background: #f0f0f0; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; }
td.txt { white-space: nowrap; }
td.txt:last-child { white-space: normal; min-width: 14em; }
tr.bad td { background: #fdecea; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
li { margin-bottom: 0.4em; }
"""


def _table(block: TableBlock) -> str:
    table = block.table
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    status = table.columns.index("status") if "status" in table.columns else None
    rows = []
    for row in table.rows:
        bad = status is not None and row[status] in ("DIVERGED", "FAILED")
        cells = "".join(
            f'<td class="{"num" if NUMERIC.match(c) else "txt"}">{escape(c)}</td>' for c in row
        )
        rows.append(f'<tr class="bad">{cells}</tr>' if bad else f"<tr>{cells}</tr>")
    if not rows:
        rows.append(f'<tr><td colspan="{len(table.columns)}">(none)</td></tr>')
    parts = [f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>']
    parts += rows
    parts.append("</tbody></table></div>")
    parts += [f'<p class="note">{escape(n)}</p>' for n in table.notes]
    if block.files:
        links = ", ".join(f'<a href="{escape(f)}">{escape(f)}</a>' for f in block.files)
        parts.append(f'<p class="note">Also as {links} (next to this page).</p>')
    return "\n".join(parts)


def render_html(blocks: list[Block], title: str) -> str:
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
            cls = ' class="note"' if block.note else ""
            body.append(f"<p{cls}>{escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{escape(item)}</li>" for item in block.items)
            body.append(f"<ul>{items}</ul>")
        elif isinstance(block, TableBlock):
            body.append(_table(block))
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode("ascii")
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{escape(block.alt)}">'
                f'<figcaption class="note">{escape(block.filename)}</figcaption></figure>'
            )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # An empty icon: otherwise browsers ask for /favicon.ico, which the policy refuses.
        '<link rel="icon" href="data:,">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body><main>\n"
        + "\n".join(body)
        + "\n</main></body>\n</html>\n"
    )
