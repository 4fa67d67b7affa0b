"""Where a model runs and in what precision: chosen once per run, for training and for use.

    resolve_device("auto")                  cuda, then mps, then cpu; an explicit one checked
    resolve_precision("auto", device, macs) bf16/fp16 on GPUs; bf16 on CPUs with native bf16
                                            for models large enough to gain; else fp32
    speed_settings(model, device, ...)      (precision, channels_last) for one model
    autocast_for(device, precision)         the autocast context (a no-op for fp32)

Model code never calls .cuda() or .half(): these choices are made here and passed down.
"""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

import torch
import torch.nn as nn

from .config import DEVICES, ConfigError
from .models.summary import count_macs

# Below this many multiply-accumulates per image, bf16 and channels_last slow a model down on
# the CPU (docs/NOTES.md has the measurements).
SMALL_MODEL_MACS = 1_000_000


def resolve_device(name: str | torch.device) -> torch.device:
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str) or name.partition(":")[0] not in DEVICES:
        raise ConfigError(f"unknown device {name!r}; valid: {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested but MPS is not available")
    return torch.device(name)


def cpu_has_fast_bf16() -> bool:
    """bf16 matmuls are only faster than fp32 on CPUs with native bf16 (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse an explicit precision the device cannot run."""
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("precision 'fp16' is not supported on the CPU; use bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("precision 'bf16' is not supported on this GPU; use fp16 or fp32")


def resolve_precision(precision: str, device: torch.device, macs: int | None = None) -> str:
    if precision != "auto":
        check_precision(precision, device)
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_fast_bf16():
        return "fp32" if macs is not None and macs < SMALL_MODEL_MACS else "bf16"
    return "fp32"


def speed_settings(
    model: nn.Module, device: torch.device, precision: str, channels_last: bool, input_shape
) -> tuple[str, bool]:
    """The precision and memory layout a model trains fastest in on `device`."""
    macs = count_macs(model, input_shape)
    small_on_cpu = device.type == "cpu" and macs < SMALL_MODEL_MACS
    return resolve_precision(precision, device, macs), channels_last and not small_on_cpu


def autocast_for(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
