"""Checkpoints that describe themselves: model name and kwargs, normalisation, config, split,
metrics, and the state_dict of the unwrapped model. Loaded with `weights_only=True`, so a
checkpoint from a stranger cannot run code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .errors import UserError

CHECKPOINT_FORMAT = "mnistlab-checkpoint/1"


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module behind torch.compile's wrapper (nanoGPT issue 325: `_orig_mod.` keys)."""
    return getattr(model, "_orig_mod", model)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        meta = torch.load(path, map_location="cpu", weights_only=True)
    # A damaged or hostile file can fail anywhere inside the unpickler (IndexError and
    # KeyError as well as UnpicklingError): any failure to read it is the user's file.
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a readable mnistlab checkpoint ({first_line})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not an mnistlab checkpoint (format {CHECKPOINT_FORMAT} expected)")
    return meta


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild the model a checkpoint describes. Returns (model in eval mode, metadata)."""
    from .models import create_model

    meta = read_checkpoint(path)
    model = create_model(meta["model"], **meta["model_kwargs"])
    try:
        model.load_state_dict(meta["state_dict"])
    except RuntimeError as exc:
        raise UserError(
            f"{path}: weights do not fit model {meta['model']!r} ({str(exc).splitlines()[0]})"
        ) from None
    return model.to(device).eval(), meta
