"""Is this picture a digit at all? A letter, a blank page, a photo, a scribble or a face must
be answered "not a digit", not given a confident digit.

A classifier's softmax alone cannot say so: the default model gives a drawn face 98% "0" and
half of all letters over 90%. So the refusal combines what the model says with what the
picture looks like:

    top probability (calibrated) below MIN_TOP        the model cannot tell which digit
    `preprocess.shape_warning` fires                  several marks, a blot, scattered specks
    dark ink over more than MAX_DARK of the picture   a photo or texture, not a pen on paper
    half-tones over MAX_SOFT times the ink            shading (a photo), not strokes
    the largest mark under MIN_MAIN of the ink        grain, dust, a blank page's noise
    the digit unlike MNIST's (MAX_RESIDUAL)           its 28x28 far from the form of the
                                                      digit the model read

The limits were chosen on a tuning set (the first halves of MNIST test and the UCI digits,
set on paper as photographs are, and generated non-digits, `mnistlab.data.nondigits`, seed 0)
and measured on a separate reporting set (the second halves, seed 1):
`benchmarks/refusal.py`, figures in the README. `picture_stats` reads the picture's ink
before it is cropped; `refusal` gives the reason, or None for a digit.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np

from .preprocess import label_components, pooled_mask, shape_warning

# Tuning digits (1,000 MNIST test + 899 UCI dev, on paper): top probability 1st percentile
# 0.63, dark 99.5th percentile 0.18, main 0.5th percentile 0.58, residual 99.5th 5.2.
MIN_TOP = 0.7
MAX_DARK = 0.25
MIN_MAIN = 0.5
# Pixels between paper and ink (0.15-0.5 of the contrast) per pixel of ink (above 0.5): a pen
# stroke has half-tones only at its edges (MNIST digits on paper: median 0.48, max 0.98; the
# blurred 8x8 UCI scans: median 0.65, max 2.12), shading has them everywhere (textures:
# median 3.2, 10th percentile 1.9).
MAX_SOFT = 2.2
# Distance (28x28 in [0, 1], Euclidean) from the digit to its projection on the first 10
# principal components of MNIST's training digits of the class the model chose
# (data/digit_basis.npz, scripts/build_digit_basis.py): a face, a scribble or a letter lies
# far from it. 99.5th percentile of the tuning digits: 5.65; it took letters accepted from
# 65% to 27% and scribbles from 15% to 5%, for 0.7 points more digits refused.
MAX_RESIDUAL = 5.65
WORK_SIDE = 96  # the ink is pooled to about this many pixels a side to count its marks


def picture_stats(ink: np.ndarray) -> dict[str, float]:
    """`dark`: the fraction of the picture that is ink above half level; `main`: the
    largest mark's share of that ink (marks counted on a copy pooled to ~WORK_SIDE px);
    `soft`: half-tone pixels per ink pixel."""
    dark = ink > 0.5
    total = int(dark.sum())
    if total == 0:
        return {"dark": 0.0, "main": 0.0, "soft": 0.0}
    soft = int(np.count_nonzero(ink > 0.15)) - total
    small = pooled_mask(dark, max(1, max(dark.shape) // WORK_SIDE))
    labels = label_components(small)
    _, counts = np.unique(labels[small], return_counts=True)
    return {
        "dark": total / dark.size,
        "main": float(counts.max() / small.sum()),
        "soft": soft / total,
    }


def not_writing(stats: dict[str, float]) -> str | None:
    """Why a picture is not writing on paper at all (a photo, a texture), or None: the
    tests of `refusal` that hold for a picture of a whole number too."""
    if stats["dark"] > MAX_DARK:
        return f"ink covers {stats['dark']:.0%} of the picture: a photo or texture, not writing"
    if stats["soft"] > MAX_SOFT:
        return "grey shading, not strokes: a photo or texture, not writing"
    return None


@cache
def _basis() -> tuple[np.ndarray, np.ndarray]:
    with (resources.files("mnistlab.data") / "digit_basis.npz").open("rb") as fh:
        data = np.load(fh)
        # (10, 784), (10, components, 784)
        return data["mean"].astype(np.float32), data["components"].astype(np.float32)


def residual(digit: np.ndarray, label: int) -> float:
    """How far a preprocessed 28x28 digit lies from MNIST's principal subspace of `label`."""
    means, components = _basis()
    if digit.size != means.shape[1] or not 0 <= label < len(means):
        return 0.0  # another image size or class set: this test does not apply
    x = digit.reshape(-1).astype(np.float32) / 255 - means[label]
    return float(np.linalg.norm(x - (x @ components[label].T) @ components[label]))


def refusal(
    probabilities: np.ndarray, digit: np.ndarray, stats: dict[str, float] | None
) -> str | None:
    """Why the picture is not a digit (one phrase), or None. `digit` is the preprocessed
    (H, W) uint8; `stats` from `picture_stats` (None: only the model and the digit judged)."""
    if stats is not None:
        if why := not_writing(stats):
            return why
        if stats["main"] < MIN_MAIN:
            return "no mark large enough to be a digit: specks or grain"
    if why := shape_warning(digit):
        return why
    if residual(digit, int(np.argmax(probabilities))) > MAX_RESIDUAL:
        return "its shape is unlike any digit's"
    top = float(np.max(probabilities))
    if top < MIN_TOP:
        return f"the model cannot tell which digit (top probability {top:.0%})"
    return None
