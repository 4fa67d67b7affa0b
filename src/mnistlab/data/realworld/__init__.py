"""Real-world digits that are not MNIST, for judging how a model holds up outside it.

    images, labels = load_realworld()          # (1797, 8, 8) uint8 grey levels 0-255, (1797,)
    images, labels = load_realworld("heldout")  # the second half only (see below)

The set is the UCI "Optical Recognition of Handwritten Digits" test set as scikit-learn ships
it (CC BY 4.0; README.md in this folder says where it comes from and how it was rebuilt):
1,797 digits by 13 writers on preprinted forms, scanned, normalised to 32x32 bitmaps and
block-counted to 8x8. They are thick-stroked, blurred and very low resolution: nothing like
MNIST's 20x20 antialiased pen strokes, which is the point. Never used in training.

`part`: "all", "dev" (the first 899, which the robustness work was tuned on) or "heldout"
(the last 898, only measured). The file order follows the source; writers are not labelled,
so the halves may share writers.
"""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import numpy as np

from ..idx import parse_idx

FILES = {"images": "uci-digits-images-idx3-ubyte.gz", "labels": "uci-digits-labels-idx1-ubyte.gz"}
# SHA-256 of the decompressed IDX payloads (checked at every load).
SHA256 = {
    "images": "359cd13f0f514122884198b78a131df597421cbf5e93a76678fa96fc548f0d96",
    "labels": "ce71631c1f31ce56fa54f31d1d498fafacff59b001e6c30c4a5e29508aa277ad",
}
SOURCE = "UCI optical digits (test set, 13 writers, 8x8 scans; CC BY 4.0; via scikit-learn)"
DEV_SIZE = 899
PARTS = {"all": slice(None), "dev": slice(0, DEV_SIZE), "heldout": slice(DEV_SIZE, None)}


def load_realworld(part: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 8, 8) uint8 in [0, 255], white ink on black; labels (N,) int64)."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; valid: {', '.join(PARTS)}")
    arrays = {}
    folder = resources.files(__name__)
    for key, name in FILES.items():
        raw = gzip.decompress((folder / name).read_bytes())
        digest = hashlib.sha256(raw).hexdigest()
        if digest != SHA256[key]:
            raise ValueError(f"{name}: SHA-256 {digest} differs from the pinned {SHA256[key]}")
        arrays[key] = parse_idx(raw, name)
    # 0-16 ink counts per 4x4 block -> grey levels, so 16 (a full block) is 255.
    images = np.rint(arrays["images"].astype(np.float64) * (255 / 16)).astype(np.uint8)
    labels = arrays["labels"].astype(np.int64)
    return images[PARTS[part]], labels[PARTS[part]]
