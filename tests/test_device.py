"""Precision and memory layout on the CPU: chosen by timing the actual model, never the slower.

The timer (`device.step_seconds`) is replaced by tables of seconds per step, so these tests
say the same on every machine: an AVX-512 BF16 CPU (bf16 twice as fast), an AVX2 one (bf16
emulated, slower), and noise (a gain inside PROBE_MIN_GAIN) are all played out here.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
import torch

from mnistlab import device, engine, ledger
from mnistlab.checkpoint import read_checkpoint
from mnistlab.config import ConfigError, TrainConfig
from mnistlab.models import create_model

CPU = torch.device("cpu")
SHAPE = (1, 28, 28)
FP32, FP32_NHWC, BF16, BF16_NHWC = ("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)
AVX512_BF16 = {FP32: 1.0, FP32_NHWC: 0.8, BF16: 0.6, BF16_NHWC: 0.45}
AVX2 = {FP32: 1.0, FP32_NHWC: 1.02, BF16: 3.1, BF16_NHWC: 2.9}


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    monkeypatch.setattr(device, "_probe_cache", {})
    # bf16 is a candidate only where the CPU has it natively: let the tables decide here.
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: True)


def timer(monkeypatch, seconds: dict) -> list:
    """Make `seconds` the probe's timings; returns the list of candidates it timed."""
    timed = []

    def step_seconds(model, x, precision, channels_last):
        timed.append((precision, channels_last))
        return seconds[(precision, channels_last)]

    monkeypatch.setattr(device, "step_seconds", step_seconds)
    return timed


def big_model(name: str = "fastnet") -> torch.nn.Module:
    # Built on the meta device: the probe's timer is faked, so nothing needs computing.
    with torch.device("meta"):
        return create_model(name)


def choose(model, precision="auto", channels_last=True, batch=64):
    return device.speed_settings(model, CPU, precision, channels_last, SHAPE, batch)


def test_a_cpu_with_fast_bf16_gets_bf16_and_channels_last(monkeypatch):
    timed = timer(monkeypatch, AVX512_BF16)
    assert choose(big_model()) == BF16_NHWC
    assert set(timed) == set(AVX512_BF16)


def test_the_probe_says_what_it_measured_once(monkeypatch):
    timer(monkeypatch, AVX512_BF16)
    lines: list[str] = []
    for _ in range(2):
        device.speed_settings(big_model(), CPU, "auto", True, SHAPE, 64, lines.append)
    assert lines == [
        "speed probe (FastNet, batch 16, per training step): fp32 1000 ms, "
        "fp32 channels_last 800 ms, bf16 600 ms, bf16 channels_last 450 ms; "
        "chosen: bf16 channels_last"
    ]


def test_a_cpu_with_slow_bf16_keeps_fp32_and_the_plain_layout(monkeypatch):
    timer(monkeypatch, AVX2)
    assert choose(big_model()) == FP32  # channels_last 2% slower, bf16 three times slower


def test_emulated_bf16_is_not_timed_but_the_layout_is(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: False)
    timed = timer(monkeypatch, {FP32: 1.0, FP32_NHWC: 0.8})
    assert choose(big_model()) == FP32_NHWC
    assert set(timed) == {FP32, FP32_NHWC}
    timed.clear()
    timer(monkeypatch, AVX2)
    assert choose(big_model(), precision="bf16") == BF16  # asked for: kept; NHWC only 6% faster


@pytest.mark.parametrize(
    ("gain", "expected"), [(0.05, FP32), (0.095, FP32), (0.2, FP32_NHWC)], ids=str
)
def test_a_gain_inside_the_noise_keeps_the_plain_path(monkeypatch, gain, expected):
    timer(monkeypatch, {FP32: 1.0, FP32_NHWC: 1.0 - gain, BF16: 1.5, BF16_NHWC: 1.4})
    assert choose(big_model()) == expected


def test_the_slower_path_is_never_chosen(monkeypatch):
    rng, model = random.Random(0), big_model()
    for _ in range(100):
        seconds = {c: rng.uniform(0.1, 2.0) for c in (FP32, FP32_NHWC, BF16, BF16_NHWC)}
        monkeypatch.setattr(device, "_probe_cache", {})
        timer(monkeypatch, seconds)
        chosen = choose(model)
        assert seconds[chosen] <= min(seconds.values()) / (1 - device.PROBE_MIN_GAIN) + 1e-12
        assert seconds[chosen] <= seconds[FP32]


def test_only_the_allowed_candidates_are_timed(monkeypatch):
    timed = timer(monkeypatch, AVX512_BF16)
    assert choose(big_model(), precision="fp32") == FP32_NHWC
    assert set(timed) == {FP32, FP32_NHWC}
    timed.clear()
    assert choose(big_model(), precision="bf16") == BF16_NHWC  # baseline: bf16, plain layout
    assert set(timed) == {BF16, BF16_NHWC}
    timed.clear()
    assert choose(big_model(), channels_last=False) == BF16
    assert set(timed) == {FP32, BF16}
    timed.clear()
    assert choose(big_model(), precision="fp32", channels_last=False) == FP32
    assert timed == []  # one candidate: nothing to time


def test_a_small_model_is_not_timed(monkeypatch):
    timed = timer(monkeypatch, AVX512_BF16)
    assert choose(big_model("lenet")) == FP32  # 0.4M MACs: below SMALL_MODEL_MACS
    assert choose(big_model("lenet"), precision="bf16") == BF16
    assert timed == []


def test_the_probe_runs_once_per_model_shape_and_batch(monkeypatch):
    timed = timer(monkeypatch, AVX512_BF16)
    choose(big_model())
    choose(big_model())  # another instance of the same shape: cached
    assert len(timed) == 4
    choose(big_model(), batch=8)  # the probe batch is min(batch, PROBE_MAX_BATCH)
    assert len(timed) == 8
    choose(big_model(), batch=512)  # same probe batch as 64
    assert len(timed) == 8


def test_fp16_on_the_cpu_is_refused_before_any_timing(monkeypatch):
    timed = timer(monkeypatch, AVX512_BF16)
    with pytest.raises(ConfigError, match="precision 'fp16' is not supported on the CPU"):
        choose(big_model(), precision="fp16")
    assert timed == []


def test_the_real_probe_leaves_the_model_and_random_stream_untouched():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),  # 1.0M + 0.1M MACs: above SMALL_MODEL_MACS
        torch.nn.BatchNorm2d(16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
        torch.nn.Conv2d(16, 16, 3, padding=1),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 10),
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    precision, channels_last = choose(model, batch=8)
    assert (precision, channels_last) in (FP32, FP32_NHWC, BF16, BF16_NHWC)
    ((_, seconds),) = device._probe_cache.values()
    assert len(seconds) == 4 and all(0 < s < 60 for s in seconds.values())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert model[0].weight.is_contiguous()  # the copy was re-laid out, not the model
    assert torch.equal(torch.get_rng_state(), rng)


def test_resolve_precision_without_a_model():
    assert device.resolve_precision("auto", CPU) == "fp32"  # nothing to time: the exact path
    assert device.resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(ConfigError, match="precision 'fp16' is not supported on the CPU"):
        device.resolve_precision("fp16", CPU)


def test_the_avx2_approximation_hides_avx512_from_the_choice():
    # What a CPU without AVX-512 looks like to torch (DESIGN.md): a fresh process, since torch
    # reads ATEN_CPU_CAPABILITY once, at import.
    env = os.environ | {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    code = (
        "import torch; from mnistlab import device; "
        "print(torch.backends.cpu.get_cpu_capability(), device.cpu_has_fast_bf16(), "
        "sorted(f for f in device.cpu_info()['flags'] if f.startswith(('avx512', 'amx'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    capability, fast_bf16, wide = out.stdout.split(maxsplit=2)
    if capability != "DEFAULT":  # x86: torch takes the cap
        assert capability == "AVX2"
    assert fast_bf16 == "False" and wide.strip() == "[]"


def test_cpu_info_reads_the_features(monkeypatch):
    monkeypatch.undo()  # the real feature check, not the autouse fixture's stand-in
    info = device.cpu_info()
    assert info["model"] and info["flags"] <= info["all_flags"]
    assert device.cpu_has_fast_bf16() is bool(info["flags"] & {"avx512_bf16", "amx_bf16"})


ALL = frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})


@pytest.mark.parametrize(
    ("isa", "usable"),
    [
        ("AVX2", {"avx2", "fma"}),
        ("AVX512_CORE", {"avx2", "fma", "avx512f"}),
        ("AVX512_CORE_BF16", {"avx2", "fma", "avx512f", "avx512_bf16"}),
        ("ALL", ALL),
    ],
)
def test_an_isa_cap_in_the_environment_hides_the_features_above_it(monkeypatch, isa, usable):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    assert device.usable_flags(ALL) == usable
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert device.usable_flags(ALL) == {"avx2", "fma"}  # ATEN_CPU_CAPABILITY=avx2


# ------------------------------------------------------------------ the engine uses the choice
def fast_config(**overrides) -> TrainConfig:
    settings = dict(
        model="fastnet",  # 2.6M MACs: timed
        epochs=2,
        train_subset=128,
        eval_subset=100,
        batch_size=64,
        device="cpu",
    )
    return TrainConfig(**(settings | overrides))


def test_training_uses_the_probe_and_a_resumed_run_keeps_its_first_choice(
    mnist, tmp_path, monkeypatch
):
    monkeypatch.setattr(engine, "RESUME_MIN_EPOCH_SECONDS", 0.0)
    # fp32 with channels_last: what the CPU "measured" at the run's start.
    timer(monkeypatch, {FP32: 1.0, FP32_NHWC: 0.5, BF16: 3.0, BF16_NHWC: 3.0})
    out = tmp_path / "run"
    real = engine.train_one_epoch
    epochs = []

    def interrupt_epoch_2(*args, **kwargs):
        epochs.append(args[3])  # the InputFormat each epoch trains with
        if len(epochs) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "train_one_epoch", interrupt_epoch_2)
    first = engine.train(fast_config(out_dir=str(out)), mnist, log=lambda *a: None, progress=False)
    assert first.status == "interrupted" and (out / ledger.RESUME).is_file()
    assert epochs[0].channels_last and epochs[0].precision == "fp32"

    # The resuming process times the other way round; the run keeps what it started with.
    monkeypatch.setattr(device, "_probe_cache", {})
    timed = timer(monkeypatch, {FP32: 1.0, FP32_NHWC: 2.0, BF16: 3.0, BF16_NHWC: 3.0})
    epochs.clear()
    monkeypatch.setattr(
        engine, "train_one_epoch", lambda *a, **k: epochs.append(a[3]) or real(*a, **k)
    )
    resumed = engine.train(
        fast_config(out_dir=str(out)), mnist, log=lambda *a: None, progress=False
    )
    assert resumed.status == "finished" and timed == []
    assert [(f.precision, f.channels_last) for f in epochs] == [FP32_NHWC]
    assert read_checkpoint(out / ledger.CHECKPOINT)["channels_last"] is True

    # A fresh run in that process takes the new measurement.
    fresh = engine.train(fast_config(epochs=1), mnist, log=lambda *a: None, progress=False)
    assert fresh.precision == "fp32" and epochs[-1].channels_last is False
