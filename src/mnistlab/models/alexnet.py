"""AlexNet adapted to 28x28 digits, as in the user's report: Krizhevsky, Sutskever and
Hinton, "ImageNet classification with deep convolutional neural networks", NeurIPS 2012.

Every convolution is 3x3 and every pool 2x2 (the paper's kernels and strides would shrink a
28x28 image to nothing); the filter counts are the paper's: 96, 256, 384, 384, 256, pooled
after convolutions 1, 2 and 5 (28 -> 14 -> 7 -> 3). 29,583,562 parameters; why that is not
the user's 28,514,378 is in docs/NOTES.md.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import flat_features, make_features
from .registry import register

PAPER = "Krizhevsky et al. 2012, ImageNet classification with deep convolutional neural networks"

# Filter counts of the five convolutions; "M" is a 2x2 max pool.
ALEXNET_LAYOUT = [96, "M", 256, "M", 384, 384, 256, "M"]


class AlexNet(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        dropout: float = 0.0,
        layout: list | None = None,
        hidden: int = 4096,
        image_size: int = 28,
    ):
        super().__init__()
        self.features = make_features(layout or ALEXNET_LAYOUT, in_channels, batch_norm=False)
        flat = flat_features(self.features, in_channels, image_size)  # 2304 at 28x28
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, 2304)
            nn.Dropout(dropout),
            nn.Linear(flat, hidden),  # (B, 4096)
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),  # (B, 4096)
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),  # (B, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # (B, C, H, W) -> (B, num_classes)


register("alexnet", AlexNet)
