"""What each registered model costs: parameters and multiply-accumulates (MACs) per image.

MACs are counted, not typed in: forward hooks on every Conv2d and Linear record the output
size of one real forward pass. A convolution costs (output elements) x (input channels per
group) x (kernel area); a linear layer (output elements) x (input features). Batch norm,
activations, pooling and additions are left out, as in most published MAC/FLOP counts (they
are memory-bound and small next to the convolutions).
"""

from __future__ import annotations

import math
import sys

import torch
import torch.nn as nn

from .layers import forward_once
from .registry import (
    count_parameters,
    create_model,
    fixed_options,
    list_models,
    model_class,
    model_options,
)


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (1, 28, 28)) -> int:
    """Multiply-accumulates of Conv2d and Linear layers for ONE input of shape (C, H, W).

    The model runs once on zeros (`forward_once`: on the model's own device, so a model built
    on the "meta" device is measured without allocating or computing anything).
    """
    total = 0

    def hook(module: nn.Module, inputs, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        else:
            per_output = module.in_features
        total += output[0].numel() * per_output  # output[0]: one image of the batch of one

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    try:
        forward_once(model, input_shape)
    finally:
        for handle in handles:
            handle.remove()
    return total


def describe_models(
    names: list[str] | None = None, num_classes: int = 10, in_channels: int = 1
) -> list[dict]:
    """One row per network (default: all, sorted by name): name, aliases, params, macs per
    28x28 image, paper.

    Names that build the same network (`wrn` with its defaults is `wrn16_4`) share one row,
    under the name with the fewest options (the fixed variant); the others are its aliases.
    Models are built on the "meta" device: shapes and counts without memory or arithmetic,
    so the 129M-parameter vgg11_seed costs nothing to describe.
    """
    rows: dict[tuple, dict] = {}
    for name in sorted(names or list_models(), key=lambda n: (len(model_options(n)), n)):
        with torch.device("meta"):
            model = create_model(name, num_classes=num_classes, in_channels=in_channels)
        macs = count_macs(model, (in_channels, 28, 28))
        shapes = tuple((key, tuple(value.shape)) for key, value in model.state_dict().items())
        network = (type(model), shapes, macs)
        if network in rows:
            rows[network]["aliases"].append(name)
            continue
        rows[network] = {
            "name": name,
            "aliases": [],
            "params": count_parameters(model),
            "macs": macs,
            "paper": getattr(sys.modules[type(model).__module__], "PAPER", ""),
        }
    return sorted(rows.values(), key=lambda row: row["name"])


def describe_model(name: str, num_classes: int = 10, in_channels: int = 1) -> dict:
    """One architecture in full: its row (params, MACs, paper, aliases), its class, the
    architecture options with their defaults, the options this variant fixes, and the other
    registered variants of the same class."""
    options = model_options(name)  # an unknown name raises here, before anything is built
    rows = describe_models(num_classes=num_classes, in_channels=in_channels)
    row = next(r for r in rows if name == r["name"] or name in r["aliases"])
    same = [row["name"], *row["aliases"]]
    return row | {
        "name": name,
        "aliases": [n for n in same if n != name],
        "class": model_class(name).__name__,
        # JSON-ready: tuples as lists.
        "options": {k: _plain(v) for k, v in options.items()},
        "fixed": {k: _plain(v) for k, v in fixed_options(name).items()},
        "variants": [n for n in list_models() if n != name and model_class(n) is model_class(name)],
    }


def _plain(value):
    return list(value) if isinstance(value, tuple) else value
