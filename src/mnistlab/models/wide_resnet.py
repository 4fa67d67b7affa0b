"""Wide residual networks: Zagoruyko and Komodakis, "Wide residual networks", BMVC 2016.

WRN-d-k: a 3x3 stem with 16 filters, then three groups of n = (d - 4) / 6 pre-activation
"wide basic" blocks with 16k, 32k and 64k filters (strides 1, 2, 2), a final BN-ReLU, global
average pooling and one linear layer. Pre-activation (He et al. 2016b): each block is
BN-ReLU-conv3x3, dropout, BN-ReLU-conv3x3, so the shortcut carries the raw sum; a 1x1
convolution replaces the identity shortcut when the width or stride changes. Dropout sits
between the two convolutions, as in the paper (the user's version put Dropout2d after both).

`wrn16_4` has exactly 2,748,602 parameters with 1 input channel and 10 classes, the count in
the user's table (their `fc = nn.Linear(256, ...)` = 64 x 4).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError
from .registry import register

PAPER = "Zagoruyko & Komodakis 2016, Wide residual networks"


class WideBasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W)
        out = self.conv1(F.relu(self.bn1(x)))  # (B, C_out, H/stride, W/stride)
        out = self.conv2(F.relu(self.bn2(self.dropout(out))))
        return out + self.shortcut(x)


class WideResNet(nn.Module):
    def __init__(
        self,
        depth: int = 16,
        widen_factor: int = 4,
        num_classes: int = 10,
        in_channels: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        # Each block has 2 convolutions; the stem and the shortcut-free count add 4.
        if depth < 10 or (depth - 4) % 6:
            raise UserError(
                f"WideResNet depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), got {depth}"
            )
        if widen_factor < 1:
            raise UserError(f"WideResNet widen_factor must be >= 1, got {widen_factor}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        groups = []
        channels = widths[0]
        for width, stride in zip(widths[1:], (1, 2, 2), strict=True):
            first = WideBasicBlock(channels, width, stride, dropout)
            rest = [WideBasicBlock(width, width, 1, dropout) for _ in range(n - 1)]
            groups.append(nn.Sequential(first, *rest))
            channels = width
        self.groups = nn.Sequential(*groups)
        # Pre-activation blocks end on a convolution, so normalise once more before pooling.
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),  # (B, 64k, 1, 1)
            nn.Flatten(),  # (B, 64k)
            nn.Linear(channels, num_classes),  # (B, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 28, 28)
        x = self.stem(x)  # (B, 16, 28, 28)
        x = self.groups(x)  # (B, 64k, 7, 7)
        return self.head(x)


register("wrn", WideResNet)  # any depth and width, chosen by architecture options
wrn16_4 = register("wrn16_4", WideResNet, fixed={"depth": 16, "widen_factor": 4})
wrn16_8 = register("wrn16_8", WideResNet, fixed={"depth": 16, "widen_factor": 8})
wrn28_10 = register("wrn28_10", WideResNet, fixed={"depth": 28, "widen_factor": 10})
