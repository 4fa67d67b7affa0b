"""Every command-line mistake is one clear line (or the subcommand's usage) and exit code 2,
before any work: typo'd flags get a suggestion, prefixes are not guessed, `--debug` works
anywhere, and a setting from `--set` is blamed on `--set`."""

from __future__ import annotations

import dataclasses

import pytest
from cli_helper import cli

from mnistlab.cli import main
from mnistlab.config import TrainConfig
from mnistlab.models import list_models

VALID_SETTINGS = ", ".join(f.name for f in dataclasses.fields(TrainConfig))
VALID_MODELS = ", ".join(list_models())


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written; the tests check tmp_path stays empty


# ------------------------------------------------------------------ usage errors (argparse)
@pytest.mark.parametrize(
    ("args", "usage", "message"),
    [
        (
            ["train", "--epoch", "1"],
            "usage: mnistlab train ",
            "mnistlab train: error: unrecognized arguments: --epoch 1; did you mean --epochs?",
        ),
        (
            ["train", "--lr=0.1", "--optimiser", "sgd"],
            "usage: mnistlab train ",
            "mnistlab train: error: unrecognized arguments: --optimiser sgd; "
            "did you mean --optimizer?",
        ),
        (
            ["data", "info", "--val-fractio", "0.2"],
            "usage: mnistlab data info ",
            "mnistlab data info: error: unrecognized arguments: --val-fractio 0.2; "
            "did you mean --val-fraction?",
        ),
        (
            ["sweep", "--no-reprot"],
            "usage: mnistlab sweep ",
            "mnistlab sweep: error: unrecognized arguments: --no-reprot; did you mean --no-report?",
        ),
        (
            ["models", "--zzz"],
            "usage: mnistlab models ",
            "mnistlab models: error: unrecognized arguments: --zzz",
        ),
        (
            ["train", "--lr", "fast"],
            "usage: mnistlab train ",
            "mnistlab train: error: argument --lr: invalid float value: 'fast'",
        ),
        (
            ["trian"],
            "usage: mnistlab ",
            "mnistlab: error: argument command: invalid choice: 'trian'",
        ),
    ],
)
def test_usage_errors_show_the_subcommands_usage_and_exit_2(args, usage, message, tmp_path):
    code, stdout, stderr = cli(*args)
    assert code == 2 and stdout == ""
    assert stderr.startswith(usage)
    assert stderr.splitlines()[-1].startswith(message)
    assert list(tmp_path.iterdir()) == []


def test_no_prefix_matching():
    # `--epoch` used to be taken silently as `--epochs`; `--arch` must not match `--architecture`.
    code, _, stderr = cli("train", "--epoch", "1")
    assert code == 2 and "unrecognized arguments: --epoch 1" in stderr
    code, _, stderr = cli("sweep", "--stat")
    assert code == 2 and stderr.splitlines()[-1] == (
        "mnistlab sweep: error: unrecognized arguments: --stat; did you mean --status?"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--debug", "train", "--lr", "-1"],
        ["train", "--debug", "--lr", "-1"],
        ["train", "--lr", "-1", "--debug"],
    ],
)
def test_debug_is_accepted_anywhere_and_shows_the_exception(args):
    from mnistlab.config import ConfigError

    with pytest.raises(ConfigError, match=r"^lr must be > 0, got -1.0$"):
        main(args)


def test_help_explains_every_train_flag():
    code, stdout, _ = cli("train", "--help")
    assert code == 0
    text = " ".join(stdout.split())  # argparse wraps lines
    assert "--optimizer {adam,adamw,sgd} optimiser (default adam)" in text
    assert "--schedule {constant,onecycle,cosine} learning-rate schedule" in text
    assert "--precision {auto,fp32,bf16,fp16}" in text
    assert "--device {auto,cpu,cuda,mps}" in text
    assert "--batch-size BATCH_SIZE images per optimiser step (default 64)" in text
    assert "--rotate-degrees ROTATE_DEGREES augmentation rotation in degrees" in text
    assert "default 0.0)" in text and "(default on)" in text
    for f in dataclasses.fields(TrainConfig):
        flag = "--arch" if f.name == "model_kwargs" else "--" + f.name.replace("_", "-")
        assert flag in text, flag
        assert " ".join(f.metadata["help"].split()) in text, f.name


# ------------------------------------------------------------------ train: one line, exit 2
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "inf"], "lr must be a finite number, got inf"),
        (["--lr", "nan"], "lr must be a finite number, got nan"),
        (["--seed", "-1"], "seed must be in [0, 2**63), got -1"),
        (["--split-seed", str(2**63)], "split_seed must be in [0, 2**63), got 9223372036854775808"),
        (
            ["--arch", "dropout=0.5"],
            "model_kwargs: dropout is not an architecture option; set the top-level dropout "
            "setting (--dropout) instead",
        ),
        (
            ["--arch", "num_classes=5"],
            "model_kwargs: num_classes is not an architecture option; it comes from the dataset "
            "(dataset or data_dir)",
        ),
        (
            ["--arch", "hiden=3"],
            "model 'lenet': unknown architecture option 'hiden' (did you mean hidden?); "
            "options: image_size=28, hidden=84",
        ),
        (
            ["--model", "wrn16_4", "--arch", "depth=22"],
            "model 'wrn16_4': architecture option depth is fixed at 16 by this variant; "
            "models that take it: wrn",
        ),
        (
            ["--model", "wrn", "--arch", "widen_factor=200"],
            "model 'wrn' with widen_factor=200 has 6,830,899,386 parameters, over the budget of "
            "1,000,000,000; choose smaller architecture options",
        ),
        (
            ["--model", "lenett"],
            f"unknown model 'lenett'; valid models: {VALID_MODELS}; did you mean 'lenet'?",
        ),
        (["--arch", "hidden"], "--arch: expected KEY=VALUE, got 'hidden'"),
        (["--optimizer", "adamm"], "unknown optimizer 'adamm'; valid: adam, adamw, sgd"),
    ],
)
def test_bad_train_settings_are_one_exact_line(args, message, tmp_path):
    code, stdout, stderr = cli("train", *args)
    assert (code, stdout, stderr) == (2, "", f"mnistlab: error: {message}\n")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ sweep
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["quik"],
            "quik: no such sweep file or shipped sweep; shipped: best, cpu_best, quick, seed; "
            "did you mean quick?",
        ),
        (["nothing-like-it"], "nothing-like-it: no such sweep file or shipped sweep; shipped: "),
        (
            ["--set", "epoch=1"],
            f"--set: unknown setting(s) epoch; valid: {VALID_SETTINGS}; did you mean epochs?",
        ),
        (
            ["--set", "out_dir=elsewhere"],
            "--set out_dir: a sweep puts each run in SWEEP_DIR/runs/RUN_ID; choose the sweep "
            "folder with --out DIR",
        ),
        (["--set", "lr=fast"], "--set: lr must be float, got 'fast'"),
        (["--set", "lr=-1"], "--set: lr must be > 0, got -1.0"),
        (["--set", "lr=Infinity"], "--set: lr must be a finite number, got inf"),
        (["--set", "epochs"], "--set: expected KEY=VALUE, got 'epochs'"),
        (
            ["--set", 'model_kwargs={"dropout": 0.1}'],
            "--set: model_kwargs: dropout is not an architecture option; set the top-level "
            "dropout setting (--dropout) instead",
        ),
    ],
)
def test_bad_sweep_input_is_one_line_exit_2(args, message, tmp_path):
    code, stdout, stderr = cli("sweep", *args, "--no-report")
    assert code == 2 and stdout == ""
    assert stderr.startswith(f"mnistlab: error: {message}") and stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # no sweep folder: it failed before any work


def test_a_shipped_sweep_name_still_resolves():
    code, stdout, stderr = cli("sweep", "quick", "--status", "--out", "quick-out")
    assert code == 0, stderr
    assert "quick: 0/" in stdout.splitlines()[-1]
