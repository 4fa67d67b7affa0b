"""FastNet: a tiny plain CNN built for time-to-99%, not for the last tenth of a point.

No paper: it follows the speed-run recipe of airbench (Jordan 2024, "94% on CIFAR-10 in
3.29 seconds on a single GPU") scaled down to digits: four narrow 3x3 convolutions, the
first three max-pooled *before* their batch norm and ReLU (as airbench does), a global max
pool instead of a big flattened layer, and (in training, not here) AdamW with a one-cycle
schedule, label smoothing and bf16.

Pooling straight after the first convolution keeps later convolutions small (2.6M
multiply-accumulates per image), and pooling before BN and ReLU hands those memory-bound
layers a quarter of the values; the measurements behind the shape are in docs/NOTES.md.

Layout: conv 16@28 -> pool 14 -> conv 32@14 -> pool 7 -> conv 64@7 -> pool 3 -> conv 128@3
-> global max -> linear. 98,682 parameters with 1 input channel and 10 classes.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .registry import register

PAPER = "none (mnistlab speed baseline, after Jordan 2024, airbench)"

FASTNET_WIDTHS = (16, 32, 64, 128)


def conv_block(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)]  # BN adds bias
    if pool:
        layers.append(nn.MaxPool2d(2))
    layers += [nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


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
            conv_block(in_channels, c1, pool=True),  # (B, 16, 14, 14)
            conv_block(c1, c2, pool=True),  # (B, 32, 7, 7)
            conv_block(c2, c3, pool=True),  # (B, 64, 3, 3)
            conv_block(c3, c4, pool=False),  # (B, 128, 3, 3)
        )
        self.head = nn.Sequential(
            # Max, not average: a stroke anywhere in the map is evidence for its digit.
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),  # (B, 128)
            nn.Dropout(dropout),
            nn.Linear(c4, num_classes),  # (B, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 28, 28)
        return self.head(self.features(x))


register("fastnet", FastNet)
