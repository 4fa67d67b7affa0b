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
        if batch_norm:
            layers += conv_bn(channels, item, 3)
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
        channels = item
    return nn.Sequential(*layers)


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, activation=nn.ReLU, **conv):
    """Convolution (`conv`: more Conv2d arguments), batch norm, activation. By default the
    padding keeps the size (odd kernels) and there is no bias: batch norm adds its own shift."""
    conv = {"padding": kernel_size // 2, "bias": False} | conv
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, **conv),
        nn.BatchNorm2d(out_channels),
        activation(inplace=True),
    )


@torch.no_grad()
def forward_once(module: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """`module`'s output for one zero input of `input_shape` (C, H, W), on the module's device.

    Run in eval mode so batch norm neither rejects a batch of one nor updates its running
    statistics with the dummy zeros; the module's previous mode is restored afterwards.
    """
    was_training = module.training
    module.eval()
    try:
        return module(torch.zeros(1, *input_shape, device=next(module.parameters()).device))
    finally:
        module.train(was_training)


def flat_features(module: nn.Module, in_channels: int, image_size: int) -> int:
    """Number of features after flattening `module`'s output (the first Linear's input)."""
    try:
        return forward_once(module, (in_channels, image_size, image_size))[0].numel()
    except RuntimeError as exc:  # e.g. "Output size is too small" after too many pools
        raise UserError(
            f"a {image_size}x{image_size} input is too small for this model's layers ({exc})"
        ) from exc
