"""VGG for 28x28 digits: Simonyan and Zisserman, "Very deep convolutional networks for
large-scale image recognition", ICLR 2015.

Stacks of 3x3 convolutions separated by 2x2 max pools. The paper's five pools would shrink a
28x28 image to zero (28 -> 14 -> 7 -> 3 -> 1 -> 0), so every layout here drops the last one:
after four pools the map is 1x1.

Two heads:

* `vgg11_seed` reproduces the user's "VGG-13" exactly: 128,806,154 parameters (1 input
  channel, 10 classes). That count is only reached by the VGG-11 convolution layout (8
  convolutions, with bias, ReLU, no batch norm) followed by the ImageNet head: adaptive average
  pool to 7x7, then 25088 -> 4096 -> 4096 -> classes. The 7x7 pool copies a 1x1 map 49 times,
  so the first linear layer's 102.8M weights (80% of the model) see 49 copies of the same 512
  numbers and learn nothing a 512-input layer could not.
* `vgg11`, `vgg13`, `vgg16` keep the paper's convolution layouts, add batch norm after each
  convolution (Ioffe and Szegedy 2015; it makes these depths trainable without the paper's
  staged initialisation) and flatten the 1x1 map into a small head 512 -> 512 -> classes:
  vgg11 9,752,522 parameters, vgg13 9,937,226, vgg16 15,248,202 (vgg11 has 13x fewer than
  vgg11_seed for the same convolutions, and fewer MACs: 95.4M against 214.4M per image).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import flat_features, make_features
from .registry import register

PAPER = (
    "Simonyan & Zisserman 2015, Very deep convolutional networks for large-scale image recognition"
)

# Output channels of each 3x3 convolution; "M" is a 2x2 max pool. The paper's configurations
# A (11 layers), B (13) and D (16), each without its fifth pool (see the module docstring).
VGG_LAYOUTS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
}


class VGG(nn.Module):
    def __init__(
        self,
        layout: list,
        num_classes: int = 10,
        in_channels: int = 1,
        dropout: float = 0.0,
        batch_norm: bool = True,
        pool_size: int | None = None,
        hidden: int = 512,
        image_size: int = 28,
    ):
        """`pool_size=None` flattens the feature map as is; an int first average-pools it
        to pool_size x pool_size (7 in the paper's ImageNet head)."""
        super().__init__()
        self.features = make_features(layout, in_channels, batch_norm)  # (B, 512, 1, 1)
        self.pool = nn.AdaptiveAvgPool2d(pool_size) if pool_size else nn.Identity()
        flat = flat_features(nn.Sequential(self.features, self.pool), in_channels, image_size)
        # Dropout after each hidden layer, as in the paper (and torchvision).
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, flat): 512 compact, 25088 with the 7x7 pool
            nn.Linear(flat, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),  # (B, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 28, 28)
        x = self.features(x)  # (B, 512, 1, 1)
        x = self.pool(x)  # unchanged, or (B, 512, 7, 7) for the seed head
        return self.classifier(x)


for _name, _layout in VGG_LAYOUTS.items():
    register(_name, VGG, _layout)
# The seed's choices are defaults, so an architecture option can still override one.
SEED_HEAD = {"batch_norm": False, "pool_size": 7, "hidden": 4096}
vgg11_seed = register("vgg11_seed", VGG, VGG_LAYOUTS["vgg11"], defaults=SEED_HEAD)
