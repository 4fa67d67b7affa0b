"""Every word the report prints, in one catalogue per language (English is the default),
kept as data in catalogue.json ({"en": {key: template}, "zh": {...}}) so that a translation is
edited without touching code.

    tr = Tr("zh")
    tr("best_model", label=..., val=...)   # a template filled with str.format
    tr.join(["a", "b"])                    # "a, b" / "a、b"; strong=True: "a; b" / "a；b"

A value may be a pair [singular, plural] for English nouns: the `n` argument picks one.
Tests check that both languages have the same keys and the same {placeholders}.
Machine-readable outputs (CSV column names, file names, run ids, config values) are never
translated.
"""

from __future__ import annotations

import json
import string
from importlib import resources

from ..errors import UserError

LANGUAGES = ("en", "zh")

CATALOGUES: dict[str, dict[str, str | list[str]]] = json.loads(
    resources.files(__package__).joinpath("catalogue.json").read_text("utf-8")
)
EN, ZH = CATALOGUES["en"], CATALOGUES["zh"]
SEPARATORS = {"en": (", ", "; "), "zh": ("、", "；")}


def placeholders(template: str | list[str]) -> set[str]:
    texts = template if isinstance(template, list) else (template,)
    return {name for text in texts for _, name, _, _ in string.Formatter().parse(text) if name}


class Tr:
    """A language's catalogue as a callable: tr(key, **values) -> text."""

    def __init__(self, lang: str = "en"):
        if lang not in CATALOGUES:
            raise UserError(f"unknown report language {lang!r}; valid: {', '.join(LANGUAGES)}")
        self.lang = lang
        self.strings = CATALOGUES[lang]

    def __call__(self, key: str, **values) -> str:
        template = self.strings[key]
        if isinstance(template, list):
            template = template[0] if values.get("n") == 1 else template[1]
        return template.format(**values)

    def raw(self, key: str) -> str:
        """The template itself, for a renderer that fills it in (e.g. with escaped HTML)."""
        template = self.strings[key]
        return template if isinstance(template, str) else template[1]

    def join(self, items, strong: bool = False) -> str:
        """A list in running text; `strong` for items that contain commas themselves."""
        return SEPARATORS[self.lang][1 if strong else 0].join(str(i) for i in items)
