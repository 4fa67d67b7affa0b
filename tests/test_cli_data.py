"""`mnistlab data info` and `data show`, end to end through the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mnistlab.cli import main


def test_info_bundled(capsys):
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert (
        "checksum    verified (bundled copy; SHA-256 of all 4 files match the original MNIST)"
        in out
    )
    assert "train file  60,000 images" in out
    assert "test file   10,000 images" in out
    assert "train 54,000 + val 6,000, hash e66ee08dc8cc35be" in out
    assert "0                   5,923        5,331        592     980" in out


def test_info_json_on_a_data_dir(capsys, tiny_idx_dir):
    args = ["data", "info", "--data-dir", str(tiny_idx_dir), "--val-fraction", "0.2", "--json"]
    assert main(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["train_size"] == 200 and info["test_size"] == 100
    assert info["split"]["val_size"] + info["split"]["train_size"] == 200
    assert info["split"]["fraction"] == 0.2
    assert sum(info["split_val_counts"]) == info["split"]["val_size"]
    assert info["checksum"] == "not checked (user-supplied files)"
    assert info["image_shape"] == [28, 28] and info["num_classes"] == 10


def test_bad_data_dir_is_one_line_and_exit_2(capsys, tmp_path):
    assert main(["data", "info", "--data-dir", str(tmp_path / "missing")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"mnistlab: error: {tmp_path / 'missing'}: data directory not found\n"


def test_bad_val_fraction_exit_2(capsys, tiny_idx_dir):
    code = main(["data", "info", "--data-dir", str(tiny_idx_dir), "--val-fraction", "1.5"])
    assert code == 2
    assert capsys.readouterr().err == (
        "mnistlab: error: validation fraction must be in [0, 1), got 1.5\n"
    )


def test_unknown_dataset_exit_2(capsys):
    assert main(["data", "info", "--dataset", "cifar10"]) == 2
    assert capsys.readouterr().err.startswith("mnistlab: error: unknown dataset 'cifar10'; valid:")


def test_offline_download_exit_2(capsys):
    # conftest points the mirror at a closed port: the offline message, not a traceback.
    assert main(["data", "info", "--dataset", "kmnist"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mnistlab: error: Kuzushiji-MNIST: download failed (")
    assert err.endswith("pass --data-dir DIR\n") and err.count("\n") == 1


def test_show_writes_a_png(tmp_path, tiny_idx_dir, capsys):
    out = tmp_path / "figs" / "digits.png"
    args = ["data", "show", "--data-dir", str(tiny_idx_dir), "--out", str(out), "--per-class", "4"]
    assert main(args) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["digits.png"]  # written atomically

    from matplotlib.image import imread

    height, width = imread(out).shape[:2]
    assert height > width  # 10 class rows of 4 digits: taller than wide


def test_show_bad_per_class(tmp_path, tiny_idx_dir, capsys):
    args = ["data", "show", "--data-dir", str(tiny_idx_dir), "--out", str(tmp_path / "x.png")]
    assert main([*args, "--per-class", "0"]) == 2
    assert (
        capsys.readouterr().err == "mnistlab: error: --per-class must be between 1 and 50, got 0\n"
    )
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow  # a fresh interpreter per case: ~2 s each, mostly importing torch
@pytest.mark.parametrize(
    ("args", "code", "expect"),
    [
        (["data", "info"], 0, "train 54,000 + val 6,000"),
        (["data", "info", "--data-dir", "/nonexistent/mnist"], 2, None),
    ],
)
def test_real_subprocess(args, code, expect):
    proc = subprocess.run(
        [sys.executable, "-m", "mnistlab", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == code, proc.stderr
    if code == 0:
        assert expect in proc.stdout and proc.stderr == ""
    else:
        assert proc.stdout == ""
        assert proc.stderr == "mnistlab: error: /nonexistent/mnist: data directory not found\n"
        assert "Traceback" not in proc.stderr
