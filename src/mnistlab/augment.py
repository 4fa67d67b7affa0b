"""Training augmentation for a whole batch at once: no per-image Python on the hot path.

`random_affine` (rotation, zoom, shift), `robust_augment` (issue 14: what people's digits do
that MNIST's do not) and `writer_augment` (issue 22: how other writers form digits), together
in `augment_batch`. They operate on images in [0, 1] with a black (0) background, before
normalisation, so the padding that grid_sample adds is the same black as MNIST's background.
Random numbers come from a `generator` on the CPU, so runs are reproducible on any device.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low  # (n,)


def _theta(top: list[torch.Tensor], bottom: list[torch.Tensor]) -> torch.Tensor:
    """(n, 2, 3) affine matrices from the (n,) entries of their two rows."""
    return torch.stack([torch.stack(top, 1), torch.stack(bottom, 1)], 1)


def _affine(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """`theta` maps output coordinates to input coordinates, in affine_grid's [-1, 1] units."""
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_affine(
    images: torch.Tensor,  # (B, C, H, W) float in [0, 1]
    generator: torch.Generator,
    rotate_degrees: float = 10.0,
    translate: float = 0.1,
    scale: float = 0.1,
) -> torch.Tensor:
    """Rotate by U(-d, d) degrees, zoom by U(1-s, 1+s), shift by U(-t, t) of the size per axis."""
    b = images.shape[0]
    angle = _uniform(b, -rotate_degrees, rotate_degrees, generator) * (math.pi / 180)
    zoom = _uniform(b, 1 - scale, 1 + scale, generator)
    # affine_grid works in [-1, 1] coordinates, so a shift of t*size is 2t there.
    shift_x = _uniform(b, -2 * translate, 2 * translate, generator)
    shift_y = _uniform(b, -2 * translate, 2 * translate, generator)
    # The matrix maps output coordinates to input coordinates, hence the inverse zoom.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    return _affine(images, _theta([cos, -sin, shift_x], [sin, cos, shift_y]))


# ---------------------------------------------------------------- robustness
# Each operation is applied to this fraction of the images chosen for robust augmentation,
# independently, so an image may get several (a thick, blurred, low-resolution scan).
OPERATION_P = 0.5
# Low resolution: the 28x28 image is area-averaged down to one of these sides and brought
# back up (bilinear). The digit's 20-pixel box then had 7-14 pixels: an 8x8 scan's digit
# comes out of `preprocess_image` like the 10-pixel case.
LOW_SIDES = (10, 12, 14, 17, 20)
BLUR_SIGMA = (0.5, 1.4)  # Gaussian blur, pixels of the 28x28 image
# Thickness, in half pixels per side: morphology at 2x resolution, so thinning by half a
# pixel does not erase MNIST's 2-pixel strokes. -1 thins, 1-3 thicken.
THICKNESS_STEPS = (-1, 1, 2, 3)
ELASTIC_ALPHA = 1.5  # peak displacement in pixels of a smooth random field...
ELASTIC_GRID = 4  # ...drawn on a 4x4 grid of control points and upsampled
GAMMA = (0.5, 2.0)  # contrast: ink levels raised to a power, log-uniform in this range


@functools.lru_cache(maxsize=64)
def _linear_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """(n_out, n_in): F.interpolate's linear resampling (align_corners=False) along one axis,
    as a matrix: the resampled identity, in float64 and rounded once to float32. Resampling by
    matrix products is far faster on a CPU than pooling small images."""
    eye = torch.eye(n_in, dtype=torch.float64)[None]
    columns = F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0]  # (n_in, n_out)
    return columns.T.contiguous().float()


@functools.lru_cache(maxsize=64)
def _area_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """(n_out, n_in): each output pixel the mean of the input it covers (area averaging)."""
    step = n_in / n_out
    edges = torch.arange(n_out + 1, dtype=torch.float64) * step  # of the output pixels
    j = torch.arange(n_in, dtype=torch.float64)
    covered = torch.minimum(edges[1:, None], j + 1) - torch.maximum(edges[:-1, None], j)
    return (covered.clamp_min(0) / step).float()


def _resample(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """rows @ image @ cols.T for every image: (B, C, H, W) -> (B, C, H', W'). `rows` and
    `cols` are one matrix each, or one per image ((B, H', H) and (B, W', W))."""
    rows = rows.to(device=images.device, dtype=images.dtype)
    cols = cols.to(device=images.device, dtype=images.dtype)
    if rows.dim() == 3:
        rows, cols = rows[:, None], cols[:, None]  # broadcast over channels
    return rows @ images @ cols.transpose(-1, -2)


def elastic_distort(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A smooth random displacement of every pixel (Simard et al. 2003, "Best practices for
    convolutional neural networks applied to visual document analysis"), by up to about
    ELASTIC_ALPHA pixels: wobbly strokes, as a hand that is not MNIST's writes them."""
    b, _, h, w = images.shape
    # Random control points on a coarse grid, interpolated: a smooth field (B, 2, H, W).
    coarse = (torch.rand(b, 2, ELASTIC_GRID, ELASTIC_GRID, generator=generator) * 2 - 1).to(images)
    field = _resample(coarse, _linear_matrix(h, ELASTIC_GRID), _linear_matrix(w, ELASTIC_GRID))
    identity = torch.eye(2, 3, device=images.device, dtype=images.dtype).expand(b, 2, 3)
    grid = F.affine_grid(identity, list(images.shape), align_corners=False)  # (B, H, W, 2)
    # Pixels -> [-1, 1] grid units: 2 / size per pixel.
    scale = torch.tensor([2 / w, 2 / h], device=images.device, dtype=images.dtype)
    grid = grid + (field * ELASTIC_ALPHA).permute(0, 2, 3, 1) * scale
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _shift_extreme(x: torch.Tensor, radius: int, op) -> torch.Tensor:
    """Max (dilation) or min (erosion) over a (2r+1)-square neighbourhood, as `radius` rounds
    of neighbour comparisons: elementwise ops, far faster than max_pool2d(stride=1) on a CPU."""
    fill = 0.0 if op is torch.maximum else 1.0
    for _ in range(radius):
        padded = F.pad(x, (1, 1, 1, 1), value=fill)
        x = op(op(padded[..., 1:-1, :-2], padded[..., 1:-1, 2:]), x)  # left, right
        padded = F.pad(x, (0, 0, 1, 1), value=fill)
        x = op(op(padded[..., :-2, :], padded[..., 2:, :]), x)  # up, down
    return x


def change_thickness(images: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Grey-level dilation (steps > 0) or erosion (steps < 0) by |steps| half pixels per side:
    morphology at twice the resolution, averaged back down. `steps` is (B,) int."""
    b, c, h, w = images.shape
    big = _resample(images, _linear_matrix(2 * h, h), _linear_matrix(2 * w, w))
    out = big.clone()
    for step in steps.unique().tolist():  # 0 leaves an image as it is: no rounds
        chosen = (steps == step).nonzero().flatten().to(images.device)
        op = torch.maximum if step > 0 else torch.minimum
        out[chosen] = _shift_extreme(big[chosen], abs(step), op)
    return out.reshape(b, c, h, 2, w, 2).mean((3, 5))


def low_resolution(images: torch.Tensor, sides: torch.Tensor) -> torch.Tensor:
    """Area-average each image down to `sides[i]` pixels a side and back up (bilinear): a
    low-resolution scan or a far-away photo. `sides` is (B,) int."""
    _, _, h, w = images.shape
    down_rows = torch.stack([_linear_matrix(h, s) @ _area_matrix(s, h) for s in sides.tolist()])
    down_cols = torch.stack([_linear_matrix(w, s) @ _area_matrix(s, w) for s in sides.tolist()])
    return _resample(images, down_rows, down_cols)  # one (H, H) matrix per image: down and up


def gaussian_blur(images: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Each image blurred with its own Gaussian (sigma in pixels; (B,) float), as one batched
    matrix product per axis (the blur is separable; the border reflects no light in)."""
    _, _, h, w = images.shape

    def matrices(n: int) -> torch.Tensor:
        t = torch.arange(n, dtype=torch.float32)
        d = t[None, :, None] - t[None, None, :]  # (1, n, n)
        k = torch.exp(-0.5 * (d / sigmas.float().clamp_min(1e-3)[:, None, None]) ** 2)
        return k / k.sum(-1, keepdim=True)  # (B, n, n), rows sum to 1

    return _resample(images, matrices(h), matrices(w))


def robust_augment(
    images: torch.Tensor,  # (B, C, H, W) float in [0, 1]
    generator: torch.Generator,
    fraction: float = 0.5,
) -> torch.Tensor:
    """Make `fraction` of the batch look less like MNIST: each chosen image gets, each with
    probability OPERATION_P, an elastic distortion, thicker or thinner strokes, a lower
    resolution, a blur and a contrast change (in that order), and is then brought back to
    full-white ink, as `preprocess_image` brings every picture. The rest is untouched."""
    b = images.shape[0]
    chosen = (torch.rand(b, generator=generator) < fraction).nonzero().flatten()
    n = len(chosen)
    if n == 0:
        return images
    x = images[chosen.to(images.device)]  # a copy: changed in place below

    def apply(op) -> None:
        """`op(part, which)` on the chosen images that get this operation (OPERATION_P each)."""
        which = (torch.rand(n, generator=generator) < OPERATION_P).nonzero().flatten()
        if len(which):
            idx = which.to(x.device)
            x[idx] = op(x[idx], which)

    apply(lambda part, _: elastic_distort(part, generator))
    steps = torch.tensor(THICKNESS_STEPS)[
        torch.randint(len(THICKNESS_STEPS), (n,), generator=generator)
    ]
    apply(lambda part, which: change_thickness(part, steps[which]))
    sides = torch.tensor(LOW_SIDES)[torch.randint(len(LOW_SIDES), (n,), generator=generator)]
    apply(lambda part, which: low_resolution(part, sides[which]))
    sigmas = _uniform(n, *BLUR_SIGMA, generator)
    apply(lambda part, which: gaussian_blur(part, sigmas[which]))
    gammas = torch.exp(_uniform(n, math.log(GAMMA[0]), math.log(GAMMA[1]), generator))
    apply(lambda part, which: part.clamp_min(0) ** gammas[which].to(part)[:, None, None, None])
    # Full-white ink again, as preprocessing makes every picture's.
    peak = x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    x = (x / peak).clamp(0, 1)
    out = images.clone()
    out[chosen.to(images.device)] = x
    return out


def augment_batch(
    images: torch.Tensor,  # (B, C, H, W) float in [0, 1]
    generator: torch.Generator,
    rotate_degrees: float | None = None,
    translate: float = 0.1,
    scale: float = 0.1,
    robust_fraction: float | None = None,
    labels: torch.Tensor | None = None,
    writer_families: tuple[str, ...] = (),
    writer_share: float = 1.0,
) -> torch.Tensor:
    """The engine's augmentation: the writer families (issue 22; they need the batch's
    `labels`) on the clean digits, then the random affine when its settings are given (as
    before issue 14, drawing the same random numbers), then the robustness operations on
    `robust_fraction` of the batch when that is given. With no families nothing is drawn for
    them, so earlier recipes train exactly as before."""
    if writer_families:
        if labels is None:
            raise ValueError("writer_families need the batch's labels")
        images = writer_augment(images, labels, generator, writer_families, writer_share)
    if rotate_degrees is not None:
        images = random_affine(images, generator, rotate_degrees, translate, scale)
    if robust_fraction:
        images = robust_augment(images, generator, robust_fraction)
    return images


# ---------------------------------------------------------------- writers (issue 22)
# How people outside MNIST's writers form digits. Each family is a batched op on (n, 1, H, W)
# images in [0, 1] that draws its own random numbers; the label-conditional ones are given only
# images of their label. They run on the clean digit, before the random affine, so a flag or
# a bar added here is rotated, zoomed and blurred with the rest of the digit.
LABEL_P = 0.5  # share of a label's images that get its convention
WRITER_P = 0.25  # share of the batch that gets each label-free family
INK = 0.3  # an ink pixel: above this level
PEN = (2.0, 3.0)  # width of an added stroke, pixels of the 28x28 image (MNIST's pen is ~2-3)


def _extent(images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Ink bounding box per image: top, bottom, left, right (each (n,) float, pixel indices)."""
    ink = images[:, 0] > INK  # (n, H, W)
    big = float(max(ink.shape[1:]))  # where there is no ink: first `big`, last -1

    def first_last(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (n, L) bool
        at = torch.arange(mask.shape[1], device=images.device, dtype=images.dtype)
        return torch.where(mask, at, big).amin(1), torch.where(mask, at, -1.0).amax(1)

    return (*first_last(ink.any(2)), *first_last(ink.any(1)))


def _row_centre(images: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Ink-weighted mean column of row `rows[i]` of image i ((n,) float): where the stroke
    crosses that row."""
    n, _, h, w = images.shape
    idx = rows.round().long().clamp(0, h - 1).to(images.device)
    line = images[torch.arange(n, device=images.device), 0, idx]  # (n, W)
    line = line * (line > INK)
    c = torch.arange(w, device=images.device, dtype=images.dtype)
    return (line * c).sum(1) / line.sum(1).clamp_min(1e-6)


def _pixel_grid(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _, _, h, w = images.shape
    ys = torch.arange(h, device=images.device, dtype=images.dtype)[None, :, None]  # (1, H, 1)
    xs = torch.arange(w, device=images.device, dtype=images.dtype)[None, None, :]  # (1, 1, W)
    return xs, ys


def _segment_ink(images, start, end, width) -> torch.Tensor:
    """(n, 1, H, W): an antialiased straight stroke from start to end ((n, 2) as x, y),
    `width` (n,) pixels wide, one per image."""
    start, end, width = start.to(images), end.to(images), width.to(images)
    xs, ys = _pixel_grid(images)
    x0, y0 = start[:, 0, None, None], start[:, 1, None, None]
    dx, dy = (end - start)[:, 0, None, None], (end - start)[:, 1, None, None]
    t = (((xs - x0) * dx + (ys - y0) * dy) / (dx * dx + dy * dy).clamp_min(1e-6)).clamp(0, 1)
    dist = torch.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))  # (n, H, W)
    return (width[:, None, None] / 2 + 0.5 - dist).clamp(0, 1)[:, None]


def _draw(images, start, end, width) -> torch.Tensor:
    return torch.maximum(images, _segment_ink(images, start, end, width))


def continental_one(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A 1 as most of Europe writes it: a flag from the top down to the left (80%) and/or a
    foot across the base (always when there is no flag, else half the time)."""
    n = images.shape[0]
    top, bottom, _, _ = _extent(images)
    height = (bottom - top + 1).clamp_min(1)
    x_top, x_bottom = _row_centre(images, top), _row_centre(images, bottom)
    flag = torch.rand(n, generator=generator) < 0.8
    foot = ~flag | (torch.rand(n, generator=generator) < 0.5)
    length = _uniform(n, 0.25, 0.5, generator) * height
    angle = _uniform(n, 15.0, 50.0, generator) * (math.pi / 180)  # below the horizontal
    half = _uniform(n, 0.15, 0.3, generator) * height
    width = _uniform(n, *PEN, generator)
    start = torch.stack([x_top, top], 1)
    end = torch.stack([x_top - length * torch.cos(angle), top + length * torch.sin(angle)], 1)
    flagged = _draw(images, start, end, width)
    images = torch.where(flag[:, None, None, None].to(images.device), flagged, images)
    start = torch.stack([x_bottom - half, bottom], 1)
    footed = _draw(images, start, start + torch.stack([2 * half, 0 * half], 1), width)
    return torch.where(foot[:, None, None, None].to(images.device), footed, images)


def crossed_seven(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A 7 with a bar through the middle of its stem, slightly tilted."""
    n = images.shape[0]
    top, bottom, _, _ = _extent(images)
    height = (bottom - top + 1).clamp_min(1)
    y = top + _uniform(n, 0.45, 0.65, generator) * height
    x = _row_centre(images, y)
    half = _uniform(n, 0.18, 0.3, generator) * height
    tilt = _uniform(n, -1.0, 1.0, generator)
    start = torch.stack([x - half, y + tilt], 1)
    end = torch.stack([x + half, y - tilt], 1)
    return _draw(images, start, end, _uniform(n, *PEN, generator))


def _enclosed(images: torch.Tensor) -> torch.Tensor:
    """(n, H, W) bool: background that no path of background reaches from the border (holes)."""
    background = images[:, 0] <= INK
    outside = background.clone()
    outside[:, 1:-1, 1:-1] = False  # the flood starts from the border's background
    for _ in range(sum(background.shape[1:])):  # a flood fill: at most H + W rounds suffice
        grown = outside.clone()
        grown[:, 1:] |= outside[:, :-1]
        grown[:, :-1] |= outside[:, 1:]
        grown[:, :, 1:] |= outside[:, :, :-1]
        grown[:, :, :-1] |= outside[:, :, 1:]
        grown &= background
        if torch.equal(grown, outside):
            break
        outside = grown
    return background & ~outside


def open_four(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A closed 4 (its strokes meet at the top, enclosing a triangle) opened: the ink above
    the hole's top is cut away, up to the digit's top. 4s without a hole are left alone: the
    cut is only made where it can be placed from the image itself."""
    n, _, h, w = images.shape
    hole = _enclosed(images)  # (n, H, W)
    closed = hole.flatten(1).sum(1) >= 3
    if not closed.any():
        return images
    r = torch.arange(h, device=images.device)
    hole_top = torch.where(hole.any(2), r, h).amin(1)  # (n,)
    first = hole[torch.arange(n, device=images.device), hole_top.clamp(max=h - 1)].float()
    c = torch.arange(w, device=images.device, dtype=images.dtype)
    x = (first * c).sum(1) / first.sum(1).clamp_min(1)
    top, _, _, _ = _extent(images)
    start = torch.stack([x, hole_top.to(images.dtype)], 1)
    end = torch.stack([x, top - 1], 1)
    cut = _segment_ink(images, start, end, _uniform(n, 2.0, 3.0, generator))
    opened = images * (1 - cut)
    return torch.where(closed[:, None, None, None], opened, images)


def looped_two(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A 2 with a small loop where its diagonal meets the base (bottom left)."""
    n = images.shape[0]
    top, bottom, left, _ = _extent(images)
    radius = _uniform(n, 1.5, 3.0, generator)
    cx = left + radius + _uniform(n, 0.0, 2.0, generator)
    cy = bottom - radius - _uniform(n, 0.0, 1.0, generator)
    width = _uniform(n, *PEN, generator)
    xs, ys = _pixel_grid(images)
    dist = (
        torch.hypot(xs - cx[:, None, None], ys - cy[:, None, None]) - radius[:, None, None]
    ).abs()
    ring = (width[:, None, None] / 2 + 0.5 - dist).clamp(0, 1)[:, None]
    return torch.maximum(images, ring)


def hooked_nine(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A 9 whose tail curls back to the left at the bottom."""
    n = images.shape[0]
    top, bottom, _, _ = _extent(images)
    height = (bottom - top + 1).clamp_min(1)
    x = _row_centre(images, bottom)
    length = _uniform(n, 0.2, 0.35, generator) * height
    rise = _uniform(n, 0.2, 0.7, generator) * length
    start, end = torch.stack([x, bottom], 1), torch.stack([x - length, bottom - rise], 1)
    return _draw(images, start, end, _uniform(n, *PEN, generator))


def aspect_stretch(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Width times U(0.7, 1.6) (log-uniform) about the ink's centre, then the digit shrunk
    back into a 20-pixel box if it outgrew it: scanners and forms that stretch a digit to fill
    its box, and writers with wide or narrow hands."""
    n, _, h, w = images.shape
    top, bottom, left, right = _extent(images)
    stretch = torch.exp(_uniform(n, math.log(0.7), math.log(1.6), generator))
    wide = (right - left + 1).clamp_min(1) * stretch
    tall = (bottom - top + 1).clamp_min(1)
    fit = (20 / torch.maximum(wide, tall)).clamp(max=1)
    sx, sy = stretch * fit, fit  # output = input * s about the centre
    # The ink's centre in affine_grid's [-1, 1] units (align_corners=False): (2p + 1) / size - 1.
    cx, cy = (left + right + 1) / w - 1, (top + bottom + 1) / h - 1
    zero = torch.zeros(n)
    return _affine(
        images, _theta([1 / sx, zero, cx * (1 - 1 / sx)], [zero, 1 / sy, cy * (1 - 1 / sy)])
    )


def slant(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A shear of U(-25, 25) degrees about the centre row: forward- or back-slanted hands
    (the random affine's rotation turns the whole digit; a slant keeps rows level)."""
    n = images.shape[0]
    shear = torch.tan(_uniform(n, -25.0, 25.0, generator) * (math.pi / 180))
    zero, one = torch.zeros(n), torch.ones(n)
    return _affine(images, _theta([one, shear, zero], [zero, one, zero]))


def broken_strokes(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One to three gaps of 1.5-3 pixels cut at random places on the ink: a dry pen, a faint
    scan."""
    n = images.shape[0]
    weights = (images.flatten(1) > INK).float() + 1e-6  # (n, H*W): anywhere on the ink
    gaps = torch.multinomial(weights, 3, generator=generator)  # (n, 3), flat pixel indices
    used = torch.arange(3)[None] < torch.randint(1, 4, (n, 1), generator=generator)  # (n, 3)
    w = images.shape[-1]
    xs, ys = _pixel_grid(images)
    keep = torch.ones_like(images[:, 0])
    for k in range(3):
        x, y = (gaps[:, k] % w).to(images), (gaps[:, k] // w).to(images)
        radius = _uniform(n, 0.75, 1.5, generator).to(images)
        dist = torch.hypot(xs - x[:, None, None], ys - y[:, None, None])
        hole = (radius[:, None, None] + 0.5 - dist).clamp(0, 1) * used[:, k, None, None].to(images)
        keep = keep * (1 - hole)
    return images * keep[:, None]


def stray_marks(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Half the time a stroke of a neighbouring digit coming in from the left or right edge
    and touching this one; otherwise a short stray mark or dot anywhere."""
    n, _, h, w = images.shape
    top, bottom, left, right = _extent(images)
    neighbour = torch.rand(n, generator=generator) < 0.5
    from_left = torch.rand(n, generator=generator) < 0.5
    y = top + _uniform(n, 0.0, 1.0, generator) * (bottom - top).clamp_min(0)
    edge = torch.where(from_left, torch.zeros(n), torch.full((n,), w - 1.0))
    touch = torch.where(
        from_left, left + _uniform(n, 0, 2, generator), right - _uniform(n, 0, 2, generator)
    )
    start_n = torch.stack([edge, y + _uniform(n, -4, 4, generator)], 1)
    end_n = torch.stack([touch, y], 1)
    start_s = torch.stack([_uniform(n, 0, w - 1, generator), _uniform(n, 0, h - 1, generator)], 1)
    angle = _uniform(n, 0, math.pi, generator)
    length = _uniform(n, 0, 3, generator)
    end_s = start_s + torch.stack([torch.cos(angle), torch.sin(angle)], 1) * length[:, None]
    pick = neighbour[:, None]
    width = torch.where(neighbour, _uniform(n, *PEN, generator), _uniform(n, 1.5, 3.0, generator))
    return _draw(
        images, torch.where(pick, start_n, start_s), torch.where(pick, end_n, end_s), width
    )


def uneven_ink(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Ink that is dark in places and light in others (pen pressure, a drying pen): the levels
    times a smooth random field in [0.3, 1], then full-white ink again at the darkest point,
    as `preprocess_image` stretches every picture's levels."""
    n, _, h, w = images.shape
    coarse = _uniform(n * 9, 0.3, 1.0, generator).reshape(n, 1, 3, 3)
    field = _resample(coarse.to(images), _linear_matrix(h, 3), _linear_matrix(w, 3))
    x = images * field
    return (x / x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)).clamp(0, 1)


# name -> (operation, the label it is for or None for every label). The names are
# config.WRITER_FAMILIES, in the order they are applied.
WRITER_OPS = {
    "continental_one": (continental_one, 1),
    "crossed_seven": (crossed_seven, 7),
    "open_four": (open_four, 4),
    "looped_two": (looped_two, 2),
    "hooked_nine": (hooked_nine, 9),
    "aspect": (aspect_stretch, None),
    "slant": (slant, None),
    "broken": (broken_strokes, None),
    "stray": (stray_marks, None),
    "ink": (uneven_ink, None),
}


def writer_augment(
    images: torch.Tensor,  # (B, C, H, W) float in [0, 1]
    labels: torch.Tensor,  # (B,) int
    generator: torch.Generator,
    families: tuple[str, ...],
    share: float = 1.0,
) -> torch.Tensor:
    """Apply each named family (config.WRITER_FAMILIES) to a random part of the batch:
    LABEL_P x `share` of its label's images for a label's convention, WRITER_P x `share` of
    all images for the others. Every family draws its choice for the whole batch, so which
    images change does not depend on the others' outcomes; labels are never changed."""
    labels = labels.cpu()
    for op, label in (ops for name, ops in WRITER_OPS.items() if name in families):
        draw = torch.rand(len(labels), generator=generator)
        if label is not None:
            chosen = (draw < LABEL_P * share) & (labels == label)
        else:
            chosen = draw < WRITER_P * share
        idx = chosen.nonzero().flatten().to(images.device)
        if len(idx):
            # Small index-heavy ops on a few images: done on the CPU, whatever the device.
            images = images.clone()
            images[idx] = op(images[idx].cpu(), generator).clamp(0, 1).to(images.device)
    return images
