"""Written numbers made from single digits, for measuring how numbers are read
(`benchmarks/read_numbers.py`, tests): each digit's ink cropped, scaled to a handwriting
height, and set side by side on white paper with chosen spacing (apart, close or touching)
and a baseline that may slope, as a person writes on unruled paper.

    picture, text = compose_number([img7, img2], rng)   # (H, W) uint8, dark ink on white; "72"
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPACINGS = {  # gap between neighbours, in digit heights
    "apart": (0.15, 0.6),
    "close": (0.02, 0.15),
    "touching": (-0.12, -0.02),  # overlapping boxes: strokes meet or cross
}
SLOPE = 0.12  # the baseline rises or falls by up to this many pixels per pixel
MARGIN = 0.4  # paper around the number, in digit heights


def _scaled(digit: np.ndarray, height: int) -> np.ndarray:
    """A digit's ink box, scaled to `height` pixels tall, as float in [0, 1]."""
    from PIL import Image

    ys, xs = np.nonzero(digit > 0)
    crop = digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32) / 255
    width = max(1, round(crop.shape[1] * height / crop.shape[0]))
    out = Image.fromarray(crop).resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(out), 0, 1)


def compose_number(
    digits: Sequence[np.ndarray],
    rng: np.random.Generator,
    spacing: str = "apart",
    height: int = 48,
) -> np.ndarray:
    """(H, W) uint8 picture of `digits` ((h, w) white-on-black uint8 each, any size) written
    left to right: dark ink on white, on a baseline of random slope."""
    low, high = SPACINGS[spacing]
    slope = rng.uniform(-SLOPE, SLOPE)
    inks = [_scaled(d, max(8, round(height * rng.uniform(0.85, 1.1)))) for d in digits]
    margin = round(MARGIN * height)
    xs, x = [], margin
    for ink in inks:
        xs.append(x)
        x += ink.shape[1] + round(rng.uniform(low, high) * height)
    width = max(x0 + ink.shape[1] for x0, ink in zip(xs, inks, strict=True)) + margin
    rise = abs(slope) * width
    canvas = np.zeros((round(1.3 * height + rise) + 2 * margin, width), np.float32)
    base = margin + (rise if slope > 0 else 0) + 1.2 * height  # where the first digit stands
    for x0, ink in zip(xs, inks, strict=True):
        bottom = round(base - slope * x0 + rng.uniform(-0.04, 0.04) * height)
        top = max(0, bottom - ink.shape[0])
        region = canvas[top : top + ink.shape[0], x0 : x0 + ink.shape[1]]
        np.maximum(region, ink[: region.shape[0]], out=region)
    return np.rint(255 * (1 - canvas)).astype(np.uint8)
