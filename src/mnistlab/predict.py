"""Classify users' pictures of digits with a trained checkpoint.

    predict_images("runs/x/checkpoint.pt", ["a.png", "b.jpg"]) -> one dict per file, in order

Each picture goes through `mnistlab.preprocess` (MNIST's own size normalisation and
centring), then the checkpoint's normalisation, then the model. A file that cannot be used
gives a result with `error` set; the other files are still classified.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from .errors import UserError
from .preprocess import ImageError, preprocess_image

TOP_K = 3
BATCH_SIZE = 256  # images per forward pass; a few MB of activations for the larger models


class Predictor:
    """A checkpoint loaded once, ready for many pictures (the CLI and the web server share it)."""

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cpu"):
        from .checkpoint import load_checkpoint
        from .engine import resolve_device

        self.device = resolve_device(device)
        self.model, self.meta = load_checkpoint(checkpoint, self.device)
        self.checkpoint = str(checkpoint)
        size = list(self.meta.get("image_size") or (28, 28))
        if len(size) != 2 or size[0] != size[1]:
            raise UserError(f"{checkpoint}: square images expected, the checkpoint says {size}")
        self.image_size = int(size[0])
        if int(self.meta["model_kwargs"].get("in_channels", 1)) != 1:
            raise UserError(f"{checkpoint}: only single-channel (greyscale) models can predict")
        self.num_classes = int(self.meta["model_kwargs"].get("num_classes", 10))
        norm = self.meta["normalization"]
        self.mean, self.std = float(norm["mean"]), float(norm["std"])
        self.class_names = _class_names(self.meta, self.num_classes)

    def describe(self) -> dict[str, Any]:
        """What the web page and `GET /api/model` show about the model."""
        from .models import count_parameters

        metrics = self.meta.get("metrics") or {}
        return {
            "model": self.meta["model"],
            "parameters": count_parameters(self.model),
            "test_accuracy": metrics.get("test_acc"),
            "val_accuracy": metrics.get("val_acc"),
            "epoch": self.meta.get("epoch"),
            "dataset": (self.meta.get("config") or {}).get("dataset"),
            "normalization": {"mean": self.mean, "std": self.std},
            "image_size": [self.image_size, self.image_size],
            "num_classes": self.num_classes,
            "class_names": self.class_names,
        }

    @torch.inference_mode()
    def probabilities(self, digits: np.ndarray) -> np.ndarray:
        """(N, H, W) uint8 digits already in MNIST form -> (N, classes) float probabilities."""
        from .engine import to_input

        digits = np.ascontiguousarray(digits, dtype=np.uint8)
        out = []
        for start in range(0, len(digits), BATCH_SIZE):
            images = torch.from_numpy(digits[start : start + BATCH_SIZE]).to(self.device)
            x = to_input(images, self.mean, self.std, channels_last=False)  # (B, 1, H, W)
            out.append(self.model(x).float().softmax(1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), np.float32)

    def preprocess(self, source: Any, name: str | None = None) -> np.ndarray:
        return preprocess_image(source, name, size=self.image_size)

    def result(
        self, digit: np.ndarray, probs: np.ndarray, name: str | None = None
    ) -> dict[str, Any]:
        top = np.argsort(-probs, kind="stable")[:TOP_K]
        label = int(top[0])
        return {
            "file": name,
            "label": label,
            "class_name": self.class_names[label],
            "probabilities": [float(p) for p in probs],
            "top3": [{"label": int(i), "probability": float(probs[i])} for i in top],
            "preprocessed": digit,  # (H, W) uint8
            "error": None,
        }

    def predict(self, source: Any, name: str | None = None) -> dict[str, Any]:
        """One picture -> its result; raises `ImageError` if it cannot be used."""
        digit = self.preprocess(source, name)
        return self.result(digit, self.probabilities(digit[None])[0], name)

    def predict_many(
        self, sources: Iterable[Any], names: Sequence[str] | None = None
    ) -> list[dict]:
        """Many pictures, one forward pass per batch; a bad one gets `error` and the rest go on."""
        sources = list(sources)
        names = list(names) if names is not None else [str(s) for s in sources]
        results: list[dict[str, Any] | None] = [None] * len(sources)
        good: list[tuple[int, np.ndarray]] = []
        for i, (source, name) in enumerate(zip(sources, names, strict=True)):
            try:
                good.append((i, self.preprocess(source, name)))
            except ImageError as exc:
                results[i] = {"file": name, "label": None, "error": str(exc), "reason": exc.reason}
        if good:
            probs = self.probabilities(np.stack([digit for _, digit in good]))
            for (i, digit), p in zip(good, probs, strict=True):
                results[i] = self.result(digit, p, names[i])
        return results  # type: ignore[return-value]


def _class_names(meta: dict, num_classes: int) -> list[str]:
    from .data.sources import DATASETS

    spec = DATASETS.get(str((meta.get("config") or {}).get("dataset", "")).lower())
    if spec is not None and len(spec.class_names) == num_classes:
        return list(spec.class_names)
    return [str(i) for i in range(num_classes)]


def predict_images(
    checkpoint: str | os.PathLike, paths: Iterable[str | os.PathLike], device: str = "cpu"
) -> list[dict[str, Any]]:
    """Classify image files. One dict per path, in order: `file`, `label`, `class_name`,
    `probabilities` (one per class), `top3` ([{label, probability}] best first), `preprocessed`
    ((28, 28) uint8, what the model saw) and `error` (None, or the one-line reason the file
    could not be used, with `label` None). A bad checkpoint raises `UserError`."""
    paths = [str(p) for p in paths]
    return Predictor(checkpoint, device).predict_many(paths, paths)


def format_result(result: dict[str, Any]) -> str:
    """One line per file: `digit.png: 7  (7 98.1%, 1 1.2%, 2 0.3%)`."""
    if result["error"]:
        return result["error"]
    top = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in result["top3"])
    return f"{result['file']}: {result['class_name']}  ({top})"
