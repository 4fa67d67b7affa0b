"""Rebuild src/mnistlab/data/digit_basis.npz: the mean and first principal components of
MNIST's training digits (28x28, in [0, 1]), which `mnistlab.ood` uses to tell how far a
preprocessed picture is from every digit's form. Deterministic (an SVD of the first 20,000
training digits); run from the repository root:

    python scripts/build_digit_basis.py
"""

from pathlib import Path

import numpy as np

from mnistlab.data.sources import load_dataset

COMPONENTS = 20
IMAGES = 20_000
OUT = Path(__file__).resolve().parents[1] / "src/mnistlab/data/digit_basis.npz"


def main() -> None:
    images = load_dataset("mnist").train_images.numpy()[:IMAGES]
    x = images.reshape(len(images), -1).astype(np.float64) / 255
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    np.savez_compressed(
        OUT, mean=mean.astype(np.float32), components=vt[:COMPONENTS].astype(np.float32)
    )
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
