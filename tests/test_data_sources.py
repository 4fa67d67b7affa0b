"""Dataset sources: the bundled MNIST, folders of IDX files, and the download cache (served by
a local HTTP server on 127.0.0.1; these tests never touch the internet)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import shutil
import socket
import threading

import numpy as np
import pytest
import torch

from mnistlab.data import (
    DataError,
    Dataset,
    default_cache_dir,
    list_datasets,
    load_dataset,
    sources,
    write_idx,
)
from mnistlab.data.sources import DATASETS, FILE_STEMS, MNIST_SHA256, find_idx_files, load_from_dir


# ---------------------------------------------------------------- the bundled MNIST
def test_bundled_mnist_known_facts(mnist):
    assert mnist.name == "mnist"
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.train_images.dtype == torch.uint8
    assert mnist.test_images.shape == (10000, 28, 28) and mnist.test_images.dtype == torch.uint8
    assert mnist.train_labels.dtype == mnist.test_labels.dtype == torch.int64
    assert torch.bincount(mnist.train_labels).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949,
    ]  # fmt: skip
    assert torch.bincount(mnist.test_labels).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009,
    ]  # fmt: skip
    assert mnist.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert mnist.num_classes == 10 and mnist.image_shape == (28, 28)
    assert mnist.checksum.startswith("verified")
    assert mnist.class_names == tuple("0123456789")
    # Pixel statistics everyone normalises with: a wrong rebuild (e.g. x255) would shift them.
    pixels = mnist.train_images.float() / 255
    assert round(pixels.mean().item(), 4) == 0.1307 and round(pixels.std().item(), 4) == 0.3081


def test_bundled_files_are_checked_against_the_pinned_sha256(tiny_idx_dir):
    # Any file that is not the original MNIST fails the pinned check with a clear message.
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: checksum mismatch"):
        load_from_dir(tiny_idx_dir, "mnist", expected_sha256=MNIST_SHA256)


def test_dataset_repr_is_short(mnist):
    assert repr(mnist).startswith("Dataset('mnist', train=(60000, 28, 28), test=(10000, 28, 28)")


# ---------------------------------------------------------------- folders of IDX files
def test_data_dir_wins_over_the_bundled_copy(tiny_idx_dir):
    ds = load_dataset("mnist", data_dir=tiny_idx_dir)
    assert len(ds.train_labels) == 200 and len(ds.test_labels) == 100
    assert ds.checksum == "not checked (user-supplied files)"
    assert ds.source == str(tiny_idx_dir)


def test_uncompressed_files(make_idx_dir):
    ds = load_dataset("custom", data_dir=make_idx_dir(50, 20, gzip=False))
    assert ds.name == "custom" and ds.class_names is None
    assert ds.train_images.shape == (50, 28, 28)


def test_num_classes_comes_from_the_spec_when_a_class_is_missing(make_idx_dir):
    ds = load_dataset("mnist", data_dir=make_idx_dir(3, 3))  # labels 5 0 4 / 7 2 1
    assert ds.num_classes == 10
    assert load_dataset("custom", data_dir=make_idx_dir(3, 3, name="c")).num_classes == 8


def test_torchvision_layout_picks_the_named_dataset(make_idx_dir, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(make_idx_dir(30, 10, gzip=False, name="m"), root / "MNIST" / "raw")
    shutil.copytree(make_idx_dir(40, 10, name="f"), root / "FashionMNIST" / "raw")
    assert len(load_dataset("mnist", data_dir=root).train_labels) == 30
    fashion = load_dataset("fashion-mnist", data_dir=root)
    assert len(fashion.train_labels) == 40 and fashion.class_names[0] == "T-shirt/top"
    with pytest.raises(DataError, match=r"holds several datasets \(FashionMNIST, MNIST\)"):
        load_dataset("mine", data_dir=root)


def test_single_nested_raw_folder_and_kaggle_names(make_idx_dir, tmp_path):
    src = make_idx_dir(20, 10, gzip=False)
    raw = tmp_path / "kaggle" / "raw"
    raw.mkdir(parents=True)
    for path in src.iterdir():
        shutil.copy(path, raw / path.name.replace("-idx", ".idx"))
    assert len(load_dataset("digits", data_dir=tmp_path / "kaggle").train_labels) == 20


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match=r"nowhere: data directory not found$"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")


def test_missing_files_are_named(tiny_idx_dir):
    (tiny_idx_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=tiny_idx_dir)
    assert str(info.value) == (
        f"{tiny_idx_dir}: missing IDX file(s) t10k-labels-idx1-ubyte (plain or .gz; "
        f"also looked in raw/ and */raw/)"
    )


def test_corrupt_file_in_data_dir_names_the_file(tiny_idx_dir):
    path = tiny_idx_dir / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match=rf"^{path}: gzip data is truncated"):
        load_dataset("mnist", data_dir=tiny_idx_dir)


def test_image_size_mismatch(make_idx_dir):
    folder = make_idx_dir(20, 10)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((10, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match="train images are 28x28 but test images are 32x32"):
        load_dataset("mnist", data_dir=folder)


def test_label_out_of_range_for_a_known_dataset(make_idx_dir):
    folder = make_idx_dir(20, 10)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(10, 12, dtype=np.uint8))
    with pytest.raises(DataError, match="label 12 out of range for 10 classes"):
        load_dataset("mnist", data_dir=folder)


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(DataError) as info:
        load_dataset("cifar10")
    assert str(info.value) == (
        "unknown dataset 'cifar10'; valid: fashion-mnist, kmnist, mnist "
        "(or pass --data-dir with four IDX files)"
    )
    assert list_datasets() == ["fashion-mnist", "kmnist", "mnist"]


def test_find_idx_files_prefers_plain_files(make_idx_dir):
    folder = make_idx_dir(10, 10, gzip=False)
    for path in list(folder.iterdir()):
        shutil.copy(path, path.with_name(path.name + ".gz"))  # torchvision keeps both
    assert all(p.suffix != ".gz" for p in find_idx_files(folder).values())


# ---------------------------------------------------------------- downloads
def test_published_checksums_are_complete():
    for name in ("fashion-mnist", "kmnist"):
        spec = DATASETS[name]
        assert spec.mirrors and all(m.endswith("/") for m in spec.mirrors)
        assert sorted(spec.md5) == sorted(f"{s}.gz" for s in FILE_STEMS)
        assert all(len(v) == 32 and int(v, 16) >= 0 for v in spec.md5.values())


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MNISTLAB_DATA_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("MNISTLAB_DATA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "mnistlab"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # invalid per the XDG spec
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "mnistlab"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `server.files`; `server.lie_about_length` names files sent short of the
    Content-Length promised, as a dropped connection would leave them."""

    def do_GET(self):  # noqa: N802 - the name http.server dispatches to
        self.server.requests.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        body = self.server.files.get(name)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        extra = 1000 if name in self.server.lie_about_length else 0
        self.send_header("Content-Length", str(len(body) + extra))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def file_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.files, server.requests, server.lie_about_length = {}, [], set()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/data/"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def served_fashion(file_server, make_idx_dir, monkeypatch):
    """The server holds four small IDX .gz files posing as Fashion-MNIST, with their MD5s
    pinned in place of the real ones."""
    folder = make_idx_dir(60, 20)
    files = {f"{stem}.gz": (folder / f"{stem}.gz").read_bytes() for stem in FILE_STEMS}
    md5 = {name: hashlib.md5(body).hexdigest() for name, body in files.items()}
    spec = dataclasses.replace(DATASETS["fashion-mnist"], md5=md5)
    monkeypatch.setitem(DATASETS, "fashion-mnist", spec)
    file_server.files.update(files)
    return file_server


def cache_folder():
    return default_cache_dir() / "fashion-mnist"


def test_download_good_files_then_use_the_cache(served_fashion):
    ds = load_dataset("fashion-mnist", mirror=served_fashion.url)
    assert isinstance(ds, Dataset) and ds.name == "fashion-mnist"
    assert len(ds.train_labels) == 60 and len(ds.test_labels) == 20
    assert ds.checksum.startswith("verified") and ds.class_names[-1] == "Ankle boot"
    assert sorted(p.name for p in cache_folder().iterdir()) == sorted(
        f"{s}.gz" for s in FILE_STEMS
    )  # no temporary files left behind
    assert len(served_fashion.requests) == 4
    load_dataset("fashion-mnist", mirror=served_fashion.url)
    assert len(served_fashion.requests) == 4  # the second load is served from the cache


def test_mirror_from_the_environment(served_fashion, monkeypatch):
    monkeypatch.setenv("MNISTLAB_DATA_MIRROR", served_fashion.url)
    assert len(load_dataset("fashion_mnist").train_labels) == 60  # the alias works too
    assert served_fashion.requests[0] == "/data/train-images-idx3-ubyte.gz"


def test_next_mirror_is_tried_when_one_fails(served_fashion, monkeypatch):
    spec = dataclasses.replace(
        DATASETS["fashion-mnist"], mirrors=("http://127.0.0.1:9/", served_fashion.url)
    )
    monkeypatch.setitem(DATASETS, "fashion-mnist", spec)
    monkeypatch.delenv("MNISTLAB_DATA_MIRROR")
    assert len(load_dataset("fashion-mnist").train_labels) == 60


def test_corrupt_cached_file_is_downloaded_again(served_fashion):
    load_dataset("fashion-mnist", mirror=served_fashion.url)
    cached = cache_folder() / "t10k-labels-idx1-ubyte.gz"
    cached.write_bytes(b"garbage")
    ds = load_dataset("fashion-mnist", mirror=served_fashion.url)
    assert len(ds.test_labels) == 20
    assert served_fashion.requests[-1].endswith("/t10k-labels-idx1-ubyte.gz")


def test_checksum_mismatch_leaves_nothing_valid(served_fashion):
    served_fashion.files["train-labels-idx1-ubyte.gz"] = b"\x1f\x8b not what was published"
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", mirror=served_fashion.url)
    message = str(info.value)
    assert message.startswith("Fashion-MNIST: download failed (")
    assert "train-labels-idx1-ubyte.gz: checksum mismatch (MD5 " in message
    assert "pass --data-dir DIR" in message and "\n" not in message
    assert not (cache_folder() / "train-labels-idx1-ubyte.gz").exists()
    assert not [p for p in cache_folder().iterdir() if p.name.startswith(".")]


def test_interrupted_transfer_leaves_nothing_valid(served_fashion):
    body = served_fashion.files["train-images-idx3-ubyte.gz"]
    served_fashion.lie_about_length.add("train-images-idx3-ubyte.gz")
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", mirror=served_fashion.url)
    assert f"transfer interrupted after {len(body)} of {len(body) + 1000} bytes" in str(info.value)
    assert not list(cache_folder().iterdir())


def test_http_error(served_fashion):
    del served_fashion.files["t10k-images-idx3-ubyte.gz"]
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: HTTP 404 Not Found\)"):
        load_dataset("fashion-mnist", mirror=served_fashion.url)
    assert not (cache_folder() / "t10k-images-idx3-ubyte.gz").exists()


def test_server_down_gives_the_offline_message():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError) as info:
        load_dataset("kmnist", mirror=f"http://127.0.0.1:{port}")
    message = str(info.value)
    assert message.startswith(
        f"Kuzushiji-MNIST: download failed (http://127.0.0.1:{port}/train-images-idx3-ubyte.gz: "
    )
    assert "Connection refused" in message
    assert message.endswith(
        "; to work offline, put its four IDX files (train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, gzipped or "
        "not) in a folder and pass --data-dir DIR"
    )
    assert "\n" not in message


def test_download_size_limit(served_fashion, monkeypatch):
    monkeypatch.setattr(sources, "MAX_DOWNLOAD_BYTES", 100)
    with pytest.raises(DataError, match="over the 100 limit"):
        load_dataset("fashion-mnist", mirror=served_fashion.url)


def test_gzip_bomb_in_data_dir_is_one_line_naming_the_file(make_idx_dir):
    # Issue 13, item 8: ~60 KB of gzip that expands to 64 MB behind a 10-label header, then
    # the same 64 MB as honest-looking labels: both refused before the data is expanded.
    import struct
    import tracemalloc
    import zlib

    folder = make_idx_dir(20, 10)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    for header in (struct.pack(">II", 2049, 10) + bytes(10), struct.pack(">II", 2049, 2**26)):
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts = [packer.compress(header)]
        parts += [packer.compress(bytes(2**20)) for _ in range(64)]
        path.write_bytes(b"".join(parts) + packer.flush())
        tracemalloc.start()
        try:
            with pytest.raises(DataError) as info:
                load_dataset("mnist", data_dir=folder)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        message = str(info.value)
        assert "\n" not in message and str(path) in message
        assert "trailing bytes" in message or "count mismatch" in message
        assert peak < 16 * 2**20, peak  # the 20 + 10 real digits, not the 64 MB
