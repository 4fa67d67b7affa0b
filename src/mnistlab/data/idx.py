"""The IDX file format (LeCun's MNIST format), read and written with strict validation.

Layout: a 4-byte magic number (two zero bytes, a type code, the number of dimensions), then one
big-endian uint32 per dimension, then the data. Files may be gzipped. Every way a file can be
wrong raises `IDXError` with one line naming the file and the problem.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import atomic_write_bytes

IMAGES_MAGIC = 2051  # 0x00000803: uint8, 3 dimensions (count, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: uint8, 1 dimension (count)

# type code -> numpy big-endian dtype, as in the format's definition
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}
_KIND = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}


class IDXError(UserError):
    """A file that is not valid IDX data; the message names the file and what is wrong."""


def _describe_magic(magic: int) -> str:
    """'uint8, 3 dimensions' for a valid IDX magic number, '' otherwise."""
    type_code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    if magic >> 16 or type_code not in _DTYPES:
        return ""
    dims = "dimension" if ndim == 1 else "dimensions"
    return f"{np.dtype(_DTYPES[type_code]).name}, {ndim} {dims}"


# Untrusted sizes: a gzip's header can claim anything, and its stream can expand a thousandfold.
# Reading stops just past the size the IDX header claims, and the claim itself is capped: the
# largest IDX dataset in use (EMNIST ByClass, ~700k 28x28 images) is ~550 MB.
MAX_IDX_BYTES = 2**31  # data bytes one IDX file may hold
_MARGIN = 4096  # bytes read past the claimed size, so a small overrun is reported exactly
_CHUNK = 2**20  # read in 1 MB steps: memory follows the data that arrives, not the claim


def _read_upto(stream, n: int) -> bytes:
    chunks, left = [], n
    while left > 0:
        chunk = stream.read(min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _check_size(source, shape: tuple[int, ...], expected: int, actual: int) -> None:
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise IDXError(
            f"{source}: {what}: header declares shape {tuple(shape)} = {expected} data bytes, "
            f"file has {actual}"
        )


def _read_bounded(path: Path, expect_magic: int | None, header_only: bool) -> bytes:
    """The IDX header, checked, and (unless `header_only`) no more data than it claims, plus a
    margin. A plain file's size is checked against the claim before its data is read."""
    with path.open("rb") as fh:
        disk_size = os.fstat(fh.fileno()).st_size
        gzipped = fh.read(2) == b"\x1f\x8b"
        fh.seek(0)
        stream = gzip.GzipFile(fileobj=fh, mode="rb") if gzipped else fh
        head = _read_upto(stream, 4)
        if len(head) == 4 and _describe_magic(struct.unpack(">I", head)[0]):
            head += _read_upto(stream, 4 * head[3])
        if not head:
            return head  # read_idx_bytes says the file is empty
        shape, header_len, expected = _parse_header(head, path, expect_magic)
        if header_only:
            return head
        if not gzipped:
            _check_size(path, shape, expected, disk_size - header_len)
        if expected > MAX_IDX_BYTES:
            raise IDXError(
                f"{path}: header declares shape {tuple(shape)} = {expected:,} data bytes, over "
                f"the {MAX_IDX_BYTES:,}-byte limit for one IDX file"
            )
        data = _read_upto(stream, expected + _MARGIN)
        if len(data) == expected + _MARGIN:  # and maybe much more: stop here
            raise IDXError(
                f"{path}: has trailing bytes: header declares shape {tuple(shape)} = {expected} "
                f"data bytes, the file decompresses to more than {expected + _MARGIN}"
            )
        return head + data


def read_idx_bytes(
    path: str | os.PathLike, expect_magic: int | None = None, header_only: bool = False
) -> bytes:
    """The file's IDX bytes, gunzipped when the file starts with the gzip signature. Never more
    than the header claims plus a small margin is decompressed, and claims over MAX_IDX_BYTES
    are refused; `expect_magic` pins the type and dimension count, `header_only` stops after
    the header."""
    path = Path(path)
    try:
        raw = _read_bounded(path, expect_magic, header_only)
    except FileNotFoundError:
        raise IDXError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise IDXError(f"{path}: is a directory, not an IDX file") from None
    except EOFError:
        raise IDXError(f"{path}: gzip data is truncated (the file was cut short)") from None
    except (OSError, zlib.error) as exc:  # BadGzipFile, CRC mismatches, other OS errors
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        corrupt = isinstance(exc, gzip.BadGzipFile | zlib.error)
        kind = "corrupt gzip data" if corrupt else "cannot read"
        raise IDXError(f"{path}: {kind} ({reason or type(exc).__name__})") from None
    if not raw:
        empty = path.is_file() and path.stat().st_size > 0
        raise IDXError(f"{path}: file is empty" + (" after decompression" if empty else ""))
    return raw


def _parse_header(raw: bytes, source, expect_magic: int | None) -> tuple[tuple[int, ...], int, int]:
    """(shape, header length, data bytes) that the header of `raw` declares, or the IDXError
    saying what is wrong with it."""
    if len(raw) < 4:
        raise IDXError(f"{source}: too short for an IDX header ({len(raw)} bytes)")
    magic = struct.unpack(">I", raw[:4])[0]
    found = _describe_magic(magic)
    if not found:
        raise IDXError(f"{source}: bad magic number {magic} (0x{magic:08x}): not an IDX file")
    if expect_magic is not None and magic != expect_magic:
        wanted = f"{_KIND.get(expect_magic, 'data')}: {_describe_magic(expect_magic)}"
        if magic >> 8 == expect_magic >> 8:  # same data type, only the dimension count differs
            raise IDXError(
                f"{source}: wrong number of dimensions: {magic & 0xFF} (magic {magic}), "
                f"expected {expect_magic & 0xFF} ({wanted}, magic {expect_magic})"
            )
        raise IDXError(
            f"{source}: bad magic number {magic} ({found}), expected {expect_magic} ({wanted})"
        )
    if raw[3] == 0:
        raise IDXError(f"{source}: header declares 0 dimensions")
    header_len = 4 + 4 * raw[3]
    if len(raw) < header_len:
        raise IDXError(f"{source}: header truncated (needs {header_len} bytes, has {len(raw)})")
    shape = struct.unpack(f">{raw[3]}I", raw[4:header_len])
    # Python ints, not numpy: a hostile header's product must not wrap around.
    return shape, header_len, math.prod(shape) * np.dtype(_DTYPES[raw[2]]).itemsize


def parse_idx(raw: bytes, source: str = "<bytes>", expect_magic: int | None = None) -> np.ndarray:
    """Decode IDX bytes (already decompressed) into an array in native byte order."""
    shape, header_len, expected = _parse_header(raw, source, expect_magic)
    _check_size(source, shape, expected, len(raw) - header_len)
    dtype = np.dtype(_DTYPES[raw[2]])
    try:
        data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    except ValueError:  # e.g. (0, 2**31, 2**31, 2**31): no data, but beyond numpy's sizes
        raise IDXError(
            f"{source}: header declares shape {tuple(shape)}, which numpy cannot hold"
        ) from None
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_idx(
    path: str | os.PathLike, expect_magic: int | None = None, expected_sha256: str | None = None
) -> np.ndarray:
    """Read any IDX file (gzipped or not); `expect_magic` pins its type and dimension count,
    `expected_sha256` the decompressed bytes."""
    raw = read_idx_bytes(path, expect_magic)
    if expected_sha256 is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != expected_sha256:
            raise IDXError(
                f"{path}: checksum mismatch (SHA-256 {digest[:12]}..., "
                f"expected {expected_sha256[:12]}...): the file was altered or is corrupt"
            )
    return parse_idx(raw, str(path), expect_magic)


def _header_shape(path: str | os.PathLike, expect_magic: int) -> tuple[int, ...]:
    """The shape a file's header declares, its magic number and dimensions checked."""
    head = read_idx_bytes(path, expect_magic, header_only=True)
    return _parse_header(head, path, expect_magic)[0]


def read_images(path: str | os.PathLike, expected_sha256: str | None = None) -> np.ndarray:
    """(N, H, W) uint8 images; `expected_sha256` is of the decompressed bytes."""
    images = read_idx(path, IMAGES_MAGIC, expected_sha256)
    if 0 in images.shape[1:]:
        raise IDXError(f"{path}: images have a zero-size dimension: {images.shape[1:]}")
    return images


def read_labels(path: str | os.PathLike, expected_sha256: str | None = None) -> np.ndarray:
    """(N,) uint8 labels; `expected_sha256` is of the decompressed bytes."""
    return read_idx(path, LABELS_MAGIC, expected_sha256)


def read_pair(
    images_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    expected_sha256: tuple[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images and their labels, checked to be the same count (from the headers, before either
    file's data is read: a hostile labels file must not be expanded to find it is wrong)."""
    image_sum, label_sum = expected_sha256 or (None, None)
    image_shape = _header_shape(images_path, IMAGES_MAGIC)
    label_shape = _header_shape(labels_path, LABELS_MAGIC)
    if image_shape[0] != label_shape[0]:
        raise IDXError(
            f"{images_path}: count mismatch: {image_shape[0]} images but "
            f"{labels_path} has {label_shape[0]} labels"
        )
    # read_images and read_labels check each file's data against its header.
    return read_images(images_path, image_sum), read_labels(labels_path, label_sum)


def encode_idx(array: np.ndarray) -> bytes:
    array = np.asarray(array)
    native = np.dtype(array.dtype).newbyteorder("=")
    if native not in _CODES:
        valid = ", ".join(np.dtype(d).name for d in _DTYPES.values())
        raise IDXError(f"cannot store dtype {array.dtype} in IDX (valid: {valid})")
    if array.ndim == 0 or array.ndim > 255:
        raise IDXError(f"cannot store a {array.ndim}-dimensional array in IDX (1 to 255)")
    if max(array.shape) >= 2**32:
        raise IDXError(f"cannot store shape {array.shape} in IDX (each dimension < 2**32)")
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
