"""Training throughput of this engine against a plain "seed-style" loop, per architecture.

The seed-style loop is what the user's course code did: a per-sample torch Dataset, a
DataLoader with batch 64, fp32, Adam. The engine keeps the data on the device as uint8,
cuts batches by index, uses channels_last and bf16 autocast where the hardware has it.
Both run the same number of optimiser steps on the same images, in one process.

Beside each speed it prints the work done and how near the CPU's limit that is, so a figure
says where it holds:

    achieved GFLOP/s = MACs per image x 2 (a MAC is two FLOPs) x 3 (forward + backward is
                       about three forwards) x images per second / 1e9
    peak GFLOP/s     = cores (torch's threads) x GHz x FLOPs per cycle per core, where
                       FLOPs/cycle = 2 FMA units x vector lanes x 2 for the widest ISA:
                       fp32: AVX-512 64, AVX2+FMA 32, else 16 (AMD Zen 4 runs 512-bit ops on
                       256-bit halves: 32); bf16: AMX 1024, AVX512-BF16 2x the fp32 figure,
                       else the fp32 figure (emulated bf16 is slower still)

The peak is arithmetic, not a measurement. Its clock is the highest the kernel reports, else
/proc/cpuinfo's, which in a VM is often the base clock: a CPU boosting above it can show more
than 100% (the Dev CPU's ResNet-18 at 136 img/s, 0.37 TFLOP/s, against 2 x 2.6 GHz x 64 =
0.33). Memory bandwidth and the layers MACs leave out (batch norm, activations, pooling) keep
real runs below a true peak.
On an AVX-512 machine, `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2` approximates an
AVX2-only CPU (the features line then says so).

    python benchmarks/throughput.py                      # the user's five, 30 steps each
    python benchmarks/throughput.py --steps 200 --models lenet resnet18 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from mnistlab.config import TrainConfig
from mnistlab.data import load_dataset
from mnistlab.device import cpu_info, describe_device, resolve_device, speed_settings
from mnistlab.engine import Stepper, make_optimizer, make_scheduler, train_one_epoch
from mnistlab.inference import DeviceSplit, InputFormat
from mnistlab.models import create_model
from mnistlab.models.summary import count_macs

USER_MODELS = ["lenet", "alexnet", "resnet18", "vgg11_seed", "wrn16_4"]
MEAN, STD = 0.1307, 0.3081


class PerSampleMNIST(TorchDataset):
    """The textbook way: one Python call and one small tensor per image."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i].float().div(255).sub(MEAN).div(STD).unsqueeze(0)  # (1, 28, 28)
        return x, self.labels[i]


def seed_style(name, images, labels, steps, batch, device):
    torch.manual_seed(0)
    model = create_model(name, dropout=0.25).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(PerSampleMNIST(images, labels), batch_size=batch, shuffle=True)
    model.train()
    start = None
    for done, (x, y) in enumerate(loader):
        if done == 1:  # the first step pays one-off costs (allocations, kernel choice)
            sync(device)
            start = time.perf_counter()
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if done == steps:
            break
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def engine_style(name, images, labels, steps, batch, device, precision):
    """The engine's speed after its one-off costs (the speed probe, the first step's kernel
    choice), with the precision and layout `speed_settings` chose for this model here."""
    torch.manual_seed(0)
    config = TrainConfig(model=name, batch_size=batch, epochs=1)
    model = create_model(name, dropout=0.25).to(device)
    precision, channels_last = speed_settings(model, device, precision, True, (1, 28, 28), batch)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(config, model, device)
    fmt = InputFormat(MEAN, STD, channels_last, precision)
    data = DeviceSplit(
        images[: (steps + 1) * batch].to(device), labels[: (steps + 1) * batch].to(device)
    )
    warm = DeviceSplit(data.images[:batch], data.labels[:batch])
    generator = torch.Generator().manual_seed(0)
    for split, n in ((warm, 1), (DeviceSplit(data.images[batch:], data.labels[batch:]), steps)):
        stepper = Stepper(opt, make_scheduler(config, opt, n))
        stats = train_one_epoch(model, stepper, split, fmt, batch_size=batch, generator=generator)
    return stats["images_per_second"], precision, channels_last


def cpu_ghz(info: dict) -> float | None:
    """The highest clock the kernel reports, else /proc/cpuinfo's (often the base clock)."""
    try:
        khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()
        return int(khz) / 1e6
    except (OSError, ValueError):
        return info["mhz"] / 1000 if info["mhz"] else None


def flops_per_cycle(info: dict) -> dict[str, int]:
    """Peak FLOPs per cycle per core by precision, for the widest ISA the CPU reports."""
    flags = info["flags"]
    if "avx512f" in flags:
        # Zen 4 (AMD, AVX-512 without VP2INTERSECT, which Zen 5 added) splits 512-bit ops.
        zen4 = info["vendor"] == "AuthenticAMD" and "avx512_vp2intersect" not in flags
        fp32 = 32 if zen4 else 64
    elif "avx2" in flags and "fma" in flags:
        fp32 = 32
    else:
        fp32 = 16
    if "amx_bf16" in flags:
        bf16 = 1024
    elif "avx512_bf16" in flags:
        bf16 = 2 * fp32
    else:
        bf16 = fp32
    return {"fp32": fp32, "bf16": bf16}


def cpu_summary(info: dict, threads: int) -> dict:
    """The features that decide CPU speed (those torch may use: `cpu_info` leaves out what
    ATEN_CPU_CAPABILITY or ONEDNN_MAX_CPU_ISA caps), the kernels torch uses, and the peak."""
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    ghz = cpu_ghz(info)
    per_cycle = flops_per_cycle(info)
    return {
        "model": info["model"],
        "features": [f for f in wanted if f in info["flags"]],
        "torch_kernels": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "threads": threads,
        "ghz": ghz,
        "flops_per_cycle": per_cycle,
        "peak_gflops": {k: threads * ghz * v for k, v in per_cycle.items()} if ghz else None,
    }


def gflops(macs: int, images_per_second: float) -> float:
    return macs * 2 * 3 * images_per_second / 1e9


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=USER_MODELS)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--out", default="benchmarks/results/throughput.json")
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_dataset()
    cpu = cpu_summary(cpu_info(), torch.get_num_threads()) if device.type == "cpu" else None
    print(
        f"{describe_device(device)}, engine precision {args.precision} (auto: timed per "
        f"model), batch {args.batch}, {args.steps} timed steps",
        flush=True,
    )
    peak = None
    if cpu is not None:
        isa = f", ONEDNN_MAX_CPU_ISA={cpu['onednn_max_isa']}" if cpu["onednn_max_isa"] else ""
        print(
            f"CPU {cpu['model']}: {' '.join(cpu['features']) or 'no AVX2'}; torch kernels "
            f"{cpu['torch_kernels']}{isa}",
            flush=True,
        )
        peak = cpu["peak_gflops"]
        if peak:
            per_cycle = cpu["flops_per_cycle"]
            print(
                f"peak estimate: {cpu['threads']} cores x {cpu['ghz']:.2f} GHz x "
                f"{per_cycle['fp32']} (fp32) / {per_cycle['bf16']} (bf16) FLOPs/cycle = "
                f"{peak['fp32']:.0f} / {peak['bf16']:.0f} GFLOP/s (at that clock; boost "
                "can exceed it)",
                flush=True,
            )
    print(
        f"{'model':<12} {'MACs/img':>9} {'seed-style img/s':>17} {'engine img/s':>13} "
        f"{'ratio':>6}  {'engine as':<16} {'GFLOP/s':>8} {'of peak':>7}",
        flush=True,
    )
    rows = []
    for name in args.models:
        with torch.device("meta"):
            macs = count_macs(create_model(name), (1, 28, 28))
        base = seed_style(
            name, data.train_images, data.train_labels, args.steps, args.batch, device
        )
        fast, used, channels_last = engine_style(
            name,
            data.train_images,
            data.train_labels,
            args.steps,
            args.batch,
            device,
            args.precision,
        )
        achieved = gflops(macs, fast)
        share = achieved / peak[used] if peak else None
        rows.append(
            {
                "model": name,
                "macs_per_image": macs,
                "seed_style": base,
                "engine": fast,
                "ratio": fast / base,
                "precision": used,
                "channels_last": channels_last,
                "seed_style_gflops": gflops(macs, base),
                "engine_gflops": achieved,
                "engine_share_of_peak": share,
            }
        )
        shown = f"{used}{' channels_last' if channels_last else ''}"
        print(
            f"{name:<12} {macs / 1e6:>8.1f}M {base:>17.0f} {fast:>13.0f} {fast / base:>5.2f}x  "
            f"{shown:<16} {achieved:>8.1f} {f'{share:.0%}' if share is not None else '-':>7}",
            flush=True,
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "device": describe_device(device),
                "cpu": cpu,
                "precision": args.precision,
                "batch": args.batch,
                "steps": args.steps,
                "torch": torch.__version__,
                "machine": platform.processor(),
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
