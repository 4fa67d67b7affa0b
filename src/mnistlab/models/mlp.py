"""A multilayer perceptron baseline: no convolutions, so the report shows what they buy.

Fully connected layers on the flattened pixels, ReLU and dropout after each hidden layer.
784 -> 512 -> 256 -> classes has 535,818 parameters; plain MLPs of this size reach about
98.3-98.5% on MNIST (LeCun et al. 1998, Table 1: 2-layer nets 95.3-98.4% without distortions).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .registry import register

PAPER = "Rumelhart, Hinton & Williams 1986, Learning representations by back-propagating errors"


class MLP(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        dropout: float = 0.0,
        hidden: tuple[int, ...] = (512, 256),
        image_size: int = 28,
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]  # (B, C*H*W)
        features = in_channels * image_size * image_size
        for width in hidden:
            layers += [nn.Linear(features, width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            features = width
        layers.append(nn.Linear(features, num_classes))  # (B, num_classes)
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        return self.layers(x)


register("mlp", MLP)
