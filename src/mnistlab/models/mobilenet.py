"""MobileNetV2 adapted to 28x28 digits: Sandler, Howard, Zhu, Zhmoginov and Chen,
"MobileNetV2: inverted residuals and linear bottlenecks", CVPR 2018.

Each inverted residual block expands a thin tensor with a 1x1 convolution (factor t), filters
it with a depthwise 3x3 convolution (one filter per channel: about 1/9 the cost of a full 3x3
at these widths), then projects back to a thin tensor with a linear 1x1 (no ReLU: ReLU on a
low-dimensional tensor destroys information). The shortcut joins the thin ends.

The paper's ImageNet network halves the resolution five times (224 -> 7). For 28x28 the stem
keeps stride 1 and only three block groups have stride 2 (28 -> 14 -> 7 -> 4), the same move
as the CIFAR adaptations; the (t, c, n) table is the paper's. 2,236,106 parameters at width
1.0 with 1 input channel and 10 classes.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import conv_bn
from .registry import register

PAPER = "Sandler et al. 2018, MobileNetV2: inverted residuals and linear bottlenecks"

# (expansion t, output channels c, repeats n, stride s of the first repeat); the paper's
# Table 2 with strides 2 -> 1 for the first two downsampling groups (28x28, not 224x224).
MOBILENETV2_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of 8 (as the reference code does), never
    more than 10% below the unrounded value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidual(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn(in_channels, hidden, 1, nn.ReLU6))  # (B, t*C_in, H, W)
        layers += [
            conv_bn(hidden, hidden, 3, nn.ReLU6, stride=stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, out_channels, 1, bias=False),  # linear bottleneck
            nn.BatchNorm2d(out_channels),
        ]
        self.block = nn.Sequential(*layers)
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W)
        out = self.block(x)  # (B, C_out, H/stride, W/stride)
        return x + out if self.use_shortcut else out


class MobileNetV2(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        dropout: float = 0.0,
        width_mult: float = 1.0,
        last_channels: int = 1280,
    ):
        super().__init__()
        channels = make_divisible(32 * width_mult)
        # The paper widens the last layer with the multiplier but never narrows it.
        last = make_divisible(last_channels * max(1.0, width_mult))
        layers: list[nn.Module] = [conv_bn(in_channels, channels, 3, nn.ReLU6)]  # (B, 32, 28, 28)
        for expansion, width, repeats, stride in MOBILENETV2_SETTINGS:
            out = make_divisible(width * width_mult)
            for i in range(repeats):
                layers.append(InvertedResidual(channels, out, stride if i == 0 else 1, expansion))
                channels = out
        layers.append(conv_bn(channels, last, 1, nn.ReLU6))  # (B, 1280, 4, 4)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),  # (B, 1280)
            nn.Dropout(dropout),  # the paper's classifier also has dropout here
            nn.Linear(last, num_classes),  # (B, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 28, 28)
        return self.head(self.features(x))


register("mobilenetv2", MobileNetV2)
