"""Turn a user's picture of a digit into an MNIST-style 28x28 image.

MNIST's digits were made this way (LeCun et al., "Gradient-based learning applied to document
recognition", 1998, and the MNIST page): the NIST digit was size-normalised to fit a 20x20 box
keeping its aspect ratio, antialiased, and placed in a 28x28 field so that its centre of mass
sits at the centre. A model trained on MNIST has only ever seen that form, so a photo or a
drawing has to be brought into it first, by the steps of `STEPS` below (the stroke width
step is issue 14's: thick markers, blurred scans and hairlines all become pen strokes).

Slant is left as it is (MNIST's digits were never deslanted, and training rotates them by
up to 10-15 degrees); centring is by centre of mass, as MNIST's own. Only numpy and Pillow
are needed, so ONNX consumers can run this file without torch.

The result is uint8 in [0, 255]; the checkpoint's normalisation is applied later, by the
model's caller (`mnistlab.predict`). Images are untrusted input: the file size and the pixel
count are capped before anything is decoded, and every way a file can be bad becomes one
`ImageError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import math
import os
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from .errors import UserError
from .fileio import atomic_write_bytes, regular_file_problem

# What `preprocess_image` does, in one line: the ONNX export's metadata and the README quote it.
STEPS = (
    "greyscale (alpha flattened onto white) -> white ink on black (inverted when the border "
    "is light) -> levels stretched from paper to ink -> cropped to the ink -> longer side "
    "scaled to 80 px and strokes outside MNIST's width range (5-11 px there) dilated or "
    "eroded to 8 px -> longer side scaled to 20 px (antialiased) -> pasted into 28x28 -> "
    "shifted so the centre of mass is at (14, 14); uint8 0-255"
)
OUTPUT_SIZE = 28  # pixels per side of the result (MNIST's field)
BOX_SIZE = 20  # the digit's longer side after scaling (MNIST's box)

# Caps for untrusted files. A 12-megapixel phone JPEG is ~5 MB; 40 megapixels decoded to
# greyscale is 40 MB, and a file past either cap is far more likely a mistake or an attack.
MAX_FILE_BYTES = 32 * 2**20
MAX_PIXELS = 40_000_000
# Pillow keeps a pointer per row, so a 1x40,000,000 picture costs 320 MB before its 40 MB
# of pixels: a side is capped too (the widest phone panoramas are ~16,000 px).
MAX_SIDE = 20_000
# The result is 20x20 pixels of ink, so a larger picture is shrunk (box-averaged, or decoded
# at 1/2 to 1/8 scale for JPEG) to at most this many pixels right after decoding: the steps
# after it (greyscale, levels, crop in float32) then cost ~20 bytes a pixel of 4 megapixels,
# not of 40 (a 1x40M-pixel PNG header over a few bytes of data cost 760 MB before).
WORK_PIXELS = 4_000_000

# Formats that hold a single picture of a digit. Others (PSD, EPS, ICO, ...) are refused
# before their decoders run, which keeps the attack surface to well-worn code.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")

MIN_CONTRAST = 40  # grey levels (of 255) between paper and the darkest ink; less is "blank"
INK_THRESHOLD = 0.3  # of the paper-to-ink contrast: a pixel above it is ink for the bounding
#                      box, so paper grain, JPEG noise and faint smudges stay out of the crop


class ImageError(UserError):
    """An image that cannot be turned into a digit. `reason` says why, for HTTP status codes:
    missing, too_large, too_many_pixels, not_an_image, corrupt, blank, bad_array."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n:,} bytes"


def read_image_bytes(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of an image file, refused before reading when the file is too large."""
    path = Path(path)
    problem = regular_file_problem(path)  # before any open: a FIFO would block it
    if problem is not None:
        raise ImageError(f"{path}: {problem}", "missing")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(
                f"{path}: file is {_megabytes(size)}; the limit is {_megabytes(max_bytes)}",
                "too_large",
            )
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({first_line(exc)})", "missing") from None


def open_image(source: Any, label: str, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode a path, bytes or PIL image fully (so truncation shows here), with the caps
    applied; shrunk by a whole factor to at most WORK_PIXELS pixels, upright per its EXIF
    orientation."""
    if isinstance(source, Image.Image):
        image = source
        _check_pixels(image.size, label, max_pixels)
    else:
        if isinstance(source, str | os.PathLike):
            data = read_image_bytes(source, max_bytes)
        elif isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            if len(data) > max_bytes:
                raise ImageError(
                    f"{label}: {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}",
                    "too_large",
                )
        else:
            raise TypeError(f"expected a path, bytes or a PIL image, got {type(source).__name__}")
        if not data:
            raise ImageError(f"{label}: empty file", "not_an_image")
        image = _decode(data, label, max_pixels)
    image = _shrink(image)
    # Phone photos are often stored sideways with an orientation tag; a malformed EXIF block
    # should not cost the picture itself (nor print Pillow's "Corrupt EXIF data" warning).
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = ImageOps.exif_transpose(image)
    return image


def _check_pixels(size: tuple[int, int], label: str, max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageError(
            f"{label}: image is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {max_pixels / 1e6:g} megapixels",
            "too_many_pixels",
        )
    if max(width, height) > MAX_SIDE:
        raise ImageError(
            f"{label}: image is {width}x{height} pixels; the limit is {MAX_SIDE:,} pixels a side",
            "too_many_pixels",
        )
    if width < 1 or height < 1:
        raise ImageError(f"{label}: image has no pixels ({width}x{height})", "not_an_image")


def _shrink_factor(size: tuple[int, int]) -> int:
    width, height = size
    factor = max(1, math.ceil(math.sqrt(width * height / WORK_PIXELS)))
    while math.ceil(width / factor) * math.ceil(height / factor) > WORK_PIXELS:
        factor += 1  # a long thin picture: its short side cannot shrink below 1
    return factor


def _shrink(image: Image.Image) -> Image.Image:
    """`image` box-averaged by a whole factor to at most WORK_PIXELS pixels."""
    factor = _shrink_factor(image.size)
    if factor == 1:
        return image
    try:
        return image.reduce(factor)
    except (ValueError, OSError):  # a mode reduce() does not take (1, P, I;16, LAB...)
        pass
    target = "I" if image.mode.startswith("I;16") else "RGBA" if _has_alpha(image) else "L"
    try:
        return image.convert(target).reduce(factor)
    except (ValueError, OSError):
        return image  # the grey conversion will say what is wrong with it


def _decode(data: bytes, label: str, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        # Pillow's other warnings about a damaged file (EXIF, palettes...) are noise beside the
        # one-line error or the result. Pillow only warns below twice its own limit; a bomb
        # must not slip through as a warning.
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
        except UnidentifiedImageError:
            raise ImageError(
                f"{label}: not an image Pillow can read (expected {', '.join(FORMATS)})",
                "not_an_image",
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(
                f"{label}: refused as a decompression bomb ({first_line(exc)})", "too_many_pixels"
            ) from None
        except Exception as exc:  # a header that parses into nonsense
            raise ImageError(
                f"{label}: corrupt image header ({first_line(exc)})", "corrupt"
            ) from None
        # The header is all Pillow has read so far: check the size before decoding pixels.
        _check_pixels(image.size, label, max_pixels)
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale for a fraction of the cost.
        factor = _shrink_factor(image.size)
        if image.format == "JPEG" and factor > 1:
            with contextlib.suppress(Exception):
                w, h = image.size
                image.draft(image.mode, (math.ceil(w / factor), math.ceil(h / factor)))
        try:
            image.load()
        except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, zlib.error...
            raise ImageError(
                f"{label}: truncated or corrupt image data ({first_line(exc)})", "corrupt"
            ) from None
    return image


# ------------------------------------------------------------------ greyscale
def _to_grey(image, background: int, label: str = "image"):
    """uint8 (H, W) luma, with any transparency flattened onto `background` (0 or 255)."""
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        # 16-bit and float greyscale: Pillow's convert("L") clips instead of scaling.
        arr = np.nan_to_num(np.asarray(image, dtype=np.float32))
        peak = arr.max(initial=0)
        if mode == "F" and peak <= 1.0:
            arr = arr * 255.0
        elif peak > 255:  # 16-bit data; 8-bit values stored in a 16-bit file stay as they are
            arr = arr / 257.0
        return np.clip(arr, 0, 255).astype(np.uint8)
    if mode == "LAB":
        return np.asarray(image.getchannel("L"))  # lightness is the grey level
    try:
        if _has_alpha(image):
            rgba = image.convert("RGBA")
            paper = Image.new("RGBA", rgba.size, (background,) * 3 + (255,))
            return np.asarray(Image.alpha_composite(paper, rgba).convert("L"))
        return np.asarray(image.convert("L"))
    except ValueError as exc:  # a mode Pillow cannot convert
        raise ImageError(
            f"{label}: unsupported image mode {mode} ({first_line(exc)})", "corrupt"
        ) from None


def _has_alpha(image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


# ------------------------------------------------------------------ the pipeline
def preprocess_image(
    source: Any,
    name: str | None = None,
    *,
    size: int = OUTPUT_SIZE,
    max_bytes: int = MAX_FILE_BYTES,
    max_pixels: int = MAX_PIXELS,
    strokes: bool = True,
) -> np.ndarray:
    """A picture of one digit -> MNIST form: uint8 (size, size), white ink on black, the ink
    scaled into a square of 20/28 of the side, its strokes brought to MNIST's width (unless
    `strokes` is False) and its centre of mass at the centre.

    `source` is a path, the bytes of an image file, a PIL image, or a 2-D array of grey
    levels in [0, 255]. Raises `ImageError` (a `UserError`) for anything unusable."""
    ink = ink_image(source, name, max_bytes=max_bytes, max_pixels=max_pixels)
    label = name or (str(source) if isinstance(source, str | os.PathLike) else "image")
    return digit_from_ink(crop_to_ink(ink), label, size, strokes)


def _grey_from_array(array: np.ndarray, label: str, max_pixels: int) -> np.ndarray:
    if array.ndim != 2 or min(array.shape) < 1:
        raise ImageError(
            f"{label}: expected a 2-D array of grey levels, got shape {array.shape}", "bad_array"
        )
    # The caps of a decoded file, before the float copies below (8 bytes a pixel each).
    _check_pixels((array.shape[1], array.shape[0]), label, max_pixels)
    if array.dtype.kind not in "iuf":  # bool, complex, object, strings, dates...
        raise ImageError(f"{label}: expected real numbers, got {array.dtype}", "bad_array")
    arr = array.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ImageError(f"{label}: pixel values must be finite numbers", "bad_array")
    if arr.min() < 0 or arr.max() > 255:
        raise ImageError(
            f"{label}: pixel values must lie in [0, 255], got [{arr.min():g}, {arr.max():g}]",
            "bad_array",
        )
    return np.rint(arr).astype(np.uint8)


def ink_image(
    source: Any,
    name: str | None = None,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """A picture (what `preprocess_image` takes) -> float32 (H, W) ink in [0, 1], paper 0:
    greyscale, orientation and levels, nothing cropped or scaled (pictures larger than
    WORK_PIXELS are shrunk first). `mnistlab.predict` reads pictures this way: one digit is
    `digit_from_ink(crop_to_ink(ink))` (as `preprocess_image` gives it), `ood.picture_stats`
    judges the whole picture, and `segment.find_digits` cuts a number's digits from it."""
    label = name or (str(source) if isinstance(source, str | os.PathLike) else "image")
    if isinstance(source, np.ndarray | np.generic):
        return _ink_from_grey(_grey_from_array(np.asarray(source), label, max_pixels), label)
    image = open_image(source, label, max_bytes, max_pixels)
    try:
        return _ink_from_grey(_to_grey(image, 255, label), label)
    except ImageError as exc:
        if exc.reason != "blank" or not _has_alpha(image):
            raise
        # Light strokes on a transparent background vanish on white paper: try black paper.
        return _ink_from_grey(_to_grey(image, 0, label), label)


def _ink_from_grey(grey: np.ndarray, label: str) -> np.ndarray:
    """float32 ink in [0, 1]: paper 0, the darkest ink 1; `ImageError` when blank."""
    # White ink on black, like MNIST. The border (a frame ~2% of the shorter side wide) is
    # paper almost always, the digit rarely touches it, so its median says which way round
    # the picture is.
    k = max(1, round(0.02 * min(grey.shape)))
    border = [grey[:k].ravel(), grey[-k:].ravel(), grey[:, :k].ravel(), grey[:, -k:].ravel()]
    paper = int(np.median(np.concatenate(border)))
    if paper > 127:
        grey, paper = 255 - grey, 255 - paper
    contrast = int(grey.max()) - paper
    if contrast < MIN_CONTRAST:
        raise ImageError(
            f"{label}: no digit found (blank image: ink differs from the background by "
            f"{max(contrast, 0)} grey levels of 255, {MIN_CONTRAST} needed)",
            "blank",
        )
    ink = (grey.astype(np.float32) - paper) / contrast
    return np.clip(ink, 0.0, 1.0, out=ink)


def _work_scale(crop: np.ndarray, side: int) -> np.ndarray:
    """Ink with its longer side scaled to `side` pixels, keeping the aspect ratio, and its
    peak brought to 1 (thin strokes shrunk a lot come out faint; MNIST's ink is full white).
    Pillow's Lanczos widens its kernel by the reduction factor, so shrinking a photo averages
    (antialiases) instead of sampling."""
    h, w = crop.shape
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    work = np.asarray(
        Image.fromarray(crop.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    )
    work = np.clip(work, 0.0, 1.0)  # Lanczos rings a little below 0 and above 1
    peak = work.max()
    return work / peak if peak > 0 else work


def digit_from_ink(
    crop: np.ndarray,
    label: str = "image",
    size: int = OUTPUT_SIZE,
    strokes: bool = True,
) -> np.ndarray:
    """Ink in [0, 1] cropped to one digit -> MNIST form, uint8 (size, size): the steps of
    `preprocess_image` after the crop."""
    if strokes:
        crop = normalize_strokes(crop)

    small = _work_scale(crop, round(size * BOX_SIZE / OUTPUT_SIZE))
    if small.max() <= 0:
        raise ImageError(f"{label}: no digit found (the ink vanished when scaled)", "blank")
    new_h, new_w = small.shape

    # Centre of mass to the centre, by whole pixels (as MNIST's own digits are: their mean is
    # (14.0, 14.0) with a spread of 0.3 px), never pushing ink off the field.
    ys, xs = np.indices(small.shape)
    mass = small.sum()
    cy, cx = (small * ys).sum() / mass, (small * xs).sum() / mass
    centre = size / 2
    top = int(np.clip(round(centre - cy), 0, size - new_h))
    left = int(np.clip(round(centre - cx), 0, size - new_w))
    out = np.zeros((size, size), dtype=np.float32)
    out[top : top + new_h, left : left + new_w] = small
    return np.rint(out * 255).astype(np.uint8)


# ------------------------------------------------------------------ stroke width (issue 14)
# A pen line, a marker, a thick blurred scan and a hairline all have to look like MNIST's
# strokes, which the model has learnt. Widths are judged with the digit's longer side scaled
# to WORK_BOX pixels, as 2 x ink area / (the area one 3x3 erosion removes): exact for a long
# stroke 2 pixels wide or more. On MNIST's own test digits this gives a median of 8.0 (2 px in
# the 20-px box; 5th-95th percentile 5.3-13.2). Strokes outside STROKE_RANGE are dilated or
# eroded (grey-level max/min filters) to STROKE_TARGET; digits inside it are left alone, so
# MNIST-like pictures pass through unchanged.
WORK_BOX = 80
STROKE_TARGET = 8.0
STROKE_RANGE = (5.0, 11.0)
# Erosion never takes more than this fraction of the ink, nor splits the digit into more
# pieces: a thick digit with one thin stroke keeps that stroke.
MAX_ERODED = 0.6


def _filtered(work: np.ndarray, op: Any, size: int) -> np.ndarray:
    """Grey-level dilation (`op` np.max) or erosion (np.min) over a size x size square, outside
    the picture counting as paper (0). Separable: a running extreme along each axis in turn."""
    r = size // 2
    out = work.astype(np.float32)
    for axis in (0, 1):
        padded = np.pad(out, [(r, r) if a == axis else (0, 0) for a in (0, 1)])
        out = op(np.lib.stride_tricks.sliding_window_view(padded, 2 * r + 1, axis), axis=-1)
    return out


def stroke_width(work: np.ndarray) -> float:
    """The typical stroke width of ink in [0, 1], in pixels: 2 x area / (area lost to one 3x3
    erosion), on the ink above half level. 2 for hairlines (it cannot see below that)."""
    ink = work > 0.5
    area = int(ink.sum())
    if area == 0:
        return 0.0
    eroded = int((_filtered(work, np.min, 3) > 0.5).sum())
    return 2.0 * area / max(area - eroded, 1)


def component_boxes(
    mask: np.ndarray, min_fraction: float = 0.0
) -> list[tuple[int, int, int, int, int]]:
    """(pixels, top, bottom, left, right) of each 8-connected piece holding at least
    `min_fraction` of the mask's pixels, largest first (`label_components`: numpy only)."""
    labels = label_components(mask)
    total = int(mask.sum())
    out = []
    for value in np.unique(labels[mask]):
        ys, xs = np.nonzero(labels == value)
        if len(ys) >= min_fraction * total:
            out.append((len(ys), int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())))
    return sorted(out, reverse=True)


def pooled_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """(H, W) bool -> (ceil(H / factor), ceil(W / factor)): a pixel is set when any of its
    factor x factor block is (so thin strokes stay joined when shrunk)."""
    if factor <= 1:
        return mask
    h, w = mask.shape
    padded = np.pad(mask, ((0, -h % factor), (0, -w % factor)))
    return padded.reshape(padded.shape[0] // factor, factor, -1, factor).any(axis=(1, 3))


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """Ink in [0, 1] cropped to the box of its pixels above INK_THRESHOLD."""
    is_ink = ink > INK_THRESHOLD
    rows, cols = np.flatnonzero(is_ink.any(1)), np.flatnonzero(is_ink.any(0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def label_components(mask: np.ndarray) -> np.ndarray:
    """(H, W) int64: each 8-connected piece of `mask` gets one value (its first pixel's flat
    index); pixels outside the mask get H * W."""
    h, w = mask.shape
    none = h * w  # larger than any pixel index
    flat_index = np.arange(h * w).reshape(h, w)
    labels = np.where(mask, flat_index, none)
    while True:
        padded = np.pad(labels, 1, constant_values=none)
        low = labels
        for dy in range(3):
            for dx in range(3):
                low = np.minimum(low, padded[dy : dy + h, dx : dx + w])
        low = np.where(mask, low, none)
        # Pointer jumping: a pixel takes the label of the pixel its label names.
        jumped = np.append(low.ravel(), none)[low]
        low = np.where(mask, np.minimum(low, jumped), none)
        if np.array_equal(low, labels):
            return labels
        labels = low


def normalize_strokes(crop: np.ndarray) -> np.ndarray:
    """Ink in [0, 1] cropped to its box -> the same digit with its longer side WORK_BOX pixels
    and its strokes STROKE_TARGET wide when they were outside STROKE_RANGE."""
    work = _work_scale(crop, WORK_BOX)
    width = stroke_width(work)
    low, high = STROKE_RANGE
    if low <= width <= high or width == 0:
        return work
    # A 3x3 filter moves each edge 1 pixel; outside STROKE_RANGE that is 2 steps or more.
    steps = round(abs(width - STROKE_TARGET) / 2)
    if width < low:
        return _filtered(work, np.max, 2 * steps + 1)
    mask = work > 0.5
    pieces = len(component_boxes(mask, 0.02))
    area = mask.sum()
    for k in range(steps, 0, -1):  # the most erosion that keeps the digit whole
        eroded = _filtered(work, np.min, 2 * k + 1)
        kept = eroded > 0.5
        if kept.sum() >= (1 - MAX_ERODED) * area and len(component_boxes(kept, 0.02)) <= pieces:
            return eroded / max(float(eroded.max()), 1e-6)
    return work


# ------------------------------------------------------------------ "is this one digit?"
# Measured on MNIST's 10,000 test digits after this preprocessing (and on the UCI real-world
# set in brackets): ink box width / height at most 2.0, 99.9th percentile 1.67 (0.90); ink
# covering at most 0.50 of the square on the box's longer side (0.38); two pieces of ink side
# by side, each holding 10% of it, in 0.24% of them (none); four or more pieces of 2% each in
# 0.11% (0.11%). A picture past these limits is probably not one digit; together they flag
# 0.43% of MNIST's test digits (0.11% of the real-world set).
WIDE_ASPECT = 1.8
DENSE_COVER = 0.6
BIG_PIECE, SMALL_PIECE = 0.10, 0.02
SCATTERED_PIECES = 4


def shape_warning(digit: np.ndarray) -> str | None:
    """Why a preprocessed (H, W) uint8 digit is probably not one digit, or None: several
    separate marks side by side, a shape wider than any digit, ink spread like a blot, or
    scattered specks (a blank page's grain or noise)."""
    ink = digit >= 128
    total = int(ink.sum())
    if total == 0:
        return "almost no ink: probably not a digit"
    ys, xs = np.nonzero(digit >= 64)
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    pieces = component_boxes(ink, SMALL_PIECE)
    big = [p for p in pieces if p[0] >= BIG_PIECE * total]
    if len(big) >= 2:
        (_, _, _, left_a, right_a), (_, _, _, left_b, right_b) = big[:2]
        overlap = min(right_a, right_b) - max(left_a, left_b) + 1
        narrower = min(right_a - left_a, right_b - left_b) + 1
        if overlap <= 0.2 * narrower:
            return f"{len(big)} separate marks side by side: probably more than one digit"
    if width >= WIDE_ASPECT * height:
        return f"ink {width / height:.1f} times wider than tall: probably not one digit"
    if len(pieces) >= SCATTERED_PIECES:
        return f"{len(pieces)} scattered pieces of ink: probably not one digit"
    if total >= DENSE_COVER * max(height, width) ** 2:
        return "ink fills its box like a blot, not strokes: probably not a digit"
    return None


@cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:  # a libc that cannot be loaded
        return None


def release_memory() -> None:
    """Give freed memory back to the operating system after a large decode.

    glibc keeps freed blocks below its (adaptive, up to 32 MB) mmap threshold in its heaps, one
    per thread: a server that decoded a few 8-megapixel images in worker threads stays ~100 MB
    larger per thread for good. `malloc_trim(0)` returns them; elsewhere this does nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


# The PNGs `save_png` writes say so in a text chunk: a rerun may replace what mnistlab wrote,
# and nothing else (the rule: never write over a file the tool did not create).
PNG_SOFTWARE = "mnistlab preprocess"


def save_png(digit: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a (H, W) uint8 digit as a greyscale PNG, atomically, marked as mnistlab's."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", PNG_SOFTWARE)
    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(digit, dtype=np.uint8))
    image.save(buffer, format="PNG", pnginfo=info)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def written_by_mnistlab(path: str | os.PathLike) -> bool:
    """Whether `path` is a PNG that `save_png` wrote (its header says so; nothing is decoded)."""
    if regular_file_problem(path) is not None:  # a FIFO would block Pillow's open
        return False
    try:
        with Image.open(path, formats=["PNG"]) as image:
            return image.info.get("Software") == PNG_SOFTWARE
    except Exception:  # not a PNG, unreadable, damaged: not ours
        return False
