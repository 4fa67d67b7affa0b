"""The report as a list of blocks, rendered once to Markdown (here) and once to HTML (html.py),
so report.md and index.html always say the same thing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .tables import Table


@dataclass
class Heading:
    text: str
    level: int = 2
    anchor: str = ""


@dataclass
class Paragraph:
    text: str
    note: bool = False  # rendered smaller / in italics: a caveat rather than a finding
    callout: bool = False  # boxed at the top of the page: a warning the reader must not miss


@dataclass
class Bullets:
    items: list[str]


@dataclass
class TableBlock:
    table: Table
    files: list[str] = field(default_factory=list)  # the same table as .md / .csv files


@dataclass
class Image:
    filename: str
    alt: str
    png: bytes
    look: str = ""  # which figure it is: names the catalogue's "what to look at" sentence
    caption: str = ""  # "Figure 3: ... Look at ...", numbered once the report is assembled


Block = Heading | Paragraph | Bullets | TableBlock | Image


def md_text(text: str) -> str:
    """Config strings in Markdown: no raw HTML may reach a viewer that renders it. Only a "<"
    that could open a tag is escaped, so "p<0.001" reads as written."""
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", " ".join(str(text).split()))


def render_markdown(blocks: list[Block], also_as: str = "Also as {links}.") -> str:
    """`also_as` words the line under a table that names its .csv / .md copies."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + md_text(block.text))
        elif isinstance(block, Paragraph):
            if block.callout:
                out.append(f"> **{md_text(block.text)}**")
            else:
                out.append(f"_{md_text(block.text)}_" if block.note else md_text(block.text))
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {md_text(item)}" for item in block.items))
        elif isinstance(block, TableBlock):
            table = Table(
                [md_text(c) for c in block.table.columns],
                [[md_text(c) for c in row] for row in block.table.rows],
                notes=[md_text(n) for n in block.table.notes],
            )
            text = table.markdown().rstrip("\n")
            if block.table.caption:
                text = f"**{md_text(block.table.caption)}**\n\n{text}"
            if block.files:
                links = ", ".join(f"[{f}]({f})" for f in block.files)
                text += "\n\n" + also_as.format(links=links)
            out.append(text)
        elif isinstance(block, Image):
            caption = f"\n\n_{md_text(block.caption)}_" if block.caption else ""
            out.append(f"![{md_text(block.alt)}]({block.filename}){caption}")
    return "\n\n".join(out) + "\n"
