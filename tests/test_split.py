"""The validation split: stratified, disjoint, complete, reproducible, and blind to the test set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnistlab.data import Split, stratified_split
from mnistlab.data.split import _splitmix64_keys
from mnistlab.errors import UserError


def test_stratified_per_class_fraction_within_one_image(mnist):
    split = stratified_split(mnist.train_labels, 0.1, seed=0)
    val_counts = torch.bincount(mnist.train_labels[split.val_indices], minlength=10)
    class_counts = torch.bincount(mnist.train_labels, minlength=10)
    for n_val, n in zip(val_counts.tolist(), class_counts.tolist(), strict=True):
        assert abs(n_val - 0.1 * n) <= 1


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.1, 0.33, 0.9])
def test_disjoint_sorted_and_covers_the_training_set(tiny_dataset, fraction):
    labels = tiny_dataset.train_labels
    split = stratified_split(labels, fraction, seed=3)
    train, val = split.train_indices, split.val_indices
    assert train.dtype == val.dtype == torch.int64
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(len(labels)))
    assert torch.equal(train, train.sort().values) and torch.equal(val, val.sort().values)
    counts = torch.bincount(labels)
    val_counts = torch.bincount(labels[val], minlength=len(counts))
    assert (val_counts - fraction * counts).abs().max() <= 1


def test_every_class_keeps_a_training_image():
    labels = torch.tensor([0, 0, 0, 0, 1])  # class 1 has a single image
    split = stratified_split(labels, 0.9, seed=0)
    assert 4 in split.train_indices.tolist()
    assert len(split.val_indices) == 3  # round(0.9 * 4) capped at 4 - 1


def test_reproducible_and_seed_dependent(mnist):
    a = stratified_split(mnist.train_labels, 0.1, seed=7)
    b = stratified_split(mnist.train_labels.clone(), 0.1, seed=7)
    c = stratified_split(mnist.train_labels, 0.1, seed=8)
    assert torch.equal(a.val_indices, b.val_indices) and a.digest == b.digest
    assert not torch.equal(a.val_indices, c.val_indices) and a.digest != c.digest
    assert len(a.val_indices) == len(c.val_indices) == 6000


def test_split_is_pinned_across_machines(mnist):
    # SplitMix64 is spelled out in split.py, so these never change with numpy or torch
    # versions; if this fails, every recorded split in every ledger has silently changed.
    assert _splitmix64_keys(0, 3).tolist() == [
        0xE220A8397B1DCDAF,
        0x6E789E6AA1B965F4,
        0x06C45D188009454F,
    ]
    split = stratified_split(mnist.train_labels, 0.1, seed=0)
    assert split.describe() == {
        "seed": 0,
        "fraction": 0.1,
        "train_size": 54000,
        "val_size": 6000,
        "hash": "e66ee08dc8cc35be",
    }


def test_numpy_labels_are_accepted(tiny_dataset):
    labels = tiny_dataset.train_labels
    a = stratified_split(labels, 0.2, seed=1)
    b = stratified_split(labels.numpy(), 0.2, seed=1)
    assert a.digest == b.digest


def test_test_set_untouched(tiny_dataset):
    test_before = (tiny_dataset.test_images.clone(), tiny_dataset.test_labels.clone())
    train_labels_before = tiny_dataset.train_labels.clone()
    split = stratified_split(tiny_dataset.train_labels, 0.1, seed=0)
    assert torch.equal(tiny_dataset.test_images, test_before[0])
    assert torch.equal(tiny_dataset.test_labels, test_before[1])
    assert torch.equal(tiny_dataset.train_labels, train_labels_before)
    n_train = len(tiny_dataset.train_labels)
    assert int(split.train_indices.max()) < n_train and int(split.val_indices.max()) < n_train


def test_describe_is_what_the_ledger_records(tiny_dataset):
    split = stratified_split(tiny_dataset.train_labels, 0.25, seed=5)
    assert isinstance(split, Split)
    d = split.describe()
    assert set(d) == {"seed", "fraction", "train_size", "val_size", "hash"}
    assert d["train_size"] + d["val_size"] == 200
    assert len(d["hash"]) == 16 and int(d["hash"], 16) >= 0


@pytest.mark.parametrize(
    ("fraction", "message"),
    [
        (1.0, r"validation fraction must be in \[0, 1\), got 1.0"),
        (-0.1, r"validation fraction must be in \[0, 1\), got -0.1"),
        (float("nan"), r"validation fraction must be in \[0, 1\), got nan"),
        ("0.1", r"validation fraction must be a number in \[0, 1\), got '0.1'"),
        (True, r"validation fraction must be a number"),
    ],
)
def test_bad_fraction(fraction, message):
    with pytest.raises(UserError, match=message):
        stratified_split(torch.zeros(10, dtype=torch.int64), fraction, seed=0)


def test_bad_seed_and_labels():
    with pytest.raises(UserError, match="split seed must be an integer, got 1.5"):
        stratified_split(torch.zeros(10, dtype=torch.int64), 0.1, seed=1.5)
    with pytest.raises(UserError, match=r"labels must be one-dimensional, got shape \(2, 5\)"):
        stratified_split(np.zeros((2, 5)), 0.1, seed=0)
