"""Checkpoints that describe themselves: model name and kwargs, normalisation, config, split,
metrics, and the state_dict of the unwrapped model.

A checkpoint is untrusted input (it may come from a stranger), so reading one is careful:

- `torch.load(..., weights_only=True)`: no pickle can run code;
- the zip's declared sizes are checked against the file's before torch reads it;
- every metadata field is type-checked (`validate_meta`), with one-line errors;
- the model is built on the meta device first (no memory), its registrations counted against
  the weights in the file, and its tensor shapes compared with the state_dict's, so metadata
  like `widen_factor=64` or `image_size=20000` is refused before anything is allocated.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import warnings
import zipfile
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.nn.modules import module as nn_module

from .errors import UserError
from .fileio import regular_file_problem, write_torch
from .models import create_model

CHECKPOINT_FORMAT = "mnistlab-checkpoint/1"
MAX_IMAGE_SIDE = 512  # pixels; MNIST-format images are 28, a checkpoint claiming more is refused
MAX_CLASSES = 100_000
MAX_IN_CHANNELS = 64
# Temperature scaling (mnistlab.calibrate) divides the logits by this; fitted values on MNIST
# are near 1, and anything outside this range is damage, not calibration.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0
# Where a model built by mnistlab carries its checkpoint metadata (without the weights), so
# `predict(model, ...)` and `save_model(model, ...)` know its normalisation and temperature.
META_ATTRIBUTE = "mnistlab_meta"

# Magic numbers of image files: a picture passed where a checkpoint goes (swapped arguments).
_IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


class CheckpointError(UserError):
    """A file that is not a usable mnistlab checkpoint; the message names the file."""


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module behind torch.compile's wrapper (nanoGPT issue 325: `_orig_mod.` keys)."""
    return getattr(model, "_orig_mod", model)


def image_kind(path: str | os.PathLike) -> str | None:
    """'PNG', 'JPEG', ... when the file starts like an image; None otherwise (or unreadable,
    or not a regular file: a FIFO would block the open)."""
    if regular_file_problem(path) is not None:
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((kind for sig, kind in _IMAGE_SIGNATURES.items() if head.startswith(sig)), None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_file(path: Path) -> None:
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    problem = regular_file_problem(path)
    if problem:
        raise CheckpointError(
            f"{path}: {'checkpoint not found' if problem == 'no such file' else problem}"
        )
    kind = image_kind(path)
    if kind:
        raise CheckpointError(f"{path}: is a {kind} image, not a checkpoint")
    if zipfile.is_zipfile(path):
        # torch stores its tensors uncompressed; a compressed entry could expand far beyond
        # the file (a zip bomb), so the declared sizes must fit in the file itself.
        try:
            with zipfile.ZipFile(path) as archive:
                declared = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise CheckpointError(
                f"{path}: not a readable mnistlab checkpoint ({_first_line(exc)})"
            ) from None
        size = path.stat().st_size
        if declared > size:
            raise CheckpointError(
                f"{path}: not a readable mnistlab checkpoint (its entries declare {declared:,} "
                f"bytes, more than the {size:,}-byte file holds)"
            )


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's metadata and state_dict, read safely and validated (`validate_meta`)."""
    path = Path(path)
    _check_file(path)
    try:
        with warnings.catch_warnings():
            # torch warns about a stranger's pickle protocol before refusing it: noise on stderr.
            warnings.simplefilter("ignore")
            meta = torch.load(path, map_location="cpu", weights_only=True)
    # A damaged or hostile file can fail anywhere inside the unpickler (IndexError and
    # KeyError as well as UnpicklingError): any failure to read it is the user's file.
    except Exception as exc:
        raise CheckpointError(
            f"{path}: not a readable mnistlab checkpoint ({_load_error(exc)})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: not an mnistlab checkpoint (format {CHECKPOINT_FORMAT} expected)"
        )
    return validate_meta(meta, path)


def _load_error(exc: BaseException) -> str:
    """torch's reason in one line, without its advice to retry with `weights_only=False`
    (which would let a stranger's file run code)."""
    text = str(exc)
    if "Weights only load failed" in text:
        marker = "WeightsUnpickler error:"
        detail = text.split(marker, 1)[1].strip().splitlines()[0] if marker in text else ""
        return "it holds something other than tensors and plain data, which is never loaded" + (
            f": {detail}" if detail else ""
        )
    if isinstance(exc, IndexError | KeyError | EOFError):
        # The unpickler's own words ("pop from empty list", "101") describe its stack, not
        # the file.
        return "damaged or truncated, or not a checkpoint at all"
    return _first_line(exc)


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return _is_real(value) and math.isfinite(value)


def _plain(value: Any, depth: int = 0) -> bool:
    """JSON-like data: what an architecture option can be."""
    if value is None or isinstance(value, bool | str) or _is_int(value) or _is_finite(value):
        return True
    if isinstance(value, list | tuple) and depth < 3 and len(value) <= 1024:
        return all(_plain(v, depth + 1) for v in value)
    return False


def validate_meta(meta: dict[str, Any], path: str | os.PathLike = "checkpoint") -> dict[str, Any]:
    """Check the type and range of every field a loader uses; returns `meta` with metrics that
    are not finite numbers replaced by None. Raises `CheckpointError` (one line) otherwise."""

    def bad(field: str, wanted: str, value: Any) -> CheckpointError:
        text = repr(value)
        shown = text if len(text) <= 40 else f"a {type(value).__name__}"
        return CheckpointError(
            f"{path}: bad checkpoint metadata: {field} must be {wanted}; got {shown}"
        )

    for key in ("model", "model_kwargs", "normalization", "state_dict"):
        if key not in meta:
            raise CheckpointError(f"{path}: bad checkpoint metadata: {key} is missing")
    # The architecture and its weights: what building the model reads.
    if not isinstance(meta["model"], str) or not meta["model"]:
        raise bad("'model'", "a model name", meta["model"])
    kwargs = meta["model_kwargs"]
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise bad("model_kwargs", "a table of architecture options", kwargs)
    for key, limit in (("num_classes", MAX_CLASSES), ("in_channels", MAX_IN_CHANNELS)):
        if key in kwargs and not (_is_int(kwargs[key]) and 1 <= kwargs[key] <= limit):
            raise bad(f"model_kwargs.{key}", f"an integer from 1 to {limit:,}", kwargs[key])
    for key, value in kwargs.items():
        if not _plain(value):
            raise bad(f"model_kwargs.{key}", "a number, text or a list of them", value)
    state = meta["state_dict"]
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        raise bad("state_dict", "a table of named tensors", state)
    # What turns a picture into the model's input: normalisation and image size.
    norm = meta["normalization"]
    if not isinstance(norm, dict):
        raise bad("normalization", "a table with mean and std", norm)
    mean, std = norm.get("mean", ...), norm.get("std", ...)
    if not _is_finite(mean):
        raise bad("normalization mean", "a finite number", mean)
    if not (_is_finite(std) and std > 0):
        raise bad("normalization std", "a finite number > 0", std)
    size = meta.get("image_size")
    if size is not None and not (
        isinstance(size, list | tuple)
        and len(size) == 2
        and all(_is_int(s) and 1 <= s <= MAX_IMAGE_SIDE for s in size)
    ):
        raise bad("image_size", f"[height, width], each 1 to {MAX_IMAGE_SIDE} pixels", size)
    # Fields a checkpoint may lack (older ones do), checked when present.
    for key, kinds, wanted in (
        ("config", dict, "a table"),
        ("metrics", dict, "a table of numbers"),
        ("split", dict, "a table"),
        ("precision", str, "text"),
        ("channels_last", bool, "true or false"),
        ("ema", bool, "true or false"),
    ):
        if meta.get(key) is not None and not isinstance(meta[key], kinds):
            raise bad(key, wanted, meta[key])
    temperature = meta.get("temperature")
    if temperature is not None and not (
        _is_finite(temperature) and MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE
    ):
        raise bad(
            "temperature", f"a number from {MIN_TEMPERATURE} to {MAX_TEMPERATURE:g}", temperature
        )
    # Shown as they are by `serve`'s /api/model: plain data only (no tensors, no NaN).
    for key in ("calibration", "realworld", "trained_by"):
        value = meta.get(key)
        if value is not None and not (
            isinstance(value, dict)
            and len(value) <= 64
            and all(isinstance(k, str) and _plain(v) for k, v in value.items())
        ):
            raise bad(key, "a table of numbers and text", value)
    if meta.get("epoch") is not None and not _is_int(meta["epoch"]):
        raise bad("epoch", "an integer", meta["epoch"])
    config = meta.get("config") or {}
    for key, check, wanted in (
        ("dataset", lambda v: isinstance(v, str), "a dataset name"),
        ("data_dir", lambda v: v is None or isinstance(v, str), "a folder or null"),
        ("val_fraction", lambda v: _is_real(v) and 0 < v < 1, "a number between 0 and 1"),
        ("split_seed", _is_int, "an integer"),
    ):
        if key in config and not check(config[key]):
            raise bad(f"config.{key}", wanted, config[key])
    metrics = meta.get("metrics")
    if metrics:
        if not all(isinstance(k, str) and (v is None or _is_real(v)) for k, v in metrics.items()):
            raise bad("metrics", "a table of numbers", metrics)
        # NaN is not JSON: a metric that is not a number is unknown.
        meta["metrics"] = {
            k: (float(v) if v is not None and math.isfinite(v) else None)
            for k, v in metrics.items()
        }
    return meta


class _TooBig(Exception):
    pass


@contextlib.contextmanager
def _counted(max_params: int, max_modules: int):
    """Abort a model build as soon as it registers more parameters (elements) or modules than
    the checkpoint's weights could fill: a hostile `depth=10**7` stops within milliseconds."""
    owner, counts, limits = threading.get_ident(), [0, 0], (max_params, max_modules)

    def count(kind: int, amount: int) -> None:
        if threading.get_ident() == owner:  # the hooks are global: count this thread's build
            counts[kind] += amount
            if counts[kind] > limits[kind]:
                raise _TooBig

    handles = [
        nn_module.register_module_parameter_registration_hook(
            lambda _module, _name, param: count(0, 0 if param is None else param.numel())
        ),
        nn_module.register_module_module_registration_hook(lambda *_: count(1, 1)),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def check_weights_fit(meta: dict[str, Any], path: str | os.PathLike = "checkpoint") -> None:
    """Build the described model on the meta device (no memory) and compare it with the
    state_dict: names, shapes, finiteness, and one forward pass of an `image_size` input."""
    state = meta["state_dict"]
    name = meta["model"]
    stored = sum(t.numel() for t in state.values())
    what = f"{path}: weights do not fit model {name!r}"
    try:
        # Margins: a constructor may replace a parameter it registered (counted twice).
        with _counted(4 * stored + 10_000, 32 * len(state) + 256), torch.device("meta"):
            model = create_model(name, **meta["model_kwargs"])
    except _TooBig:
        raise CheckpointError(
            f"{what} (its metadata describes a larger model than the {stored:,} weights in the file)"
        ) from None
    except UserError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except Exception as exc:  # an option of the wrong type fails deep inside a constructor
        raise CheckpointError(
            f"{path}: model {name!r} cannot be built from its metadata ({_first_line(exc)})"
        ) from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = [
            f"{label} {', '.join(keys[:3])}" + (" ..." if len(keys) > 3 else "")
            for label, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        ]
        raise CheckpointError(f"{what} ({'; '.join(parts)})")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{what} ({key}: the file has shape {tuple(state[key].shape)}, the model "
                f"needs {tuple(tensor.shape)})"
            )
        if state[key].is_floating_point() != tensor.is_floating_point():
            raise CheckpointError(f"{what} ({key}: {state[key].dtype}, expected {tensor.dtype})")
    for key, tensor in state.items():
        # amax and amin propagate NaN and show +-inf: 4x faster than isfinite().all() on a CPU.
        if (
            tensor.is_floating_point()
            and tensor.numel()
            and not (math.isfinite(tensor.amax()) and math.isfinite(tensor.amin()))
        ):
            raise CheckpointError(f"{path}: weights are not finite numbers (NaN or inf in {key})")
    height, width = meta.get("image_size") or (28, 28)
    in_channels = meta["model_kwargs"].get("in_channels", 1)
    try:
        with torch.device("meta"), torch.no_grad():
            out = model(torch.zeros(2, in_channels, height, width))
    except Exception as exc:
        raise CheckpointError(
            f"{path}: model {name!r} cannot take its own {height}x{width} images "
            f"({_first_line(exc)})"
        ) from None
    classes = meta["model_kwargs"].get("num_classes", 10)
    if tuple(out.shape) != (2, classes):
        raise CheckpointError(
            f"{path}: model {name!r} gives outputs of shape {tuple(out.shape)[1:]}, "
            f"not the checkpoint's {classes} classes"
        )


def attach_meta(model: nn.Module, meta: dict[str, Any]) -> nn.Module:
    """Give `model` its checkpoint metadata (everything but the weights) as an attribute."""
    setattr(unwrap(model), META_ATTRIBUTE, {k: v for k, v in meta.items() if k != "state_dict"})
    return model


def model_meta(model: nn.Module) -> dict[str, Any] | None:
    """The metadata `attach_meta` gave `model` (train() results and loaded models have it)."""
    return getattr(unwrap(model), META_ATTRIBUTE, None)


def save_model(model: nn.Module, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write `model` (a `train()` result's `.model`, or one from `load_model`) as a checkpoint
    that `load_model`, `mnistlab predict`, `evaluate`, `export` and `serve` read. Atomic.
    An existing file is replaced only when it is an mnistlab checkpoint, or with `force`."""
    target = Path(path)
    if os.path.isdir(target):
        raise UserError(f"{target}: is a folder; give a file name, e.g. model.pt")
    if os.path.lexists(target) and not force:
        try:  # it must read as a checkpoint mnistlab wrote, format and all
            read_checkpoint(target)
        except UserError:
            raise UserError(
                f"{target}: exists and is not an mnistlab checkpoint; save_model(..., force=True) "
                "replaces it"
            ) from None
    meta = model_meta(model)
    if meta is None:
        raise UserError(
            "this model has no mnistlab metadata (normalisation, architecture); save the "
            "`.model` of a train() result, or a model from mnistlab.load_model()"
        )
    state = {k: v.detach().cpu().clone() for k, v in unwrap(model).state_dict().items()}
    write_torch(path, dict(meta, format=CHECKPOINT_FORMAT, state_dict=state))
    return Path(path)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild the model a checkpoint describes. Returns (model in eval mode, metadata)."""
    meta = read_checkpoint(path)
    check_weights_fit(meta, path)  # before a single real weight is allocated
    model = create_model(meta["model"], **meta["model_kwargs"])
    try:
        model.load_state_dict(meta["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: weights do not fit model {meta['model']!r} ({_first_line(exc)})"
        ) from None
    attach_meta(model, meta)
    return model.to(device).eval(), meta
