"""How often the default model's answer refuses non-digits, and wrongly refuses digits
(`mnistlab.ood`): false-accept rate (FAR: non-digits given a digit) and false-reject rate
(FRR: real digits refused), on a tuning set and on a separate reporting set.

    python benchmarks/refusal.py            # both sets, per kind; about a minute on 2 cores
    python benchmarks/refusal.py --tune     # also the percentiles the limits were chosen from

Digits: held-out real ones, never trained on: MNIST test (tuning: the first 5,000, of which
--digits are used; reporting: from the last 5,000) and the UCI scans (tuning: "dev",
reporting: "heldout"), each set on white paper as a photograph would show it (dark ink,
scaled up, a margin of paper). Non-digits: `mnistlab.data.nondigits` (letters, blanks,
textures, scribbles, faces), seed 0 for tuning, seed 1 for reporting. A picture refused as
blank by preprocessing (`ImageError`) counts as refused.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from mnistlab.data.nondigits import nondigit_pictures
from mnistlab.data.realworld import load_realworld
from mnistlab.data.sources import load_dataset
from mnistlab.ood import residual
from mnistlab.predict import Predictor
from mnistlab.preprocess import ImageError


def on_paper(digit: np.ndarray, scale: int, margin: float = 0.25) -> np.ndarray:
    """A white-on-black digit -> dark ink on white paper, `scale` times larger, with a margin."""
    h, w = digit.shape
    big = Image.fromarray(255 - digit).resize((w * scale, h * scale), Image.Resampling.BILINEAR)
    pad = round(margin * max(h, w) * scale)
    return np.pad(np.asarray(big), pad, constant_values=255)


def digit_sets(count: int) -> dict[str, list[np.ndarray]]:
    test = load_dataset("mnist").test_images.numpy()
    return {
        "tune": [on_paper(d, 4) for d in test[:count]]
        + [on_paper(d, 12) for d in load_realworld("dev")[0]],
        "report": [on_paper(d, 4) for d in test[5000 : 5000 + count]]
        + [on_paper(d, 12) for d in load_realworld("heldout")[0]],
    }


def judge(predictor: Predictor, pictures) -> list[dict]:
    """One row per picture: refused?, why, and the features behind it."""
    rows = []
    for picture in pictures:
        try:
            result = predictor.predict(picture)
        except ImageError as exc:
            rows.append({"refused": True, "why": exc.reason})
            continue
        digit, stats = predictor.read(picture)
        rows.append(
            {
                "refused": result["not_a_digit"] is not None,
                "why": result["not_a_digit"],
                "top": max(result["probabilities"]),
                "residual": residual(digit, result["label"]),
                **stats,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=2000, help="MNIST test digits per set")
    parser.add_argument("--nondigits", type=int, default=500, help="non-digits per set")
    parser.add_argument("--tune", action="store_true", help="print feature percentiles")
    args = parser.parse_args()
    predictor = Predictor(None)
    digits = digit_sets(args.digits)
    for seed, part in enumerate(("tune", "report")):
        pos = judge(predictor, digits[part])
        nondigits = nondigit_pictures(args.nondigits, seed=seed)
        neg = judge(predictor, [p for _, p in nondigits])
        frr = np.mean([r["refused"] for r in pos])
        far = np.mean([not r["refused"] for r in neg])
        print(
            f"{part}: FRR {frr:.2%} of {len(pos)} real digits "
            f"({args.digits} MNIST test + {len(pos) - args.digits} UCI); "
            f"FAR {far:.2%} of {len(neg)} non-digits"
        )
        mnist_frr = np.mean([r["refused"] for r in pos[: args.digits]])
        uci_frr = np.mean([r["refused"] for r in pos[args.digits :]])
        print(f"  FRR MNIST {mnist_frr:.2%}, UCI {uci_frr:.2%}")
        for kind in sorted({k for k, _ in nondigits}):
            rows = [r for (k, _), r in zip(nondigits, neg, strict=True) if k == kind]
            print(f"  FAR {kind}: {np.mean([not r['refused'] for r in rows]):.1%} of {len(rows)}")
        if args.tune:
            for key in ("top", "residual", "dark", "main", "soft"):
                values = np.array([r[key] for r in pos if key in r])
                print(
                    f"  digits {key}: 0.5/1/99/99.5 pct",
                    np.percentile(values, [0.5, 1, 99, 99.5]).round(3),
                )


if __name__ == "__main__":
    main()
