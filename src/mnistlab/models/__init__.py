"""The model zoo: a tiny explicit registry of architectures, chosen by name.

Every model file registers its classes with `register(name, class, ...)`; every class has the
same signature `(num_classes=10, in_channels=1, dropout=..., **arch_kwargs)`. Each file is imported
explicitly below, so the registry never depends on import order elsewhere.

Architecture options are checked against the constructors' signatures before anything is
built, and every model is sized on the "meta" device (shapes, no memory) before it is
allocated, so a typo or `widen_factor=200` is a one-line error, not a TypeError or an
allocator crash.
"""

# Explicit imports fill the registry (timm issue 1694: implicit discovery breaks silently).
from . import alexnet, fastnet, lenet, mlp, mobilenet, resnet, simple_cnn, vgg, wide_resnet  # noqa: F401
from .registry import (
    MAX_PARAMETERS,
    check_model,
    count_parameters,
    create_model,
    fixed_options,
    list_models,
    model_class,
    model_options,
    register,
    unknown_model_message,
)

__all__ = [
    "MAX_PARAMETERS",
    "check_model",
    "count_parameters",
    "create_model",
    "fixed_options",
    "list_models",
    "model_class",
    "model_options",
    "register",
    "unknown_model_message",
]
