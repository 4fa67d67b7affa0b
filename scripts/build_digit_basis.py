"""Rebuild src/mnistlab/data/digit_basis.npz: for each class, the mean and first principal
components of MNIST's training digits of that class (28x28, in [0, 1]), which `mnistlab.ood`
uses to tell how far a preprocessed picture is from the form of the digit the model read.
Deterministic (an SVD per class of the first 30,000 training digits; stored as float16);
run from the repository root:

    python scripts/build_digit_basis.py
"""

from pathlib import Path

import numpy as np

from mnistlab.data.sources import load_dataset

COMPONENTS = 10
IMAGES = 30_000
OUT = Path(__file__).resolve().parents[1] / "src/mnistlab/data/digit_basis.npz"


def main() -> None:
    mnist = load_dataset("mnist")
    images, labels = mnist.train_images.numpy()[:IMAGES], mnist.train_labels.numpy()[:IMAGES]
    means, components = [], []
    for digit in range(10):
        x = images[labels == digit].reshape(-1, 28 * 28).astype(np.float64) / 255
        means.append(x.mean(0))
        components.append(np.linalg.svd(x - means[-1], full_matrices=False)[2][:COMPONENTS])
    np.savez_compressed(
        OUT, mean=np.float16(means), components=np.float16(components)
    )  # (10, 784), (10, COMPONENTS, 784)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
