"""Rebuild the real-world evaluation set (`src/mnistlab/data/realworld/`) from scikit-learn's
bundled copy of the UCI "Optical Recognition of Handwritten Digits" test set.

    pip download --no-deps scikit-learn -d /tmp/skl      # any version, any platform
    python scripts/build_realworld_digits.py /tmp/skl/scikit_learn-*.whl

(or pass the `digits.csv.gz` itself, e.g. from an installed scikit-learn's
`sklearn/datasets/data/`). scikit-learn is needed only here, never at run time.

The source: 1,797 digits written on preprinted forms by 13 people (the UCI test set; the 30
writers of its training set are not in it), scanned, size-normalised to 32x32 binary
bitmaps by NIST's programs and block-counted to 8x8 grey levels 0-16 (E. Alpaydin and C.
Kaynak, 1998). Licence: CC BY 4.0 (UCI Machine Learning Repository). None of it is MNIST
and none of it is used in training. The CSV's SHA-256 is pinned, and so is each output.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from mnistlab.data.idx import encode_idx  # noqa: E402
from mnistlab.data.realworld import FILES, SHA256  # noqa: E402
from mnistlab.fileio import atomic_write_bytes  # noqa: E402

CSV_IN_WHEEL = "sklearn/datasets/data/digits.csv.gz"
# scikit-learn 1.9.1's copy (its wheel RECORD: CfZubeve...jqiI); the file has not changed
# since scikit-learn 0.x.
CSV_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"


def read_csv_gz(source: Path) -> bytes:
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            raw = zf.read(CSV_IN_WHEEL)
    else:
        raw = source.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != CSV_SHA256:
        raise SystemExit(f"{source}: digits.csv.gz has SHA-256 {digest}, expected {CSV_SHA256}")
    return gzip.decompress(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a scikit-learn wheel, or digits.csv.gz")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "src/mnistlab/data/realworld",
    )
    args = parser.parse_args()
    table = np.loadtxt(io.BytesIO(read_csv_gz(args.source)), delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65) or table[:, :64].min() < 0 or table[:, :64].max() > 16:
        raise SystemExit(f"unexpected table {table.shape}: not the UCI digits")
    arrays = {
        "images": table[:, :64].astype(np.uint8).reshape(-1, 8, 8),  # ink 0-16, on 0
        "labels": table[:, 64].astype(np.uint8),
    }
    for key, array in arrays.items():
        payload = encode_idx(array)
        digest = hashlib.sha256(payload).hexdigest()
        if digest != SHA256[key]:
            raise SystemExit(f"{key}: SHA-256 {digest}, expected {SHA256[key]}")
        path = args.out / FILES[key]
        atomic_write_bytes(path, gzip.compress(payload, compresslevel=9, mtime=0))
        print(f"wrote {path}: {array.shape}, SHA-256 {digest}")


if __name__ == "__main__":
    main()
