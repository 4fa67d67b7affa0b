"""Fixtures shared by the whole suite: small real datasets and an isolated, offline data cache.

tiny_idx_dir   a folder with 200 train / 100 test MNIST digits as four gzipped IDX files
tiny_dataset   the same digits loaded as a `Dataset` (via `load_dataset(data_dir=...)`)
make_idx_dir   a factory: make_idx_dir(n_train, n_test, gzip=True) -> folder
mnist          the full bundled MNIST, loaded once per session (~1 s)
checkpoint     a LeNet checkpoint trained once per session, for every test that needs a model
browser        headless Debian Chromium via Playwright (skips when either is missing)

Every test runs with one torch thread, and the CLI subprocesses and worker processes the
tests start with OMP/MKL at one thread: on a shared 2-core machine two threads contend with
each other and with other processes, and small models train several times slower.
"""

from __future__ import annotations

import os

# Before torch is first imported (just below): torch reads these once per process, and the
# subprocesses the tests start inherit them. A value already set in the environment is kept.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from pathlib import Path

import numpy as np
import pytest
import torch

from mnistlab.data import Dataset, load_dataset, load_dataset_cached, write_idx

TINY_TRAIN, TINY_TEST = 200, 100
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (`make browser`), never a download
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One torch thread for the whole session; the caller's setting comes back at the end."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _offline_data_cache(tmp_path_factory, monkeypatch):
    """No test writes to the user's cache or reaches the internet by accident: downloads go
    to a throwaway folder, from a mirror nobody listens on (port 9 refuses at once)."""
    monkeypatch.setenv("MNISTLAB_DATA_CACHE", str(tmp_path_factory.mktemp("data-cache")))
    monkeypatch.setenv("MNISTLAB_DATA_MIRROR", "http://127.0.0.1:9/")


@pytest.fixture(scope="session")
def mnist() -> Dataset:
    """The bundled MNIST (60,000 + 10,000), checksum-verified; shared, so never modify it."""
    return load_dataset_cached("mnist")  # the same copy the engine's cache hands out


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
def checkpoint(tmp_path_factory) -> Path:
    """A LeNet checkpoint trained once per session (8,000 images, one epoch, a few seconds,
    ~96% test accuracy), for every test that needs a trained model: predict, export, serve,
    ensembles. Shared, so copy it before changing it."""
    from mnistlab import config, engine

    out = tmp_path_factory.mktemp("use-lenet")
    engine.train(
        config.TrainConfig(
            model="lenet",
            epochs=1,
            train_subset=8000,
            eval_subset=1000,
            optimizer="adamw",
            lr=3e-3,
            schedule="onecycle",
            batch_size=64,
            dropout=0.0,
            precision="fp32",
            out_dir=str(out),
        ),
        log=lambda *a: None,
        progress=False,
    )
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium as a Playwright `Browser` (`browser.new_page()`), one per module.

    Not session-scoped: Playwright's sync API leaves its asyncio loop marked as running on
    the main thread until it stops, so `asyncio.run` would fail in every later test."""
    if not CHROMIUM.exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (make browser)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs playwright: pip install 'mnistlab[test]'"
    )
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()
