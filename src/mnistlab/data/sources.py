"""Where datasets come from: the bundled MNIST, a folder of IDX files, or a download cache."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .idx import IDXError, read_pair

BUNDLED_DIR = Path(str(resources.files("mnistlab") / "data" / "bundled"))

# SHA-256 of the *decompressed* IDX bytes: identical to the original MNIST files, and
# independent of how a given zlib compresses them.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FILE_STEMS = tuple(MNIST_SHA256)


class DataError(UserError):
    """A dataset that cannot be loaded; the message is one line for the user."""


@dataclass
class Dataset:
    name: str
    train_images: torch.Tensor  # (60000, 28, 28) uint8 for MNIST
    train_labels: torch.Tensor  # (60000,) int64
    test_images: torch.Tensor  # (10000, 28, 28) uint8
    test_labels: torch.Tensor  # (10000,) int64
    source: str  # where the files were read from

    @property
    def num_classes(self) -> int:
        return int(max(self.train_labels.max(), self.test_labels.max())) + 1

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:])


def find_idx_file(folder: Path, stem: str) -> Path:
    """Accept `stem`, `stem.gz`, and torchvision's `MNIST/raw/` style layouts."""
    candidates = [folder, folder / "raw"] + sorted(folder.glob("*/raw"))
    for base in candidates:
        for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
            if (base / name).is_file():
                return base / name
    raise DataError(f"{folder}: no {stem} or {stem}.gz found")


def sha256_of_idx(path: Path) -> str:
    import gzip

    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return hashlib.sha256(raw).hexdigest()


def load_from_dir(folder: str | os.PathLike, name: str, expected_sha256: dict | None = None) -> Dataset:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: data directory not found")
    paths = {stem: find_idx_file(folder, stem) for stem in FILE_STEMS}
    if expected_sha256:
        for stem, path in paths.items():
            if sha256_of_idx(path) != expected_sha256[stem]:
                raise DataError(f"{path}: checksum mismatch (file altered or corrupt)")
    try:
        train_x, train_y = read_pair(paths["train-images-idx3-ubyte"], paths["train-labels-idx1-ubyte"])
        test_x, test_y = read_pair(paths["t10k-images-idx3-ubyte"], paths["t10k-labels-idx1-ubyte"])
    except IDXError as exc:
        raise DataError(str(exc)) from None
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"{folder}: train images are {train_x.shape[1:]}, test images {test_x.shape[1:]}")
    for arr, what in ((train_x, "train images"), (test_x, "test images")):
        if arr.dtype != np.uint8:
            raise DataError(f"{folder}: {what} must be uint8, got {arr.dtype}")
    return Dataset(
        name=name,
        train_images=torch.from_numpy(train_x),
        train_labels=torch.from_numpy(train_y.astype(np.int64)),
        test_images=torch.from_numpy(test_x),
        test_labels=torch.from_numpy(test_y.astype(np.int64)),
        source=str(folder),
    )


def load_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load a dataset's train and test splits as uint8 image tensors and int64 labels."""
    if data_dir is not None:
        return load_from_dir(data_dir, name)
    if name == "mnist":
        return load_from_dir(BUNDLED_DIR, "mnist", expected_sha256=MNIST_SHA256)
    raise DataError(f"unknown dataset {name!r}; valid: mnist (or pass --data-dir)")
