"""`mnistlab train` and `mnistlab evaluate`: flags and config files land in one validated
config, bad input is one line and exit code 2 before any work, and a run folder holds what
the ledger promises."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_helper import cli

from mnistlab import engine, ledger, sweep
from mnistlab.models import list_models

TINY = [
    "--epochs",
    "1",
    "--train-subset",
    "128",
    "--eval-subset",
    "64",
    "--device",
    "cpu",
    "--precision",
    "fp32",
]
RUN_FILES = ("config.json", "history.json", "result.json", "checkpoint.pt")


@pytest.fixture
def trains(monkeypatch):
    """Counts calls of engine.train by the one function that runs a config to a result."""
    calls = []
    real = engine.train

    def train(config, *args, **kwargs):
        calls.append(config)
        return real(config, *args, **kwargs)

    monkeypatch.setattr(sweep, "train", train)
    return calls


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist):
    """One tiny run through the CLI: a TOML file for some settings, flags for the rest."""
    root = tmp_path_factory.mktemp("cli-train")
    config = root / "run.toml"
    config.write_text('model = "mlp"\nepochs = 3\nlr = 0.002\n[model_kwargs]\nhidden = [16]\n')
    out = root / "run"
    code, stdout, stderr = cli("train", "--config", config, *TINY, "--out-dir", out, "--json")
    return SimpleNamespace(out=out, code=code, stdout=stdout, stderr=stderr, config=config)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "-1"], "lr must be > 0, got -1.0"),
        (
            ["--model", "lenett"],
            "unknown model 'lenett'; valid models: " + ", ".join(list_models()),
        ),
        (["--dropout", "1"], "dropout must be in [0, 1), got 1.0"),
        (["--epochs", "0"], "epochs must be >= 1, got 0"),
        (["--batch-size", "0"], "batch_size must be >= 1, got 0"),
        (["--device", "tpu"], "unknown device 'tpu'; valid: auto, cpu, cuda, mps"),
        (["--optimizer", "adagrad"], "unknown optimizer 'adagrad'"),
        (["--schedule", "step"], "unknown schedule 'step'"),
        (["--arch", "hidden"], "KEY=VALUE, got 'hidden'"),
        (["--config", "nope.toml"], "nope.toml: config file not found"),
        (
            ["--model", "mlp", "--arch", "depth=3", "--device", "cpu"],
            "model 'mlp': unknown architecture option 'depth'; options: hidden=(512, 256), "
            "image_size=28",
        ),
        (
            ["--train-subset", "100000", "--device", "cpu"],
            "train_subset 100000 is larger than the training split",
        ),
    ],
)
def test_bad_train_input_is_one_line_exit_2_and_nothing_is_written(
    args, message, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = cli("train", *args)
    assert code == 2
    assert stderr.startswith("mnistlab: error: ") and stderr.count("\n") == 1
    assert message in stderr
    assert list(tmp_path.iterdir()) == []  # no run folder: it failed before any work


def test_unknown_setting_in_a_config_file_names_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "run.toml"
    path.write_text("epoch = 3\n")
    code, _, stderr = cli("train", "--config", path)
    assert code == 2
    assert stderr.startswith(f"mnistlab: error: {path}: unknown setting(s) epoch; valid: model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.toml"]


def test_no_training_happens_for_invalid_flags(tmp_path, monkeypatch, trains):
    monkeypatch.chdir(tmp_path)
    assert cli("train", "--lr", "-1")[0] == 2
    assert trains == []


# ------------------------------------------------------------------ a real run
def test_train_writes_the_run_folder_and_the_config_file_meets_the_flags(trained):
    assert trained.code == 0, trained.stderr
    for name in RUN_FILES:
        assert (trained.out / name).is_file(), name
    printed = json.loads(trained.stdout)
    assert printed["status"] == "finished" and len(printed["history"]) == 1
    config = ledger.read_json(trained.out / ledger.CONFIG)
    # From the file: model, lr, model_kwargs. From the flags, which win: epochs and the rest.
    assert (config["model"], config["lr"], config["model_kwargs"]) == (
        "mlp",
        0.002,
        {"hidden": [16]},
    )
    assert (config["epochs"], config["train_subset"], config["precision"]) == (1, 128, "fp32")
    result = ledger.read_json(trained.out / ledger.RESULT)
    assert result["test_acc"] == printed["test_acc"]
    assert result["split"]["test_used"] == 64


def test_a_finished_run_is_not_retrained_unless_forced(trained, tmp_path, trains):
    out = tmp_path / "run"
    shutil.copytree(trained.out, out)
    args = ["train", "--config", trained.config, *TINY, "--out-dir", out]
    code, stdout, _ = cli(*args)
    assert code == 0 and trains == []
    assert stdout.startswith(f"already trained (use --force to retrain): {out}")
    code, stdout, _ = cli(*args, "--force")
    assert code == 0 and len(trains) == 1
    assert any(line.startswith("finished: mlp, ") for line in stdout.splitlines())
    assert f"run folder: {out}" in stdout


def test_force_removes_only_the_run_files_of_the_out_dir(trained, tmp_path, trains):
    out = tmp_path / "run"
    shutil.copytree(trained.out, out)
    (out / "notes.txt").write_text("mine")
    code, _, err = cli("train", "--config", trained.config, *TINY, "--out-dir", out, "--force")
    assert code == 0 and len(trains) == 1, err
    assert (out / "notes.txt").read_text() == "mine"


def test_an_out_dir_holding_another_config_is_refused(trained, tmp_path, trains):
    out = tmp_path / "run"
    shutil.copytree(trained.out, out)
    before = (out / ledger.RESULT).read_bytes()
    code, stdout, stderr = cli(
        "train", "--config", trained.config, *TINY, "--lr", "0.01", "--out-dir", out
    )
    assert code == 2 and "already trained" not in stdout
    assert (
        stderr
        == f"mnistlab: error: {out}: holds a run with a different config; use another out_dir\n"
    )
    assert (out / ledger.RESULT).read_bytes() == before  # nothing recorded is lost


def test_default_run_folder_is_named_by_the_run_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = cli("train", "--model", "mlp", "--arch", "hidden=[8]", *TINY)
    assert code == 0, stderr
    (folder,) = (tmp_path / "runs" / "train").iterdir()
    config = ledger.read_json(folder / ledger.CONFIG)
    assert folder.name == ledger.run_id_for(config)
    assert f"run folder: {Path('runs/train') / folder.name}" in stdout


def test_a_diverged_run_exits_1(tmp_path):
    # LeNet with SGD at lr 1e6 overflows to NaN within 4 steps (256 images) for every seed tried.
    code, stdout, _ = cli(
        "train",
        "--model",
        "lenet",
        "--optimizer",
        "sgd",
        "--lr",
        "1e6",
        *TINY,
        "--train-subset",
        "256",
        "--out-dir",
        tmp_path / "run",
    )
    assert code == 1
    assert stdout.splitlines()[-2].startswith("diverged: lenet")
    assert ledger.read_json(tmp_path / "run" / ledger.RESULT)["status"] == "diverged"


# ------------------------------------------------------------------ evaluate
def test_evaluate_a_checkpoint(trained):
    code, stdout, _ = cli("evaluate", trained.out / "checkpoint.pt", "--device", "cpu", "--json")
    assert code == 0
    out = json.loads(stdout)
    assert (out["model"], out["split"], out["images"]) == ("mlp", "test", 10_000)
    assert 0.0 <= out["acc"] <= 1.0 and len(out["per_class_accuracy"]) == 10
    recorded = ledger.read_json(trained.out / ledger.RESULT)["test_acc"]
    assert out["recorded_test_acc"] == recorded

    code, stdout, _ = cli("evaluate", trained.out / "checkpoint.pt", "--device", "cpu")
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].startswith("mlp on test (10000 images): acc ")
    assert [line.split(":")[0].strip() for line in lines[1:11]] == [f"class {c}" for c in range(10)]
    assert lines[11].startswith("recorded at training: test acc ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "evaluate needs a checkpoint path"),
        (["missing.pt"], "missing.pt: checkpoint not found"),
        (["garbage.pt"], "garbage.pt: not a readable mnistlab checkpoint"),
    ],
)
def test_evaluate_bad_input(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.pt").write_bytes(b"\x80\x02garbage")
    code, _, stderr = cli("evaluate", *args)
    assert code == 2
    assert stderr.startswith("mnistlab: error: ") and stderr.count("\n") == 1
    assert message in stderr


def test_evaluate_unknown_split(trained):
    code, _, stderr = cli("evaluate", trained.out / "checkpoint.pt", "--split", "train")
    assert code == 2 and "unknown split 'train'; valid: test, val" in stderr


# ------------------------------------------------------------------ the real command line
@pytest.mark.slow  # a fresh interpreter imports torch and trains: ~6 s
def test_python_dash_m_train_smoke(tmp_path):
    out = tmp_path / "run"
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnistlab",
            "train",
            "--model",
            "lenet",
            "--epochs",
            "1",
            "--train-subset",
            "200",
            "--eval-subset",
            "100",
            "--out-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    assert ledger.read_json(out / ledger.RESULT)["status"] == "finished"
    assert f"run folder: {out}" in proc.stdout
