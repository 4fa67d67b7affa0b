"""Find the digits of a written number: one picture of ink in, one crop per digit out, left
to right, each with its box, or with the reason it cannot be read as one digit (`Piece`).

The classic pipeline for handwritten numbers (postcodes, cheques): connected components of
the ink; pieces of one broken digit joined (a 5 whose bar came off, a 4 in two strokes:
pieces stacked above one another, or a short piece beside a tall one); then, in a piece too
wide for one digit, candidate cuts where the least ink crosses (minima of the projection
along upright and slanted lines), and `read_piece` lets the model choose among the readings
those cuts allow (recognition-driven segmentation). A piece still too wide after that, or a
wide one whose best reading is not clearly ahead of a reading with another number of digits,
is reported as touching digits that could not be separated: never guessed.

The work is done on a copy shrunk (by whole factors, keeping any ink) until the number is
at most WORK_HEIGHT pixels tall, so a phone photo costs as much as a sketch; boxes are given
in the picture's own pixels. Numbers on one line only (a slanted line is fine).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .preprocess import INK_THRESHOLD, label_components, pooled_mask

WORK_HEIGHT = 64  # pixels: the number's ink is shrunk to about this height to be segmented
# A piece with fewer pixels than this fraction of the largest is a speck of dirt or noise.
SPECK = 0.04
# Pieces are one broken digit when they overlap horizontally by this fraction of the
# narrower one and, together, are no taller than MERGED_HEIGHT digit heights (nor wider than
# MERGED_WIDTH).
STACKED = 0.5
MERGED_HEIGHT = 1.25
MERGED_WIDTH = 1.5
# A piece shorter than FRAGMENT digit heights is part of a digit (a 5's bar, the foot of a
# 2): it joins the nearest piece within REACH digit heights when the two fit in one digit.
FRAGMENT = 0.6
REACH = 0.3
# A piece wider than CONSIDER digit heights may be touching digits: the lines where the
# least ink crosses (local minima of the projection along upright and slanted lines, crossing
# at most THICK_CUT stroke widths) become candidate cuts, and the model chooses among the
# readings they allow. Slanted lines read 50% of touching MNIST numbers on the tuning set
# where upright ones read 36%, and nothing changed for numbers written apart.
CONSIDER = 0.9
THICK_CUT = 2.5
MAX_CUTS = 10
SLANTS = (-0.3, -0.15, 0.0, 0.15, 0.3)  # cut lines' slopes, columns per row
# A reading's score: the sum over its digits of log(top probability) + log(prior of the
# digit's width / height) - SEGMENT_COST. The prior follows MNIST's: width / height is at
# most 1.0 for 90% of its test digits, and past that P(aspect > a) falls about as
# exp(-(a - 1) / 0.16) (4.6% above 1.15, 1.8% above 1.3, 0.5% above 1.54); a flatter 0.3 and
# SEGMENT_COST 0.5 read the tuning numbers best (benchmarks/read_numbers.py, tuning half).
ASPECT_SCALE = 0.3
SEGMENT_COST = 0.5
# A piece left wider than this many digit heights is touching digits that could not be
# separated: reported, not read.
UNSEPARATED = 1.6
# A piece wider than UNSURE_WIDTH digit heights whose best reading is less than UNSURE_COUNT
# (in score) ahead of the best reading with another number of digits is reported as touching
# digits, not read. Chosen on the tuning set as the largest cut in numbers read wrong without a
# flag that costs numbers written apart or close at most 1.5 points of whole-number accuracy:
# wrong, unflagged 13.8% -> 6.5% of all numbers (touching MNIST 44.5% -> 17%); 0.25, 0.5,
# 0.75, 1.0 and widths 0, 1.05, 1.2 were tried (README, "Whole numbers").
UNSURE_COUNT = 0.5
UNSURE_WIDTH = 1.2
TOO_MANY = 40  # pieces; more is a page of text or noise, not a number


@dataclass
class Piece:
    box: tuple[int, int, int, int]  # (left, top, right, bottom), picture pixels, exclusive
    ink: np.ndarray  # (h, w) float32 in [0, 1]: this piece's ink alone, cropped to `box`
    problem: str | None = None  # why it is not one digit; None for a digit to classify
    # Candidate cuts: lines x = x0 + slope * y in the crop's pixels, as (x0, slope).
    cuts: list[tuple[float, float]] = field(default_factory=list)
    height: float = 0.0  # a digit's height in this number, picture pixels


@dataclass
class _Part:
    """A set of component labels in work coordinates."""

    labels: frozenset[int]
    left: int
    right: int  # exclusive
    top: int
    bottom: int  # exclusive

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def _parts(labels: np.ndarray, none: int) -> list[_Part]:
    """A part per component, but specks (under SPECK of the largest one's pixels)."""
    values, counts = np.unique(labels[labels != none], return_counts=True)
    out = []
    for value in values[counts >= SPECK * counts.max()]:
        ys, xs = np.nonzero(labels == value)
        out.append(_Part(frozenset([int(value)]), xs.min(), xs.max() + 1, ys.min(), ys.max() + 1))
    return out


def _union(a: _Part, b: _Part) -> _Part:
    return _Part(
        a.labels | b.labels,
        min(a.left, b.left),
        max(a.right, b.right),
        min(a.top, b.top),
        max(a.bottom, b.bottom),
    )


def _fits(both: _Part, height: float) -> bool:
    return both.height <= MERGED_HEIGHT * height and both.width <= MERGED_WIDTH * height


def _gap(a: _Part, b: _Part) -> int:
    """Horizontal paper between two pieces (negative when they overlap)."""
    return max(a.left, b.left) - min(a.right, b.right)


def _merge_broken(parts: list[_Part], height: float) -> list[_Part]:
    """Join pieces stacked above one another into one digit, until none are left."""
    while True:
        parts.sort(key=lambda p: p.left)
        pairs = ((a, b) for a in range(len(parts)) for b in range(a + 1, len(parts)))
        i, j = next(((a, b) for a, b in pairs if _stacked(parts[a], parts[b], height)), (0, 0))
        if i == j:
            return _join_fragments(parts, height)
        parts[i] = _union(parts[i], parts[j])
        del parts[j]


def _stacked(a: _Part, b: _Part, height: float) -> bool:
    """Whether two pieces lie above one another and, together, fit in one digit."""
    return -_gap(a, b) >= STACKED * min(a.width, b.width) and _fits(_union(a, b), height)


def _join_fragments(parts: list[_Part], height: float) -> list[_Part]:
    while True:
        for i, small in enumerate(parts):
            if small.height >= FRAGMENT * height or len(parts) < 2:
                continue
            j = min((k for k in range(len(parts)) if k != i), key=lambda k: _gap(small, parts[k]))
            if _gap(small, parts[j]) <= REACH * height and _fits(_union(small, parts[j]), height):
                parts[j] = _union(small, parts[j])
                del parts[i]
                break
        else:
            return parts


def _stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width in pixels: ink area / (half its boundary length)."""
    area = int(mask.sum())
    edges = np.count_nonzero(mask[:, 1:] != mask[:, :-1]) + np.count_nonzero(mask[1:] != mask[:-1])
    return max(1.0, 2.0 * area / max(edges, 1))


def _candidate_cuts(
    own: np.ndarray, part: _Part, height: float
) -> list[tuple[float, float, float]]:
    """Lines where little ink crosses, as (crossing, x at the part's middle row, slope in
    columns per row), from the part's left: local minima of the projection along each of
    SLANTS (slanted digits touch along slanted lines), thinnest first, at most MAX_CUTS."""
    if part.width <= CONSIDER * height:
        return []
    ys, xs = np.nonzero(own[part.top : part.bottom, part.left : part.right])
    middle = (part.height - 1) / 2
    limit = THICK_CUT * _stroke_width(own)
    margin = max(1, round(0.15 * height))
    options = []
    for slope in SLANTS:
        shifted = np.rint(xs - slope * (ys - middle)).astype(np.int64)
        low = int(shifted.min())
        profile = np.bincount(shifted - low).astype(np.float64)  # ink crossing each line
        for x in range(margin, len(profile) - margin):
            near = profile[max(0, x - 2) : x + 3]
            if profile[x] <= limit and profile[x] <= near.min():
                options.append((float(profile[x]), float(x + low), slope))
    found: list[tuple[float, float, float]] = []
    for option in sorted(options):
        if len(found) == MAX_CUTS:
            break
        if all(abs(option[1] - f[1]) >= 0.1 * height for f in found):
            found.append(option)
    return sorted(found, key=lambda f: f[1])


def find_digits(ink: np.ndarray) -> list[Piece]:
    """The pieces of a one-line number in `ink` ((H, W) float in [0, 1], paper 0), left to
    right, broken digits joined, each with its candidate cuts (`read_piece` chooses among
    them). Empty when there is no ink."""
    mask = ink > INK_THRESHOLD  # (H, W) bool
    rows = np.flatnonzero(mask.any(1))
    if len(rows) == 0:
        return []
    factor = max(1, (rows[-1] - rows[0] + 1) // WORK_HEIGHT)
    small = pooled_mask(mask, factor)
    labels = label_components(small)
    parts = _parts(labels, small.size)
    if len(parts) > TOO_MANY:
        return [_tight(ink, 0, 0, f"{len(parts)} separate marks: not a written number")]
    # A digit's height: the tall pieces' (broken strokes and specks are shorter).
    tallest = max(p.height for p in parts)
    height = float(np.median([p.height for p in parts if p.height >= 0.5 * tallest]))
    pieces = []
    for part in sorted(_merge_broken(parts, height), key=lambda p: p.left + p.right):
        own = np.isin(labels, list(part.labels))
        piece = _to_piece(part, own, ink, factor)
        piece.height = height * factor
        # Each line as (x at the crop's top row, slope), in the crop's own pixels.
        left = part.left * factor + factor // 2 - piece.box[0]
        rise = (part.top + (part.height - 1) / 2) * factor - piece.box[1]
        cuts = _candidate_cuts(own, part, height)
        piece.cuts = [(left + x * factor - slope * rise, slope) for _, x, slope in cuts]
        pieces.append(piece)
    return pieces


def _to_piece(part: _Part, own: np.ndarray, ink: np.ndarray, factor: int) -> Piece:
    h, w = ink.shape
    left, right = part.left * factor, min(w, part.right * factor)
    top, bottom = part.top * factor, min(h, part.bottom * factor)
    own = own[part.top : part.bottom, part.left : part.right]
    # Back to full resolution: each work pixel covers factor x factor picture pixels.
    own = np.repeat(np.repeat(own, factor, 0), factor, 1)[: bottom - top, : right - left]
    return _tight(np.where(own, ink[top:bottom, left:right], 0.0), left, top)


def _tight(crop: np.ndarray, left: int, top: int, problem: str | None = None) -> Piece:
    """A piece from a crop whose top-left is at (left, top), its box tightened to its ink."""
    ys, xs = np.nonzero(crop > INK_THRESHOLD)
    if len(ys):
        crop = crop[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        top, left = top + int(ys.min()), left + int(xs.min())
    box = (int(left), int(top), int(left + crop.shape[1]), int(top + crop.shape[0]))
    return Piece(box, crop.astype(np.float32), problem)


def _log_prior(piece: Piece) -> float:
    """log P(a digit this wide for its height), relative to an ordinary one (see ASPECT_SCALE)."""
    width, height = piece.box[2] - piece.box[0], piece.box[3] - piece.box[1]
    return -max(0.0, width / max(height, 1) - 1.0) / ASPECT_SCALE


def read_piece(piece: Piece, confidence: Callable[[list[Piece]], np.ndarray]) -> list[Piece]:
    """The reading of `piece` (cut at none, some or all of its candidate cuts) with the best
    score, as its digits left to right. `confidence(pieces)` is the model's top probability
    for each piece read as one digit."""
    if piece.problem is not None:
        return [piece]
    h, w = piece.ink.shape
    rows, columns = np.indices((h, w))
    # right[k]: the pixels right of boundary k (the piece's left edge, the cuts, its right edge).
    right = [np.ones((h, w), bool)]
    right += [columns >= x0 + slope * rows for x0, slope in piece.cuts]
    right += [np.zeros((h, w), bool)]
    spans, segments = [], []
    for i in range(len(right)):
        for j in range(i + 1, len(right)):
            part = _tight(np.where(right[i] & ~right[j], piece.ink, 0.0), *piece.box[:2])
            tall = part.box[3] - part.box[1] >= FRAGMENT * piece.height
            if tall or (i, j) == (0, len(right) - 1):
                spans.append((i, j))
                segments.append(part)
    probabilities = confidence(segments)
    # The best reading into each boundary for each number of digits so far, so that the
    # winner can be compared with the best reading that has another number of digits.
    best: dict[tuple[int, int], tuple[float, list[Piece]]] = {(0, 0): (0.0, [])}
    for (i, j), part, p in sorted(
        zip(spans, segments, probabilities, strict=True), key=lambda t: t[0][1]
    ):
        gain = float(np.log(max(p, 1e-12))) + _log_prior(part) - SEGMENT_COST
        for (start, count), (score, path) in [*best.items()]:
            key = (j, count + 1)
            if start == i and (key not in best or score + gain > best[key][0]):
                best[key] = (score + gain, [*path, part])
    ends = sorted((v for (j, _), v in best.items() if j == len(right) - 1), key=lambda v: -v[0])
    wide = piece.box[2] - piece.box[0] > UNSURE_WIDTH * piece.height
    if wide and len(ends) > 1 and ends[0][0] - ends[1][0] < UNSURE_COUNT:
        return [
            replace(piece, problem="touching digits that could not be separated with confidence")
        ]
    digits = ends[0][1]
    for part in digits:
        part.height = piece.height
        if part.box[2] - part.box[0] > UNSEPARATED * piece.height:
            part.problem = "touching digits that could not be separated"
    return digits
