"""The registry behind `mnistlab.models` (see its docstring): architectures by name, their
options read from their signatures, every model checked and sized before it is built."""

from __future__ import annotations

import difflib
import functools
import inspect
import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import torch
import torch.nn as nn

from ..errors import UserError

# The largest model anyone may build: 1e9 fp32 weights are 4 GB, about 16 GB with gradients
# and Adam's two moments. The largest shipped model, vgg11_seed, has 129M.
MAX_PARAMETERS = 1_000_000_000

# Arguments every constructor takes; they come from the dataset and TrainConfig.dropout, so
# they are never architecture options.
COMMON_ARGUMENTS = ("num_classes", "in_channels", "dropout")

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
# name -> (class, fixed, defaults): what a registered name builds, as its file states it.
_VARIANTS: dict[str, tuple[type[nn.Module], dict[str, Any], dict[str, Any]]] = {}


def register(
    name: str,
    model: type[nn.Module],
    *args: Any,
    fixed: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
) -> Callable[..., nn.Module]:
    """Register `model(*args, **kw)` under `name` and return its constructor. A thin variant of
    a class says what it sets: `args`, the variant's data (a layout; never options), `fixed`,
    class options it decides (wrn16_4: depth=16; not options of the variant), and `defaults`,
    class options it changes but lets the user override."""
    if name in _REGISTRY:
        raise RuntimeError(f"model {name!r} registered twice")
    fixed, defaults = fixed or {}, defaults or {}

    def build(**kw) -> nn.Module:
        return model(*args, **(defaults | kw | fixed))

    _REGISTRY[name] = build
    _VARIANTS[name] = (model, fixed, defaults)
    return build


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def unknown_model_message(name: object) -> str:
    close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown model {name!r}; valid models: {', '.join(list_models())}{hint}"


def check_model(
    name: str, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.0, **arch_kwargs
) -> int:
    """Validate a model's arguments and return its parameter count, building it on the meta
    device (no memory, no arithmetic). Raises UserError for an unknown name or option, a value
    of the wrong type, options that do not build, or more than MAX_PARAMETERS parameters."""
    _check_arguments(name, num_classes, in_channels, dropout, arch_kwargs)
    with torch.device("meta"):
        model = _build(name, num_classes, in_channels, dropout, arch_kwargs)
    params = count_parameters(model)
    if params > MAX_PARAMETERS:
        raise UserError(
            f"model {name!r}{_with(arch_kwargs)} has {params:,} parameters, over the budget of "
            f"{MAX_PARAMETERS:,}; choose smaller architecture options"
        )
    return params


def create_model(
    name: str, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.0, **arch_kwargs
) -> nn.Module:
    """Build a registered model; `check_model` first, so nothing is allocated for a model that
    is refused."""
    check_model(name, num_classes, in_channels, dropout, **arch_kwargs)
    return _build(name, int(num_classes), int(in_channels), float(dropout), arch_kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_options(name: str) -> dict[str, Any]:
    """The architecture options `name` accepts (`--arch KEY=VALUE`), each with its default."""
    return dict(_option_table(name)[0])


def fixed_options(name: str) -> dict[str, Any]:
    """Options of the model's class that this variant sets itself (wrn16_4: depth=16)."""
    return dict(_option_table(name)[1])


@functools.cache
def _option_table(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The class's keyword arguments with a default, less the common ones and those the
    variant fixes, with the defaults it changes; and what it fixes. Parameters without a
    default are the variant's data (a layout, a block type), never options."""
    if name not in _REGISTRY:
        raise UserError(unknown_model_message(name))
    model, fixed, defaults = _VARIANTS[name]
    options = {
        p.name: defaults.get(p.name, p.default)
        for p in inspect.signature(model).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.default is not p.empty
        and p.name not in fixed
        and p.name not in COMMON_ARGUMENTS
    }
    return options, {k: v for k, v in fixed.items() if k not in COMMON_ARGUMENTS}


def _check_arguments(
    name: str, num_classes: Any, in_channels: Any, dropout: Any, arch_kwargs: dict[str, Any]
) -> None:
    options, fixed = model_options(name), fixed_options(name)  # an unknown name raises here
    # Checked here once, so no model file has to (and torch's own errors are cryptic).
    # numbers.* accepts numpy scalars too; bool is an int in Python but never a count here.
    for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise UserError(f"{arg} must be a positive integer, got {value!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, Real) or not 0.0 <= dropout < 1.0:
        raise UserError(f"dropout must be a number in [0, 1), got {dropout!r}")
    for key, value in arch_kwargs.items():
        if key in fixed:
            same = model_class(name)
            others = [
                m for m in list_models() if key in model_options(m) and model_class(m) is same
            ]
            where = f"; models that take it: {', '.join(others)}" if others else ""
            raise UserError(
                f"model {name!r}: architecture option {key} is fixed at {fixed[key]!r} by this "
                f"variant{where}"
            )
        if key not in options:
            close = difflib.get_close_matches(key, options, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(
                f"model {name!r}: unknown architecture option {key!r}{hint}; "
                + (f"options: {_assignments(options)}" if options else "it takes none")
            )
        _check_option_type(name, key, value, options[key])


def _check_option_type(name: str, key: str, value: Any, default: Any) -> None:
    """The option's value must be of its default's kind (a None default says nothing)."""
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, Integral) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
        kind = "a finite number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "a string"
    elif isinstance(default, list | tuple):
        ok, kind = isinstance(value, list | tuple), "a list"
    else:
        return
    if not ok:
        raise UserError(
            f"model {name!r}: architecture option {key} must be {kind} "
            f"(default {default!r}), got {value!r}"
        )


def _build(
    name: str, num_classes: int, in_channels: int, dropout: float, arch_kwargs: dict[str, Any]
) -> nn.Module:
    try:
        return _REGISTRY[name](
            num_classes=int(num_classes),
            in_channels=int(in_channels),
            dropout=float(dropout),
            **arch_kwargs,
        )
    except UserError:
        raise
    except (ArithmeticError, LookupError, RuntimeError, TypeError, ValueError) as exc:
        if not arch_kwargs:
            raise  # the registered defaults must always build: this is a bug
        # Names and kinds were checked above; values can still fail (a width list of the
        # wrong length, a negative size): the user's options, so a one-line user error.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"model {name!r}{_with(arch_kwargs)} cannot be built: {first_line}"
        ) from exc


def _assignments(values: dict[str, Any]) -> str:
    """`depth=22, widen_factor=8`"""
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def _with(arch_kwargs: dict[str, Any]) -> str:
    """` with depth=22, widen_factor=8` (empty for no options)."""
    return f" with {_assignments(arch_kwargs)}" if arch_kwargs else ""


def model_class(name: str) -> type[nn.Module]:
    return _VARIANTS[name][0]
