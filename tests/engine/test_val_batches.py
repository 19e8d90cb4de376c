"""The validation batches a Pruner is given: gathered, labelled only when every batch has
integer labels, cut at max_samples, refused with the fix."""

from __future__ import annotations

import pytest
import torch

from ald_tune.config.sections import EvalConfig
from ald_tune.engine.val_batches import collect_batches, split_batch
from ald_tune.errors import DataError

CPU = torch.device("cpu")


def test_labels_come_along_only_when_every_batch_has_integer_ones():
    x = torch.rand(30, 4)
    y = torch.arange(30) % 3
    data = collect_batches([(x[:20], y[:20]), (x[20:], y[20:])], CPU, 25, EvalConfig())
    assert data.x.shape == (25, 4) and data.x.dtype == torch.float32
    assert torch.equal(data.y, y[:25]) and data.y.dtype == torch.int64
    assert torch.equal(data.x, x[:25]) and data.x is not x  # a copy
    # one batch without labels, or float ones: no labels at all
    assert collect_batches([(x[:20], y[:20]), x[20:]], CPU, 30, EvalConfig()).y is None
    assert collect_batches([(x, y.float())], CPU, 30, EvalConfig()).y is None
    assert collect_batches(x, CPU, 30, EvalConfig()).x.shape == (30, 4)  # one tensor


def test_the_loader_is_read_only_as_far_as_needed():
    read = []

    def batches():
        for i in range(100):
            read.append(i)
            yield torch.rand(10, 2)

    assert len(collect_batches(batches(), CPU, 25, EvalConfig()).x) == 25
    assert read == [0, 1, 2]


@pytest.mark.parametrize(
    ("batches", "cfg", "match"),
    [
        ([], EvalConfig(), "gave no batches"),
        ([torch.rand(20, 3), torch.rand(5, 4)], EvalConfig(), "differ in sample shape"),
        ([torch.full((20, 3), float("nan"))], EvalConfig(), "NaN/inf"),
        ([torch.rand(8, 3)], EvalConfig(n_clusters=8), "8 validation samples for K-means"),
        ([torch.rand(20, 3)], EvalConfig(silhouette_labels="true"), "needs labels"),
        ([{"x": torch.rand(20, 3)}], EvalConfig(), "batch 0 is a dict"),
    ],
)
def test_bad_batches_are_refused_with_the_fix(batches, cfg, match):
    with pytest.raises(DataError, match=match) as err:
        collect_batches(batches, CPU, 100, cfg)
    assert "Fix" in str(err.value) or "expected" in str(err.value)


def test_a_batch_is_x_and_its_integer_labels_of_the_same_length():
    x = torch.rand(4, 2)
    assert split_batch(x, 0) == (x, None)
    got, y = split_batch((x, torch.tensor([1, 0, 1, 0]), "extra"), 0)
    assert got is x and y.tolist() == [1, 0, 1, 0]
    assert split_batch((x, torch.tensor([1, 0])), 0)[1] is None  # not one per sample
    assert split_batch([x], 0)[1] is None
