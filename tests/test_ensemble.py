"""`mnistlab evaluate --ensemble`: the mean of the members' softmax probabilities, judged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mnistlab import cli
from mnistlab.checkpoint import load_checkpoint, read_checkpoint
from mnistlab.errors import UserError
from mnistlab.evaluate import evaluate_ensemble
from mnistlab.inference import to_input


def _variant(checkpoint, path, seed: int, noise: float = 0.05, **changes):
    """A different model of the same task: the trained weights, jittered."""
    meta = read_checkpoint(checkpoint)
    g = torch.Generator().manual_seed(seed)
    meta["state_dict"] = {
        k: v + noise * v.std() * torch.randn(v.shape, generator=g)
        if v.is_floating_point() and v.numel() > 1
        else v
        for k, v in meta["state_dict"].items()
    }
    meta.update(changes)
    torch.save(meta, path)
    return path


@pytest.fixture(scope="module")
def members(checkpoint, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ensemble")
    return [
        checkpoint,
        _variant(checkpoint, folder / "b.pt", seed=1, noise=0.3),
        _variant(checkpoint, folder / "c.pt", seed=2, noise=0.3),
    ]


def _probabilities(path, images: torch.Tensor) -> torch.Tensor:
    model, meta = load_checkpoint(path)
    norm = meta["normalization"]
    with torch.inference_mode():
        return torch.cat(
            [
                model(to_input(batch, norm["mean"], norm["std"], False)).softmax(1).double()
                for batch in images.split(1000)
            ]
        )


def test_ensemble_is_argmax_of_mean_probabilities(members, mnist):
    out = evaluate_ensemble(members, device="cpu", precision="fp32")
    images, labels = mnist.test_images, mnist.test_labels
    probs = [_probabilities(p, images) for p in members]
    singles = [(p.argmax(1) == labels).double().mean().item() for p in probs]
    expected = (torch.stack(probs).mean(0).argmax(1) == labels).double().mean().item()
    assert out["images"] == len(labels) == 10_000
    assert out["ensemble"]["acc"] == pytest.approx(expected, abs=1e-12)
    assert [m["acc"] for m in out["models"]] == pytest.approx(singles, abs=1e-6)
    assert [m["checkpoint"] for m in out["models"]] == [str(p) for p in members]
    # The jittered members disagree with each other, so the test above is not vacuous.
    assert len({round(a, 4) for a in singles}) > 1
    assert 0 < out["ensemble"]["loss"] < 5 and len(out["ensemble"]["per_class_accuracy"]) == 10


def test_cli_prints_each_model_and_the_ensemble(members, capsys):
    code = cli.main(["evaluate", "--ensemble", *map(str, members), "--device", "cpu"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "ensemble of 3 on test (10000 images):"
    for path, line in zip(members, lines[1:4], strict=True):
        assert line.strip().startswith("lenet") and line.endswith(str(path)) and "acc 0." in line
    assert lines[4].strip().startswith("ensemble") and "points vs the best single model" in lines[4]

    assert cli.main(["evaluate", str(members[0]), "--ensemble", str(members[1]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [m["checkpoint"] for m in out["models"]] == [str(members[0]), str(members[1])]
    assert 0 <= out["ensemble"]["acc"] <= 1


def test_members_must_share_the_task(checkpoint, tmp_path, capsys):
    from mnistlab.models import create_model

    five = create_model("lenet", num_classes=5, in_channels=1, dropout=0.0)
    meta = read_checkpoint(checkpoint)
    meta.update(
        model_kwargs=dict(meta["model_kwargs"], num_classes=5), state_dict=five.state_dict()
    )
    torch.save(meta, tmp_path / "five.pt")
    with pytest.raises(UserError, match="number of classes is 5, but .* has 10"):
        evaluate_ensemble([checkpoint, tmp_path / "five.pt"])

    _variant(checkpoint, tmp_path / "big.pt", seed=3, image_size=[32, 32])
    code = cli.main(["evaluate", "--ensemble", str(checkpoint), str(tmp_path / "big.pt")])
    assert code == 2
    assert "image size is [32, 32], but" in capsys.readouterr().err

    with pytest.raises(UserError, match="at least two checkpoints"):
        evaluate_ensemble([checkpoint])
    with pytest.raises(UserError, match="checkpoint not found"):
        evaluate_ensemble([checkpoint, tmp_path / "missing.pt"])


def test_ensemble_of_identical_models_equals_the_model(checkpoint):
    out = evaluate_ensemble([checkpoint, checkpoint], device="cpu", precision="fp32")
    assert out["ensemble"]["acc"] == pytest.approx(out["models"][0]["acc"], abs=1e-6)
    assert np.isfinite(out["ensemble"]["loss"])


# ---------------------------------------------------------------- hostile members (issue 13)
@pytest.mark.parametrize(
    "change,expected",
    [
        ({"config": None}, "records no training config"),
        ({"normalization": {"mean": 0.1, "std": 0}}, "std must be a finite number > 0"),
        ({"model_kwargs": None}, "model_kwargs must be"),
        ({"image_size": [20000, 20000]}, "image_size must be"),
    ],
    ids=["no config", "std 0", "no model_kwargs", "huge image_size"],
)
def test_bad_metadata_is_one_line_for_evaluate_and_ensembles(
    checkpoint, tmp_path, capsys, change, expected
):
    meta = torch.load(checkpoint, weights_only=True)
    meta.update(change)
    bad = tmp_path / "bad.pt"
    torch.save(meta, bad)
    for args in (
        ["evaluate", str(bad), "--device", "cpu"],
        ["evaluate", "--ensemble", str(checkpoint), str(bad), "--device", "cpu"],
    ):
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"mnistlab: error: {bad}: ") and expected in err, err
        assert err.count("\n") == 1
