"""Whole numbers (issue 22): segmentation, `read_number`, `mnistlab predict --number`."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from use_helpers import png_with_header

from mnistlab import cli
from mnistlab.data.compose import compose_number
from mnistlab.predict import Predictor
from mnistlab.preprocess import ink_image
from mnistlab.segment import Piece, find_digits, read_piece


@pytest.fixture(scope="module")
def default():
    return Predictor(None)


def _numbers(mnist, spacing: str, count: int, seed: int):
    rng = np.random.default_rng(seed)
    images, labels = mnist.test_images.numpy(), mnist.test_labels.numpy()
    for _ in range(count):
        pick = rng.integers(0, len(images), int(rng.integers(2, 7)))
        truth = "".join(str(int(v)) for v in labels[pick])
        yield compose_number(images[pick], rng, spacing, height=int(rng.integers(32, 80))), truth


def test_numbers_written_apart_are_read(default, mnist):
    # benchmarks/read_numbers.py measured 95%+ of such numbers read exactly; 16 of 20 is far
    # below that, and far above what a reader that misses pieces or order would get.
    results = [(default.read_number(p)["number"], t) for p, t in _numbers(mnist, "apart", 20, 7)]
    assert sum(read == truth for read, truth in results) >= 16, results


def test_boxes_are_left_to_right_and_inside_the_picture(default, mnist):
    picture, truth = next(_numbers(mnist, "close", 1, 3))
    result = default.read_number(picture)
    boxes = [d["box"] for d in result["digits"]]
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)
    h, w = picture.shape
    assert all(
        0 <= left < right <= w and 0 <= top < bottom <= h for left, top, right, bottom in boxes
    )
    for digit in result["digits"]:
        if digit["problem"] is None:
            assert 0 < digit["probability"] <= 1 and digit["preprocessed"].shape == (28, 28)


def test_a_broken_digit_is_one_piece():
    # A 5 drawn as its body and a separate bar above it: one digit, not two.
    image = Image.new("L", (200, 200), 0)
    draw = ImageDraw.Draw(image)
    draw.line([(60, 60), (55, 100), (100, 95), (120, 130), (100, 165), (50, 160)], 255, 12)
    draw.line([(70, 40), (140, 40)], 255, 12)
    pieces = find_digits(ink_image(np.asarray(image)))
    assert len(pieces) == 1


def test_touching_digits_that_cannot_be_cut_are_reported_not_guessed(default):
    # Ink as wide as seven digits in which every column crosses three strokes (writing gone
    # over itself): there is nowhere to cut cleanly, so it must come back as "?", with why.
    image = Image.new("L", (600, 160), 255)
    draw = ImageDraw.Draw(image)
    for y in (45, 75, 105):
        draw.line([(40, y), (560, y)], fill=0, width=10)
    draw.line([(40, 45), (40, 105)], fill=0, width=10)
    result = default.read_number(np.asarray(image))
    assert result["number"] == "?" and result["complete"] is False
    assert "could not be separated" in result["digits"][0]["problem"]
    assert result["digits"][0]["label"] is None


def _two_bars(width: int, height: int = 40) -> Piece:
    # Two upright bars at the edges of a piece, one candidate cut between them.
    ink = np.zeros((height, width), np.float32)
    ink[:, :10] = ink[:, -10:] = 1
    return Piece((0, 0, width, height), ink, cuts=[(width / 2, 0.0)], height=float(height))


def _confidence(whole: float, half: float):
    return lambda parts: np.array([whole if p.ink.shape[1] > 20 else half for p in parts])


@pytest.mark.parametrize(
    "width, whole, half, digits",
    [
        (52, 0.3, 0.999, 2),  # the cut reads far better than the whole: two digits
        (52, 0.9, 0.2, 1),  # the whole reads far better: one digit
        (52, 0.9, 0.6, 0),  # neither reading is clearly better: reported, not guessed
        (46, 0.9, 0.6, 1),  # as unsure, but no wider than a wide digit: read
    ],
)
def test_touching_digits_whose_count_is_unsure_are_reported_not_guessed(width, whole, half, digits):
    read = read_piece(_two_bars(width), _confidence(whole, half))
    if digits:
        assert len(read) == digits and all(p.problem is None for p in read)
    else:
        assert len(read) == 1 and read[0].problem == (
            "touching digits that could not be separated with confidence"
        )
        assert read[0].box == (0, 0, width, 40)


def test_cli_number(tmp_path, mnist, capsys):
    picture, truth = next(_numbers(mnist, "apart", 1, 11))
    path = tmp_path / "number.png"
    Image.fromarray(picture).save(path)
    assert cli.main(["predict", str(path), "--number"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}: {truth}" and len(out) == 1 + len(truth)
    assert all(" at [" in line and line.endswith("%") for line in out[1:])
    assert cli.main(["predict", str(path), "--number", "--json"]) == 0
    assert f'"number": "{truth}"' in capsys.readouterr().out


def test_cli_number_bad_input(tmp_path, capsys, mnist):
    blank = tmp_path / "blank.png"
    Image.new("L", (100, 40), 255).save(blank)
    # The predict rule: 2 when no picture could be read, 1 when some could.
    assert cli.main(["predict", str(blank), "--number"]) == 2
    assert "no digit found" in capsys.readouterr().err
    picture, truth = next(_numbers(mnist, "apart", 1, 7))
    good = tmp_path / "number.png"
    Image.fromarray(picture).save(good)
    assert cli.main(["predict", str(good), str(blank), "--number"]) == 1
    assert "no digit found" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "missing.png"), "--number"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("no such file")
    code = cli.main(["predict", str(blank), "--number", "--save-preprocessed", str(tmp_path)])
    assert code == 2 and "leave it out with --number" in capsys.readouterr().err


def test_a_photo_or_texture_is_not_read_as_a_number(default):
    # Grey noise once gave "11?" after 8 s of cutting; now it is refused at once, whole.
    noise = (np.random.default_rng(0).random((300, 600)) * 255).astype(np.uint8)
    result = default.read_number(noise)
    assert result["number"] == "?" and result["complete"] is False
    assert len(result["digits"]) == 1 and "photo or texture" in result["digits"][0]["problem"]


def test_hostile_files_are_refused_with_one_line(tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_with_header(100_000, 100_000))  # 10 gigapixels claimed
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    assert cli.main(["predict", str(bomb), str(junk), "--number"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mnistlab")]
    assert len(err) == 2 and "decompression bomb" in err[0] and "not an image" in err[1]
