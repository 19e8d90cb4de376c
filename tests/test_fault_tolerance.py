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


# ------------------------------------------------------------------ 2. the driver dies
LINE = re.compile(r"^\[(\S+)(?: nz=(\d+) seed=\S+)?\] (?:epoch\s+(\d+)|(done):)")


def watch(proc, until, timeout: float) -> dict:
    """Read ``proc``'s progress lines until ``until(state)``; state: trial -> epochs seen/done."""
    import queue
    import threading

    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put(None)],
                     daemon=True).start()
    state: dict = {"epochs": {}, "done": set(), "n_z": {}, "log": []}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except Exception:  # queue.Empty
            continue
        if line is None:
            break
        state["log"].append(line)
        m = LINE.match(line)
        if m:
            trial, nz, epoch, done = m.groups()
            if done:
                state["done"].add(trial)
            else:
                state["epochs"].setdefault(trial, []).append(int(epoch))
                state["n_z"][trial] = int(nz) if nz else None
            if until(state):
                state["met"] = True
                return state
    state["met"] = False
    return state


def comparable(report: dict) -> dict:
    """What an interrupted-and-resumed sweep must reproduce: choices, per-n_z metrics, cost."""
    crit = report["criterion"]
    return {"best_region": crit["best_region"], "plateau_edge": crit["plateau_edge"],
            "optimum_nz": crit["optimum_nz"], "mean_rank_nz": report["grid"]["mean_rank_nz"],
            "optimum_by_metric": {m: v["n_z"] for m, v in report["grid"]["optimum_by_metric"].items()},
            "ald_n_z": report["ald"]["n_z"],
            "n_errored": report["grid"]["n_errored"],
            "trial_epochs": report["cost"]["grid"]["trial_epochs"],
            "rows": [{k: r[k] for k in ("n_z", "n_seeds", "epochs", "recon_loss", "kl", "neg_elbo",
                                        "fid_gen", "fid_recon", "silhouette", "in_region")}
                     for r in report["grid"]["rows"]]}


def test_a_killed_driver_resumes_the_sweep_without_rerunning_or_duplicating(
        ray_session, cache_dir, tmp_path):
    from ald_tune.report import build_report

    epochs, every, grid = 12, 2, [2, 4, 8]
    sets = tiny(cache_dir, epochs, f"grid.n_z={grid}")
    cfg = tiny_cfg(cache_dir, epochs, f"grid.n_z={grid}")
    run_dir = tmp_path / "cut"
    address = ray_session.get_runtime_context().gcs_address
    cmd = [sys.executable, os.path.join(ROOT, "ald_tune", "run.py"), "grid", "--address", address,
           "--space", os.path.join(ROOT, "search_spaces", "digits.yaml"), "--name", "cut",
           "--run-dir", str(run_dir)] + [a for s in sets for a in ("--set", s)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=str(tmp_path), env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        # Kill once a trial has finished and another is past its second checkpoint.
        state = watch(proc, lambda s: s["done"] and any(
            t not in s["done"] and max(e) >= 2 * every for t, e in s["epochs"].items()),
            timeout=300)
        kill_ms = time.time() * 1000
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert state["met"], "".join(state["log"][-40:])
    finished_before = set(state["done"])
    assert len(finished_before) < len(grid)

    result = run_sweep(cfg, SweepOptions(
        mode="grid", name="cut-grid", run_dir=str(run_dir), resume=True, verbose=False,
        space=os.path.join(ROOT, "search_spaces", "digits.yaml")))
    assert [t["n_z_grid"] for t in result.trials] == grid
    assert all(t["status"] == "TERMINATED" for t in result.trials)
    c, parents, children = mlflow_children(result)
    assert len(parents) == 1 and len(children) == len(grid)        # no duplicate runs
    child_of = {ch.data.tags["ald_tune.trial_id"]: ch for ch in children}
    assert set(child_of) == {t["trial_id"] for t in result.trials}
    for t in result.trials:
        rows = tune_rows(t)
        # Tune's own record: every epoch once, the trial's epoch count right.
        assert sorted(r["epoch"] for r in rows) == list(range(epochs)), t["trial_id"]
        assert t["epochs"] == epochs and t["history"][-1]["run_over"]
        # MLflow: every step once.
        assert [s for s, _ in logged(c, child_of[t["trial_id"]].info.run_id)] == list(range(epochs))
        pids = [r["pid"] for r in rows]
        if t["trial_id"] in finished_before:
            # Not rerun: one process did all of it, and its run ended before the kill.
            assert len(set(pids)) == 1, t["trial_id"]
            assert child_of[t["trial_id"]].info.end_time <= kill_ms, "finished trial rerun"
        elif t["trial_id"] in state["epochs"]:
            # Was running: continued from a checkpoint (not from epoch 0) in a new process.
            first_new = next(r for r in rows if r["pid"] != pids[0])
            assert first_new["epoch"] > 0 and (first_new["epoch"] % every) == 0, t["trial_id"]
    # The same comparison without the interruption.
    clean_dir = tmp_path / "clean"
    clean = run_sweep(cfg, SweepOptions(mode="grid", name="clean-grid", run_dir=str(clean_dir),
                                        verbose=False))
    ald = run_sweep(cfg, SweepOptions(mode="ald", name="clean-ald", run_dir=str(clean_dir),
                                      verbose=False))
    got = comparable(build_report(result.trials, ald.trials, dataset="digits"))
    want = comparable(build_report(clean.trials, ald.trials, dataset="digits"))
    assert got == pytest.approx(want, rel=1e-6) if False else _approx_equal(got, want)


def _approx_equal(got, want) -> bool:
    if isinstance(want, dict):
        assert set(got) == set(want)
        return all(_approx_equal(got[k], want[k]) for k in want)
    if isinstance(want, list):
        assert len(got) == len(want)
        return all(_approx_equal(g, w) for g, w in zip(got, want))
    if isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-6)
        return True
    assert got == want
    return True
