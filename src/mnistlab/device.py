"""Where a model runs and in what precision: chosen once per run, for training and for use.
Model code never calls .cuda() or .half(): these choices are made here and passed down.

Why the CPU choice is timed rather than read from the CPU's flags: bf16 autocast and
channels_last doubled the big models' speed on an AVX-512 BF16 CPU but slowed models below
1M MACs down, an AVX2 CPU has no bf16 instructions at all, and the gain depends on the
model's shape and on the torch/oneDNN build. A few forward+backward steps of the actual model
answer for this CPU.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import DEVICES, ConfigError
from .models import count_parameters
from .models.summary import count_macs

# Below this many multiply-accumulates per image, bf16 and channels_last slow a model down on
# the CPU (docs/NOTES.md has the measurements) and a probe's noise is larger than any gain.
SMALL_MODEL_MACS = 1_000_000
# The speed probe: untimed warm-up steps (oneDNN builds its kernels on the first), then timed
# steps, the fastest counted (a shared CPU only ever adds time), on at most this batch.
PROBE_WARMUP_STEPS = 1
PROBE_TIMED_STEPS = 2
PROBE_MAX_BATCH = 16
# Another layout or precision must beat plain fp32 (or the precision asked for) by this
# fraction to be chosen: timings on a shared CPU jitter by several percent, and a tie goes
# to the exact, simpler path.
PROBE_MIN_GAIN = 0.10

# (CPU kernels, threads, model signature, batch, input shape, candidates) -> the choice and
# the seconds per step of each candidate: one probe per model shape per process.
_probe_cache: dict[tuple, tuple[tuple[str, bool], dict[tuple[str, bool], float]]] = {}


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


def cpu_info() -> dict:
    """The CPU's model name, vendor and feature flags, from /proc/cpuinfo (empty elsewhere).
    `flags` leaves out what torch is told not to use (ATEN_CPU_CAPABILITY below AVX512, or
    ONEDNN_MAX_CPU_ISA, which caps the convolutions): the features of the path that runs."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # the first processor speaks for all
            fields[key.strip()] = value.strip()
    flags = frozenset(fields.get("flags", "").split())
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "vendor": fields.get("vendor_id", ""),
        "flags": usable_flags(flags),
        "all_flags": flags,
        "mhz": float(fields["cpu MHz"]) if "cpu MHz" in fields else None,
    }


def usable_flags(flags: frozenset[str]) -> frozenset[str]:
    """`flags` without the instruction sets torch's kernels are capped below."""
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    dropped: tuple[str, ...] = ()
    aten = torch.backends.cpu.get_cpu_capability()
    if aten in ("AVX2", "DEFAULT") or not onednn.startswith(("AVX512", "ALL")):
        dropped = ("avx512", "amx")
    elif onednn.startswith("AVX512") and "AMX" not in onednn:
        dropped = ("amx",) if "BF16" in onednn else ("avx512_bf16", "amx")
    return frozenset(f for f in flags if not f.startswith(dropped))


def cpu_has_fast_bf16() -> bool:
    """Native bf16 dot products (AVX512-BF16 or AMX) in use: without them bf16 is emulated."""
    return bool(cpu_info()["flags"] & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device: torch.device) -> str:
    """An explicit precision, refused (ConfigError) where the device cannot run it; "auto"
    without a model to time: the GPU's half precision, else fp32 (`speed_settings` times the
    CPU's choice for a given model)."""
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("precision 'fp16' is not supported on the CPU; use bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("precision 'bf16' is not supported on this GPU; use fp16 or fp32")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def speed_settings(
    model: nn.Module,
    device: torch.device,
    precision: str,
    channels_last: bool,
    input_shape: tuple[int, ...],
    batch_size: int = 64,
    log=None,
) -> tuple[str, bool]:
    """The precision and memory layout `model` trains fastest in on `device`.

    `precision` "auto" allows fp32, and bf16 where the CPU has it natively; `channels_last`
    True allows the NHWC layout. On a GPU the allowed ones are used (tensor cores want both).
    On the CPU a model below SMALL_MODEL_MACS keeps fp32 and the plain layout; a larger one is
    timed for a few steps in each allowed combination (`probe_speeds`) and the fastest is
    chosen, if it beats the plain layout in fp32 (or in the precision asked for) by
    PROBE_MIN_GAIN. `log` hears the timings when a probe runs."""
    on_gpu = device.type != "cpu"
    base = (resolve_precision(precision, device), channels_last and on_gpu)
    if on_gpu or count_macs(model, input_shape) < SMALL_MODEL_MACS:
        return base
    # Without AVX512-BF16 or AMX, bf16 matmuls are emulated through fp32 conversions: never
    # the faster, and the costliest candidate to time. "auto" times it only where native.
    auto = ("fp32", "bf16") if cpu_has_fast_bf16() else ("fp32",)
    precisions = auto if precision == "auto" else (precision,)
    layouts = (False, True) if channels_last else (False,)
    candidates = list(itertools.product(precisions, layouts))
    if len(candidates) == 1:
        return base
    return probe_speeds(model, input_shape, min(batch_size, PROBE_MAX_BATCH), candidates, log)[0]


def probe_speeds(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch: int,
    candidates: list[tuple[str, bool]],
    log=None,
) -> tuple[tuple[str, bool], dict[tuple[str, bool], float]]:
    """Time a training step of a copy of `model` in each (precision, channels_last) candidate;
    the first candidate is the baseline. Returns the choice and the seconds per step of each.
    Cached per process by the CPU kernels in use, thread count and model shape."""
    key = (
        torch.backends.cpu.get_cpu_capability(),
        os.environ.get("ONEDNN_MAX_CPU_ISA"),
        torch.get_num_threads(),
        type(model).__qualname__,
        count_parameters(model),
        count_macs(model, input_shape),
        batch,
        tuple(input_shape),
        tuple(candidates),
    )
    if key not in _probe_cache:
        # A copy, so the run's weights, batch-norm statistics and gradients stay untouched;
        # fork_rng, so dropout's draws leave the run's random stream where it was.
        probe = copy.deepcopy(model)
        x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(0))
        with torch.random.fork_rng(devices=[]):
            seconds = {c: step_seconds(probe, x, *c) for c in candidates}
        baseline = seconds[candidates[0]]
        fastest = min(candidates, key=seconds.__getitem__)
        choice = fastest if seconds[fastest] < (1 - PROBE_MIN_GAIN) * baseline else candidates[0]
        _probe_cache[key] = choice, seconds
        if log is not None:
            timings = ", ".join(f"{speed_name(c)} {1000 * t:.0f} ms" for c, t in seconds.items())
            log(
                f"speed probe ({type(model).__name__}, batch {batch}, per training step): "
                f"{timings}; chosen: {speed_name(choice)}"
            )
    return _probe_cache[key]


def speed_name(candidate: tuple[str, bool]) -> str:
    precision, channels_last = candidate
    return precision + (" channels_last" if channels_last else "")


def step_seconds(model: nn.Module, x: torch.Tensor, precision: str, channels_last: bool) -> float:
    """The fastest of PROBE_TIMED_STEPS forward+backward passes of `model` on the batch `x`
    (B, C, H, W) in `precision` and layout, after PROBE_WARMUP_STEPS untimed ones. The
    optimiser step is left out: it costs the same in every candidate."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout).train()
    x = x.contiguous(memory_format=layout)
    y = torch.zeros(len(x), dtype=torch.long)
    best = float("inf")
    for step in range(PROBE_WARMUP_STEPS + PROBE_TIMED_STEPS):
        start = time.perf_counter()
        with autocast_for(torch.device("cpu"), precision):
            logits = model(x)  # (B, classes)
        F.cross_entropy(logits.float(), y).backward()
        model.zero_grad(set_to_none=True)
        if step >= PROBE_WARMUP_STEPS:
            best = min(best, time.perf_counter() - start)
    return best


def autocast_for(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
