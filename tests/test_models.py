"""The model zoo: every registered model builds, runs forward and backward, honours the
common signature, and the seed models have the user's exact parameter counts."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn as nn

from mnistlab.cli import main
from mnistlab.errors import UserError
from mnistlab.models import (
    MAX_PARAMETERS,
    check_model,
    count_parameters,
    create_model,
    fixed_options,
    list_models,
    model_options,
)
from mnistlab.models.summary import count_macs, describe_model, describe_models

ALL_MODELS = list_models()
# Multi-second backward passes on 2 CPU cores (wrn28_10: 4 GMACs per image; vgg11_seed:
# 129M parameters): their blocks are already exercised by a smaller sibling, so the full
# forward/backward check runs only when `-m slow` (or no marker filter) asks for it.
HEAVY = {"vgg11_seed", "wrn28_10", "wrn16_8", "resnet34"}
# Round trips that would copy hundreds of MB (vgg11_seed's 103M-weight head) for no new
# coverage: every model's state dict is plain tensors, saved and loaded the same way.
NO_ROUNDTRIP = {"vgg11_seed", "wrn28_10"}


def _params(name):
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in name]


def build(name: str, seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **kw)


def meta_params(name: str, **kw) -> int:
    # The "meta" device gives shapes without memory: counting 129M parameters is free.
    with torch.device("meta"):
        return count_parameters(create_model(name, **kw))


def test_every_architecture_is_registered():
    expected = {"lenet", "alexnet", "resnet18", "resnet34", "vgg11_seed", "vgg11", "vgg13"}
    expected |= {"vgg16", "wrn16_4", "wrn28_10", "mlp", "m5", "mobilenetv2", "fastnet"}
    assert expected <= set(ALL_MODELS)
    assert sorted(ALL_MODELS) == ALL_MODELS


@pytest.mark.parametrize("name", _params(ALL_MODELS))
def test_forward_backward_and_dropout(name):
    model = build(name, dropout=0.25)
    model.train()
    x = torch.randn(2, 1, 28, 28)  # (B, C, H, W)
    logits = model(x)
    assert logits.shape == (2, 10)
    nn.functional.cross_entropy(logits, torch.tensor([3, 7])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"
    # Every model takes `dropout`, and every dropout layer gets the requested rate.
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout | nn.Dropout2d)]
    assert drops, f"{name} has no dropout layer"
    assert all(m.p == 0.25 for m in drops)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_other_sizes_and_state_dict_round_trip(name):
    # 47 classes (EMNIST balanced) and 3 channels: nothing may assume 1 channel or 10 classes.
    model = build(name, seed=0, num_classes=47, in_channels=3).eval()
    x = torch.randn(2, 3, 28, 28)  # (B, C, H, W)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, 47)
    if name in NO_ROUNDTRIP:
        return
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    other = build(name, seed=1, num_classes=47, in_channels=3).eval()  # other initial weights
    other.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        assert torch.equal(other(x), logits)


@pytest.mark.parametrize(
    "name, params",
    [
        ("lenet", 61_990),  # the user's table
        ("alexnet", 29_583_562),  # the user's table says 28,514,378: see alexnet.py
        ("resnet18", 11_172_810),  # the user's table
        ("vgg11_seed", 128_806_154),  # the user's "VGG-13"
        ("wrn16_4", 2_748_602),  # the user's table
        ("mlp", 535_818),
        ("fastnet", 98_682),
    ],
)
def test_exact_parameter_counts(name, params):
    assert meta_params(name) == params


def test_fastnet_is_cheap_per_image():
    # Time-to-99% is bound by compute per image, not by parameter count.
    assert count_macs(create_model("fastnet"), (1, 28, 28)) < 3_000_000


def test_variants_share_code_with_configurable_depth():
    assert meta_params("wrn", depth=16, widen_factor=4) == meta_params("wrn16_4")
    assert meta_params("wrn", depth=28, widen_factor=10) == meta_params("wrn28_10")
    assert meta_params("resnet34") > meta_params("resnet18")


def test_dummy_forward_leaves_batch_norm_untouched():
    # Flatten sizes are measured with a dummy forward in __init__; it must not leak into
    # the running statistics or the train/eval mode.
    model = build("lenet")
    assert model.training
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.num_batches_tracked.item() == 0
            assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(UserError) as info:
        create_model("resnet9000")
    assert "resnet9000" in str(info.value)
    assert ", ".join(sorted(list_models())) in str(info.value)


@pytest.mark.parametrize(
    ("name", "kw", "message"),
    [
        (
            "wrn",
            {"depth": 17},
            "WideResNet depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), got 17",
        ),
        (
            "lenet",
            {"hiden": 3},
            "model 'lenet': unknown architecture option 'hiden' (did you mean hidden?); "
            "options: image_size=28, hidden=84",
        ),
        (
            "lenet",
            {"widht": 3},
            "model 'lenet': unknown architecture option 'widht'; options: image_size=28, hidden=84",
        ),
        (
            "wrn16_4",
            {"width": 3},
            "model 'wrn16_4': unknown architecture option 'width'; it takes none",
        ),
        (
            "wrn16_4",
            {"depth": 22},
            "model 'wrn16_4': architecture option depth is fixed at 16 by this variant; "
            "models that take it: wrn",
        ),
        (
            "wrn",
            {"widen_factor": 2.5},
            "model 'wrn': architecture option widen_factor must be an integer (default 4), got 2.5",
        ),
        (
            "vgg11",
            {"batch_norm": 1},
            "model 'vgg11': architecture option batch_norm must be true or false (default True), "
            "got 1",
        ),
        (
            "mobilenetv2",
            {"width_mult": float("nan")},
            "model 'mobilenetv2': architecture option width_mult must be a finite number "
            "(default 1.0), got nan",
        ),
        (
            "mlp",
            {"hidden": 64},
            "model 'mlp': architecture option hidden must be a list (default (512, 256)), got 64",
        ),
        (
            "fastnet",
            {"widths": [16, 32]},
            "model 'fastnet' with widths=[16, 32] cannot be built: not enough values to unpack "
            "(expected 4, got 2)",
        ),
        (
            "lenet",
            {"hidden": -1},
            "model 'lenet' with hidden=-1 cannot be built: Trying to create tensor with negative "
            "dimension -1: [-1, 120]",
        ),
    ],
)
def test_bad_architecture_options_are_one_line_user_errors(name, kw, message):
    with pytest.raises(UserError) as info:
        create_model(name, **kw)
    assert str(info.value) == message
    with pytest.raises(UserError) as info:
        check_model(name, **kw)
    assert str(info.value) == message


def test_a_too_small_image_is_a_user_error():
    with pytest.raises(UserError, match="too small"):
        create_model("vgg11", image_size=8)  # four pools of an 8x8 map leave nothing


def test_options_come_from_the_constructor_signatures():
    assert model_options("lenet") == {"image_size": 28, "hidden": 84}
    assert model_options("wrn") == {"depth": 16, "widen_factor": 4}
    assert model_options("wrn16_4") == {}
    assert fixed_options("wrn16_8") == {"depth": 16, "widen_factor": 8}
    # A variant's own defaults (vgg11_seed: no batch norm, a 4096-wide head) stay overridable.
    assert model_options("vgg11_seed") == {
        "batch_norm": False,
        "pool_size": 7,
        "hidden": 4096,
        "image_size": 28,
    }
    assert meta_params("vgg11_seed", hidden=512) < meta_params("vgg11_seed")
    for name in ALL_MODELS:  # the common arguments are never options
        assert not {"num_classes", "in_channels", "dropout"} & set(model_options(name))


def test_a_variant_called_directly_builds_what_it_registered():
    # The variant's data lives in its registration (no source parsing), and the function the
    # file exports passes it on: wrn16_8() is WRN-16-8 whichever way it is reached.
    from mnistlab.models.vgg import vgg11_seed
    from mnistlab.models.wide_resnet import wrn16_8

    with torch.device("meta"):
        assert count_parameters(wrn16_8()) == meta_params("wrn16_8") != meta_params("wrn16_4")
        assert count_parameters(vgg11_seed()) == meta_params("vgg11_seed") == 128_806_154
        assert count_parameters(vgg11_seed(hidden=512)) == meta_params("vgg11_seed", hidden=512)


def test_a_model_over_the_parameter_budget_is_refused_before_allocating():
    # 6.8 billion parameters would need 27 GB for the weights alone; the meta device sizes
    # the model without allocating any of it.
    with pytest.raises(UserError) as info:
        create_model("wrn", widen_factor=200)
    assert str(info.value) == (
        "model 'wrn' with widen_factor=200 has 6,830,899,386 parameters, over the budget of "
        "1,000,000,000; choose smaller architecture options"
    )
    assert MAX_PARAMETERS == 1_000_000_000
    with pytest.raises(UserError, match="over the budget"):
        check_model("lenet", num_classes=20_000_000)  # a 1.7-billion-weight head


def test_check_model_returns_the_parameter_count():
    assert check_model("wrn16_4") == 2_748_602
    assert check_model("wrn", depth=28, widen_factor=10) == 36_478_906
    assert check_model("vgg11_seed") == 128_806_154


def test_the_size_check_leaves_the_random_stream_alone():
    # The meta-device build before the real one must not move the seeded initial weights.
    from mnistlab.models.registry import _REGISTRY

    torch.manual_seed(0)
    direct = _REGISTRY["lenet"](num_classes=10, in_channels=1, dropout=0.0).state_dict()
    torch.manual_seed(0)
    checked = create_model("lenet").state_dict()
    assert all(torch.equal(direct[k], checked[k]) for k in direct)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"num_classes": 0}, "num_classes must be a positive integer, got 0"),
        ({"in_channels": 0}, "in_channels must be a positive integer, got 0"),
        ({"num_classes": 2.5}, "num_classes must be a positive integer, got 2.5"),
        ({"dropout": "0.3"}, "dropout must be a number"),
        ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\), got 1.0"),
        ({"dropout": -0.1}, r"dropout must be a number in \[0, 1\), got -0.1"),
    ],
)
def test_common_arguments_are_validated(kw, message):
    with pytest.raises(UserError, match=message):
        create_model("lenet", **kw)


def test_macs_are_counted_by_hooks():
    # LeNet by hand: conv 6x28x28x25 + 16x10x10x150 + 120x400, linear 120x84 + 84x10.
    assert count_macs(build("lenet")) == 117_600 + 240_000 + 48_000 + 10_080 + 840
    # A model on the meta device gives the same count without any arithmetic.
    row = next(r for r in describe_models(["resnet18"]))
    assert row["macs"] == count_macs(build("resnet18"))
    assert row["params"] == 11_172_810
    assert "He et al. 2016" in row["paper"]


def test_every_model_names_its_paper():
    for row in describe_models():
        assert row["paper"], f"{row['name']} has no PAPER"
        assert row["macs"] > 0


def test_models_cli_prints_the_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lenet_line = next(line for line in out.splitlines() if line.startswith("lenet "))
    assert "61,990" in lenet_line
    assert all(name in out for name in ALL_MODELS)


def test_aliases_share_one_row(capsys):
    rows = describe_models()
    assert [r["aliases"] for r in rows if r["name"] == "wrn16_4"] == [["wrn"]]
    assert "wrn" not in [r["name"] for r in rows]
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    wrn_lines = [line for line in lines if line.startswith("wrn16_4") or line.startswith("wrn ")]
    assert len(wrn_lines) == 1 and wrn_lines[0].startswith("wrn16_4 (alias wrn) ")
    assert "2,748,602" in wrn_lines[0]


def test_describe_model_lists_options_fixed_values_and_variants():
    wrn = describe_model("wrn")
    assert (wrn["class"], wrn["aliases"], wrn["params"]) == ("WideResNet", ["wrn16_4"], 2_748_602)
    assert wrn["options"] == {"depth": 16, "widen_factor": 4} and wrn["fixed"] == {}
    assert wrn["variants"] == ["wrn16_4", "wrn16_8", "wrn28_10"]
    assert describe_model("mlp")["options"] == {"hidden": [512, 256], "image_size": 28}


def test_models_cli_shows_one_models_options(capsys):
    assert main(["models", "wrn16_8"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "wrn16_8: WideResNet, 10,961,082 parameters, 1185.07 MMACs per 1x28x28 image",
        "paper: Zagoruyko & Komodakis 2016, Wide residual networks",
        "architecture options: none",
        "fixed by this variant: depth=16, widen_factor=8",
        "other variants of WideResNet: wrn, wrn16_4, wrn28_10",
        "not options: num_classes and in_channels come from the dataset, dropout from --dropout",
    ]
    assert main(["models", "lenet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2:5] == [
        "architecture options (--arch KEY=VALUE; [model_kwargs] in a TOML file):",
        "  image_size  default 28",
        "  hidden      default 84",
    ]


def test_models_cli_unknown_name_is_one_line_exit_2(capsys):
    assert main(["models", "lenett"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "mnistlab: error: unknown model 'lenett'; valid models: "
        + ", ".join(ALL_MODELS)
        + "; did you mean 'lenet'?\n"
    )
