"""Datasets: IDX files in, uint8 tensors out; and the validation split."""

from .idx import IDXError, read_idx, write_idx
from .sources import Dataset, DataError, load_dataset
from .split import Split, stratified_split

__all__ = [
    "DataError",
    "Dataset",
    "IDXError",
    "Split",
    "load_dataset",
    "read_idx",
    "stratified_split",
    "write_idx",
]
