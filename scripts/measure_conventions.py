"""How a checkpoint reads MNIST test digits redrawn in other writers' conventions.

    python scripts/measure_conventions.py CHECKPOINT [CHECKPOINT ...]

Each writer family of `mnistlab.augment` (issue 22) is applied to every MNIST test digit it
can change (the label's digits for a convention, all digits for the others), with its own
seeded generator, and the checkpoint reads the result through `Predictor` (calibrated, as
users meet it). This is the training generator's own drawing, so it shows whether a model
reads those forms at all, not how it reads real writers: the shipped default model never
saw them, a model trained with `--writer-augment all` saw other random draws of them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from mnistlab.augment import WRITER_OPS  # noqa: E402
from mnistlab.data.sources import load_dataset  # noqa: E402
from mnistlab.predict import Predictor  # noqa: E402

SEED = 20261207  # not a training seed


def redrawn(images: torch.Tensor, labels: torch.Tensor, name: str) -> tuple[np.ndarray, ...]:
    """The test digits `name` applies to, redrawn; and their labels."""
    op, label = WRITER_OPS[name]
    keep = labels == label if label is not None else torch.ones_like(labels, dtype=torch.bool)
    x = images[keep].unsqueeze(1).float() / 255
    out = op(x, torch.Generator().manual_seed(SEED)).clamp(0, 1)
    changed = (out - x).abs().flatten(1).amax(1) > 1 / 255  # open_four leaves open 4s alone
    digits = (out[changed, 0] * 255).round().to(torch.uint8).numpy()
    return digits, labels[keep][changed].numpy()


def main() -> None:
    torch.set_num_threads(1)
    data = load_dataset("mnist")
    rows = {}
    for path in sys.argv[1:]:
        predictor = Predictor(Path(path))
        row = {}
        for name in WRITER_OPS:
            digits, labels = redrawn(data.test_images, data.test_labels, name)
            right = predictor.probabilities(digits).argmax(1) == labels
            row[name] = {"digits": int(len(labels)), "accuracy": float(right.mean())}
        rows[path] = row
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
