"""Datasets: IDX files in, uint8 tensors out; and the validation split."""

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
    "read_idx",
    "stratified_split",
    "write_idx",
]
