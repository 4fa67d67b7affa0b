"""Fixtures shared by the whole suite: small real datasets and an isolated, offline data cache.

tiny_idx_dir   a folder with 200 train / 100 test MNIST digits as four gzipped IDX files
tiny_dataset   the same digits loaded as a `Dataset` (via `load_dataset(data_dir=...)`)
make_idx_dir   a factory: make_idx_dir(n_train, n_test, gzip=True) -> folder
mnist          the full bundled MNIST, loaded once per session (~1 s)
"""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.data import Dataset, load_dataset, write_idx

TINY_TRAIN, TINY_TEST = 200, 100


@pytest.fixture(autouse=True)
def _offline_data_cache(tmp_path_factory, monkeypatch):
    """No test writes to the user's cache or reaches the internet by accident: downloads go
    to a throwaway folder, from a mirror nobody listens on (port 9 refuses at once)."""
    monkeypatch.setenv("MNISTLAB_DATA_CACHE", str(tmp_path_factory.mktemp("data-cache")))
    monkeypatch.setenv("MNISTLAB_DATA_MIRROR", "http://127.0.0.1:9/")


@pytest.fixture(scope="session")
def mnist() -> Dataset:
    """The bundled MNIST (60,000 + 10,000), checksum-verified; shared, so never modify it."""
    return load_dataset("mnist")


@pytest.fixture(scope="session")
def _mnist_arrays(mnist):
    # Views into the session dataset: fixtures below copy what they write.
    return (
        mnist.train_images.numpy(),
        mnist.train_labels.numpy().astype(np.uint8),
        mnist.test_images.numpy(),
        mnist.test_labels.numpy().astype(np.uint8),
    )


def write_idx_dataset(folder, train_x, train_y, test_x, test_y, gzip: bool = True):
    """Write the four standard IDX files into `folder`; returns `folder`."""
    suffix = ".gz" if gzip else ""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", train_x)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", train_y)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", test_x)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", test_y)
    return folder


@pytest.fixture
def make_idx_dir(tmp_path, _mnist_arrays):
    """make_idx_dir(n_train=200, n_test=100, gzip=True, name="idx") -> a folder of the first
    n_train / n_test real MNIST digits (every class is present from ~100 training images)."""
    train_x, train_y, test_x, test_y = _mnist_arrays

    def make(n_train: int = TINY_TRAIN, n_test: int = TINY_TEST, gzip: bool = True, name="idx"):
        return write_idx_dataset(
            tmp_path / name,
            train_x[:n_train],
            train_y[:n_train],
            test_x[:n_test],
            test_y[:n_test],
            gzip=gzip,
        )

    return make


@pytest.fixture
def tiny_idx_dir(make_idx_dir):
    """A folder with 200 train and 100 test MNIST digits as gzipped IDX files."""
    return make_idx_dir()


@pytest.fixture
def tiny_dataset(tiny_idx_dir) -> Dataset:
    """200 train / 100 test MNIST digits as a `Dataset` named "mnist"."""
    return load_dataset("mnist", data_dir=tiny_idx_dir)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A LeNet checkpoint trained once per session (~96% test accuracy), for the tests that
    use trained models: predict, export, serve, ensembles."""
    from use_helpers import trained_checkpoint

    return trained_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def one_thread():
    from use_helpers import one_torch_thread

    yield from one_torch_thread()
