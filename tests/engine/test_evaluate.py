"""The per-epoch evaluation: its record, and the size checks that come before training."""

from __future__ import annotations

import math

import pytest
import torch

from ald_tune.config.sections import EvalConfig, ModelConfig
from ald_tune.data.datasets import load_dataset, train_val_split
from ald_tune.engine.evaluate import Evaluator, check_clusters, check_eval_sizes, cluster_count
from ald_tune.engine.model import build_model
from ald_tune.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def splits():
    return train_val_split(load_dataset("digits"), 0.1, 0)


def test_a_record_holds_every_metric_and_one_kl_per_unit(splits, cache_dir):
    train, val = splits
    cfg = EvalConfig(n_fid=40, n_silhouette=100, cache_dir=cache_dir)
    evaluator = Evaluator(cfg, train, val, seed=0, device=torch.device("cpu"))
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=(16,)), train.image_shape, 6)
    record, unit_kl = evaluator(model, epoch=0)
    for key in ("recon_loss", "kl", "neg_elbo", "fid_gen", "fid_recon", "silhouette"):
        assert math.isfinite(record[key]), key
    assert len(unit_kl) == 6 and record["neg_elbo"] == pytest.approx(
        record["recon_loss"] + record["kl"]
    )
    assert evaluator.fid_extractor == "classifier"


def test_too_few_validation_images_fail_before_training(splits):
    _, val = splits
    with pytest.raises(DataError, match="eval.n_fid"):
        check_eval_sizes(EvalConfig(n_fid=10_000), val)
    with pytest.raises(DataError, match="eval.n_silhouette"):
        check_eval_sizes(EvalConfig(n_silhouette=10_000), val)


def test_labels_of_one_class_do_not_set_k_means_to_one_cluster(splits):
    from dataclasses import replace

    _, val = splits
    one = replace(val, y=torch.zeros_like(val.y))  # a folder of one class subfolder
    assert cluster_count(EvalConfig(), val) == 10 and cluster_count(EvalConfig(), one) == 10
    assert cluster_count(EvalConfig(n_clusters=4), one) == 4
    check_clusters(EvalConfig(n_silhouette=100), one)  # k=10: a silhouette exists
    # The silhouette of a real model's latents on them is a number, not NaN every epoch.
    evaluator = Evaluator(EvalConfig(n_silhouette=100), one, one, 0, torch.device("cpu"), fid=False)
    torch.manual_seed(0)
    record, _ = evaluator(build_model(ModelConfig(hidden=(16,)), one.image_shape, 4), epoch=0)
    assert math.isfinite(record["silhouette"])
    with pytest.raises(ConfigError, match="hold 1 class"):  # true labels: still refused
        check_clusters(EvalConfig(n_silhouette=100, silhouette_labels="true"), one)


@pytest.mark.parametrize("limit", [2, 20])
def test_a_split_too_small_for_any_silhouette_says_so_not_raise_n_silhouette(limit):
    """``--set data.limit=2`` leaves one validation sample: raising eval.n_silhouette cannot
    help, so the fix is more data."""
    from ald_tune.engine.evaluate import check_clusters

    _, val = train_val_split(load_dataset("digits", limit=limit), 0.1, 0)
    cfg = EvalConfig()
    with pytest.raises(DataError) as err:
        check_clusters(cfg, val)
    text = str(err.value)
    assert f"validation split has {val.n_samples} sample(s)" in text
    assert "raise data.limit or data.val_fraction" in text and "raise eval.n_silhouette" not in text
    if val.n_samples < 2:  # eval.n_fid cannot go that low either (2 at least)
        with pytest.raises(DataError, match="raise data.limit or data.val_fraction"):
            check_eval_sizes(cfg, val)
