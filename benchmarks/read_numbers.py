"""How well `mnistlab predict --number` reads written numbers made from real held-out digits.

    python benchmarks/read_numbers.py                  # the reporting set (what the README quotes)
    python benchmarks/read_numbers.py --part tune      # the set the segmentation was tuned on

Each number is 2-6 digits drawn at random from one source, MNIST test (tuning: the first
5,000; reporting: the last 5,000) or the UCI scans (tuning: "dev"; reporting: "heldout"),
set on white paper by `mnistlab.data.compose` with one spacing (apart, close, touching)
and a baseline sloping by up to 0.12. Per number: read exactly; per digit: 1 - edit
distance / length (a "?" counts as wrong); "refused" numbers hold a "?" (a piece the reader
reported instead of guessing); "wrong, unflagged" ones are complete but wrong.
"""

from __future__ import annotations

import argparse

import numpy as np

from mnistlab.data.compose import SPACINGS, compose_number
from mnistlab.data.realworld import load_realworld
from mnistlab.data.sources import load_dataset
from mnistlab.predict import Predictor


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def sources(part: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    mnist = load_dataset("mnist")
    pick = slice(0, 5000) if part == "tune" else slice(5000, None)
    return {
        "MNIST": (mnist.test_images.numpy()[pick], mnist.test_labels.numpy()[pick]),
        "UCI": load_realworld("dev" if part == "tune" else "heldout"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["tune", "report"], default="report")
    parser.add_argument("--numbers", type=int, default=200, help="per source and spacing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    predictor = Predictor(None)
    rng = np.random.default_rng(args.seed + (args.part == "report") * 1000)
    print(
        "| source | spacing | numbers | digits | per-digit | whole number | refused | wrong, unflagged |"
    )
    print("|---|---|---|---|---|---|---|---|")
    total: dict[str, list[float]] = {}
    for name, (images, labels) in sources(args.part).items():
        for spacing in SPACINGS:
            exact, refused, silent, char, digits = [], [], [], [], 0
            for _ in range(args.numbers):
                pick = rng.integers(0, len(images), int(rng.integers(2, 7)))
                truth = "".join(str(int(v)) for v in labels[pick])
                height = int(rng.integers(32, 80))
                picture = compose_number(images[pick], rng, spacing, height=height)
                read = predictor.read_number(picture)["number"]
                exact.append(read == truth)
                refused.append("?" in read)
                silent.append(read != truth and "?" not in read)
                char.append(max(0, len(truth) - edit_distance(read, truth)))
                digits += len(truth)
            row = [np.mean(exact), np.mean(refused), np.mean(silent)]
            print(
                f"| {name} | {spacing} | {args.numbers} | {digits} | {sum(char) / digits:.1%} | "
                + " | ".join(f"{v:.1%}" for v in row)
                + " |"
            )
            for key, value in zip(("exact", "refused", "silent"), row, strict=True):
                total.setdefault(key, []).append(value)
            total.setdefault("char", []).append(sum(char) / digits)
    print(
        f"| all | all | {args.numbers * 2 * len(SPACINGS)} | | {np.mean(total['char']):.1%} | "
        f"{np.mean(total['exact']):.1%} | {np.mean(total['refused']):.1%} | "
        f"{np.mean(total['silent']):.1%} |"
    )


if __name__ == "__main__":
    main()
