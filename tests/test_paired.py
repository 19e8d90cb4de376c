"""PairedTrainer (the overhead benchmark's engine): the trial and its plain twin follow
the uninterrupted run's exact path, and each block's times come out on the next record."""

from __future__ import annotations

import os

import pytest

from ald_tune.config import load_config
from ald_tune.loop import Trainer
from ald_tune.paired import PairedTrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ("n_z", "train_loss", "recon_loss", "kl", "fid_gen", "silhouette")


def tiny(cache_dir, *extra):
    return load_config(os.path.join(ROOT, "search_spaces", "digits.yaml"), overrides=[
        "train.epochs=8", "ald.window=4", "ald.patience=2", "ald.n_z_init=12",
        "model.hidden=[32, 32]", "eval.n_fid=50", f"eval.cache_dir={cache_dir}",
        "train.threads=1", "ald.rule=paper", *extra])


def test_trial_and_twin_both_follow_the_plain_runs_path(cache_dir):
    cfg = tiny(cache_dir)
    paired = PairedTrainer(cfg, block=3)
    drained = []
    paired.pause_reports = lambda: drained.append(paired.epoch)
    results = list(paired)
    plain = Trainer(cfg)
    list(plain)
    assert len(results) == len(plain.history) == 8
    assert len(paired.twin.history) == 6  # the twin skips the untimed last block
    for mine, ref in zip(paired.history, plain.history):
        for k in KEYS:
            assert mine[k] == pytest.approx(ref[k], rel=1e-6), k
    for twin, ref in zip(paired.twin.history, plain.history):
        for k in KEYS:
            assert twin[k] == pytest.approx(ref[k], rel=1e-6), k
    assert paired.model.n_z == plain.model.n_z < 12
    # Blocks of 3: epochs 0-2 and 3-5 are timed (6-7 is the untimed last block); the
    # times land on the first record after each block, and the reports were drained first.
    timed = [r.record["epoch"] for r in results if r.record["paired_epochs"]]
    assert timed == [3, 6] and drained == [3, 6]
    for r in results:
        rec = r.record
        if rec["epoch"] in timed:
            assert rec["paired_epochs"] == 3 and rec["paired_trial_s"] > 0
            assert rec["paired_plain_s"] > 0
        else:
            assert rec["paired_trial_s"] == rec["paired_plain_s"] == 0.0


def test_the_default_block_holds_whole_image_and_checkpoint_periods(cache_dir):
    cfg = tiny(cache_dir, "eval.image_every=4", "tune.checkpoint_every=6")
    assert PairedTrainer(cfg).block == 12
    # a checkpoint only at the end does not stretch the block
    assert PairedTrainer(tiny(cache_dir, "eval.image_every=4",
                              "tune.checkpoint_every=1000")).block == 4
