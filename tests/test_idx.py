"""The IDX reader/writer: round trips, and one specific message for each way a file is wrong."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from mnistlab.data.idx import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    IDXError,
    encode_idx,
    read_idx,
    read_images,
    read_labels,
    read_pair,
    write_idx,
)
from mnistlab.errors import UserError
from mnistlab.fileio import atomic_write_bytes


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4), (1, 2, 1, 3), (0, 5)])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path, dtype, shape, suffix):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal(shape) * 100).astype(dtype)
    path = tmp_path / f"a-idx{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)


def test_gz_output_is_gzip_and_reproducible(tmp_path):
    array = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    first = (tmp_path / "a.gz").read_bytes()
    assert first[:2] == b"\x1f\x8b"
    assert first == (tmp_path / "b.gz").read_bytes()


def test_header_layout_matches_the_format():
    raw = encode_idx(np.zeros((2, 3, 4), dtype=np.uint8))
    assert struct.unpack(">IIII", raw[:16]) == (IMAGES_MAGIC, 2, 3, 4)
    raw = encode_idx(np.zeros(5, dtype=np.uint8))
    assert struct.unpack(">II", raw[:8]) == (LABELS_MAGIC, 5)
    raw = encode_idx(np.array([1], dtype="<i4"))  # little-endian input is stored big-endian
    assert raw[-4:] == b"\x00\x00\x00\x01"


def test_write_refuses_unsupported_arrays(tmp_path):
    with pytest.raises(IDXError, match="cannot store dtype int64 in IDX"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    with pytest.raises(IDXError, match="cannot store a 0-dimensional array"):
        write_idx(tmp_path / "x", np.array(3, dtype=np.uint8))
    assert not (tmp_path / "x").exists()


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_bytes(tmp_path / "sub" / "f.bin", b"abc")
    atomic_write_bytes(tmp_path / "sub" / "f.bin", b"xyz")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.bin"]
    assert (tmp_path / "sub" / "f.bin").read_bytes() == b"xyz"


# ---------------------------------------------------------------- corrupt files
@pytest.fixture
def images_path(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3))
    return path


@pytest.fixture
def labels_path(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"
    write_idx(path, np.arange(5, dtype=np.uint8))
    return path


def expect_error(path, reader, pattern):
    """The error is an IDXError (so a UserError: exit 2), one line, starting with the path."""
    with pytest.raises(IDXError, match=pattern) as info:
        reader(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ")
    assert "\n" not in message
    assert isinstance(info.value, UserError)
    return message


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope", read_images, "file not found")


def test_empty_file(images_path):
    images_path.write_bytes(b"")
    expect_error(images_path, read_images, "file is empty$")


def test_empty_gzip(images_path):
    images_path.write_bytes(gzip.compress(b""))
    expect_error(images_path, read_images, "file is empty after decompression")


def test_truncated_file(images_path):
    images_path.write_bytes(images_path.read_bytes()[:-7])
    msg = expect_error(images_path, read_images, "truncated: header declares shape")
    assert "(5, 4, 3) = 60 data bytes, file has 53" in msg


def test_truncated_header(images_path):
    images_path.write_bytes(images_path.read_bytes()[:10])
    expect_error(images_path, read_images, r"header truncated \(needs 16 bytes, has 10\)")


def test_too_short_for_magic(images_path):
    images_path.write_bytes(b"\x00\x00")
    expect_error(images_path, read_images, r"too short for an IDX header \(2 bytes\)")


def test_trailing_bytes(images_path):
    images_path.write_bytes(images_path.read_bytes() + b"\x00\x00")
    expect_error(images_path, read_images, "has trailing bytes: .* file has 62")


def test_not_an_idx_file(images_path):
    images_path.write_bytes(b"PK\x03\x04 this is a zip archive")
    expect_error(images_path, read_images, r"bad magic number \d+ \(0x504b0304\): not an IDX file")


def test_wrong_magic_labels_given_as_images(labels_path):
    msg = expect_error(labels_path, read_images, "wrong number of dimensions")
    assert "1 (magic 2049), expected 3 (images: uint8, 3 dimensions, magic 2051)" in msg


def test_wrong_magic_other_type(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.arange(5, dtype=np.int32))
    msg = expect_error(path, read_labels, "bad magic number 3073")
    assert "(int32, 1 dimension), expected 2049 (labels: uint8, 1 dimension)" in msg


def test_wrong_dimensions(tmp_path):
    path = tmp_path / "images"
    write_idx(path, np.zeros((5, 784), dtype=np.uint8))  # flattened images: 2 dimensions
    expect_error(path, read_images, r"wrong number of dimensions: 2 \(magic 2050\), expected 3")


def test_zero_size_image_dimension(tmp_path):
    path = tmp_path / "images"
    write_idx(path, np.zeros((5, 28, 0), dtype=np.uint8))
    expect_error(path, read_images, r"images have a zero-size dimension: \(28, 0\)")


def test_header_with_absurd_shape_does_not_overflow(images_path):
    # 2**32-1 cubed overflows int64: the size check must still say "truncated".
    images_path.write_bytes(struct.pack(">IIII", IMAGES_MAGIC, 2**32 - 1, 2**32 - 1, 2**32 - 1))
    expect_error(images_path, read_images, "truncated: header declares shape")


def test_bad_gzip(images_path):
    data = bytearray(gzip.compress(images_path.read_bytes()))
    data[12:20] = b"\xff" * 8  # inside the deflate stream
    images_path.write_bytes(bytes(data))
    expect_error(images_path, read_images, "corrupt gzip data")


def test_gzip_crc_mismatch(images_path):
    data = bytearray(gzip.compress(images_path.read_bytes()))
    data[-8] ^= 0xFF  # the CRC-32 in the trailer
    images_path.write_bytes(bytes(data))
    expect_error(images_path, read_images, r"corrupt gzip data \(CRC check failed")


def test_truncated_gzip(images_path):
    data = gzip.compress(images_path.read_bytes())
    images_path.write_bytes(data[: len(data) // 2])
    expect_error(images_path, read_images, r"gzip data is truncated \(the file was cut short\)")


def test_directory_instead_of_file(tmp_path):
    expect_error(tmp_path, read_images, "is a directory, not an IDX file")


def test_count_mismatch(images_path, labels_path):
    write_idx(labels_path, np.arange(4, dtype=np.uint8))
    with pytest.raises(IDXError) as info:
        read_pair(images_path, labels_path)
    assert str(info.value) == (
        f"{images_path}: count mismatch: 5 images but {labels_path} has 4 labels"
    )


def test_read_pair_checks_sha256(images_path, labels_path):
    images, labels = read_pair(images_path, labels_path)
    assert images.shape == (5, 4, 3) and labels.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(IDXError, match=r"checksum mismatch \(SHA-256 .*\): the file was altered"):
        read_pair(images_path, labels_path, ("0" * 64, None))


# ---------------------------------------------------------------- untrusted sizes (issue 13, item 8)
def _gzip_stream(parts) -> bytes:
    """gzip of the concatenated `parts` (bytes, or (byte, count) runs), built in 1 MB steps so
    the test itself never holds the expanded data."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip wrapper
    out = []
    for part in parts:
        if isinstance(part, bytes):
            out.append(packer.compress(part))
            continue
        byte, count = part
        block = byte * 2**20
        while count > 0:
            out.append(packer.compress(block[: min(count, len(block))]))
            count -= len(block)
    out.append(packer.flush())
    return b"".join(out)


def _peak_python_bytes(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    except IDXError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_gzip_bomb_with_trailing_data_is_refused_without_expanding(labels_path):
    # A 5-label file followed by 64 MB of zeros: ~65 KB of gzip. Reading must stop just past
    # what the header claims, not expand the whole stream first.
    labels_path.write_bytes(_gzip_stream([labels_path.read_bytes(), (b"\x00", 64 * 2**20)]))
    assert labels_path.stat().st_size < 100_000
    msg = expect_error(labels_path, read_labels, "has trailing bytes: header declares shape")
    assert "decompresses to more than" in msg
    assert _peak_python_bytes(lambda: read_labels(labels_path)) < 4 * 2**20


def test_plain_file_with_trailing_data_is_refused_from_its_size(labels_path):
    with open(labels_path, "ab") as fh:  # sparse: no disk and nothing to read
        fh.truncate(labels_path.stat().st_size + 2**30)
    expect_error(labels_path, read_labels, "has trailing bytes: .* file has 1073741829")
    assert _peak_python_bytes(lambda: read_labels(labels_path)) < 2**20


def test_header_claiming_more_than_the_limit_is_refused_before_reading(images_path):
    # 100,000 images of 200x200 = 4 GB claimed, in a gzip of a few bytes of real data.
    images_path.write_bytes(
        _gzip_stream([struct.pack(">IIII", IMAGES_MAGIC, 100_000, 200, 200), (b"\x00", 2**20)])
    )
    expect_error(images_path, read_images, "over the .* limit for one IDX file")
    assert _peak_python_bytes(lambda: read_images(images_path)) < 2**20


def test_count_is_checked_before_the_data_is_read(images_path, labels_path):
    # Honest but huge labels: 64 million of them (64 MB expanded, 62 KB of gzip), for 5 images.
    labels_path.write_bytes(
        _gzip_stream([struct.pack(">II", LABELS_MAGIC, 64 * 2**20), (b"\x00", 64 * 2**20)])
    )
    with pytest.raises(IDXError, match="count mismatch: 5 images but .* has 67108864 labels"):
        read_pair(images_path, labels_path)
    assert _peak_python_bytes(lambda: read_pair(images_path, labels_path)) < 4 * 2**20


def test_concatenated_gzip_members_are_one_stream(images_path):
    raw = images_path.read_bytes()
    images_path.write_bytes(gzip.compress(raw[:7]) + gzip.compress(raw[7:]))
    assert read_images(images_path).shape == (5, 4, 3)


def test_empty_shape_numpy_cannot_represent(tmp_path):
    # Found by the long fuzz run: 0 data bytes are right for (0, 6, 81, 97408876, 97414797)
    # int16, but numpy refuses the shape (its non-zero dimensions overflow) with a ValueError.
    path = tmp_path / "odd"
    path.write_bytes(struct.pack(">HBB5I", 0, 0x0B, 5, 0, 6, 81, 0x05CE576C, 0x05CE6E8D))
    expect_error(path, read_idx, "numpy cannot hold")
