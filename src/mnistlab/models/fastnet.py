"""FastNet: a tiny plain CNN built for time-to-99%, not for the last tenth of a point.

No paper: it follows the speed-run recipe of airbench (Jordan 2024, "94% on CIFAR-10 in
3.29 seconds on a single GPU") scaled down to digits: few, narrow 3x3 convolutions with batch
norm, max pools to shrink the map early, a global max pool instead of a big flattened layer,
and (in training, not here) AdamW with a one-cycle schedule, label smoothing and bf16.
Under 50,000 parameters: with 1 input channel and 10 classes it has 47,194.

Layout: 16@28 -> 32@28 -> pool 14 -> 48@14 -> pool 7 -> 64@7 -> pool 3 -> global max -> linear.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import register

PAPER = "none (mnistlab speed baseline, after Jordan 2024, airbench)"

FASTNET_WIDTHS = (16, 32, 48, 64)


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),  # BN supplies the bias
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class FastNet(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        dropout: float = 0.0,
        widths: tuple[int, ...] = FASTNET_WIDTHS,
    ):
        super().__init__()
        c1, c2, c3, c4 = widths
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, c1),  # (B, 16, 28, 28)
            conv_bn_relu(c1, c2),
            nn.MaxPool2d(2),  # (B, 32, 14, 14)
            conv_bn_relu(c2, c3),
            nn.MaxPool2d(2),  # (B, 48, 7, 7)
            conv_bn_relu(c3, c4),
            nn.MaxPool2d(2),  # (B, 64, 3, 3)
        )
        self.head = nn.Sequential(
            # Max, not average: a stroke anywhere in the map is evidence for its digit.
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),  # (B, 64)
            nn.Dropout(dropout),
            nn.Linear(c4, num_classes),  # (B, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 28, 28)
        return self.head(self.features(x))


@register
def fastnet(**kw) -> nn.Module:
    return FastNet(**kw)
