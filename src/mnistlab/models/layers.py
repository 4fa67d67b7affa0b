"""Small helpers shared by the model files (no architectures here)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import UserError


def make_features(layout: list, in_channels: int, batch_norm: bool) -> nn.Sequential:
    """3x3 convolutions (an int: the output channels) and 2x2 max pools ("M"), each
    convolution followed by ReLU (and batch norm first with `batch_norm`): AlexNet's and
    VGG's feature stacks."""
    layers: list[nn.Module] = []
    channels = in_channels
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        # A bias before batch norm is redundant (BN subtracts the mean and adds its own shift).
        layers.append(nn.Conv2d(channels, item, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU(inplace=True))
        channels = item
    return nn.Sequential(*layers)


@torch.no_grad()
def flat_features(module: nn.Module, in_channels: int, image_size: int) -> int:
    """Number of features after flattening `module`'s output (the first Linear's input) for
    one (1, in_channels, image_size, image_size) input.

    Run in eval mode so batch norm neither rejects a batch of one nor updates its running
    statistics with the dummy zeros; the module's previous mode is restored afterwards.
    """
    was_training = module.training
    module.eval()
    try:
        return module(torch.zeros(1, in_channels, image_size, image_size))[0].numel()
    except RuntimeError as exc:  # e.g. "Output size is too small" after too many pools
        raise UserError(
            f"a {image_size}x{image_size} input is too small for this model's layers ({exc})"
        ) from exc
    finally:
        module.train(was_training)
