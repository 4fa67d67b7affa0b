"""Evaluate saved checkpoints on the test (or validation) split."""

from __future__ import annotations

import os
from typing import Any

import torch

from .calibrate import expected_calibration_error, softmax
from .checkpoint import load_checkpoint, read_checkpoint
from .data import load_dataset_cached, stratified_split
from .device import resolve_device, resolve_precision
from .errors import UserError
from .inference import DeviceSplit, InputFormat, confusion_breakdown, evaluate_split

SPLITS = ("test", "val")


def recorded_config(meta: dict, split: str, source: str | os.PathLike = "checkpoint") -> dict:
    """The training config a checkpoint recorded, with what rebuilding `split` needs (its
    types were checked by `read_checkpoint`); one-line `UserError` when it is not there."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    config = meta.get("config") or {}
    needed = ("dataset",) + (("val_fraction", "split_seed") if split == "val" else ())
    missing = [key for key in needed if key not in config]
    if missing:
        raise UserError(
            f"{source}: records no training config ({', '.join(missing)} missing), so the "
            f"{split} split it should be judged on is unknown"
        )
    return config


def load_eval_split(
    meta: dict, split: str, data_dir: str | None, device, source: str | os.PathLike = "checkpoint"
):
    """The split a checkpoint should be judged on, rebuilt from its own recorded config."""
    config = recorded_config(meta, split, source)
    dataset = load_dataset_cached(config["dataset"], data_dir or config.get("data_dir"))
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
    data, num_classes = load_eval_split(meta, split, data_dir, dev, path)
    norm = meta["normalization"]
    # The memory layout the run was recorded with, as its precision (`_precision`).
    channels_last = bool(meta.get("channels_last", meta.get("config", {}).get("channels_last")))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    precision = _precision(meta, dev)
    out = evaluate_split(
        model, data, InputFormat(norm["mean"], norm["std"], channels_last, precision)
    )
    breakdown = confusion_breakdown(out["predictions"], data.labels.cpu(), num_classes)
    labels = data.labels.cpu().numpy()
    temperature = meta.get("temperature")
    t = float(temperature) if temperature is not None else 1.0
    return {
        "checkpoint": str(path),
        "model": meta["model"],
        "split": split,
        "images": len(data),
        "loss": out["loss"],
        "acc": out["acc"],
        "per_class_accuracy": breakdown["per_class_accuracy"],
        "temperature": t,
        "calibrated": temperature is not None,
        # Expected calibration error before and after the checkpoint's temperature (1 when
        # it has none): how far "90% sure" is from being right 90% of the time.
        "ece": expected_calibration_error(softmax(out["logits"]), labels),
        "ece_calibrated": expected_calibration_error(softmax(out["logits"], t), labels),
        "recorded_test_acc": meta.get("metrics", {}).get("test_acc"),
        # A quick run judged test on its first N images only; say so beside its number.
        "recorded_test_images": meta.get("split", {}).get("test_used"),
    }


def _precision(meta: dict, dev, forced: str | None = None) -> str:
    """`forced`, or the precision the run was recorded with: "auto" would pick bf16 on a bf16
    CPU for an fp32 run, and the recorded test accuracy would not reproduce."""
    recorded = meta.get("precision", meta.get("config", {}).get("precision", "auto"))
    try:
        return resolve_precision(forced or recorded, dev)
    except UserError:  # e.g. an fp16 GPU run judged on the CPU
        if forced is not None:
            raise
        return resolve_precision("auto", dev)


def evaluate_ensemble(
    paths: list[str | os.PathLike],
    split: str = "test",
    data_dir: str | None = None,
    device: str = "auto",
    precision: str | None = None,
) -> dict[str, Any]:
    """Average several checkpoints' softmax probabilities and judge the mean on one split.

    Every checkpoint must describe the same task (dataset, image size, number of classes) and,
    for `split="val"`, the same validation split. Each model keeps its own normalisation.
    `precision` None judges each model with the precision its run recorded (as
    `evaluate_checkpoint` does); "fp32" etc. forces one. Returns `models` (checkpoint, model,
    acc, loss per checkpoint, in order) and `ensemble` (acc, loss = mean negative log of the
    averaged probability of the true class, per_class_accuracy), plus `images` and `split`."""
    paths = [str(p) for p in paths]
    if len(paths) < 2:
        raise UserError(f"an ensemble needs at least two checkpoints, got {len(paths)}")
    metas = [read_checkpoint(p) for p in paths]  # cheap checks before any model is built
    for path, meta in zip(paths, metas, strict=True):
        recorded_config(meta, split, path)
    first = _task_of(metas[0], split)
    for path, meta in zip(paths[1:], metas[1:], strict=True):
        for key, value in _task_of(meta, split).items():
            if value != first[key]:
                raise UserError(
                    f"{path}: {key} is {value}, but {paths[0]} has {first[key]}; "
                    "ensemble members must share the task"
                )
    del metas
    dev = resolve_device(device)
    data = None
    members, prob_sum = [], None
    for path in paths:
        model, meta = load_checkpoint(path, dev)
        if data is None:
            data, num_classes = load_eval_split(meta, split, data_dir, dev)
        prec = _precision(meta, dev, precision)
        norm = meta["normalization"]
        out = evaluate_split(model, data, InputFormat(norm["mean"], norm["std"], False, prec))
        probs = out["logits"].double().softmax(1)  # (N, classes); double so the mean is exact
        prob_sum = probs if prob_sum is None else prob_sum + probs
        members.append(
            {
                "checkpoint": path,
                "model": meta["model"],
                "acc": out["acc"],
                "loss": out["loss"],
                "precision": prec,
            }
        )
        del model
    labels = data.labels.cpu()
    mean_probs = prob_sum / len(paths)  # (N, classes)
    predictions = mean_probs.argmax(1)
    true_prob = mean_probs.gather(1, labels[:, None]).squeeze(1).clamp_min(1e-12)
    breakdown = confusion_breakdown(predictions, labels, num_classes)
    return {
        "split": split,
        "images": len(labels),
        "models": members,
        "ensemble": {
            "acc": (predictions == labels).double().mean().item(),
            "loss": float(-torch.log(true_prob).mean()),
            "per_class_accuracy": breakdown["per_class_accuracy"],
        },
    }


def _task_of(meta: dict, split: str) -> dict[str, Any]:
    """What ensemble members must agree on to be averaged on the same images."""
    config = meta.get("config") or {}
    task = {
        "dataset": config.get("dataset", "mnist"),
        "image size": list(meta.get("image_size") or []),
        "number of classes": int(meta.get("model_kwargs", {}).get("num_classes", 10)),
    }
    if split == "val":
        task["validation split"] = (config.get("val_fraction"), config.get("split_seed"))
    return task
