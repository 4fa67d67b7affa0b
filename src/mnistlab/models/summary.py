"""What each registered model costs: parameters and multiply-accumulates (MACs) per image.

MACs are counted, not typed in: forward hooks on every Conv2d and Linear record the output
size of one real forward pass. A convolution costs (output elements) x (input channels per
group) x (kernel area); a linear layer (output elements) x (input features). Batch norm,
activations, pooling and additions are left out, as in most published MAC/FLOP counts (they
are memory-bound and small next to the convolutions).
"""

from __future__ import annotations

import sys

import torch
import torch.nn as nn

from . import _REGISTRY, count_parameters, create_model, list_models


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (1, 28, 28)) -> int:
    """Multiply-accumulates of Conv2d and Linear layers for ONE input of shape (C, H, W).

    The model runs once in eval mode on zeros (on the model's own device, so a model built on
    the "meta" device is measured without allocating or computing anything); its previous
    mode is restored.
    """
    total = 0

    def conv_hook(module: nn.Conv2d, inputs, output: torch.Tensor) -> None:
        nonlocal total
        per_output = (
            (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        )
        total += output[0].numel() * per_output  # output[0]: one image of the batch of one

    def linear_hook(module: nn.Linear, inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output[0].numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def paper_of(name: str) -> str:
    """The citation in the `PAPER` constant of the file that registered `name`."""
    module = sys.modules[_REGISTRY[name].__module__]
    return getattr(module, "PAPER", "")


def describe_models(
    names: list[str] | None = None, num_classes: int = 10, in_channels: int = 1
) -> list[dict]:
    """One row per model (default: all, sorted by name): name, params, macs per 28x28 image,
    paper.

    Models are built on the "meta" device: shapes and counts without memory or arithmetic,
    so the 129M-parameter vgg11_seed costs nothing to describe.
    """
    rows = []
    for name in names or list_models():
        with torch.device("meta"):
            model = create_model(name, num_classes=num_classes, in_channels=in_channels)
        rows.append(
            {
                "name": name,
                "params": count_parameters(model),
                "macs": count_macs(model, (in_channels, 28, 28)),
                "paper": paper_of(name),
            }
        )
    return rows
