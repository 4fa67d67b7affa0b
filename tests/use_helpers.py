"""Shared by the "use the trained models" tests (predict, export, serve, ensemble).

`trained_checkpoint(tmp_path_factory)` trains LeNet once per test session (8,000 images, one
epoch, ~3 s on one core, ~96% test accuracy) and returns its checkpoint. The cache lives in
this module, not in a fixture, so test files that each declare a session fixture around it
still share one training run.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import torch

_CACHE: dict[str, Path] = {}


def trained_checkpoint(tmp_path_factory) -> Path:
    if "lenet" not in _CACHE:
        from mnistlab import config, engine

        out = tmp_path_factory.mktemp("use-lenet")
        threads = torch.get_num_threads()
        try:
            # One thread: on a shared 2-core machine two threads fight and run ~5x slower.
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
                    num_threads=1,
                    out_dir=str(out),
                ),
                log=lambda *a: None,
                progress=False,
            )
        finally:
            torch.set_num_threads(threads)
        _CACHE["lenet"] = out / "checkpoint.pt"
    return _CACHE["lenet"]


def png_with_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels: a decompression bomb's shape,
    without the bomb (the pixel data is a few bytes, so decoding it would fail anyway)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    a = image.astype(np.float64)
    ys, xs = np.indices(a.shape)
    return float((a * ys).sum() / a.sum()), float((a * xs).sum() / a.sum())


def ink_box(image: np.ndarray) -> tuple[int, int]:
    """(height, width) of the non-zero pixels' bounding box."""
    ys, xs = np.nonzero(image)
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def one_torch_thread():
    """For a module-scoped autouse fixture: on a shared 2-core machine two torch threads
    contend with other processes and evaluation runs 3-5x slower than on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
