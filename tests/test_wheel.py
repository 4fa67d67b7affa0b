"""The package as a user installs it: a wheel, not this checkout.

The wheel is built from a copy of the project (the build writes build/ and egg-info beside
its sources), installed without its dependencies into a fresh venv, and used from a folder
outside the project: `mnistlab predict` with the shipped default model and a one-epoch
`mnistlab train` on the bundled MNIST. What the wheel left out (package data, the console
script, a module) fails here.

The venv borrows torch and the other dependencies from the interpreter running the tests: a
.pth file, written after the install so pip sees an empty venv, names every folder of its
sys.path except the standard library, this checkout and any folder holding a `mnistlab`
package (an editable install's source). Folders named in a .pth file have their own .pth files
left unread, so `mnistlab` can only come from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def borrowed() -> list[str]:
    """This interpreter's sys.path folders that the venv may see: not the standard library,
    not this checkout, none that holds a `mnistlab` package."""
    stdlib = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib")}
    folders = []
    for entry in dict.fromkeys(sys.path):
        path = Path(entry)
        if not entry or not path.is_dir() or entry in stdlib or path.name == "lib-dynload":
            continue
        # The checkout and its src/, not its .venv: CI's venv lives inside the clone.
        if path.resolve() in (ROOT, ROOT / "src") or (path / "mnistlab").exists():
            continue
        folders.append(str(path))
    return folders


def run(args, cwd, env, timeout=120) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, f"{args}\nstdout: {out.stdout}\nstderr: {out.stderr}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv's bin folder, an environment without this checkout on PYTHONPATH)."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    project = tmp / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "src", project / "src", ignore=ignore)
    # No build isolation: it would fetch setuptools from the network (the test extra has it).
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "-w", tmp / "dist", project],
        tmp,
        env,
        timeout=300,
    )
    (wheel,) = (tmp / "dist").glob("mnistlab-*.whl")

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp, env)
    python = venv / "bin" / "python"
    run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps"]
        + ["--no-index", wheel],
        tmp,
        env,
        timeout=300,
    )
    site = run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env
    )
    Path(site.stdout.strip(), "borrowed_dependencies.pth").write_text("\n".join(borrowed()) + "\n")
    return venv / "bin", env


def test_the_wheel_holds_the_package_and_its_data(installed, tmp_path):
    bin_dir, env = installed
    out = run(
        [bin_dir / "python", "-c", "import mnistlab.cli, mnistlab; print(mnistlab.__file__)"],
        tmp_path,
        env,
    )
    where = Path(out.stdout.strip())
    assert where.is_relative_to(bin_dir.parent), f"mnistlab imported from {where}"
    assert not where.is_relative_to(ROOT)


def test_predict_with_the_default_model_from_another_folder(installed, tmp_path, mnist):
    bin_dir, env = installed
    # Test image 0 is a 7 that every reasonable model gets right.
    assert int(mnist.test_labels[0]) == 7
    Image.fromarray(mnist.test_images[0].numpy()).save(tmp_path / "seven.png")
    out = run([bin_dir / "mnistlab", "predict", "--json", "seven.png"], tmp_path, env)
    (prediction,) = json.loads(out.stdout)
    assert prediction["label"] == 7, out.stdout


def test_train_one_epoch_on_the_bundled_mnist_from_another_folder(installed, tmp_path):
    bin_dir, env = installed
    args = ["train", "--epochs", "1", "--train-subset", "512", "--eval-subset", "200"]
    run([bin_dir / "mnistlab", *args, "--out-dir", "run", "--json"], tmp_path, env)
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "finished" and result["split"]["train_used"] == 512
