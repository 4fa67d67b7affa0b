"""`mnistlab predict` and the preprocessing behind it: users' pictures -> MNIST form -> labels."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from use_helpers import (
    centre_of_mass,
    correlation,
    ink_box,
    png_with_header,
)

from mnistlab import cli
from mnistlab.predict import Predictor, predict_images
from mnistlab.preprocess import MAX_FILE_BYTES, ImageError, preprocess_image

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor(checkpoint)


@pytest.fixture(scope="module")
def digits(mnist, predictor):
    """Eight test digits the model gets right as they are, with their labels."""
    images = mnist.test_images[:100].numpy()
    labels = mnist.test_labels[:100].numpy()
    right = predictor.probabilities(images).argmax(1) == labels
    idx = np.flatnonzero(right)[:8]
    return images[idx], labels[idx]


# ------------------------------------------------------------------ user-style pictures
def _big(digit: np.ndarray, side: int = 280) -> np.ndarray:
    """The digit scaled up 10x and placed off-centre on a larger, landscape canvas."""
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC))
    canvas = np.zeros((400, 640), np.uint8)
    canvas[70 : 70 + side, 300 : 300 + side] = big
    return canvas


def shifted_and_scaled(digit):
    return Image.fromarray(_big(digit))


def dark_on_light(digit):
    return Image.fromarray(255 - _big(digit))


def coloured(digit):
    ink = _big(digit).astype(np.float64)[..., None] / 255
    paper, pen = np.array([250, 236, 170.0]), np.array([30, 40, 150.0])  # blue on pale yellow
    return Image.fromarray((paper * (1 - ink) + pen * ink).astype(np.uint8), "RGB")


def noisy_border(digit):
    grey = 255 - _big(digit).astype(np.float64)
    border = np.zeros(grey.shape, bool)
    border[:40], border[-40:], border[:, :40], border[:, -40:] = True, True, True, True
    noise = np.random.default_rng(0).uniform(0, 50, grey.shape)  # faint grey specks
    return Image.fromarray(np.clip(np.where(border, grey - noise, grey), 0, 255).astype(np.uint8))


def black_on_transparent(digit):
    alpha = _big(digit)
    return Image.fromarray(np.dstack([np.zeros_like(alpha)] * 3 + [alpha]), "RGBA")


VARIANTS = [shifted_and_scaled, dark_on_light, coloured, noisy_border, black_on_transparent]


@pytest.mark.parametrize("make", VARIANTS, ids=lambda f: f.__name__)
def test_pictures_come_back_to_mnist_form(make, digits, predictor):
    images, labels = digits
    out = np.stack([preprocess_image(make(d)) for d in images])
    assert out.shape == (len(images), 28, 28) and out.dtype == np.uint8
    for original, result in zip(images, out, strict=True):
        cy, cx = centre_of_mass(result)
        assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1, (cy, cx)
        assert max(ink_box(result)) in (19, 20)
        assert result.max() == 255
        assert correlation(result, original) > 0.75
    assert np.median([correlation(r, o) for r, o in zip(out, images, strict=True)]) > 0.95
    assert (predictor.probabilities(out).argmax(1) == labels).sum() >= len(labels) - 1


def test_mnist_digits_are_nearly_unchanged(digits):
    images, _ = digits
    for digit in images:
        assert correlation(preprocess_image(digit), digit) > 0.95


@pytest.mark.parametrize(
    "fmt,mode",
    [
        ("PNG", "L"),
        ("PNG", "I;16"),
        ("JPEG", "RGB"),
        ("BMP", "RGB"),
        ("GIF", "P"),
        ("TIFF", "RGBA"),
    ],
)
def test_every_format_gives_the_same_digit(tmp_path, digits, fmt, mode):
    digit = digits[0][0]
    picture = dark_on_light(digit)
    if mode == "I;16":
        picture = Image.fromarray(np.asarray(picture).astype(np.uint16) * 257)
    else:
        picture = picture.convert(mode)
    path = tmp_path / f"digit.{fmt.lower()}"
    picture.save(path, format=fmt)
    reference = preprocess_image(dark_on_light(digit))
    result = preprocess_image(path)
    assert correlation(result, reference) > 0.98


def test_light_strokes_on_transparency_are_found():
    # A canvas export: white strokes, transparent background. On white paper it would vanish.
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(100, 30), (100, 170)], fill=(255, 255, 255, 255), width=16)
    result = preprocess_image(image)
    assert ink_box(result)[0] == 20 and ink_box(result)[1] < 8


def test_a_vertical_stroke_is_a_one(predictor):
    image = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(image).line([(140, 40), (140, 240)], fill=255, width=22)
    assert predictor.predict(image)["label"] == 1


def test_arrays_are_pictures_too():
    grid = np.zeros((40, 30))
    grid[5:35, 14:17] = 255.0
    assert max(ink_box(preprocess_image(grid))) == 20
    with pytest.raises(ImageError, match="2-D array"):
        preprocess_image(np.zeros((4, 4, 4)))
    with pytest.raises(ImageError, match=r"\[0, 255\]"):
        preprocess_image(np.full((28, 28), 300.0))


# ------------------------------------------------------------------ bad pictures
def test_bad_pictures_have_one_line_reasons(tmp_path):
    def fails(source, pattern, reason, **kw):
        with pytest.raises(ImageError, match=pattern) as info:
            preprocess_image(source, **kw)
        assert info.value.reason == reason
        assert "\n" not in str(info.value)

    fails(Image.new("L", (64, 64), 255), "blank image", "blank")
    fails(Image.new("RGB", (64, 64), (10, 200, 30)), "blank image", "blank")
    fails(b"this is text", "not an image Pillow can read", "not_an_image")
    fails(b"", "empty", "not_an_image")
    fails(png_with_header(100_000, 100_000), "decompression bomb", "too_many_pixels")
    fails(
        png_with_header(8000, 6000),
        r"8000x6000 pixels \(48 megapixels\); the limit is 40",
        "too_many_pixels",
    )
    fails(
        png_with_header(300, 300), "limit is 0.01 megapixels", "too_many_pixels", max_pixels=10_000
    )
    fails(b"\x00" * 100, "100 bytes; the limit is 10 bytes", "too_large", max_bytes=10)
    fails(tmp_path / "missing.png", "no such file", "missing")
    buffer = io.BytesIO()
    dark_on_light(np.eye(28, dtype=np.uint8) * 255).save(buffer, format="PNG")
    fails(buffer.getvalue()[: len(buffer.getvalue()) // 2], "truncated or corrupt", "corrupt")


def _write_bad_files(tmp_path, digit):
    good = tmp_path / "good.png"
    dark_on_light(digit).save(good)
    blank = tmp_path / "blank.png"
    Image.new("L", (100, 100), 255).save(blank)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_with_header(100_000, 100_000))
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as fh:  # sparse: costs no disk
        fh.truncate(MAX_FILE_BYTES + 1)
    return {
        "good": good,
        "blank": blank,
        "text": text,
        "truncated": truncated,
        "bomb": bomb,
        "huge": huge,
        "missing": tmp_path / "missing.png",
    }


def test_cli_reports_each_bad_file_and_goes_on(tmp_path, checkpoint, digits, capsys):
    images, labels = digits
    files = _write_bad_files(tmp_path, images[0])
    second = tmp_path / "second.jpg"
    coloured(images[1]).save(second)
    paths = [str(p) for p in files.values()] + [str(second)]
    code = cli.main(["predict", str(checkpoint), *paths])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"good.png: {labels[0]}  (" in out
    assert f"second.jpg: {labels[1]}  (" in out
    errors = err.strip().splitlines()
    assert len(errors) == 6 and all(line.startswith("mnistlab: error: ") for line in errors)
    expected = {
        "blank.png": "no digit found (blank image",
        "notes.png": "not an image Pillow can read",
        "truncated.png": "truncated or corrupt image data",
        "bomb.png": "decompression bomb",
        "huge.png": "the limit is 32.0 MB",
        "missing.png": "no such file",
    }
    for name, message in expected.items():
        assert any(name in line and message in line for line in errors), (name, errors)


def test_cli_exit_code_zero_when_all_succeed(tmp_path, checkpoint, digits, capsys):
    images, labels = digits
    paths = []
    for i, digit in enumerate(images[:3]):
        paths.append(tmp_path / f"d{i}.bmp")
        dark_on_light(digit).save(paths[-1])
    out_dir = tmp_path / "seen"
    code = cli.main(
        [
            "predict",
            str(checkpoint),
            *map(str, paths),
            "--json",
            "--save-preprocessed",
            str(out_dir),
        ]
    )
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in results] == [int(x) for x in labels[:3]]
    for r in results:
        assert r["error"] is None
        assert len(r["probabilities"]) == 10 and abs(sum(r["probabilities"]) - 1) < 1e-4
        top = [t["probability"] for t in r["top3"]]
        assert top == sorted(top, reverse=True) and r["top3"][0]["label"] == r["label"]
        saved = np.asarray(Image.open(r["preprocessed_path"]))
        assert saved.shape == (28, 28) and saved.dtype == np.uint8
    assert sorted(p.name for p in out_dir.iterdir()) == ["d0.png", "d1.png", "d2.png"]


def test_json_lists_errors_too(tmp_path, checkpoint, capsys):
    blank = tmp_path / "blank.png"
    Image.new("L", (30, 30)).save(blank)
    assert cli.main(["predict", str(checkpoint), str(blank), "--json"]) == 1
    (result,) = json.loads(capsys.readouterr().out)
    assert result["label"] is None and "blank image" in result["error"]


def test_bad_checkpoint_is_a_usage_error(tmp_path, capsys):
    fake = tmp_path / "fake.pt"
    fake.write_bytes(b"not a checkpoint")
    assert cli.main(["predict", str(fake), str(fake)]) == 2
    assert "not a readable mnistlab checkpoint" in capsys.readouterr().err


def test_python_api(tmp_path, checkpoint, digits):
    images, labels = digits
    path = tmp_path / "d.png"
    shifted_and_scaled(images[2]).save(path)
    (result,) = predict_images(checkpoint, [path])
    assert result["label"] == labels[2] and result["preprocessed"].shape == (28, 28)
