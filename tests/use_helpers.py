"""Helpers shared by the "use the trained models" tests (predict, export, serve): synthetic
images and ways to measure them. The trained model itself is conftest's `checkpoint` fixture.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw


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


def drawn_face(path) -> None:
    """A face drawn in pen on white paper (a circle, two eyes, a smile), saved to `path`."""
    face = Image.new("L", (200, 200), 255)
    pen = ImageDraw.Draw(face)
    pen.ellipse((20, 20, 180, 180), outline=0, width=8)
    pen.ellipse((60, 70, 80, 90), fill=0)
    pen.ellipse((120, 70, 140, 90), fill=0)
    pen.arc((60, 90, 140, 150), 20, 160, fill=0, width=8)
    face.save(path)
