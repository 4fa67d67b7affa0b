"""Evaluate saved checkpoints on the test (or validation) split."""

from __future__ import annotations

import os
from typing import Any

from .checkpoint import load_checkpoint
from .data import load_dataset
from .engine import DeviceSplit, evaluate, resolve_device, resolve_precision, test_breakdown
from .errors import UserError

SPLITS = ("test", "val")


def load_eval_split(meta: dict, split: str, data_dir: str | None, device):
    """The split a checkpoint should be judged on, rebuilt from its own recorded config."""
    from .data import stratified_split

    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    config = meta["config"]
    dataset = load_dataset(config["dataset"], data_dir or config.get("data_dir"))
    if split == "test":
        images, labels = dataset.test_images, dataset.test_labels
    else:
        s = stratified_split(dataset.train_labels, config["val_fraction"], config["split_seed"])
        images, labels = dataset.train_images[s.val_indices], dataset.train_labels[s.val_indices]
    return DeviceSplit(images.to(device), labels.to(device)), dataset.num_classes


def evaluate_checkpoint(
    path: str | os.PathLike, split: str = "test", data_dir: str | None = None, device: str = "auto"
) -> dict[str, Any]:
    dev = resolve_device(device)
    model, meta = load_checkpoint(path, dev)
    data, num_classes = load_eval_split(meta, split, data_dir, dev)
    norm = meta["normalization"]
    out = evaluate(model, data, mean=norm["mean"], std=norm["std"],
                   precision=resolve_precision("auto", dev), channels_last=False)
    breakdown = test_breakdown(out["predictions"], data.labels.cpu(), num_classes)
    return {
        "checkpoint": str(path), "model": meta["model"], "split": split, "images": len(data),
        "loss": out["loss"], "acc": out["acc"],
        "per_class_accuracy": breakdown["per_class_accuracy"],
        "recorded_test_acc": meta.get("metrics", {}).get("test_acc"),
    }
