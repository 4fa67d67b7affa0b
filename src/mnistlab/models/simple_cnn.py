"""The M3, M5 and M7 simple CNNs of An, Lee, Park, Yang and So, "An ensemble of simple
convolutional neural network models for MNIST digit recognition", arXiv:2008.10400, 2020.

Plain stacks of unpadded k x k convolutions (k = 3, 5, 7), each followed by batch norm and
ReLU, with no pooling at all: the map shrinks only by the kernel borders (M5: 28 -> 24 -> 20
-> 16 -> 12 -> 8). One bias-free linear layer on the flattened map, then BatchNorm1d on the
logits, as in the authors' code. Single models reached about 99.7% mean test accuracy (best
runs ~99.8%) with 150 epochs, rotation and translation augmentation and EMA weights; a vote of
three models 99.87%.

Parameters (1 channel, 10 classes): m3 1,124,180, m5 1,128,180, m7 2,291,972 (M7's four
7x7 convolutions cost twice the others).
`dropout` (not in the paper, 0 by default) goes before the linear layer.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import conv_bn, flat_features
from .registry import register

PAPER = "An et al. 2020, An ensemble of simple convolutional neural network models for MNIST digit recognition"

# (kernel size, output channels of each convolution), from the authors' code.
SIMPLE_CNN_LAYOUTS = {
    "m3": (3, [32, 48, 64, 80, 96, 112, 128, 144, 160, 176]),  # 28 -> 8, 176 x 8 x 8
    "m5": (5, [32, 64, 96, 128, 160]),  # 28 -> 8, 160 x 8 x 8
    "m7": (7, [48, 96, 144, 192]),  # 28 -> 4, 192 x 4 x 4
}


class SimpleCNN(nn.Module):
    def __init__(
        self,
        kernel_size: int,
        channels: list[int],
        num_classes: int = 10,
        in_channels: int = 1,
        dropout: float = 0.0,
        image_size: int = 28,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for width in channels:
            # No padding: the shrinking map is the only downsampling. Kept flat, as checkpoints
            # name the layers features.0, features.1, ...
            layers += conv_bn(previous, width, kernel_size, padding=0)
            previous = width
        self.features = nn.Sequential(*layers)
        flat = flat_features(self.features, in_channels, image_size)
        self.head = nn.Sequential(
            nn.Flatten(),  # (B, C*H*W)
            nn.Dropout(dropout),
            nn.Linear(flat, num_classes, bias=False),
            nn.BatchNorm1d(num_classes),  # (B, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 28, 28)
        return self.head(self.features(x))  # (B, 160, 8, 8) for m5 -> (B, num_classes)


for _name, _layout in SIMPLE_CNN_LAYOUTS.items():
    register(_name, SimpleCNN, *_layout)
