"""The validation split: seeded, stratified by class, drawn from the training set only."""

from __future__ import annotations

import hashlib
import math
import operator
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class Split:
    train_indices: torch.Tensor  # (N_train,) int64, sorted, into the original training set
    val_indices: torch.Tensor  # (N_val,) int64, sorted
    seed: int
    fraction: float

    @property
    def digest(self) -> str:
        """A short hash of the indices: two runs with the same digest saw the same split."""
        parts = (t.numpy().astype("<i8").tobytes() for t in (self.train_indices, self.val_indices))
        return hashlib.sha256(b"|".join(parts)).hexdigest()[:16]

    def describe(self) -> dict:
        return {
            "seed": self.seed,
            "fraction": self.fraction,
            "train_size": len(self.train_indices),
            "val_size": len(self.val_indices),
            "hash": self.digest,
        }


def _splitmix64_keys(seed: int, n: int) -> np.ndarray:
    """The first `n` outputs of SplitMix64 seeded with `seed` (mod 2**64), as uint64.

    Written out rather than taken from numpy's or torch's generators: numpy promises stable
    streams only for its legacy RandomState and torch promises none, while these eleven lines
    give the same numbers on every machine, library version and index order.
    """
    # Array arithmetic on uint64 wraps modulo 2**64 silently, which is what SplitMix64 wants.
    z = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN + np.uint64(seed % 2**64)
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def stratified_split(labels: torch.Tensor, fraction: float = 0.1, seed: int = 0) -> Split:
    """Hold out `fraction` of every class for validation; the rest is the training split.

    Each class holds out round-half-up(fraction * class size) images, at most all but one, so
    the per-class fraction is within one image of `fraction`. Which images: every training
    index i gets the key SplitMix64(seed)[i]; within a class the lowest keys go to validation.
    The same (labels, fraction, seed) therefore gives the same indices anywhere. The test set
    is never passed in, so it cannot leak into either part.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float | np.floating):
        raise UserError(f"validation fraction must be a number in [0, 1), got {fraction!r}")
    if not (math.isfinite(fraction) and 0.0 <= fraction < 1.0):
        raise UserError(f"validation fraction must be in [0, 1), got {fraction}")
    try:
        seed = operator.index(seed)
    except TypeError:
        raise UserError(f"split seed must be an integer, got {seed!r}") from None
    labels_np = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if labels_np.ndim != 1:
        raise UserError(f"labels must be one-dimensional, got shape {labels_np.shape}")
    keys = _splitmix64_keys(seed, len(labels_np))
    val_parts = [np.empty(0, dtype=np.int64)]
    for cls in np.unique(labels_np):
        members = np.flatnonzero(labels_np == cls)  # ascending, so ties in key keep index order
        n_val = min(math.floor(fraction * len(members) + 0.5), len(members) - 1)
        order = np.argsort(keys[members], kind="stable")
        val_parts.append(members[order[:n_val]])
    val = np.sort(np.concatenate(val_parts))
    train = np.setdiff1d(np.arange(len(labels_np)), val, assume_unique=True)
    return Split(
        train_indices=torch.from_numpy(train.astype(np.int64)),
        val_indices=torch.from_numpy(val.astype(np.int64)),
        seed=seed,
        fraction=float(fraction),
    )
