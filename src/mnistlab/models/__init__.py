"""The model zoo: a tiny explicit registry of architectures, chosen by name.

Every model file registers its constructors with `@register`; every constructor has the same
signature `(num_classes=10, in_channels=1, dropout=..., **arch_kwargs)`. Each file is imported
explicitly below, so the registry never depends on import order elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real

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
    # Checked here once, so no model file has to (and torch's own errors are cryptic).
    # numbers.* accepts numpy scalars too; bool is an int in Python but never a count here.
    for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise UserError(f"{arg} must be a positive integer, got {value!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, Real) or not 0.0 <= dropout < 1.0:
        raise UserError(f"dropout must be a number in [0, 1), got {dropout!r}")
    num_classes, in_channels, dropout = int(num_classes), int(in_channels), float(dropout)
    try:
        return _REGISTRY[name](
            num_classes=num_classes, in_channels=in_channels, dropout=dropout, **arch_kwargs
        )
    except TypeError as exc:
        # A misspelt or conflicting architecture option (e.g. from `--arch KEY=VALUE`) is the
        # user's mistake, not a crash; any other TypeError is a bug and propagates unchanged.
        if "unexpected keyword argument" in str(exc) or "multiple values" in str(exc):
            raise UserError(f"model {name!r}: bad architecture option: {exc}") from exc
        raise


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Explicit imports fill the registry (timm issue 1694: implicit discovery breaks silently).
from . import (  # noqa: E402
    alexnet,  # noqa: F401
    fastnet,  # noqa: F401
    lenet,  # noqa: F401
    mlp,  # noqa: F401
    mobilenet,  # noqa: F401
    resnet,  # noqa: F401
    simple_cnn,  # noqa: F401
    vgg,  # noqa: F401
    wide_resnet,  # noqa: F401
)
