"""TrainConfig: every bad value is refused before any work, with a message that names the
setting and the problem; dicts and TOML files land in the same typed dataclass."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json

import pytest
import torch

from mnistlab import engine
from mnistlab.cli import main
from mnistlab.config import (
    FIELD_TYPES,
    IDENTITY_FIELDS,
    ConfigError,
    TrainConfig,
    check_settings,
    load_toml,
)
from mnistlab.models import list_models


def test_defaults_are_valid_and_match_the_users_protocol():
    config = TrainConfig().validate()
    # The user's course settings: Adam, batch 64, 8 epochs, 10% held out for validation.
    assert (config.optimizer, config.batch_size, config.epochs, config.val_fraction) == (
        "adam",
        64,
        8,
        0.1,
    )


def test_a_config_error_reaches_the_command_line_as_one_line_and_exit_2():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["train", "--lr", "-1"]) == 2
    assert err.getvalue() == "mnistlab: error: lr must be > 0, got -1.0\n"
    # --debug (before or after the subcommand) shows the exception itself instead.
    for argv in (["--debug", "train", "--lr", "-1"], ["train", "--lr", "-1", "--debug"]):
        with pytest.raises(ConfigError, match=r"^lr must be > 0, got -1.0$"):
            main(argv)


def test_every_setting_has_help_and_a_resolved_type():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata["help"].strip(), f"{f.name} has no help text"
        assert "\n" not in f.metadata["help"]
    # Types come from typing.get_type_hints, not from the annotation strings.
    assert FIELD_TYPES["lr"] is float and FIELD_TYPES["train_subset"] == int | None
    assert dataclasses.fields(TrainConfig)[0].type == "str"  # the raw annotation is a string


def test_identity_leaves_out_where_and_how_a_run_executes():
    assert set(f.name for f in dataclasses.fields(TrainConfig)) - IDENTITY_FIELDS == {
        "device",
        "num_threads",
        "out_dir",
        "tensorboard",
    }
    a = TrainConfig(device="cpu", num_threads=1, out_dir="x", tensorboard=False)
    b = TrainConfig(device="auto", num_threads=None, out_dir=None)
    assert a.identity() == b.identity()
    assert TrainConfig(lr=0.01).identity() != b.identity()


def test_choices_are_in_the_metadata():
    choices = {f.name: f.metadata["choices"] for f in dataclasses.fields(TrainConfig)}
    assert choices["optimizer"] == ("adam", "adamw", "sgd")
    assert choices["schedule"] == ("constant", "onecycle", "cosine")
    assert choices["precision"] == ("auto", "fp32", "bf16", "fp16")
    assert choices["device"] == ("auto", "cpu", "cuda", "mps")


def test_unknown_model_lists_every_valid_name():
    with pytest.raises(ConfigError, match="unknown model 'lenett'") as info:
        TrainConfig(model="lenett").validate()
    message = str(info.value)
    assert "valid models:" in message
    for name in list_models():
        assert name in message


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lr": 0.0}, "lr must be > 0, got 0.0"),
        ({"lr": -1.0}, "lr must be > 0, got -1.0"),
        ({"lr": float("nan")}, "lr must be a finite number, got nan"),
        ({"lr": float("inf")}, "lr must be a finite number, got inf"),
        ({"weight_decay": float("inf")}, "weight_decay must be a finite number, got inf"),
        ({"rotate_degrees": float("-inf")}, "rotate_degrees must be a finite number, got -inf"),
        ({"seed": -1}, r"seed must be in \[0, 2\*\*63\), got -1"),
        ({"seed": 2**63}, r"seed must be in \[0, 2\*\*63\), got 9223372036854775808"),
        ({"split_seed": -5}, r"split_seed must be in \[0, 2\*\*63\), got -5"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"dropout": -0.1}, r"dropout must be in \[0, 1\), got -0.1"),
        ({"epochs": 0}, "epochs must be >= 1, got 0"),
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"eval_batch_size": 0}, "eval_batch_size must be >= 1, got 0"),
        ({"optimizer": "adagrad"}, "unknown optimizer 'adagrad'; valid: adam, adamw, sgd"),
        ({"schedule": "step"}, "unknown schedule 'step'; valid: constant, onecycle, cosine"),
        ({"device": "tpu"}, "unknown device 'tpu'; valid: auto, cpu, cuda, mps"),
        ({"precision": "fp8"}, "unknown precision 'fp8'; valid: auto, fp32, bf16, fp16"),
        ({"weight_decay": -1e-4}, "weight_decay must be >= 0"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
        ({"warmup_epochs": -1.0}, "warmup_epochs must be >= 0"),
        ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
        ({"val_fraction": 0.0}, r"val_fraction must be in \(0, 1\), got 0.0"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \(0, 1\), got 1.0"),
        ({"ema_decay": 1.0}, r"ema_decay must be in \[0, 1\)"),
        ({"rotate_degrees": 181.0}, r"rotate_degrees must be in \[0, 180\]"),
        ({"translate": 1.0}, r"translate must be in \[0, 1\)"),
        ({"scale": -0.1}, r"scale must be in \[0, 1\)"),
        ({"train_subset": 0}, "train_subset must be >= 1, got 0"),
        ({"eval_subset": 0}, "eval_subset must be >= 1, got 0"),
        ({"num_threads": 0}, "num_threads must be >= 1, got 0"),
        ({"model_kwargs": [1, 2]}, r"config: model_kwargs must be dict\[str, Any\], got \[1, 2\]"),
        ({"lr": "fast"}, "config: lr must be float, got 'fast'"),
        (
            {"model_kwargs": {"dropout": 0.5}},
            "model_kwargs: dropout is not an architecture option; set the top-level dropout "
            r"setting \(--dropout\) instead",
        ),
        (
            {"model_kwargs": {"num_classes": 5}},
            "model_kwargs: num_classes is not an architecture option; it comes from the dataset",
        ),
        (
            {"model_kwargs": {"in_channels": 3}},
            "model_kwargs: in_channels is not an architecture option; it comes from the dataset",
        ),
        (
            {"model_kwargs": {"hiden": 3}},
            r"model 'lenet': unknown architecture option 'hiden' \(did you mean hidden\?\); "
            "options: image_size=28, hidden=84",
        ),
        (
            {"model": "wrn", "model_kwargs": {"widen_factor": 200}},
            "model 'wrn' with widen_factor=200 has 6,830,899,386 parameters, over the budget "
            "of 1,000,000,000",
        ),
    ],
)
def test_each_bad_value_is_refused_with_its_message(settings, message):
    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig(**settings).validate()
    assert "\n" not in str(info.value)


def test_validate_is_idempotent_and_makes_ints_floats():
    config = TrainConfig(lr=1, dropout=0)
    assert config.validate() is config
    assert isinstance(config.lr, float) and isinstance(config.dropout, float)
    before = config.to_dict()
    assert config.validate().to_dict() == before
    # lr = 1 and lr = 1.0 are one run.
    assert config.identity() == TrainConfig(lr=1.0, dropout=0.0).identity()


def test_boundary_values_are_accepted():
    # The edges that the ranges above include must stay valid.
    TrainConfig(
        dropout=0.0,
        epochs=1,
        batch_size=1,
        momentum=0.0,
        rotate_degrees=180.0,
        train_subset=1,
        eval_subset=1,
        label_smoothing=0.0,
    ).validate()


# ------------------------------------------------------------------ from_dict and TOML
def test_from_dict_refuses_unknown_keys_and_lists_the_valid_ones():
    with pytest.raises(
        ConfigError, match=r"my.toml: unknown setting\(s\) epoch, learning_rate"
    ) as info:
        TrainConfig.from_dict({"learning_rate": 0.1, "epoch": 3, "lr": 0.1}, source="my.toml")
    assert "valid: model, model_kwargs" in str(info.value)
    assert str(info.value).endswith("; did you mean epochs for epoch?")


def test_from_dict_suggests_the_closest_setting():
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"epoch": 3}, source="run.toml")
    valid = ", ".join(f.name for f in dataclasses.fields(TrainConfig))
    assert str(info.value) == (
        f"run.toml: unknown setting(s) epoch; valid: {valid}; did you mean epochs?"
    )


def test_from_dict_validates():
    with pytest.raises(ConfigError, match="^lr must be > 0, got -1.0$"):
        TrainConfig.from_dict({"lr": -1})
    with pytest.raises(ConfigError, match="^unknown model 'lenett'; valid models: "):
        TrainConfig.from_dict({"model": "lenett"})


def test_check_settings_blames_its_source_and_returns_coerced_values():
    assert check_settings({"lr": 1, "epochs": 2}, "--set") == {"lr": 1.0, "epochs": 2}
    assert isinstance(check_settings({"lr": 1}, "--set")["lr"], float)
    for values, message in [
        ({"lr": "fast"}, "--set: lr must be float, got 'fast'"),
        ({"lr": -1}, "--set: lr must be > 0, got -1.0"),
        ({"lr": float("inf")}, "--set: lr must be a finite number, got inf"),
        ({"optimizer": "adamm"}, "--set: unknown optimizer 'adamm'; valid: adam, adamw, sgd"),
    ]:
        with pytest.raises(ConfigError) as info:
            check_settings(values, "--set")
        assert str(info.value) == message
    # Options are checked against a model only once the sweep gives the model.
    assert check_settings({"model_kwargs": {"widen_factor": 2}}, "--set")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lr": "fast"}, "config: lr must be float, got 'fast'"),
        ({"epochs": 2.5}, "config: epochs must be int, got 2.5"),
        # bool is an int in Python; a TOML `epochs = true` is still a mistake.
        ({"epochs": True}, "config: epochs must be int, got True"),
        ({"augment": 1}, "config: augment must be bool, got 1"),
        ({"model": 3}, "config: model must be str, got 3"),
        ({"lr": None}, "config: lr must be float, got None"),
        ({"model_kwargs": "wide"}, r"config: model_kwargs must be dict\[str, Any\], got 'wide'"),
        ({"model_kwargs": {1: 2}}, r"config: model_kwargs must be dict\[str, Any\], got \{1: 2\}"),
        ({"train_subset": "all"}, r"config: train_subset must be int \| None, got 'all'"),
    ],
)
def test_from_dict_refuses_wrong_types(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(values)


def test_from_dict_accepts_ints_for_floats_and_none_for_optionals():
    config = TrainConfig.from_dict({"lr": 1, "dropout": 0, "train_subset": None, "data_dir": None})
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert isinstance(config.dropout, float)
    assert config.train_subset is None


def test_to_dict_round_trips_through_json():
    config = TrainConfig(
        model="mlp",
        model_kwargs={"hidden": [32]},
        lr=0.01,
        augment=True,
        train_subset=500,
        schedule="onecycle",
    )
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_load_toml_lands_in_the_config(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('model = "mlp"\nlr = 1\nepochs = 2\n[model_kwargs]\nhidden = [16, 8]\n')
    config = TrainConfig.from_dict(load_toml(path), source=str(path)).validate()
    assert (config.model, config.lr, config.epochs) == ("mlp", 1.0, 2)
    assert config.model_kwargs == {"hidden": [16, 8]}


def test_load_toml_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=f"{missing}: config file not found"):
        load_toml(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("lr = = 3\n")
    with pytest.raises(ConfigError, match=rf"{broken}: invalid TOML \("):
        load_toml(broken)
    with pytest.raises(ConfigError, match=f"{tmp_path}: cannot read"):
        load_toml(tmp_path)  # a folder, not a file


# ------------------------------------------------------------------ checks that need the data
def test_train_subset_larger_than_the_training_split(mnist):
    config = TrainConfig(train_subset=100_000, device="cpu")
    with pytest.raises(ConfigError, match="train_subset 100000 is larger than the training split"):
        engine.prepare_data(config, mnist, torch.device("cpu"))


def test_train_refuses_bad_settings_before_writing_anything(mnist, tmp_path, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was built for an invalid config")

    monkeypatch.setattr(engine, "create_model", no_model)
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="train_subset 100000 is larger"):
        engine.train(TrainConfig(train_subset=100_000, device="cpu", out_dir=str(out)), mnist)
    with pytest.raises(ConfigError, match="lr must be > 0"):
        engine.train(TrainConfig(lr=-1.0, device="cpu", out_dir=str(out)), mnist)
    with pytest.raises(ConfigError, match="precision 'fp16' is not supported on the CPU"):
        engine.train(TrainConfig(precision="fp16", device="cpu", out_dir=str(out)), mnist)
    assert not out.exists()


def test_subsets_give_the_recorded_sizes(mnist):
    config = TrainConfig(train_subset=300, eval_subset=120, device="cpu")
    train, val, test, _, info = engine.prepare_data(config, mnist, torch.device("cpu"))
    assert (len(train), len(val), len(test)) == (300, 120, 120)
    assert (info["train_used"], info["val_used"], info["test_used"]) == (300, 120, 120)
    # Test keeps its order: its first N images, so every run is judged on the same ones.
    assert torch.equal(test.labels, mnist.test_labels[:120])
    # The subset is seeded by split_seed: a rerun trains on exactly the same images.
    again, *_ = engine.prepare_data(config, mnist, torch.device("cpu"))
    assert torch.equal(train.images, again.images) and torch.equal(train.labels, again.labels)
