"""Fault tolerance with real processes dying (issue 5, items 1-3).

* a trial's worker process is SIGKILLed mid-pruning: Ray retries it from its last
  checkpoint, and with a fixed seed it ends exactly where an uninterrupted run ends;
* the driver is SIGKILLed mid-sweep: ``resume=True`` finishes the sweep without
  rerunning finished trials, without duplicate MLflow runs, and the comparison
  report equals the uninterrupted sweep's;
* the worker node of a real two-node cluster goes away mid-sweep: its trials are
  rescheduled on the head node and the sweep finishes.

Everything is real (tiny VAEs on digits, Ray, MLflow on SQLite); the machine has two
cores, so the nets and runs are as small as the behaviours allow.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from ray import tune

from ald_tune.config import load_config
from ald_tune.loop import Trainer
from ald_tune.tuners import SweepOptions, run_sweep

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FINAL_KEYS = ("recon_loss", "kl", "neg_elbo", "fid_gen", "fid_recon", "silhouette")


def tiny(cache_dir, epochs, *extra):
    """The tiny digits config of test_sweeps_real.py (prunes at epochs 2, 4, 6...)."""
    return [f"train.epochs={epochs}", "ald.window=4", "ald.patience=2", "ald.n_z_init=12",
            "model.hidden=[64, 64]", "eval.n_fid=50", f"eval.cache_dir={cache_dir}",
            "tune.num_samples=1", "tune.checkpoint_every=2", *extra]


def tiny_cfg(cache_dir, epochs, *extra):
    return load_config(os.path.join(ROOT, "search_spaces", "digits.yaml"),
                       overrides=tiny(cache_dir, epochs, *extra))


def tune_rows(trial: dict) -> list[dict]:
    """Every result row Tune recorded for a trial (its result.json), in order."""
    with open(os.path.join(trial["path"], "result.json")) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def mlflow_children(result):
    from mlflow import MlflowClient
    c = MlflowClient(result.tracking_uri)
    runs = c.search_runs([result.experiment_id], max_results=1000)
    parents = [r for r in runs if r.info.run_id == result.parent_run_id]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    return c, parents, children


def logged(c, run_id, key="n_z") -> list[tuple[int, float]]:
    """(step, value) of every logged point of a metric, duplicates included, by step."""
    return sorted((m.step, m.value) for m in c.get_metric_history(run_id, key))


# ------------------------------------------------------------------ 1. a trial dies
class KillMidPruning(tune.Callback):
    """SIGKILLs a trial's worker process once, right after an epoch that pruned units
    when that epoch is not a checkpoint epoch (so the retry must restore the size from
    *before* the prune). Tune pickles callbacks: the "done" state lives in a file."""

    def __init__(self, marker: str, every: int, n_z_init: int) -> None:
        self.marker, self.every, self.n_z_init = marker, every, n_z_init

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if os.path.exists(self.marker):
            return
        epoch = result.get("epoch", -1)
        if (result.get("removed", 0) > 0 and result.get("n_z", self.n_z_init) < self.n_z_init
                and (epoch + 1) % self.every != 0):
            with open(self.marker, "w") as fh:
                json.dump({"epoch": epoch, "pid": result["pid"], "n_z": result["n_z"],
                           "n_z_next": result["n_z_next"]}, fh)
            os.kill(result["pid"], signal.SIGKILL)


def test_a_killed_trial_process_resumes_from_its_checkpoint_mid_pruning(
        ray_session, cache_dir, tmp_path):
    epochs, every = 12, 2
    cfg = tiny_cfg(cache_dir, epochs)
    marker = str(tmp_path / "killed.json")
    result = run_sweep(cfg, SweepOptions(
        mode="ald", run_dir=str(tmp_path), verbose=False, name="trial-dies",
        callbacks=(KillMidPruning(marker, every, cfg.ald.n_z_init),)))
    assert os.path.exists(marker), "the callback never killed the trial"
    killed = json.load(open(marker))
    (trial,) = result.trials
    assert trial["status"] == "TERMINATED"

    # Ray really restarted the trial in a new process, from the last checkpoint
    # before the kill: the first epoch it reported afterwards follows that checkpoint.
    rows = tune_rows(trial)
    before = [r for r in rows if r["pid"] == killed["pid"]]
    after = [r for r in rows if r["pid"] != killed["pid"]]
    assert before and after, "no retry in a new process"
    last_ckpt = max(r["epoch"] for r in before if (r["epoch"] + 1) % every == 0)
    assert last_ckpt < killed["epoch"]                    # the prune was after the checkpoint
    assert after[0]["epoch"] == last_ckpt + 1, "the retry did not resume from the checkpoint"
    by_epoch = {r["epoch"]: r for r in before}
    assert after[0]["n_z"] == by_epoch[last_ckpt]["n_z_next"] > killed["n_z_next"]
    assert [r["epoch"] for r in after] == list(range(last_ckpt + 1, epochs))
    assert [h["epoch"] for h in trial["history"]] == list(range(epochs)) == \
        sorted(r["epoch"] for r in rows)                  # no epoch twice in Tune's records
    assert trial["epochs"] == epochs

    # The same seed without Ray and without the kill.
    clean = Trainer(cfg.replace(train={"threads": 1}))
    list(clean)
    assert len(clean.history) == epochs
    assert trial["final_n_z"] == clean.model.n_z < cfg.ald.n_z_init
    for key in FINAL_KEYS:
        assert trial["metrics"][key] == pytest.approx(clean.history[-1][key], rel=1e-6), key

    # MLflow: one child run, every epoch step exactly once, the clean trajectory.
    c, parents, children = mlflow_children(result)
    assert len(parents) == 1 and len(children) == 1
    run_id = children[0].info.run_id
    n_z = logged(c, run_id)
    assert [s for s, _ in n_z] == list(range(epochs))
    assert [v for _, v in n_z] == [h["n_z"] for h in clean.history]
    recon = logged(c, run_id, "recon_loss")
    assert [s for s, _ in recon] == list(range(epochs))
    assert [v for _, v in recon] == pytest.approx([h["recon_loss"] for h in clean.history],
                                                  rel=1e-6)
    assert c.get_run(run_id).info.status == "FINISHED"
