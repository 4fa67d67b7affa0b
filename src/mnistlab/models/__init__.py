"""The model zoo: a tiny explicit registry of architectures, chosen by name.

Every model file registers its constructors with `@register`; every constructor has the same
signature `(num_classes=10, in_channels=1, dropout=..., **arch_kwargs)`. Each file is imported
explicitly below, so the registry never depends on import order elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from ..errors import UserError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    name = constructor.__name__
    if name in _REGISTRY:
        raise RuntimeError(f"model {name!r} registered twice")
    _REGISTRY[name] = constructor
    return constructor


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(
    name: str, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.0, **arch_kwargs
) -> nn.Module:
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}; valid models: {', '.join(list_models())}")
    return _REGISTRY[name](
        num_classes=num_classes, in_channels=in_channels, dropout=dropout, **arch_kwargs
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Explicit imports fill the registry (timm issue 1694: implicit discovery breaks silently).
from . import lenet  # noqa: E402,F401
