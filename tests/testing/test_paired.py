"""PairedTrainer (the overhead benchmark's engine): the trial and its plain twin follow
the uninterrupted run's exact path, and every record carries both epochs' times."""

from __future__ import annotations

import os
import time

import pytest
from conftest import ROOT

from ald_tune.config.schema import load_config
from ald_tune.engine.callbacks import Cadence, Callback
from ald_tune.engine.trainer import Trainer
from ald_tune.testing.paired import PairedTrainer


class Collect(Callback):
    def __init__(self, into):
        self.into = into

    def on_epoch_end(self, trainer, result):
        self.into.append(result)


KEYS = ("n_z", "train_loss", "recon_loss", "kl", "fid_gen", "silhouette")


def tiny(cache_dir, *extra):
    return load_config(
        os.path.join(ROOT, "search_spaces", "digits.yaml"),
        overrides=[
            "train.epochs=8",
            "ald.window=4",
            "ald.patience=2",
            "ald.n_z_init=12",
            "model.hidden=[32, 32]",
            "eval.n_fid=50",
            f"eval.cache_dir={cache_dir}",
            "train.threads=1",
            "ald.rule=paper",
            *extra,
        ],
    )


def test_trial_and_twin_both_follow_the_plain_runs_path(cache_dir):
    cfg = tiny(cache_dir)
    paired = PairedTrainer(cfg)
    drained = []

    class Recorder(Callback):  # what a Tune reporter's drain() sees
        def drain(self):
            drained.append(paired.epoch)

    results = []
    paired.fit([Recorder(), Collect(results)], Cadence(checkpoint_every=0))
    plain = Trainer(cfg)
    list(plain)
    assert len(results) == len(plain.history) == len(paired.plain.history) == 8
    for mine, twin, ref in zip(paired.history, paired.plain.history, plain.history):
        for k in KEYS:
            assert mine[k] == pytest.approx(ref[k], rel=1e-6), k
            assert twin[k] == pytest.approx(ref[k], rel=1e-6), k
    assert paired.model.n_z == paired.plain.model.n_z == plain.model.n_z < 12
    # the report in flight is waited for after each trial epoch, before its twin runs
    assert drained == list(range(1, 9))
    assert all(r.record["paired_trial_s"] > 0 and r.record["paired_plain_s"] > 0 for r in results)


def test_the_callers_work_on_an_epoch_counts_for_the_trial_on_the_next_record(cache_dir):
    paired = PairedTrainer(tiny(cache_dir))
    records = []
    for result in paired:
        records.append(result.record)
        if result.epoch == 2:
            time.sleep(1.0)  # stands for MLflow, a checkpoint and a report
    slow = records[3]["paired_trial_s"] - records[3]["paired_plain_s"]
    usual = max(
        r["paired_trial_s"] - r["paired_plain_s"] for i, r in enumerate(records) if i not in (0, 3)
    )
    assert slow > 0.6 > usual  # wide margins: a loaded machine moves epochs by ~0.1 s


def test_the_trial_clock_leaves_out_the_twins_epochs(cache_dir):
    paired = PairedTrainer(tiny(cache_dir))
    start_wall, start_clock = time.monotonic(), paired.trial_clock()
    for _ in paired:
        pass
    wall, own = time.monotonic() - start_wall, paired.trial_clock() - start_clock
    assert paired.plain_s > 0 and own == pytest.approx(wall - paired.plain_s, abs=0.05)
