"""What `mnistlab data info` and `data show` report: a dataset's summary and a grid of samples."""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from ..errors import UserError
from ..fileio import atomic_write_bytes
from .sources import Dataset
from .split import Split

MAX_PER_CLASS = 50  # beyond this the grid's cells are too small to see anything


def _class_counts(labels: torch.Tensor, num_classes: int) -> list[int]:
    return torch.bincount(labels, minlength=num_classes).tolist()


def summarize(dataset: Dataset, split: Split) -> dict:
    """Sizes, per-class counts of train/val/test, pixel statistics and checksum status."""
    k = dataset.num_classes
    pixels = dataset.train_images.float().div_(255)  # (N, H, W) in [0, 1]
    return {
        "dataset": dataset.name,
        "source": dataset.source,
        "checksum": dataset.checksum,
        "image_shape": list(dataset.image_shape),
        "dtype": str(dataset.train_images.dtype).removeprefix("torch."),
        "num_classes": k,
        "class_names": list(dataset.class_names or [str(c) for c in range(k)]),
        "train_size": len(dataset.train_labels),
        "test_size": len(dataset.test_labels),
        "train_counts": _class_counts(dataset.train_labels, k),
        "test_counts": _class_counts(dataset.test_labels, k),
        "split": split.describe(),
        "split_train_counts": _class_counts(dataset.train_labels[split.train_indices], k),
        "split_val_counts": _class_counts(dataset.train_labels[split.val_indices], k),
        "pixel_mean": round(pixels.mean().item(), 4),
        "pixel_std": round(pixels.std().item(), 4),
    }


def format_summary(info: dict) -> str:
    """The summary as aligned plain text, one fact per line."""
    s = info["split"]
    h, w = info["image_shape"]
    lines = [
        f"dataset     {info['dataset']}",
        f"source      {info['source']}",
        f"checksum    {info['checksum']}",
        f"images      {h}x{w} {info['dtype']}, {info['num_classes']} classes, "
        f"pixel mean {info['pixel_mean']:.4f} std {info['pixel_std']:.4f} (train file, /255)",
        f"train file  {info['train_size']:,} images",
        f"test file   {info['test_size']:,} images (never used for the split)",
        f"split       seed {s['seed']}, val fraction {s['fraction']}: "
        f"train {s['train_size']:,} + val {s['val_size']:,}, hash {s['hash']}",
        "",
        f"{'class':<14}{'train file':>11}{'split train':>13}{'split val':>11}{'test':>8}",
    ]
    rows = zip(
        info["class_names"],
        info["train_counts"],
        info["split_train_counts"],
        info["split_val_counts"],
        info["test_counts"],
        strict=True,
    )
    for i, (name, n_train, n_strain, n_val, n_test) in enumerate(rows):
        label = f"{i} {name}" if name != str(i) else name
        lines.append(f"{label:<14}{n_train:>11,}{n_strain:>13,}{n_val:>11,}{n_test:>8,}")
    return "\n".join(lines)


def save_digit_grid(
    dataset: Dataset, out: str | os.PathLike, per_class: int = 10, split: str = "train"
) -> Path:
    """Write a PNG with one row per class and `per_class` sample images in each; returns it."""
    if not 1 <= per_class <= MAX_PER_CLASS:
        raise UserError(f"--per-class must be between 1 and {MAX_PER_CLASS}, got {per_class}")
    images = dataset.train_images if split == "train" else dataset.test_images  # (N, H, W)
    labels = dataset.train_labels if split == "train" else dataset.test_labels
    k = dataset.num_classes
    h, w = dataset.image_shape
    # One canvas and one imshow: far faster than a subplot per digit. Empty cells stay black.
    canvas = torch.zeros(k * (h + 2), per_class * (w + 2), dtype=torch.uint8)  # (rows, cols)
    for c in range(k):
        # The first `per_class` of the class, in file order: the same grid every time.
        for j, i in enumerate(torch.nonzero(labels == c).flatten()[:per_class].tolist()):
            y, x = c * (h + 2) + 1, j * (w + 2) + 1
            canvas[y : y + h, x : x + w] = images[i]

    # Imported here: matplotlib costs ~0.5 s and only this verb and the report need it. A
    # bare Figure avoids pyplot's global state and any display backend.
    from matplotlib.figure import Figure

    names = dataset.class_names or [str(c) for c in range(k)]
    cell = 0.4  # inches per image
    left = 0.2 + 0.07 * max(len(n) for n in names)  # room for the class names, ~8 pt text
    right, top, bottom = 0.1, 0.35, 0.1
    grid_w, grid_h = per_class * cell, k * cell
    fig_w = max(grid_w + left + right, 3.5)  # room for the title when per_class is small
    fig_h = grid_h + top + bottom
    fig = Figure(figsize=(fig_w, fig_h), dpi=100)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, grid_w / fig_w, grid_h / fig_h))
    ax.imshow(canvas.numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([c * (h + 2) + (h + 2) / 2 for c in range(k)], labels=list(names))
    ax.set_xticks([])
    ax.tick_params(length=0, labelsize=8)
    ax.set_title(
        f"{dataset.name}: first {per_class} {split} images per class", fontsize=9, loc="left"
    )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    out = Path(out)
    atomic_write_bytes(out, buffer.getvalue())
    return out
