"""Fuzzing the two readers of untrusted bytes: the IDX reader and image preprocessing.

Property: whatever the bytes, the reader returns a valid result or raises a `UserError` (one
line, exit code 2 from the CLI); never another exception, and never memory out of proportion
to the input (the IDX reader's Python allocations are traced per case; the image decoders'
C allocations are measured as resident memory in a child process).

The normal suite runs a few hundred derandomized cases per property (seconds); the long runs
(thousands, random) are marked `fuzz` and run only when asked for: `pytest -m fuzz`.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import struct
import subprocess
import sys
import tempfile
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from mnistlab.data.idx import MAX_IDX_BYTES, read_idx, read_images, read_labels, read_pair
from mnistlab.errors import UserError
from mnistlab.preprocess import ImageError, preprocess_image

# Hypothesis caches what it learns under ./.hypothesis; keep the working tree clean.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "mnistlab-hypothesis")

NORMAL_EXAMPLES = 200
LONG_EXAMPLES = 4000
REASONS = {
    "missing",
    "too_large",
    "too_many_pixels",
    "not_an_image",
    "corrupt",
    "blank",
    "bad_array",
}


CASES = [0]  # cases the running property has tried (every call of its test function)


def counted(check):
    def wrapper(*args, **kwargs):
        CASES[0] += 1
        return check(*args, **kwargs)

    return functools.wraps(check)(wrapper)


def run_property(test, run: str, request) -> None:
    """Run a `@given` test with the normal (few, derandomized) or long (many, random) settings;
    the number of cases tried is printed (`pytest -s` or `-rP` shows it)."""
    if run == "long" and "fuzz" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the long fuzz run: pytest -m fuzz")
    CASES[0] = 0
    settings(
        max_examples=NORMAL_EXAMPLES if run == "normal" else LONG_EXAMPLES,
        derandomize=run == "normal",  # the normal suite is reproducible; long runs explore
        deadline=None,  # a shared 2-core machine has slow moments
        database=None,  # nothing written into the working tree
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )(test)()
    print(f"{request.node.name}: {CASES[0]} cases, every one a result or a one-line UserError")


RUNS = ["normal", pytest.param("long", marks=pytest.mark.fuzz)]


def one_line_user_error(exc: BaseException) -> None:
    assert isinstance(exc, UserError), f"{type(exc).__name__}: {exc}"
    assert "\n" not in str(exc) and str(exc), repr(str(exc))


# ---------------------------------------------------------------- IDX
_TYPES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]
_ITEMSIZE = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}
# 16 MB of zeros as one gzip member (16 KB): appended to a file it makes a gzip bomb.
_BOMB = gzip.compress(bytes(16 * 2**20), compresslevel=1, mtime=0)


@st.composite
def idx_files(draw):
    """(file bytes, the most data bytes a correct reader may hold for it)."""
    type_code = draw(st.sampled_from(_TYPES) | st.integers(0, 255))
    ndim = draw(st.integers(0, 5))
    small = st.integers(0, 6)
    dims = draw(st.lists(small | st.integers(0, 2**32 - 1), min_size=ndim, max_size=ndim))
    magic = draw(st.sampled_from([0, 0, 0, 1, 0x100])).to_bytes(2, "big")
    header = magic + bytes([type_code, ndim]) + struct.pack(f">{ndim}I", *dims)
    claim = math.prod(dims) * _ITEMSIZE.get(type_code, 1)
    if claim <= 4096 and draw(st.booleans()):  # the right amount of data, give or take
        data = bytes(draw(st.binary(min_size=claim, max_size=claim)))
        data = data[: max(0, claim + draw(st.integers(-3, 3)))] + bytes(
            max(0, draw(st.integers(-3, 3)))
        )
    else:
        data = draw(st.binary(max_size=512))
    raw = header + data
    if draw(st.integers(0, 4)) == 0:  # a truncated header
        raw = raw[: draw(st.integers(0, len(header)))]
    wrap = draw(
        st.sampled_from(["plain", "gzip", "gzip", "truncated", "two members", "bomb", "junk"])
    )
    stream = len(raw)
    if wrap == "plain":
        out = raw
    else:
        out = gzip.compress(raw, mtime=0)
        if wrap == "truncated":
            out = out[: draw(st.integers(0, len(out)))]
        elif wrap == "two members":
            cut = draw(st.integers(0, len(raw)))
            out = gzip.compress(raw[:cut], mtime=0) + gzip.compress(raw[cut:], mtime=0)
        elif wrap == "bomb":
            out += _BOMB
            stream += 16 * 2**20
        elif wrap == "junk":
            out += draw(st.binary(min_size=1, max_size=64))
    if draw(st.integers(0, 5)) == 0 and out:  # one corrupted byte anywhere
        i = draw(st.integers(0, len(out) - 1))
        out = out[:i] + bytes([out[i] ^ draw(st.integers(1, 255))]) + out[i + 1 :]
    return out, min(claim, stream, MAX_IDX_BYTES)


def _read_all_ways(path) -> None:
    for reader in (read_idx, read_images, read_labels):
        try:
            result = reader(path)
        except Exception as exc:  # noqa: BLE001 - the property: only UserErrors
            one_line_user_error(exc)
        else:
            assert isinstance(result, np.ndarray) and result.dtype.isnative


def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("run", RUNS)
def test_idx_reader_on_hostile_files(run, request, tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    other = tmp_path / "train-labels-idx1-ubyte"

    @given(idx_files(), idx_files())
    @counted
    def check(case, labels_case):
        (data, may_hold), (labels, _) = case, labels_case
        path.write_bytes(data)
        other.write_bytes(labels)
        peak = _traced_peak(lambda: _read_all_ways(path))
        # Never more than what the header honestly claims and the stream holds (read in 1 MB
        # steps, then joined), plus a fixed allowance: a claim alone allocates nothing.
        assert peak <= 3 * may_hold + 4 * 2**20, (peak, may_hold)
        try:
            read_pair(path, other)
        except Exception as exc:  # noqa: BLE001
            one_line_user_error(exc)

    run_property(check, run, request)


@pytest.mark.parametrize("run", RUNS)
def test_idx_reader_on_random_bytes(run, request, tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"

    @given(st.binary(max_size=1024), st.booleans())
    @counted
    def check(data, gzipped):
        path.write_bytes(gzip.compress(data) if gzipped else data)
        assert _traced_peak(lambda: _read_all_ways(path)) < 4 * 2**20

    run_property(check, run, request)


@pytest.mark.parametrize("run", RUNS)
def test_gzip_wrappers_with_hostile_headers(run, request, tmp_path):
    # gzip's own header: flags (FEXTRA, FNAME, FCOMMENT, FHCRC) with random fields after them.
    path = tmp_path / "train-labels-idx1-ubyte.gz"

    @given(st.integers(0, 255), st.binary(max_size=64), st.binary(max_size=256))
    @counted
    def check(flags, fields, rest):
        payload = gzip.compress(struct.pack(">II", 2049, 3) + b"\x01\x02\x03", mtime=0)
        header = b"\x1f\x8b\x08" + bytes([flags]) + b"\x00\x00\x00\x00\x00\xff"
        path.write_bytes(header + fields + rest + payload[10:])
        assert _traced_peak(lambda: _read_all_ways(path)) < 4 * 2**20

    run_property(check, run, request)


# ---------------------------------------------------------------- images
_MAGIC = [
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"GIF87a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"P5\n",
    b"P6\n",
    b"\x00\x00\x01\x00",  # ICO: not an accepted format
    b"8BPS",  # PSD: not an accepted format
    b"",
]


def check_image(source, **caps) -> None:
    try:
        digit = preprocess_image(source, **caps)
    except ImageError as exc:
        one_line_user_error(exc)
        assert exc.reason in REASONS, exc.reason
    except Exception as exc:  # noqa: BLE001
        one_line_user_error(exc)  # fails: only ImageErrors are expected here
    else:
        assert digit.shape == (28, 28) and digit.dtype == np.uint8


@pytest.mark.parametrize("run", RUNS)
def test_images_from_random_bytes(run, request):
    @given(st.sampled_from(_MAGIC), st.binary(max_size=2048))
    @counted
    def check(magic, body):
        check_image(magic + body)

    run_property(check, run, request)


def _chunk(kind: bytes, data: bytes, good_crc: bool = True) -> bytes:
    crc = zlib.crc32(kind + data) if good_crc else 0
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@st.composite
def hostile_pngs(draw):
    """PNGs whose header says anything: sizes up to 2**31, any depth and colour type,
    palettes and transparency of any length, IDAT of random or honest-looking data."""
    side = st.integers(0, 64) | st.integers(0, 2**31 - 1) | st.sampled_from([6324, 6325, 100_000])
    width, height = draw(side), draw(side)
    depth = draw(st.sampled_from([1, 2, 4, 8, 16]) | st.integers(0, 255))
    colour = draw(st.sampled_from([0, 2, 3, 4, 6]) | st.integers(0, 255))
    tail = draw(st.lists(st.integers(0, 255), min_size=3, max_size=3))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, *tail)
    chunks = [_chunk(b"IHDR", ihdr, draw(st.integers(0, 9)) > 0)]
    if draw(st.booleans()):
        chunks.append(_chunk(b"PLTE", draw(st.binary(max_size=800))))
    if draw(st.booleans()):
        chunks.append(_chunk(b"tRNS", draw(st.binary(max_size=300))))
    if draw(st.booleans()):
        chunks.append(_chunk(b"eXIf", draw(st.binary(max_size=200))))
    rows = draw(st.integers(0, 64))
    raw = draw(st.binary(max_size=256)) if draw(st.booleans()) else bytes(rows * (width % 512 + 1))
    chunks.append(_chunk(b"IDAT", zlib.compress(raw) if draw(st.booleans()) else raw))
    if draw(st.booleans()):
        chunks.append(_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


@pytest.mark.parametrize("run", RUNS)
def test_images_with_hostile_png_headers(run, request):
    @given(hostile_pngs())
    @counted
    def check(data):
        check_image(data)

    run_property(check, run, request)


MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F", "I;16", "LA", "PA"]
FORMATS = ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM"]


@st.composite
def small_pictures(draw):
    """Real, small pictures in any mode and format, sometimes damaged afterwards."""
    from PIL import Image

    mode = draw(st.sampled_from(MODES))
    width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2**32 - 1))
    values = np.random.default_rng(seed).integers(0, 256, (height, width, 4), np.uint8)
    if draw(st.booleans()):  # mostly paper, a few strokes: something that might be a digit
        values = np.where(values > 230, 0, 255).astype(np.uint8)
    image = Image.fromarray(values, "RGBA")
    try:
        image = image.convert(mode)
    except ValueError:  # no direct conversion: through RGB
        image = image.convert("RGB").convert(mode)
    buffer = io.BytesIO()
    fmt = draw(st.sampled_from(FORMATS))
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):  # a mode this format cannot hold
        image.convert("RGB").save(buffer, format="PNG")
    data = buffer.getvalue()
    # Where to damage is drawn as a fraction: a draw bounded by the encoded length would make
    # the strategy's shape depend on the encoder (Hypothesis calls that flaky).
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip", "append"]))
    where, xor = draw(st.floats(0, 1)), draw(st.integers(1, 255))
    if damage == "truncate":
        data = data[: int(where * len(data))]
    elif damage == "flip" and data:
        i = min(int(where * len(data)), len(data) - 1)
        data = data[:i] + bytes([data[i] ^ xor]) + data[i + 1 :]
    elif damage == "append":
        data += draw(st.binary(max_size=64))
    return data


@pytest.mark.parametrize("run", RUNS)
def test_small_pictures_in_every_mode_and_format(run, request):
    @given(small_pictures())
    @counted
    def check(data):
        check_image(data)

    run_property(check, run, request)


_ARRAY_DTYPES = [
    "uint8",
    "int16",
    "int64",
    "float16",
    "float32",
    "float64",
    "bool",
    "complex64",
    "U3",
]


@st.composite
def arrays(draw):
    dtype = draw(st.sampled_from(_ARRAY_DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 40), min_size=0, max_size=3)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1.0, 255.0, 300.0, 1e30]))
    values = rng.uniform(-0.2, 1.0, shape) * scale
    if draw(st.booleans()) and values.size:
        values.flat[draw(st.integers(0, values.size - 1))] = draw(
            st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 256.0])
        )
    if dtype == "U3":
        return values.astype(str).astype("U3")
    with np.errstate(all="ignore"):
        return values.astype(dtype)


@pytest.mark.parametrize("run", RUNS)
def test_random_arrays(run, request):
    @given(arrays())
    @counted
    def check(array):
        check_image(array)

    run_property(check, run, request)


# ---------------------------------------------------------------- memory, at the default caps
MEMORY_PROBE = """
import io, random, resource, struct, sys, zlib
sys.path.insert(0, "tests")
from use_helpers import png_with_header
from mnistlab.errors import UserError
from mnistlab.preprocess import preprocess_image

def rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

rng = random.Random(0)
cases = [png_with_header(w, h) for w, h in ((6324, 6324), (100_000, 100_000), (40_000, 1000),
                                              (1, 39_999_999), (2**31 - 1, 1))]
for colour, depth in ((6, 16), (2, 16), (4, 16), (0, 16), (3, 8)):
    ihdr = struct.pack(">IIBBBBB", 6000, 6000, depth, colour, 0, 0, 0)
    chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
    cases.append(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(4096))))
for _ in range(150):
    head = rng.choice([b"\\x89PNG\\r\\n\\x1a\\n", b"GIF89a", b"BM", b"II*\\x00", b"\\xff\\xd8\\xff\\xe0"])
    cases.append(head + bytes(rng.randrange(256) for _ in range(rng.randrange(600))))
try:
    preprocess_image(b"warm up the decoders")
except UserError:
    pass
before, clean = rss_kb(), 0
for data in cases:
    try:
        preprocess_image(data)
        clean += 1
    except UserError:
        clean += 1
print(len(cases), clean, (rss_kb() - before) // 1024)
"""


def test_hostile_images_stay_within_memory_at_the_default_caps():
    # Headers claiming up to 40 megapixels of 16-bit RGBA (320 MB) over a few KB of data, and
    # 150 random files with image signatures: the decoders touch memory only for pixels that
    # really arrive.
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    tried, clean, grew_mb = map(int, done.stdout.split())
    assert clean == tried == 160
    assert grew_mb < 200, grew_mb
