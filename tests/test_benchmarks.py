"""benchmarks/throughput.py keeps working against the engine (it once called a signature the
engine had dropped), and its peak estimate follows the stated formula."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"


@pytest.fixture(scope="module")
def throughput():
    spec = importlib.util.spec_from_file_location("throughput_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu(*flags, vendor="GenuineIntel"):
    return {"model": "test CPU", "vendor": vendor, "flags": frozenset(flags), "mhz": 2500.0}


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (cpu("avx2", "fma"), {"fp32": 32, "bf16": 32}),
        (cpu("avx2", "fma", "avx512f"), {"fp32": 64, "bf16": 64}),
        (cpu("avx2", "fma", "avx512f", "avx512_bf16"), {"fp32": 64, "bf16": 128}),
        (cpu("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"), {"fp32": 64, "bf16": 1024}),
        # Zen 4 runs 512-bit instructions on 256-bit units; Zen 5 (VP2INTERSECT) does not.
        (
            cpu("avx2", "fma", "avx512f", "avx512_bf16", vendor="AuthenticAMD"),
            {"fp32": 32, "bf16": 64},
        ),
        (
            cpu("avx2", "fma", "avx512f", "avx512_vp2intersect", vendor="AuthenticAMD"),
            {"fp32": 64, "bf16": 64},
        ),
        (cpu("sse4_2"), {"fp32": 16, "bf16": 16}),
    ],
)
def test_flops_per_cycle(throughput, info, expected):
    assert throughput.flops_per_cycle(info) == expected


def test_peak_and_achieved_gflops(throughput, monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(throughput, "cpu_ghz", lambda info: 3.0)
    summary = throughput.cpu_summary(cpu("avx2", "fma"), threads=2)
    assert summary["peak_gflops"] == {"fp32": 2 * 3.0 * 32, "bf16": 2 * 3.0 * 32}
    assert summary["features"] == ["avx2", "fma"]
    # 1M MACs per image at 1,000 images/s: 1e6 x 2 x 3 x 1e3 = 6 GFLOP/s.
    assert throughput.gflops(1_000_000, 1000.0) == pytest.approx(6.0)


def test_the_script_runs_end_to_end(throughput, tmp_path, monkeypatch, capsys):
    out = tmp_path / "throughput.json"
    argv = ["throughput.py", "--models", "lenet", "--steps", "1", "--batch", "16"]
    monkeypatch.setattr(sys, "argv", [*argv, "--device", "cpu", "--out", str(out)])
    throughput.main()
    printed = capsys.readouterr().out
    assert "lenet" in printed and "GFLOP/s" in printed
    (row,) = json.loads(out.read_text())["rows"]
    assert row["model"] == "lenet" and row["macs_per_image"] == 416_520
    assert row["engine"] > 0 and row["seed_style"] > 0 and row["precision"] == "fp32"
