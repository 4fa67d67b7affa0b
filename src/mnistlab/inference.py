"""The forward pass, shared by training's evaluation, calibration, `evaluate` and `predict`:
uint8 images in, logits out, in order, in eval mode, batch by batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .device import autocast_for


@dataclass
class DeviceSplit:
    """One split of the data, resident on the device it is used on."""

    images: torch.Tensor  # (N, H, W) uint8
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


def to_input(
    images: torch.Tensor,  # (B, H, W) uint8
    mean: float,
    std: float,
    channels_last: bool,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """`transform` (training's augmentation) sees the batch as (B, 1, H, W) in [0, 1]."""
    x = images.unsqueeze(1).float().div_(255)  # (B, 1, H, W) in [0, 1]
    if transform is not None:
        x = transform(x)
    x = (x - mean) / std
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@dataclass(frozen=True)
class InputFormat:
    """How uint8 images become the model's input, and the precision the model runs in."""

    mean: float
    std: float
    channels_last: bool = False
    precision: str = "fp32"

    def __call__(self, images, transform=None) -> torch.Tensor:
        return to_input(images, self.mean, self.std, self.channels_last, transform)


@torch.inference_mode()
def logits_of(
    model: nn.Module, images: torch.Tensor, fmt: InputFormat, batch_size: int = 1024
) -> torch.Tensor:
    """(N, classes) float32 logits of `model` on (N, H, W) uint8 `images`, on the CPU."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = fmt(images[start : start + batch_size])
        with autocast_for(images.device, fmt.precision):
            out.append(model(x).float().cpu())  # (B, classes)
    return torch.cat(out) if out else torch.empty(0, 0)


def evaluate_split(
    model: nn.Module, data: DeviceSplit, fmt: InputFormat, batch_size: int = 1024
) -> dict[str, Any]:
    """Loss, accuracy, predictions and logits on `data`, in order (never shuffled), in eval
    mode."""
    logits = logits_of(model, data.images, fmt, batch_size)
    labels = data.labels.cpu()
    if not len(data):
        empty = torch.empty(0, dtype=torch.int64)
        return {"loss": 0.0, "acc": 0.0, "predictions": empty, "logits": logits}
    predictions = logits.argmax(1)
    return {
        "loss": F.cross_entropy(logits, labels).item(),
        "acc": (predictions == labels).float().mean().item(),
        "predictions": predictions,  # (N,) int64
        "logits": logits,  # (N, classes) float32
    }


def confusion_breakdown(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)  # [true, predicted]
    confusion.index_put_((labels, predictions), torch.ones_like(labels), accumulate=True)
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1)).tolist()
    wrong = torch.nonzero(predictions != labels).flatten()
    return {
        "per_class_accuracy": per_class,
        "test_confusion": confusion.tolist(),
        "test_misclassified": [[int(i), int(labels[i]), int(predictions[i])] for i in wrong],
    }
