"""Pictures that are not digits, made on the spot, for measuring how often a model refuses
them (`benchmarks/refusal.py`, tests): letters in the fonts of this machine (or Pillow's
own), blank pages with grain and shading, photo-like textures, scribbles and drawn faces.
Dark on light, as a person would photograph them; every one is seeded.

    pictures = nondigit_pictures(200, seed=0)   # [(kind, (H, W) uint8), ...], kinds in turn

Letters that are written like digits (O, I, l, Z, S, B, G, q, ...) are left out: calling an
O a 0 is no mistake.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

KINDS = ("letter", "blank", "texture", "scribble", "face")
LETTERS = "ACEFHKLMNPRTUVWXYacdefhkmnprtuvwxy"  # not O0 Il1 Z2 S5 B8 G6 b6 g9 q9 D0 J j i s z o
FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype", "/Library/Fonts")


def letter(rng: np.random.Generator, fonts: list[str]) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    size = int(rng.integers(40, 160))
    if fonts:
        font = ImageFont.truetype(fonts[rng.integers(len(fonts))], size)
    else:  # Pillow's own (needs FreeType, as Pillow has)
        font = ImageFont.load_default(size=size)
    canvas = Image.new("L", (2 * size, 2 * size), 255)
    ImageDraw.Draw(canvas).text(
        (size // 2, size // 3), LETTERS[rng.integers(len(LETTERS))], fill=0, font=font
    )
    canvas = canvas.rotate(rng.uniform(-15, 15), fillcolor=255, resample=Image.Resampling.BILINEAR)
    return _on_paper(np.asarray(canvas, np.float32) / 255, rng)


def blank(rng: np.random.Generator) -> np.ndarray:
    h, w = (int(v) for v in rng.integers(64, 240, 2))
    shade = np.linspace(0, rng.uniform(0, 0.15), w)[None, :] * np.ones((h, 1))
    return _on_paper(1 - shade, rng, grain=rng.uniform(0.01, 0.06))


def texture(rng: np.random.Generator) -> np.ndarray:
    """Smooth random light and shade at a few scales: what a photo of a wall, a face or a
    sky looks like once it is grey."""
    from PIL import Image

    h, w = (int(v) for v in rng.integers(64, 240, 2))
    out = np.zeros((h, w), np.float32)
    for cells, weight in ((3, 1.0), (8, 0.5), (24, 0.25)):
        coarse = rng.random((cells, cells)).astype(np.float32)
        out += weight * np.asarray(
            Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), np.float32
        )
    out = (out - out.min()) / max(float(np.ptp(out)), 1e-6)
    return _on_paper(out, rng, grain=0.03)


def scribble(rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw

    side = int(rng.integers(80, 240))
    canvas = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(canvas)
    point = rng.uniform(0.2, 0.8, 2) * side
    points = [tuple(point)]
    for _ in range(int(rng.integers(8, 30))):
        point = np.clip(point + rng.normal(0, 0.25 * side, 2), 0.05 * side, 0.95 * side)
        points.append(tuple(point))
    draw.line(points, fill=0, width=max(2, int(side * rng.uniform(0.02, 0.08))), joint="curve")
    return _on_paper(np.asarray(canvas, np.float32) / 255, rng)


def face(rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw

    side = int(rng.integers(80, 240))
    pen = max(2, int(side * rng.uniform(0.02, 0.06)))
    canvas = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(canvas)
    m = side * 0.1
    draw.ellipse((m, m * rng.uniform(0.5, 1.5), side - m, side - m), outline=0, width=pen)
    for x in (0.35, 0.65):
        r = side * rng.uniform(0.03, 0.07)
        draw.ellipse((x * side - r, 0.4 * side - r, x * side + r, 0.4 * side + r), fill=0)
    draw.arc((0.3 * side, 0.45 * side, 0.7 * side, 0.75 * side), 20, 160, fill=0, width=pen)
    return _on_paper(np.asarray(canvas, np.float32) / 255, rng)


def _on_paper(lightness: np.ndarray, rng: np.random.Generator, grain: float = 0.02) -> np.ndarray:
    """Lightness in [0, 1] (1 white) -> uint8 on slightly grey, grainy paper."""
    paper = rng.uniform(0.8, 1.0)
    ink = rng.uniform(0.0, 0.3)
    out = ink + (paper - ink) * lightness + rng.normal(0, grain, lightness.shape)
    return np.rint(255 * np.clip(out, 0, 1)).astype(np.uint8)


def nondigit_pictures(count: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """`count` pictures, the kinds taken in turn, seeded: the same list every time on the
    same machine (letters use the fonts installed here)."""
    rng = np.random.default_rng(seed)
    fonts = [f for d in FONT_DIRS for f in sorted(str(p) for p in Path(d).glob("**/*.ttf"))]
    makers = (functools.partial(letter, fonts=fonts), blank, texture, scribble, face)  # as KINDS
    return [(KINDS[i % len(KINDS)], makers[i % len(KINDS)](rng)) for i in range(count)]
