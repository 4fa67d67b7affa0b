"""Training throughput of this engine against a plain "seed-style" loop, per architecture.

The seed-style loop is what the user's course code did: a per-sample torch Dataset, a
DataLoader with batch 64, fp32, Adam. The engine keeps the data on the device as uint8,
cuts batches by index, uses channels_last and bf16 autocast where the hardware has it.
Both run the same number of optimiser steps on the same images, in one process.

    python benchmarks/throughput.py                      # the user's five, 30 steps each
    python benchmarks/throughput.py --steps 200 --models lenet resnet18 --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from mnistlab.config import TrainConfig
from mnistlab.data import load_dataset
from mnistlab.device import describe_device, resolve_device, resolve_precision, speed_settings
from mnistlab.engine import make_optimizer, make_scheduler, train_one_epoch
from mnistlab.inference import DeviceSplit
from mnistlab.models import create_model

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
    torch.manual_seed(0)
    config = TrainConfig(model=name, batch_size=batch, epochs=1)
    model = create_model(name, dropout=0.25).to(device)
    precision, channels_last = speed_settings(model, device, precision, True, (1, 28, 28))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(config, model, device)
    data = DeviceSplit(
        images[: (steps + 1) * batch].to(device), labels[: (steps + 1) * batch].to(device)
    )
    warm = DeviceSplit(data.images[:batch], data.labels[:batch])
    kw = dict(
        batch_size=batch,
        generator=torch.Generator().manual_seed(0),
        mean=MEAN,
        std=STD,
        precision=precision,
        channels_last=channels_last,
    )
    train_one_epoch(model, opt, make_scheduler(config, opt, 1), warm, **kw)  # one-off costs
    data = DeviceSplit(data.images[batch:], data.labels[batch:])
    stats = train_one_epoch(model, opt, make_scheduler(config, opt, steps), data, **kw)
    return stats["images_per_second"], precision


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
    precision = resolve_precision(args.precision, device)
    data = load_dataset()
    rows = []
    print(
        f"{describe_device(device)}, engine precision {precision} (auto: per model), batch {args.batch}, "
        f"{args.steps} timed steps",
        flush=True,
    )
    print(f"{'model':<12} {'seed-style img/s':>17} {'engine img/s':>13} {'ratio':>6}", flush=True)
    for name in args.models:
        base = seed_style(
            name, data.train_images, data.train_labels, args.steps, args.batch, device
        )
        fast, used = engine_style(
            name,
            data.train_images,
            data.train_labels,
            args.steps,
            args.batch,
            device,
            args.precision,
        )
        rows.append(
            {
                "model": name,
                "seed_style": base,
                "engine": fast,
                "ratio": fast / base,
                "precision": used,
            }
        )
        print(f"{name:<12} {base:>17.0f} {fast:>13.0f} {fast / base:>5.2f}x  {used}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "device": describe_device(device),
                "precision": precision,
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
