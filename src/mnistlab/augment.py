"""Training augmentation for a whole batch at once: no per-image Python on the hot path.

Operates on images in [0, 1] with a black (0) background, before normalisation, so the
padding that grid_sample adds is the same black as MNIST's background.

    random_affine     rotation, zoom and shift (one affine_grid + grid_sample call)
    robust_augment    what people's digits do that MNIST's do not (issue 14): strokes
                      thicker or thinner, blur, low resolution (down- then up-sampled),
                      elastic distortion and contrast, each on a random part of the batch
    augment_batch     the two together, as the engine calls them

Random numbers come from a `generator` on the CPU, so runs are reproducible on any device.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low  # (n,)


def random_affine(
    images: torch.Tensor,  # (B, C, H, W) float in [0, 1]
    generator: torch.Generator,
    rotate_degrees: float = 10.0,
    translate: float = 0.1,
    scale: float = 0.1,
) -> torch.Tensor:
    """Rotate by U(-d, d) degrees, zoom by U(1-s, 1+s), shift by U(-t, t) of the size per axis."""
    b = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return _uniform(b, low, high, generator)

    angle = uniform(-rotate_degrees, rotate_degrees) * (math.pi / 180)
    zoom = uniform(1 - scale, 1 + scale)
    # affine_grid works in [-1, 1] coordinates, so a shift of t*size is 2t there.
    shift_x, shift_y = (
        uniform(-2 * translate, 2 * translate),
        uniform(-2 * translate, 2 * translate),
    )
    # The matrix maps output coordinates to input coordinates, hence the inverse zoom.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1
    )  # (B, 2, 3)
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


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
    """(n_out, n_in): bilinear resampling along one axis, as F.interpolate(align_corners=False)
    does it. Resampling by matrix products is far faster on a CPU than pooling small images."""
    m = torch.zeros(n_out, n_in)
    for i in range(n_out):
        src = min(max((i + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1)
        low = int(math.floor(src))
        frac = src - low
        m[i, low] += 1 - frac
        m[i, min(low + 1, n_in - 1)] += frac
    return m


@functools.lru_cache(maxsize=64)
def _area_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """(n_out, n_in): each output pixel the mean of the input it covers (area averaging)."""
    m = torch.zeros(n_out, n_in)
    step = n_in / n_out
    for i in range(n_out):
        start, stop = i * step, (i + 1) * step
        for j in range(int(math.floor(start)), min(int(math.ceil(stop)), n_in)):
            m[i, j] = (min(stop, j + 1) - max(start, j)) / step
    return m


def _resample(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """rows @ image @ cols.T for every image: (B, C, H, W) -> (B, C, H', W'). `rows` and
    `cols` are one matrix each, or one per image ((B, H', H) and (B, W', W))."""
    rows = rows.to(device=images.device, dtype=images.dtype)
    cols = cols.to(device=images.device, dtype=images.dtype)
    if rows.dim() == 3:
        rows, cols = rows[:, None], cols[:, None]  # broadcast over channels
    return rows @ images @ cols.transpose(-1, -2)


def elastic_distort(
    images: torch.Tensor, generator: torch.Generator, alpha: float = ELASTIC_ALPHA
) -> torch.Tensor:
    """A smooth random displacement of every pixel (Simard et al. 2003, "Best practices for
    convolutional neural networks applied to visual document analysis"), by up to about
    `alpha` pixels: wobbly strokes, as a hand that is not MNIST's writes them."""
    b, _, h, w = images.shape
    # Random control points on a coarse grid, interpolated: a smooth field (B, 2, H, W).
    coarse = torch.rand(b, 2, ELASTIC_GRID, ELASTIC_GRID, generator=generator) * 2 - 1
    field = _resample(
        coarse.to(images.device, images.dtype),
        _linear_matrix(h, ELASTIC_GRID),
        _linear_matrix(w, ELASTIC_GRID),
    )
    identity = torch.eye(2, 3, device=images.device, dtype=images.dtype).expand(b, 2, 3)
    grid = F.affine_grid(identity, list(images.shape), align_corners=False)  # (B, H, W, 2)
    # Pixels -> [-1, 1] grid units: 2 / size per pixel.
    scale = torch.tensor([2 / w, 2 / h], device=images.device, dtype=images.dtype)
    grid = grid + (field * alpha).permute(0, 2, 3, 1) * scale
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
    for step in steps.unique().tolist():
        if step == 0:
            continue
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
    p: float = OPERATION_P,
) -> torch.Tensor:
    """Make `fraction` of the batch look less like MNIST: each chosen image gets, each with
    probability `p`, an elastic distortion, thicker or thinner strokes, a lower resolution,
    a blur and a contrast change (in that order), and is then brought back to full-white
    ink, as `preprocess_image` brings every picture. The rest of the batch is untouched."""
    b = images.shape[0]
    chosen = (torch.rand(b, generator=generator) < fraction).nonzero().flatten()
    n = len(chosen)
    if n == 0:
        return images
    x = images[chosen.to(images.device)]

    def some() -> torch.Tensor:  # which of the chosen images get the next operation
        return (torch.rand(n, generator=generator) < p).nonzero().flatten()

    def apply(x: torch.Tensor, which: torch.Tensor, op) -> torch.Tensor:
        if len(which) == 0:
            return x
        idx = which.to(x.device)
        x = x.clone()
        x[idx] = op(x[idx], which)
        return x

    x = apply(x, some(), lambda part, _: elastic_distort(part, generator))
    steps = torch.tensor(THICKNESS_STEPS)[
        torch.randint(len(THICKNESS_STEPS), (n,), generator=generator)
    ]
    x = apply(x, some(), lambda part, which: change_thickness(part, steps[which]))
    sides = torch.tensor(LOW_SIDES)[torch.randint(len(LOW_SIDES), (n,), generator=generator)]
    x = apply(x, some(), lambda part, which: low_resolution(part, sides[which]))
    sigmas = _uniform(n, *BLUR_SIGMA, generator)
    x = apply(x, some(), lambda part, which: gaussian_blur(part, sigmas[which]))
    gammas = torch.exp(_uniform(n, math.log(GAMMA[0]), math.log(GAMMA[1]), generator))
    x = apply(
        x,
        some(),
        lambda part, which: part.clamp_min(0) ** gammas[which].to(part)[:, None, None, None],
    )
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
) -> torch.Tensor:
    """The engine's augmentation: the random affine when its settings are given (as before
    issue 14, drawing the same random numbers), then the robustness operations on
    `robust_fraction` of the batch when that is given."""
    if rotate_degrees is not None:
        images = random_affine(images, generator, rotate_degrees, translate, scale)
    if robust_fraction:
        images = robust_augment(images, generator, robust_fraction)
    return images
