"""Classify users' pictures of digits (`predict`), or of written numbers
(`Predictor.read_number`), with a trained checkpoint or the default model (`load_model`).

Each picture goes through `mnistlab.preprocess` (MNIST's own size normalisation and
centring, and stroke width), then the checkpoint's normalisation, then the model; the logits
are divided by the checkpoint's temperature (`mnistlab.calibrate`), so the probabilities are
calibrated ones. A result carries a `warning` when the picture is probably not one digit
(its shape, or probabilities spread over many classes), and `not_a_digit` when it is no
digit at all (`mnistlab.ood`: a letter, a blank page, a photo). A file that cannot be used as a
picture gives a result with `error` set; the other files are still classified (but
`mnistlab predict` refuses missing files before the model is loaded: `check_inputs`).
"""

from __future__ import annotations

import json
import math
import os
import sys
import types
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import image_kind, load_checkpoint, model_meta
from .data.sources import DATASETS
from .device import resolve_device
from .errors import UserError
from .fileio import OutputError, describe_os_error, regular_file_problem
from .inference import to_input
from .models import count_parameters
from .ood import MIN_TOP, not_writing, picture_stats, refusal
from .preprocess import (
    MAX_PIXELS,
    ImageError,
    crop_to_ink,
    digit_from_ink,
    ink_image,
    save_png,
    shape_warning,
    written_by_mnistlab,
)
from .pretrained import default_checkpoint
from .segment import Piece, find_digits, read_piece

TOP_K = 3
BATCH_SIZE = 256  # images per forward pass; a few MB of activations for the larger models
USAGE = "usage: mnistlab predict CHECKPOINT IMAGE... (or IMAGE... alone: the default model)"
# Calibrated probabilities this flat mean the model cannot tell what the picture is: with ten
# classes, a top probability under 40% (measured with the default model: 1 of MNIST's 10,000
# test digits, 2 of the 1,797 real-world ones).
UNSURE_TOP = 0.40
# Checkpoint suffixes: a first argument with one of these is a checkpoint, even if missing.
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


class Predictor:
    """A checkpoint loaded once, ready for many pictures (the CLI and the web server share it).

    `checkpoint` None: the default model shipped in the package (`is_default` is True).
    `model`: an in-memory model instead (from `train()` or `load_model()`), with the
    metadata mnistlab attached to it."""

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        device: str = "cpu",
        *,
        model: torch.nn.Module | None = None,
    ):
        self.device = resolve_device(device)
        self.is_default = checkpoint is None and model is None
        if model is not None:
            meta = model_meta(model)
            if meta is None:
                raise UserError(
                    "this model has no mnistlab metadata (normalisation, architecture); pass "
                    "the `.model` of a train() result, or a model from mnistlab.load_model()"
                )
            self.model, self.meta = model.to(self.device).eval(), meta
            checkpoint = f"<{meta['model']} in memory>"
        else:
            checkpoint = default_checkpoint() if checkpoint is None else checkpoint
            # Validated there: types, ranges, std > 0, weights that fit the model and are finite.
            self.model, self.meta = load_checkpoint(checkpoint, self.device)
        self.checkpoint = str(checkpoint)
        self.temperature = float(self.meta.get("temperature") or 1.0)
        self.calibrated = self.meta.get("temperature") is not None
        size = list(self.meta.get("image_size") or (28, 28))
        if size[0] != size[1]:
            raise UserError(f"{checkpoint}: square images expected, the checkpoint says {size}")
        self.image_size = int(size[0])
        if int(self.meta["model_kwargs"].get("in_channels", 1)) != 1:
            raise UserError(f"{checkpoint}: only single-channel (greyscale) models can predict")
        self.num_classes = int(self.meta["model_kwargs"].get("num_classes", 10))
        norm = self.meta["normalization"]
        self.mean, self.std = float(norm["mean"]), float(norm["std"])
        self.class_names = class_names_of(self.meta, self.num_classes)

    def describe(self) -> dict[str, Any]:
        """What the web page and `GET /api/model` show about the model."""
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
            "default_model": self.is_default,
            "calibrated": self.calibrated,
            "temperature": self.temperature,
            "calibration": self.meta.get("calibration"),
            "realworld": self.meta.get("realworld"),  # the default model's measured numbers
        }

    @torch.inference_mode()
    def probabilities(self, digits: np.ndarray) -> np.ndarray:
        """(N, H, W) uint8 digits already in MNIST form -> (N, classes) float probabilities."""
        digits = np.ascontiguousarray(digits, dtype=np.uint8)
        out = []
        for start in range(0, len(digits), BATCH_SIZE):
            images = torch.from_numpy(digits[start : start + BATCH_SIZE]).to(self.device)
            x = to_input(images, self.mean, self.std, channels_last=False)  # (B, 1, H, W)
            logits = self.model(x).float() / self.temperature  # calibrated (calibrate.py)
            out.append(logits.softmax(1).cpu().numpy())
        probs = np.concatenate(out) if out else np.zeros((0, self.num_classes), np.float32)
        if not np.isfinite(probs).all():
            # Finite weights can still overflow; a NaN must never pass for a probability.
            raise UserError(
                f"{self.checkpoint}: the model's outputs are not finite numbers (NaN or inf); "
                "its weights are damaged"
            )
        return probs

    def read(
        self, source: Any, name: str | None = None, max_pixels: int = MAX_PIXELS
    ) -> tuple[np.ndarray, dict[str, float]]:
        """A picture -> (its digit in MNIST form, `ood.picture_stats` of its ink)."""
        label = name or (str(source) if isinstance(source, str | os.PathLike) else "image")
        ink = ink_image(source, label, max_pixels=max_pixels)
        digit = digit_from_ink(crop_to_ink(ink), label, self.image_size)
        return digit, picture_stats(ink)

    def result(
        self,
        digit: np.ndarray,
        probs: np.ndarray,
        name: str | None = None,
        stats: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        top = np.argsort(-probs, kind="stable")[:TOP_K]
        label = int(top[0])
        # Why the picture is probably not one digit: its shape, then its probabilities.
        warning = shape_warning(digit)
        if warning is None and len(probs) > 2 and float(probs[label]) < UNSURE_TOP:
            warning = (
                f"the model is unsure (top probability {float(probs[label]):.0%}): "
                "probably not one clear digit"
            )
        return {
            "file": name,
            "label": label,
            "class_name": self.class_names[label],
            "probabilities": [float(p) for p in probs],
            "top3": [{"label": int(i), "probability": float(probs[i])} for i in top],
            "warning": warning,
            # Why this is not a digit at all (ood.py), or None: then `label` is only the
            # closest digit, never the answer.
            "not_a_digit": refusal(probs, digit, stats),
            "calibrated": self.calibrated,
            "preprocessed": digit,  # (H, W) uint8
            "error": None,
        }

    def predict(
        self, source: Any, name: str | None = None, max_pixels: int = MAX_PIXELS
    ) -> dict[str, Any]:
        """One picture -> its result; raises `ImageError` if it cannot be used."""
        digit, stats = self.read(source, name, max_pixels)
        return self.result(digit, self.probabilities(digit[None])[0], name, stats)

    def read_number(
        self, source: Any, name: str | None = None, max_pixels: int = MAX_PIXELS
    ) -> dict[str, Any]:
        """One picture of a written number -> `number` (the digits left to right, "?" for a
        piece that is not one readable digit), `complete` (no "?"), and `digits`: per piece
        its `box` [left, top, right, bottom) in the picture's pixels, `label`,
        `class_name`, `probability` and `top3` (None when not classified), `problem` (why
        it is not a digit, or None) and `preprocessed`. Raises `ImageError` if unusable."""
        label = name or (str(source) if isinstance(source, str | os.PathLike) else "image")
        ink = ink_image(source, label, max_pixels=max_pixels)
        pieces = find_digits(ink)  # never empty: ink_image refused a blank picture
        if why := not_writing(picture_stats(ink)):  # a photo or a texture: not read at all
            boxes = np.array([p.box for p in pieces])
            box = (*boxes[:, :2].min(0).tolist(), *boxes[:, 2:].max(0).tolist())
            pieces = [Piece(box, np.zeros((0, 0), np.float32), why)]
        pieces = [
            digit
            for piece in pieces
            for digit in read_piece(piece, lambda parts: self._confidence(parts, label))
        ]
        classified = self._classify(pieces, label)
        entries = []
        for i, piece in enumerate(pieces):
            entry = {"box": list(piece.box), "problem": piece.problem}
            entry |= dict.fromkeys(("label", "class_name", "probability", "top3", "preprocessed"))
            if i in classified:
                digit, p = classified[i]
                result = self.result(digit, p)
                # Only the model's doubt refuses a piece: the picture tests of ood.py are
                # for whole pictures, and its shape tests refused clean digits in numbers.
                if float(p.max()) < MIN_TOP:
                    entry["problem"] = f"unsure which digit (top probability {float(p.max()):.0%})"
                entry |= {k: result[k] for k in ("label", "class_name", "top3", "preprocessed")}
                entry["probability"] = float(p[result["label"]])
            entries.append(entry)
        text = "".join(e["class_name"] if e["problem"] is None else "?" for e in entries)
        return {
            "file": name,
            "number": text,
            "complete": "?" not in text,
            "digits": entries,
            "calibrated": self.calibrated,
            "error": None,
        }

    def _classify(
        self, pieces: list[Piece], label: str
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{index: (digit in MNIST form, probabilities)} of the pieces without a `problem`; a
        piece whose ink vanishes when scaled (a speck) gets one instead."""
        digits = {}
        for i, piece in enumerate(pieces):
            if piece.problem is None:
                try:
                    digits[i] = digit_from_ink(piece.ink, label, self.image_size)
                except ImageError as exc:
                    piece.problem = f"not a digit ({exc})"
        if not digits:
            return {}
        probs = self.probabilities(np.stack(list(digits.values())))
        return {i: (digit, p) for (i, digit), p in zip(digits.items(), probs, strict=True)}

    def _confidence(self, pieces: list[Piece], label: str) -> np.ndarray:
        """The model's top probability for each piece read as one digit (0: no ink left)."""
        out = np.zeros(len(pieces))
        for i, (_, p) in self._classify(pieces, label).items():
            out[i] = p.max()
        return out

    def predict_many(self, sources: Sequence[Any], names: Sequence[str]) -> list[dict]:
        """Many pictures, one forward pass per batch; a bad one gets `error` and the rest go on."""
        results: list[dict[str, Any] | None] = [None] * len(sources)
        good: list[tuple[int, np.ndarray, dict[str, float]]] = []
        for i, (source, name) in enumerate(zip(sources, names, strict=True)):
            try:
                good.append((i, *self.read(source, name)))
            except ImageError as exc:
                results[i] = {"file": name, "label": None, "error": str(exc), "reason": exc.reason}
        if good:
            probs = self.probabilities(np.stack([digit for _, digit, _ in good]))
            for (i, digit, stats), p in zip(good, probs, strict=True):
                results[i] = self.result(digit, p, names[i], stats)
        return results  # type: ignore[return-value]


def load_model(checkpoint: str | os.PathLike | None = None, device: str = "cpu"):
    """The model of `checkpoint` (any mnistlab checkpoint), or of the default model shipped in
    the package when none is given: a torch module in eval mode, carrying its metadata
    (normalisation, temperature) for `predict` and `save_model`."""
    checkpoint = default_checkpoint() if checkpoint is None else checkpoint
    return load_checkpoint(checkpoint, resolve_device(device))[0]


def predict(model: Any, images: Any, device: str = "cpu") -> dict[str, Any] | list[dict]:
    """Classify pictures with `model`: a module from `train()` or `load_model()`, a checkpoint
    path, or None for the default model. `images` is one picture (a path, a PIL image, the
    bytes of a file, or a 2-D array of grey levels 0-255) or a list of them (a 3-D array is a
    stack of 2-D ones). One picture gives one dict, a list gives a list: `label`,
    `class_name`, `probabilities` (calibrated), `top3`, `warning`, `not_a_digit` (None, or
    why it is not a digit at all: `mnistlab.ood`), `preprocessed` and `error`.
    A picture that cannot be used raises `ImageError` alone, and sets `error` in a list."""
    if isinstance(model, Predictor):
        predictor = model
    elif model is None or isinstance(model, str | os.PathLike):
        predictor = Predictor(model, device)
    elif isinstance(model, torch.nn.Module):
        predictor = Predictor(device=device, model=model)
    else:
        raise TypeError(
            f"model must be a torch module, a checkpoint path or None, got {type(model).__name__}"
        )
    single = not isinstance(images, list | tuple) and not (
        isinstance(images, np.ndarray) and images.ndim == 3
    )
    if single:
        name = str(images) if isinstance(images, str | os.PathLike) else None
        return predictor.predict(images, name)
    sources = list(images)
    names = [
        str(s) if isinstance(s, str | os.PathLike) else f"image {i}" for i, s in enumerate(sources)
    ]
    return predictor.predict_many(sources, names)


def class_names_of(meta: dict, num_classes: int) -> list[str]:
    spec = DATASETS.get(str((meta.get("config") or {}).get("dataset", "")).lower())
    if spec is not None and len(spec.class_names) == num_classes:
        return list(spec.class_names)
    return [str(i) for i in range(num_classes)]


def predict_images(
    checkpoint: str | os.PathLike, paths: Iterable[str | os.PathLike], device: str = "cpu"
) -> list[dict[str, Any]]:
    """Classify image files: one `predict` result per path, in order, with `file`; a file
    that cannot be used gets `error` (its one-line reason) and `label` None. A bad checkpoint
    raises `UserError`."""
    paths = [str(p) for p in paths]
    return Predictor(checkpoint, device).predict_many(paths, paths)


def read_number_files(
    checkpoint: str | None,
    images: Sequence[str],
    *,
    device: str = "cpu",
    predictor: Predictor | None = None,
) -> list[dict[str, Any]]:
    """`mnistlab predict --number`, after `check_inputs`: each image read as a written number
    (`read_number`), in order; a file that cannot be used gets `error` and the others go on."""
    predictor = predictor or Predictor(checkpoint, device)
    results = []
    for image in images:
        try:
            results.append(predictor.read_number(image, image))
        except ImageError as exc:
            results.append({"file": image, "number": None, "error": str(exc), "reason": exc.reason})
    return results


def format_number(result: dict[str, Any]) -> str:
    """`postcode.png: 75?13` and one indented line per digit: its box (left, top, right,
    bottom in pixels) and confidence, or why it was not read."""
    if result["error"]:
        return result["error"]
    lines = [f"{result['file']}: {result['number']}"]
    for digit in result["digits"]:
        box = ",".join(str(v) for v in digit["box"])
        if digit["problem"]:
            lines.append(f"  ? at [{box}]: {digit['problem']}")
        else:
            lines.append(f"  {digit['class_name']} at [{box}]: {digit['probability']:.1%}")
    return "\n".join(lines)


def format_result(result: dict[str, Any]) -> str:
    """One line per file: `digit.png: 7  (7 98.1%, 1 1.2%, 2 0.3%)`, and the warning after
    it when the picture is probably not one digit."""
    if result["error"]:
        return result["error"]
    top = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in result["top3"])
    if why := result.get("not_a_digit"):
        if "more than one digit" in why:
            why += " (mnistlab predict --number reads numbers)"
        return f"{result['file']}: not a digit: {why}  (closest: {top})"
    line = f"{result['file']}: {result['class_name']}  ({top})"
    if result.get("warning"):
        line += f"  warning: {result['warning']}"
    return line


def is_checkpoint_argument(path: str | os.PathLike) -> bool:
    """Whether `mnistlab predict`'s first argument names a checkpoint (not an image): a
    checkpoint suffix, or a file that is a zip (what torch.save writes) and not an image."""
    if image_kind(path):
        return False
    if Path(path).suffix.lower() in CHECKPOINT_SUFFIXES:
        return True
    try:
        return Path(path).is_file() and zipfile.is_zipfile(path)
    except OSError:
        return False


def split_arguments(arguments: Sequence[str]) -> tuple[str | None, list[str]]:
    """`predict [CHECKPOINT] IMAGE...` -> (checkpoint or None for the default model, images).
    Arguments the wrong way round (an image, then a checkpoint) are bad input."""
    arguments = [str(a) for a in arguments]
    if not arguments:
        raise UserError(f"no images given; {USAGE}")
    if is_checkpoint_argument(arguments[0]):
        if len(arguments) == 1:
            raise UserError(f"{arguments[0]} is a checkpoint, but no images were given; {USAGE}")
        return arguments[0], arguments[1:]
    if image_kind(arguments[0]) and any(is_checkpoint_argument(a) for a in arguments[1:]):
        raise UserError(f"{arguments[0]} is an image, not a checkpoint; {USAGE}")
    return None, arguments


def results_to_json(results: Sequence[dict[str, Any]]) -> str:
    """The results as a JSON list, without the (H, W) arrays. A number that is not finite
    becomes null: NaN and Infinity are not JSON, and other tools refuse them."""

    def clean(value: Any) -> Any:
        if isinstance(value, float | np.floating):
            return float(value) if math.isfinite(value) else None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "preprocessed"}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, np.integer):
            return int(value)
        return value

    return json.dumps(clean(list(results)), indent=1, allow_nan=False)


# ---------------------------------------------------------------- what `mnistlab predict` does
def check_inputs(checkpoint: str | os.PathLike | None, images: Sequence[str | os.PathLike]) -> None:
    """Arguments the wrong way round, and image files that are missing or cannot be opened,
    are bad input: one line (`UserError`), before the model is loaded."""
    if checkpoint is not None and image_kind(checkpoint):
        raise UserError(f"{checkpoint} is an image, not a checkpoint; {USAGE}")
    problems = []
    for image in images:
        path = Path(image)
        problem = regular_file_problem(path)  # before any open: a FIFO would block it
        try:
            if problem is None:
                with path.open("rb"):
                    pass
            elif path.is_dir():
                problem = "is a folder, not an image file"
        except OSError as exc:
            problem = f"cannot read ({exc.strerror or type(exc).__name__})"
        if problem is not None:
            problems.append(f"{path}: {problem}")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(problems[0] + more)


def check_parents(out: Path) -> None:
    """A file where a folder of `out`'s path should be: say so now, not after the work ran."""
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot write {out}: {parent} is a file, not a folder")
            return


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would be
        try:
            return a.resolve() == b.resolve()
        except (OSError, RuntimeError):
            return False


def plan_outputs(
    out_dir: str | os.PathLike,
    images: Sequence[str | os.PathLike],
    inputs: Sequence[str | os.PathLike],
    force: bool = False,
) -> list[Path]:
    """Where each image's preprocessed PNG goes (`out_dir/<stem>.png`, numbered when two
    images share a stem), checked before anything runs: never an input (even with `force`),
    never a file mnistlab did not write unless `force`."""
    out_dir = Path(out_dir)
    try:
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"--save-preprocessed {out_dir}: exists and is not a folder")
        check_parents(out_dir)
    except OSError as exc:
        raise OutputError(describe_os_error(out_dir, exc)) from None
    used: set[str] = set()
    targets = []
    for image in images:
        stem, n = Path(image).stem or "image", 1
        name = f"{stem}.png"
        while name in used:  # the same name from two folders
            n += 1
            name = f"{stem}-{n}.png"
        used.add(name)
        target = out_dir / name
        if any(same_file(target, Path(source)) for source in inputs):
            raise UserError(
                f"--save-preprocessed {out_dir}: {target} is one of the inputs; "
                "choose another folder"
            )
        try:
            exists, is_dir = target.exists(), target.is_dir()
        except OSError as exc:
            raise OutputError(describe_os_error(target, exc)) from None
        if is_dir:
            raise UserError(f"{target}: is a folder; choose another --save-preprocessed folder")
        if exists and not force and not written_by_mnistlab(target):
            raise UserError(
                f"{target}: exists and was not written by mnistlab; use --force to replace it, "
                "or choose another --save-preprocessed folder"
            )
        targets.append(target)
    return targets


def predict_files(
    checkpoint: str | None,
    images: Sequence[str],
    *,
    device: str = "cpu",
    save_preprocessed: str | os.PathLike | None = None,
    force: bool = False,
    predictor: Predictor | None = None,
) -> list[dict[str, Any]]:
    """`mnistlab predict`, after `check_inputs`: classify every image, and (with
    `save_preprocessed`) write each 28x28 the model saw as `DIR/<stem>.png`, recorded in the
    result as `preprocessed_path`. Bad output places raise `UserError` before anything is
    written. `checkpoint` None: the default model."""
    targets = None
    if save_preprocessed is not None:
        inputs = [checkpoint, *images] if checkpoint is not None else images
        targets = plan_outputs(save_preprocessed, images, inputs, force)
    predictor = predictor or Predictor(checkpoint, device)
    results = predictor.predict_many(images, images)
    if targets is not None:
        for result, target in zip(results, targets, strict=True):
            if not result["error"]:
                result["preprocessed_path"] = str(save_png(result["preprocessed"], target))
    return results


class _CallableModule(types.ModuleType):
    """Once imported, this module is the package attribute `mnistlab.predict` (Python binds
    submodules onto their package), where the API promises the function `predict`: calling
    the module calls the function, so `mnistlab.predict(model, images)` works either way."""

    def __call__(self, *args, **kwargs):
        return predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
