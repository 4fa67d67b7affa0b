"""ResNet for 28x28 digits: He, Zhang, Ren and Sun, "Deep residual learning for image
recognition", CVPR 2016.

The block is the user's `ResidualBlock` (the paper's basic block): conv3x3-BN-ReLU-conv3x3-BN
plus a shortcut that is the identity, or conv1x1-BN when the stride or width changes; the sum
goes through ReLU. Convolutions have no bias because the batch norm after them has its own.
The ImageNet stem (7x7 stride 2 and a max pool) would throw away three quarters of a 28x28
image at once, so the stem is one 3x3 convolution with 64 filters (the common CIFAR variant).
Stages of 64, 128, 256, 512 filters with strides 1, 2, 2, 2 take 28 -> 28 -> 14 -> 7 -> 4.

`resnet18` has exactly 11,172,810 parameters with 1 input channel and 10 classes, the count
in the user's table.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import conv_bn
from .registry import register

PAPER = "He et al. 2016, Deep residual learning for image recognition"


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            # The identity cannot be added when the shape changes: project it (paper's option B).
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W)
        out = F.relu(self.bn1(self.conv1(x)))  # (B, C_out, H/stride, W/stride)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(
        self,
        blocks_per_stage: tuple[int, ...],
        num_classes: int = 10,
        in_channels: int = 1,
        dropout: float = 0.0,
        widths: tuple[int, ...] = (64, 128, 256, 512),
    ):
        super().__init__()
        if len(widths) != len(blocks_per_stage):
            raise ValueError("one width per stage is needed")
        self.stem = conv_bn(in_channels, widths[0], 3)
        stages = []
        channels = widths[0]
        for i, (width, count) in enumerate(zip(widths, blocks_per_stage, strict=True)):
            # The first stage keeps the resolution; each later one halves it.
            first = BasicBlock(channels, width, 1 if i == 0 else 2)
            rest = [BasicBlock(width, width) for _ in range(count - 1)]
            stages.append(nn.Sequential(first, *rest))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),  # (B, 512, 1, 1) whatever the input size
            nn.Flatten(),  # (B, 512)
            nn.Dropout(dropout),  # the paper has none; the seed put it here
            nn.Linear(channels, num_classes),  # (B, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 28, 28)
        x = self.stem(x)  # (B, 64, 28, 28)
        x = self.stages(x)  # (B, 512, 4, 4)
        return self.head(x)


register("resnet18", ResNet, (2, 2, 2, 2))
register("resnet34", ResNet, (3, 4, 6, 3))
