"""The model zoo: every registered model builds, runs forward and backward, honours the
common signature, and the seed models have the user's exact parameter counts."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn as nn

from mnistlab.cli import main
from mnistlab.errors import UserError
from mnistlab.models import count_parameters, create_model, list_models
from mnistlab.models.summary import count_macs, describe_models

torch.set_num_threads(2)

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


def test_bad_architecture_options_are_user_errors():
    with pytest.raises(UserError, match="depth must be 6n"):
        create_model("wrn", depth=17)
    with pytest.raises(UserError, match="unexpected keyword argument 'widht'"):
        create_model("lenet", widht=3)
    with pytest.raises(UserError, match="too small"):
        create_model("vgg11", image_size=8)  # four pools of an 8x8 map leave nothing


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
