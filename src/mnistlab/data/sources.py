"""Where datasets come from: the bundled MNIST, a folder of IDX files, or a download cache.

`load_dataset("mnist")` is the copy shipped in the package, SHA-256 checked on every load;
`load_dataset("fashion-mnist")` (or "kmnist") is downloaded once into the cache, MD5 checked;
`load_dataset(name, data_dir=DIR)` reads any four IDX files in DIR (torchvision layouts too).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..fileio import atomic_write_bytes
from .idx import IDXError, read_pair

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(str(resources.files("mnistlab") / "data" / "bundled"))
CACHE_ENV = "MNISTLAB_DATA_CACHE"  # a folder that replaces the default download cache
MIRROR_ENV = "MNISTLAB_DATA_MIRROR"  # a base URL that replaces the datasets' own mirrors

FILE_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# SHA-256 of the *decompressed* IDX bytes: identical to the original MNIST files, and
# independent of how a given zlib compresses them.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

MAX_DOWNLOAD_BYTES = 256 * 2**20  # the largest published file is ~26 MB; an HTTP body is untrusted
DOWNLOAD_TIMEOUT_S = 60.0  # per socket operation, not for the whole file


class DataError(UserError):
    """A dataset that cannot be loaded; the message is one line for the user."""


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset known by name: where it comes from and how its files are checked."""

    name: str
    title: str
    torchvision_folder: str  # torchvision keeps its files in <root>/<this>/raw/
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...] = ()  # base URLs, tried in order; the file name is appended
    md5: dict[str, str] = field(default_factory=dict)  # <stem>.gz -> MD5 of the published file


# Mirrors and MD5s as published by the datasets' authors (Fashion-MNIST's README, KMNIST's
# download script) and used by torchvision.datasets.FashionMNIST / KMNIST. MD5 is weak against
# a forger but fine against truncation and corruption, and it is the only digest published.
# Licences: MNIST CC BY-SA 3.0 (bundled/README.md), Fashion-MNIST MIT (github.com/
# zalandoresearch/fashion-mnist), Kuzushiji-MNIST CC BY-SA 4.0 (github.com/rois-codh/kmnist).
DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        torchvision_folder="MNIST",
        class_names=tuple("0123456789"),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        torchvision_folder="FashionMNIST",
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        # S3 "website" endpoints speak plain HTTP only (the MD5 check is what protects us);
        # the project's own repository holds the same files, over HTTPS.
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
    "kmnist": DatasetSpec(
        name="kmnist",
        title="Kuzushiji-MNIST",
        torchvision_folder="KMNIST",
        class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        mirrors=(
            "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",  # as in KMNIST's README
            "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        ),
        md5={
            "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
            "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
            "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
        },
    ),
}


def list_datasets() -> list[str]:
    """Names `load_dataset` accepts without a data directory."""
    return sorted(DATASETS)


@dataclass(eq=False)
class Dataset:
    """Train and test splits, each held as one tensor: no per-sample objects on the hot path."""

    name: str
    train_images: torch.Tensor  # (60000, 28, 28) uint8 for MNIST
    train_labels: torch.Tensor  # (60000,) int64
    test_images: torch.Tensor  # (10000, 28, 28) uint8
    test_labels: torch.Tensor  # (10000,) int64
    source: str  # the folder the files were read from
    checksum: str = "not checked"  # what was verified, in words, for `data info` and reports
    class_names: tuple[str, ...] | None = None  # known datasets only

    @property
    def num_classes(self) -> int:
        # The spec wins over the labels: a small subset may lack the highest class.
        seen = int(max(self.train_labels.max(), self.test_labels.max())) + 1
        return max(len(self.class_names or ()), seen)

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={tuple(self.train_images.shape)}, "
            f"test={tuple(self.test_images.shape)}, source={self.source!r})"
        )


def _spec_of(name: str) -> DatasetSpec | None:
    key = name.strip().lower().replace("_", "-")
    return DATASETS.get({"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist"}.get(key, key))


def _idx_files_in(folder: Path) -> dict[str, Path]:
    """The dataset files present in one folder; plain files win over gzipped ones (faster)."""
    found = {}
    for stem in FILE_STEMS:
        alt = stem.replace("-idx", ".idx")  # Kaggle's spelling: train-images.idx3-ubyte
        for name in (stem, alt, stem + ".gz", alt + ".gz"):
            if (folder / name).is_file():
                found[stem] = folder / name
                break
    return found


def find_idx_files(folder: str | os.PathLike, name: str | None = None) -> dict[str, Path]:
    """The four IDX files of one dataset, all from the same folder.

    Looks in `folder`, `folder/raw` and torchvision's `folder/<Name>/raw`; when several
    datasets sit under one root, the one matching `name` is taken, never a mix of two.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: data directory not found")
    spec = _spec_of(name or "")
    preferred = [folder / spec.torchvision_folder / "raw"] if spec else []
    found = [_idx_files_in(base) for base in (folder, folder / "raw", *preferred)]
    for files in found:
        if len(files) == len(FILE_STEMS):
            return files
    nested = [p for p in sorted(folder.glob("*/raw")) if len(_idx_files_in(p)) == len(FILE_STEMS)]
    if len(nested) == 1:
        return _idx_files_in(nested[0])
    if len(nested) > 1:
        names = ", ".join(p.parent.name for p in nested)
        raise DataError(
            f"{folder}: holds several datasets ({names}); pass --dataset to pick one "
            f"or point --data-dir at one of their raw/ folders"
        )
    partial = max(found, key=len)
    missing = [s for s in FILE_STEMS if s not in partial]
    raise DataError(
        f"{folder}: missing IDX file(s) {', '.join(missing)} (plain or .gz; "
        f"also looked in raw/ and */raw/)"
    )


def load_from_dir(
    folder: str | os.PathLike,
    name: str = "custom",
    expected_sha256: dict[str, str] | None = None,
    checksum: str = "not checked (user-supplied files)",
    class_names: tuple[str, ...] | None = None,
) -> Dataset:
    """Read and validate the four IDX files of a dataset found in `folder`."""
    paths = find_idx_files(folder, name)
    sums = expected_sha256 or {}
    try:
        (train_x, train_y), (test_x, test_y) = (
            read_pair(paths[images], paths[labels], (sums.get(images), sums.get(labels)))
            for images, labels in (FILE_STEMS[:2], FILE_STEMS[2:])
        )
    except IDXError as exc:
        raise DataError(str(exc)) from None
    source = str(paths[FILE_STEMS[0]].parent)
    if len(train_x) == 0:
        raise DataError(f"{paths[FILE_STEMS[0]]}: holds no images")
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(
            f"{source}: train images are {train_x.shape[1]}x{train_x.shape[2]} but test images "
            f"are {test_x.shape[1]}x{test_x.shape[2]}"
        )
    if class_names is not None:
        for labels, stem in ((train_y, FILE_STEMS[1]), (test_y, FILE_STEMS[3])):
            if len(labels) and int(labels.max()) >= len(class_names):
                raise DataError(
                    f"{paths[stem]}: label {int(labels.max())} out of range for "
                    f"{len(class_names)} classes"
                )
    return Dataset(
        name=name,
        train_images=torch.from_numpy(train_x),
        train_labels=torch.from_numpy(train_y.astype(np.int64)),
        test_images=torch.from_numpy(test_x),
        test_labels=torch.from_numpy(test_y.astype(np.int64)),
        source=source,
        checksum=checksum,
        class_names=class_names,
    )


def default_cache_dir() -> Path:
    """$MNISTLAB_DATA_CACHE, else $XDG_CACHE_HOME/mnistlab, else ~/.cache/mnistlab."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "mnistlab"


def _md5_of(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def download_file(url: str, dest: Path, md5: str) -> None:
    """Fetch `url` and write it to `dest` (atomically) only once verified.

    Raises OSError (or an urllib/http.client error, or OutputError when `dest` cannot be
    written) with a short reason on any failure; an interrupted or corrupt transfer never
    leaves a file under `dest`'s name.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": "mnistlab"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as resp:
        declared = resp.headers.get("Content-Length")
        declared = int(declared) if declared and declared.isdigit() else None
        if declared is not None and declared > MAX_DOWNLOAD_BYTES:
            raise OSError(f"server announces {declared} bytes, over the {MAX_DOWNLOAD_BYTES} limit")
        digest, chunks, received = hashlib.md5(usedforsecurity=False), [], 0
        while chunk := resp.read(1 << 20):
            received += len(chunk)
            if received > MAX_DOWNLOAD_BYTES:
                raise OSError(f"response larger than the {MAX_DOWNLOAD_BYTES}-byte limit")
            digest.update(chunk)
            chunks.append(chunk)
    # http.client returns a short body without complaint when the peer closes early.
    if declared is not None and received != declared:
        raise OSError(f"transfer interrupted after {received} of {declared} bytes")
    if digest.hexdigest() != md5:
        raise OSError(f"checksum mismatch (MD5 {digest.hexdigest()}, expected {md5})")
    atomic_write_bytes(dest, b"".join(chunks))


def fetch(name: str, cache_dir: str | os.PathLike | None = None, mirror: str | None = None) -> Path:
    """Make sure the dataset's four files are in the cache, verified; return their folder."""
    spec = DATASETS[name]
    folder = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / spec.name
    mirror = mirror or os.environ.get(MIRROR_ENV)
    bases = (mirror,) if mirror else spec.mirrors
    for file_name, md5 in spec.md5.items():
        dest = folder / file_name
        if dest.is_file() and _md5_of(dest) == md5:
            continue
        failures = []
        for base in bases:
            url = base.rstrip("/") + "/" + file_name
            log.info("downloading %s", url)
            try:
                download_file(url, dest, md5)
                break
            except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
                reason = " ".join(_describe_failure(exc).split())  # the message stays one line
                failures.append(f"{url}: {reason}")
        else:
            raise DataError(
                f"{spec.title}: download failed ({'; '.join(failures)}); to work offline, put "
                f"its four IDX files ({', '.join(FILE_STEMS)}, gzipped or not) in a folder "
                f"and pass --data-dir DIR"
            )
    return folder


def load_dataset(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    mirror: str | None = None,
) -> Dataset:
    """Load a dataset's train and test splits as uint8 image tensors and int64 labels.

    `data_dir` wins when given (any four IDX files; `name` then only labels them). Otherwise
    `name` picks a known dataset: `mnist` is bundled; the others are downloaded once into
    `cache_dir` (default: `default_cache_dir()`) from their mirrors, or from `mirror`
    (default: $MNISTLAB_DATA_MIRROR) when set.
    """
    spec = _spec_of(name)
    if data_dir is not None:
        if spec is None:
            return load_from_dir(data_dir, name)
        return load_from_dir(data_dir, spec.name, class_names=spec.class_names)
    if spec is None:
        raise DataError(
            f"unknown dataset {name!r}; valid: {', '.join(list_datasets())} "
            f"(or pass --data-dir with four IDX files)"
        )
    if spec.name == "mnist":
        folder, sums = BUNDLED_DIR, MNIST_SHA256
        checksum = "verified (bundled copy; SHA-256 of all 4 files match the original MNIST)"
    else:
        folder, sums = fetch(spec.name, cache_dir, mirror), None
        checksum = "verified (MD5 of all 4 downloaded files match the published checksums)"
    return load_from_dir(folder, spec.name, sums, checksum, spec.class_names)
