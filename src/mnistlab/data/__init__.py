"""Datasets: IDX files in, uint8 tensors out; and the validation split."""

import functools
import os
from pathlib import Path

from .idx import IDXError, read_idx, write_idx
from .sources import DataError, Dataset, default_cache_dir, list_datasets, load_dataset
from .split import Split, stratified_split

__all__ = [
    "DataError",
    "Dataset",
    "IDXError",
    "Split",
    "default_cache_dir",
    "list_datasets",
    "load_dataset",
    "load_dataset_cached",
    "read_idx",
    "stratified_split",
    "write_idx",
]


def load_dataset_cached(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> Dataset:
    """`load_dataset`, remembered for the process: a sweep, a worker process or a Ray worker
    loads each dataset once, not once per run. The tensors are shared, so never modify them."""
    folder = str(Path(data_dir).expanduser().resolve()) if data_dir is not None else None
    # A downloaded dataset's cache folder and mirror come from the environment: part of the
    # key, so pointing them elsewhere never returns a dataset from the old place.
    downloaded = folder is None and name.lower() != "mnist"
    env = ("MNISTLAB_DATA_CACHE", "MNISTLAB_DATA_MIRROR") if downloaded else ()
    return _load_once(name, folder, tuple(os.environ.get(k) for k in env))


@functools.lru_cache(maxsize=4)
def _load_once(name, data_dir, _environment) -> Dataset:
    return load_dataset(name, data_dir)
