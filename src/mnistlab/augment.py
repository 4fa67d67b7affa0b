"""Random affine augmentation for a whole batch at once (one affine_grid + grid_sample call).

Operates on images in [0, 1] with a black (0) background, before normalisation, so the
padding that grid_sample adds is the same black as MNIST's background.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(
    images: torch.Tensor,  # (B, C, H, W) float in [0, 1]
    generator: torch.Generator,
    rotate_degrees: float = 10.0,
    translate: float = 0.1,
    scale: float = 0.1,
) -> torch.Tensor:
    """Rotate by U(-d, d) degrees, zoom by U(1-s, 1+s), shift by U(-t, t) of the size per axis.

    Random numbers come from `generator` on the CPU, so runs are reproducible on any device.
    """
    b = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(b, generator=generator) * (high - low) + low  # (B,)

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
