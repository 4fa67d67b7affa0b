"""The IDX file format (LeCun's MNIST format), read and written with strict validation.

Layout: a 4-byte magic number (two zero bytes, a type code, the number of dimensions), then one
big-endian uint32 per dimension, then the data. Files may be gzipped. Every way a file can be
wrong raises `IDXError` with one line naming the file and the problem.
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserError

IMAGES_MAGIC = 2051  # uint8, 3 dimensions (count, rows, cols)
LABELS_MAGIC = 2049  # uint8, 1 dimension (count)

# type code -> numpy big-endian dtype, as in the format's definition
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}


class IDXError(UserError):
    """A file that is not valid IDX data; the message names the file and what is wrong."""


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IDXError(f"{path}: file not found") from None
    except OSError as exc:
        raise IDXError(f"{path}: cannot read ({exc.strerror})") from None
    if not raw:
        raise IDXError(f"{path}: file is empty")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise IDXError(f"{path}: corrupt gzip data ({exc})") from None
        if not raw:
            raise IDXError(f"{path}: file is empty after decompression")
    return raw


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (already decompressed) into an array in native byte order."""
    if len(raw) < 4:
        raise IDXError(f"{source}: too short for an IDX header ({len(raw)} bytes)")
    zero, type_code, ndim = struct.unpack(">HBB", raw[:4])
    magic = struct.unpack(">I", raw[:4])[0]
    if zero != 0 or type_code not in _DTYPES or ndim == 0:
        raise IDXError(f"{source}: bad magic number {magic} (not an IDX file)")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise IDXError(f"{source}: header truncated (needs {header_len} bytes, has {len(raw)})")
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = np.dtype(_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_len
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise IDXError(
            f"{source}: {what}: header declares shape {tuple(shape)} = {expected} data bytes, "
            f"file has {actual}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike, expect_magic: int | None = None) -> np.ndarray:
    path = Path(path)
    raw = _read_bytes(path)
    if expect_magic is not None and len(raw) >= 4:
        magic = struct.unpack(">I", raw[:4])[0]
        if magic != expect_magic:
            kind = "images" if expect_magic == IMAGES_MAGIC else "labels"
            raise IDXError(f"{path}: bad magic number {magic}, expected {expect_magic} ({kind})")
    return parse_idx(raw, str(path))


def read_images(path: str | os.PathLike) -> np.ndarray:
    images = read_idx(path, IMAGES_MAGIC)  # (N, H, W) uint8
    if images.ndim != 3 or images.shape[1] < 1 or images.shape[2] < 1:
        raise IDXError(f"{path}: images must have 3 dimensions (count, rows, cols), got {images.shape}")
    return images


def read_labels(path: str | os.PathLike) -> np.ndarray:
    return read_idx(path, LABELS_MAGIC)  # (N,) uint8


def read_pair(images_path: str | os.PathLike, labels_path: str | os.PathLike):
    images, labels = read_images(images_path), read_labels(labels_path)
    if len(images) != len(labels):
        raise IDXError(
            f"{images_path}: {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    return images, labels


def encode_idx(array: np.ndarray) -> bytes:
    native = np.dtype(array.dtype).newbyteorder("=")
    if native not in _CODES:
        raise IDXError(f"cannot store dtype {array.dtype} in IDX")
    if array.ndim == 0 or array.ndim > 255:
        raise IDXError(f"cannot store a {array.ndim}-dimensional array in IDX")
    header = struct.pack(">HBB", 0, _CODES[native], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=_DTYPES[_CODES[native]]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write atomically; gzip when the name ends in .gz (mtime 0, so the bytes are reproducible)."""
    path = Path(path)
    payload = encode_idx(array)
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=9, mtime=0)
    atomic_write_bytes(path, payload)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results should be readable like any file
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
