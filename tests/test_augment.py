"""The writer families of mnistlab.augment (issue 22): each one's shape, range, seeding and
effect, and that the label-conditional ones touch only their label's images."""

from __future__ import annotations

import pytest
import torch

from mnistlab.augment import (
    LABEL_P,
    WRITER_OPS,
    _enclosed,
    augment_batch,
    open_four,
    random_affine,
    writer_augment,
)
from mnistlab.config import WRITER_FAMILIES, ConfigError, TrainConfig
from mnistlab.engine import train


def _batch(mnist, n: int = 400):
    return mnist.train_images[:n].float()[:, None] / 255, mnist.train_labels[:n].clone()


def _changed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().flatten(1).amax(1) > 1e-6


def test_the_families_are_the_configs_in_its_order():
    assert tuple(WRITER_OPS) == WRITER_FAMILIES
    assert TrainConfig(writer_augment="all").writer_families() == WRITER_FAMILIES
    assert TrainConfig(writer_augment=" slant, ink ,").writer_families() == ("slant", "ink")
    assert TrainConfig().writer_families() == ()


def test_an_unknown_family_is_refused():
    with pytest.raises(ConfigError, match="writer_augment: unknown family 'italic'; valid: all"):
        TrainConfig(writer_augment="slant,italic").validate()


@pytest.mark.parametrize("name", WRITER_FAMILIES)
def test_each_family_is_seeded_bounded_and_changes_its_digits(name, mnist):
    op, label = WRITER_OPS[name]
    x, y = _batch(mnist)
    x = x[y == label][:16] if label is not None else x[:16]
    a = op(x.clone(), torch.Generator().manual_seed(3))
    b = op(x.clone(), torch.Generator().manual_seed(3))
    c = op(x.clone(), torch.Generator().manual_seed(4))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1 + 1e-6
    changed = _changed(a, x)
    # open_four only opens the 4s that are closed; every other family changes every digit.
    assert changed.all() if name != "open_four" else 1 <= changed.sum() < len(x)


@pytest.mark.parametrize("name", WRITER_FAMILIES)
def test_writer_augment_alters_only_its_labels_and_never_the_labels(name, mnist):
    x, y = _batch(mnist)
    before = y.clone()
    out = writer_augment(x, y, torch.Generator().manual_seed(0), (name,))
    again = writer_augment(x, y, torch.Generator().manual_seed(0), (name,))
    assert torch.equal(out, again) and out.shape == x.shape and torch.equal(y, before)
    changed = _changed(out, x)
    label = WRITER_OPS[name][1]
    if label is not None:
        assert not changed[y != label].any()
        if name != "open_four":  # about LABEL_P of them; open_four only the closed ones
            share = changed[y == label].float().mean()
            assert abs(share - LABEL_P) < 0.3
    else:
        assert 0.1 < changed.float().mean() < 0.45  # WRITER_P = 0.25 of the batch
    assert changed.any()


def test_writer_share_scales_how_many_images_change(mnist):
    """The share draws the same random numbers, so a smaller share changes a subset of the
    images a larger one changes; 0 changes none."""
    x, y = _batch(mnist)
    changed = {
        share: _changed(
            writer_augment(x, y, torch.Generator().manual_seed(0), ("slant",), share), x
        )
        for share in (0.0, 0.5, 1.0)
    }
    assert not changed[0.0].any()
    assert 0.05 < changed[0.5].float().mean() < 0.2  # WRITER_P x 0.5 = 0.125 of the batch
    assert (changed[0.5] <= changed[1.0]).all() and changed[1.0].sum() > changed[0.5].sum()


@pytest.mark.parametrize("share", [-0.1, 2.5, float("nan")])
def test_a_writer_share_out_of_range_is_refused(share):
    with pytest.raises(ConfigError, match="writer_share must be"):
        TrainConfig(writer_augment="all", writer_share=share).validate()


def _closed_four() -> torch.Tensor:
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 4:24, 16:18] = 1  # the upright
    for i in range(12):  # the diagonal, from the top of the upright down to the left
        x[0, 0, 4 + i, 16 - i : 18 - i] = 1
    x[0, 0, 15:17, 4:22] = 1  # the crossbar closes the triangle
    return x


def test_open_four_opens_a_closed_four_and_leaves_an_open_one():
    closed = _closed_four()
    assert _enclosed(closed).sum() >= 3
    opened = open_four(closed, torch.Generator().manual_seed(0))
    assert _enclosed(opened).sum() == 0 and opened.sum() < closed.sum()
    assert (opened[0, 0, 16:] == closed[0, 0, 16:]).all()  # below the triangle untouched
    already_open = closed.clone()
    already_open[0, 0, 4:9, 10:17] = 0  # no apex: the diagonal stops short of the upright
    assert _enclosed(already_open).sum() == 0
    assert torch.equal(open_four(already_open, torch.Generator().manual_seed(0)), already_open)


def test_continental_one_and_crossed_seven_add_ink_where_they_say(mnist):
    from mnistlab.augment import continental_one, crossed_seven

    x, y = _batch(mnist)
    ones = x[y == 1][:16]
    flagged = continental_one(ones, torch.Generator().manual_seed(0))
    added = (flagged - ones).clamp_min(0)[:, 0]  # (n, H, W)
    assert (added.sum((1, 2)) > 2).all()  # a flag or a foot on every one
    sevens = x[y == 7][:16]
    crossed = crossed_seven(sevens, torch.Generator().manual_seed(0))
    added = (crossed - sevens).clamp_min(0)[:, 0]
    rows = added.sum(2)  # (n, H): the bar is in the middle rows, not at the top
    assert (rows[:, 9:22].sum(1) > 0.8 * rows.sum(1)).all()


def test_augment_batch_runs_families_first_and_needs_labels(mnist):
    x, y = _batch(mnist, 64)
    with pytest.raises(ValueError, match="need the batch's labels"):
        augment_batch(x, torch.Generator(), writer_families=("slant",))
    g = torch.Generator().manual_seed(1)
    both = augment_batch(x, g, 10.0, 0.1, 0.1, labels=y, writer_families=("slant",))
    g = torch.Generator().manual_seed(1)
    expected = random_affine(writer_augment(x, y, g, ("slant",)), g, 10.0, 0.1, 0.1)
    assert torch.equal(both, expected)


def test_writer_augmentation_trains(tiny_dataset):
    config = TrainConfig(model="fastnet", epochs=1, writer_augment="all", precision="fp32")
    result = train(config, tiny_dataset, log=lambda *a: None, progress=False)
    assert result.status == "finished"
    assert result.model.mnistlab_meta["config"]["writer_augment"] == "all"
