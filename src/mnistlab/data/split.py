"""The validation split: seeded, stratified by class, drawn from the training set only."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    train_indices: torch.Tensor  # (N_train,) int64, sorted, into the original training set
    val_indices: torch.Tensor  # (N_val,) int64, sorted
    seed: int
    fraction: float

    @property
    def digest(self) -> str:
        """A short hash of the indices: two runs with the same digest saw the same split."""
        h = hashlib.sha256()
        h.update(self.train_indices.numpy().astype("<i8").tobytes())
        h.update(b"|")
        h.update(self.val_indices.numpy().astype("<i8").tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        return {
            "seed": self.seed,
            "fraction": self.fraction,
            "train_size": len(self.train_indices),
            "val_size": len(self.val_indices),
            "hash": self.digest,
        }


def stratified_split(labels: torch.Tensor, fraction: float = 0.1, seed: int = 0) -> Split:
    """Hold out `fraction` of every class (rounded per class) for validation.

    numpy's PCG64 generator is used, not torch's, because its stream is specified to be the
    same on every platform and version: the same (seed, fraction) gives the same indices anywhere.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    labels_np = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    rng = np.random.Generator(np.random.PCG64(seed))
    val_parts = []
    for cls in np.unique(labels_np):
        members = np.flatnonzero(labels_np == cls)
        n_val = int(round(fraction * len(members)))
        val_parts.append(rng.permutation(members)[:n_val])
    val = np.sort(np.concatenate(val_parts)) if val_parts else np.empty(0, dtype=np.int64)
    mask = np.ones(len(labels_np), dtype=bool)
    mask[val] = False
    train = np.flatnonzero(mask)
    return Split(
        train_indices=torch.from_numpy(train.astype(np.int64)),
        val_indices=torch.from_numpy(val.astype(np.int64)),
        seed=seed,
        fraction=fraction,
    )
