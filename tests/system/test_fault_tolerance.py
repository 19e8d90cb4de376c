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

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from ray import tune

from ald_tune.config.schema import load_config
from ald_tune.engine.trainer import Trainer
from ald_tune.sweeps.run import run_sweep
from ald_tune.sweeps.tuner import SweepOptions

FINAL_KEYS = ("recon_loss", "kl", "neg_elbo", "fid_gen", "fid_recon", "silhouette")


def tiny(cache_dir, epochs, *extra):
    """The tiny digits config of test_sweeps_real.py (prunes at epochs 2, 4, 6...)."""
    return [
        f"train.epochs={epochs}",
        "ald.window=4",
        "ald.patience=2",
        "ald.n_z_init=12",
        "model.hidden=[64, 64]",
        "eval.n_fid=50",
        f"eval.cache_dir={cache_dir}",
        "tune.num_samples=1",
        "tune.checkpoint_every=2",
        "tune.checkpoint_min_s=0",
        "ald.rule=paper",
        "tune.grid_seeds=1",  # one trial per grid n_z
        "ald.final_share=0",  # runs exactly `epochs` long
        *extra,
    ]


def tiny_cfg(cache_dir, epochs, *extra):
    return load_config(
        os.path.join(ROOT, "search_spaces", "digits.yaml"),
        overrides=tiny(cache_dir, epochs, *extra),
    )


def tune_rows(trial: dict) -> list[dict]:
    """Every result row Tune recorded for a trial (its result.json), in order."""
    with open(os.path.join(trial.path, "result.json")) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def snapshot_finished(tune_dir) -> set[str]:
    """The trial ids that Tune's last experiment-state snapshot in ``tune_dir`` holds as
    TERMINATED (what a ``--resume`` will not start again); empty while none is readable."""
    done: set[str] = set()
    for path in glob.glob(os.path.join(tune_dir, "experiment_state-*.json")):
        try:
            with open(path) as fh:
                trials = [json.loads(state) for state, _ in json.load(fh)["trial_data"]]
        except (OSError, ValueError, KeyError):  # being written
            continue
        done |= {t["trial_id"] for t in trials if t.get("status") == "TERMINATED"}
    return done


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
        if (
            result.get("removed", 0) > 0
            and result.get("n_z", self.n_z_init) < self.n_z_init
            and (epoch + 1) % self.every != 0
        ):
            with open(self.marker, "w") as fh:
                json.dump(
                    {
                        "epoch": epoch,
                        "pid": result["pid"],
                        "n_z": result["n_z"],
                        "n_z_next": result["n_z_next"],
                    },
                    fh,
                )
            os.kill(result["pid"], signal.SIGKILL)


@pytest.mark.slow
def test_a_killed_trial_process_resumes_from_its_checkpoint_mid_pruning(
    ray_session, cache_dir, tmp_path
):
    epochs, every = 12, 2
    cfg = tiny_cfg(cache_dir, epochs)
    marker = str(tmp_path / "killed.json")
    result = run_sweep(
        cfg,
        SweepOptions(
            mode="ald",
            run_dir=str(tmp_path),
            verbose=False,
            name="trial-dies",
            callbacks=(KillMidPruning(marker, every, cfg.ald.n_z_init),),
        ),
    )
    assert os.path.exists(marker), "the callback never killed the trial"
    killed = json.load(open(marker))
    (trial,) = result.trials
    assert trial.status == "TERMINATED"

    # Ray really restarted the trial in a new process, from the last checkpoint
    # before the kill: the first epoch it reported afterwards follows that checkpoint.
    rows = tune_rows(trial)
    before = [r for r in rows if r["pid"] == killed["pid"]]
    after = [r for r in rows if r["pid"] != killed["pid"]]
    assert before and after, "no retry in a new process"
    last_ckpt = max(r["epoch"] for r in before if (r["epoch"] + 1) % every == 0)
    assert last_ckpt < killed["epoch"]  # the prune was after the checkpoint
    assert after[0]["epoch"] == last_ckpt + 1, "the retry did not resume from the checkpoint"
    by_epoch = {r["epoch"]: r for r in before}
    assert after[0]["n_z"] == by_epoch[last_ckpt]["n_z_next"] > killed["n_z_next"]
    assert [r["epoch"] for r in after] == list(range(last_ckpt + 1, epochs))
    # The sweep's view of the trial (not Tune's raw rows): every epoch once.
    assert [h["epoch"] for h in trial.history] == list(range(epochs))
    assert trial.epochs == epochs

    # The same seed without Ray and without the kill.
    clean = Trainer(cfg.replace(train={"threads": 1}))
    list(clean)
    assert len(clean.history) == epochs
    assert trial.final_n_z == clean.model.n_z < cfg.ald.n_z_init
    for key in FINAL_KEYS:
        assert trial.metrics[key] == pytest.approx(clean.history[-1][key], rel=1e-6), key

    # MLflow: one child run, every epoch step exactly once, the clean trajectory.
    c, parents, children = mlflow_children(result)
    assert len(parents) == 1 and len(children) == 1
    run_id = children[0].info.run_id
    n_z = logged(c, run_id)
    assert [s for s, _ in n_z] == list(range(epochs))
    assert [v for _, v in n_z] == [h["n_z"] for h in clean.history]
    recon = logged(c, run_id, "recon_loss")
    assert [s for s, _ in recon] == list(range(epochs))
    assert [v for _, v in recon] == pytest.approx(
        [h["recon_loss"] for h in clean.history], rel=1e-6
    )
    assert c.get_run(run_id).info.status == "FINISHED"


# ------------------------------------------------------------------ re-reported epochs
def restored_grid(epochs_reported):
    """A stand-in for Tune's ResultGrid: one trial whose rows re-report epochs after a
    restore from a checkpoint (what result.json/progress.csv hold after a retry or resume)."""
    import types

    import pandas as pd

    rows = [
        {
            "epoch": e,
            "training_iteration": e + 1,
            "n_z": 4,
            "recon_loss": 30.0 - e + 0.1 * i,
            "run_over": e == max(epochs_reported),
            "trial_id": "t_00000",
        }
        for i, e in enumerate(epochs_reported)
    ]
    return [
        types.SimpleNamespace(
            metrics=dict(rows[-1]),
            metrics_dataframe=pd.DataFrame(rows),
            config={"n_z": 4, "seed": 0},
            error=None,
            path="/x/t_00000",
        )
    ]


def collect_restored(epochs_reported):
    from ald_tune.config.kinds import SweepKind
    from ald_tune.config.schema import Config
    from ald_tune.sweeps.tuner import collect

    return collect(restored_grid(epochs_reported), SweepKind("grid"), Config())


def collect_keeps_each_epoch_once() -> bool:
    trials = collect_restored([0, 1, 2, 3, 2, 3, 4])
    return [h["epoch"] for h in trials[0].history] == [0, 1, 2, 3, 4]


def test_the_sweep_counts_each_epoch_once_after_a_restore():
    (trial,) = collect_restored([0, 1, 2, 3, 2, 3, 4])
    assert [h["epoch"] for h in trial.history] == [0, 1, 2, 3, 4] and trial.epochs == 5
    # the rerun's values win (they are what the trial continued from)
    assert [h["recon_loss"] for h in trial.history][2:4] == pytest.approx([28.4, 27.5])


# ------------------------------------------------------------------ 2. the driver dies
LINE = re.compile(r"^\[(\S+)(?: nz=(\d+) seed=\S+)?\] (?:epoch\s+(\d+)|(done):)")


def watch(proc, until, timeout: float) -> dict:
    """Read ``proc``'s progress lines until ``until(state)``; state: trial -> epochs seen/done."""
    import queue
    import threading

    lines: queue.Queue = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put(None)], daemon=True
    ).start()
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
    return {
        "best_region": crit["best_region"],
        "plateau_edge": crit["plateau_edge"],
        "optimum_nz": crit["optimum_nz"],
        "mean_rank_nz": report["grid"]["mean_rank_nz"],
        "optimum_by_metric": {m: v["n_z"] for m, v in report["grid"]["optimum_by_metric"].items()},
        "ald_n_z": report["ald"]["n_z"],
        "n_errored": report["grid"]["n_errored"],
        "trial_epochs": report["cost"]["grid"]["trial_epochs"],
        "rows": [
            {
                k: r[k]
                for k in (
                    "n_z",
                    "n_seeds",
                    "epochs",
                    "recon_loss",
                    "kl",
                    "neg_elbo",
                    "fid_gen",
                    "fid_recon",
                    "silhouette",
                    "in_region",
                )
            }
            for r in report["grid"]["rows"]
        ],
    }


@pytest.mark.slow
def test_a_killed_driver_resumes_the_sweep_without_rerunning_or_duplicating(
    ray_session, cache_dir, tmp_path
):
    from ald_tune.report.build import build_report

    epochs, every, grid = 10, 2, [2, 4, 8]
    sets = tiny(cache_dir, epochs, f"grid.n_z={grid}")
    cfg = tiny_cfg(cache_dir, epochs, f"grid.n_z={grid}")
    space = os.path.join(ROOT, "search_spaces", "digits.yaml")
    run_dir = tmp_path / "cut"
    address = ray_session.get_runtime_context().gcs_address
    # The same command a user runs (then reruns with --resume), joined to this session's Ray.
    cmd = [
        sys.executable,
        os.path.join(ROOT, "ald_tune", "run.py"),
        "grid",
        "--verbose",  # a line per epoch: the watcher kills the driver mid-sweep by them
        "--address",
        address,
        "--space",
        space,
        "--name",
        "cut",
        "--run-dir",
        str(run_dir),
    ] + [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(tmp_path), env=env
    )

    def mid_sweep(s) -> bool:
        """A trial has finished and Tune's snapshot says so, another is between checkpoints.
        (Tune snapshots every few seconds or at a checkpoint: a driver killed before the
        snapshot restarts the finished trial from its last checkpoint, which trains nothing.)"""
        if not s["done"] or not s["done"] <= snapshot_finished(run_dir / "ray" / "cut-grid"):
            return False
        s.setdefault("lines_after_done", -1)
        s["lines_after_done"] += 1
        return s["lines_after_done"] >= 2 and any(
            t not in s["done"] and 2 <= e[-1] < epochs - 1 and (e[-1] + 1) % every
            for t, e in s["epochs"].items()
        )

    try:
        state = watch(proc, mid_sweep, timeout=300)
        kill_ms = time.time() * 1000
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert state["met"], "".join(state["log"][-40:])
    finished_before = set(state["done"])
    killed_at = {t: e[-1] for t, e in state["epochs"].items() if t not in finished_before}
    assert 0 < len(finished_before) < len(grid) and killed_at

    result = run_sweep(
        cfg,
        SweepOptions(
            mode="grid",
            name="cut-grid",
            run_dir=str(run_dir),
            resume=True,
            verbose=False,
            space=space,
        ),
    )
    assert [t.n_z_grid for t in result.trials] == grid
    assert all(t.status == "TERMINATED" for t in result.trials)
    c, parents, children = mlflow_children(result)
    assert len(parents) == 1 and len(children) == len(grid)  # no duplicate runs
    child_of = {ch.data.tags["ald_tune.trial_id"]: ch for ch in children}
    assert set(child_of) == {t.trial_id for t in result.trials}
    resumed = []
    for t in result.trials:
        tid, rows = t.trial_id, tune_rows(t)
        # MLflow: every step once; the sweep's view of the trial: every epoch once.
        assert [s for s, _ in logged(c, child_of[tid].info.run_id)] == list(range(epochs)), tid
        assert [h["epoch"] for h in t.history] == list(range(epochs)), tid
        assert t.epochs == epochs and t.finished, tid
        pids = [r["pid"] for r in rows]
        if tid in finished_before:
            # Not rerun: Tune's record is one process's epochs, each once, and the MLflow run
            # ended before the driver was killed.
            assert [r["epoch"] for r in rows] == list(range(epochs)) and len(set(pids)) == 1, tid
            assert child_of[tid].info.end_time <= kill_ms, f"finished trial {tid} was rerun"
        elif tid in killed_at:
            # Was running: continued in a new process from its last checkpoint (the one
            # just before the epoch it was killed at), not from epoch 0.
            new = [r for r in rows if r["pid"] != pids[0]]
            if not new:
                # It finished between its last progress line and the kill: one process's
                # epochs, each once, not rerun.
                assert [r["epoch"] for r in rows] == list(range(epochs)), (tid, killed_at)
                continue
            resumed.append(tid)
            assert new[0]["epoch"] == killed_at[tid], (tid, killed_at, new[0]["epoch"])
    assert resumed, f"no trial was resumed in a new process: {killed_at}"

    # The comparison against the same trials run without any interruption (the engine
    # alone, in this process: what each Ray trial computes with one thread).
    ald = [engine_trial(cfg)]
    clean = [engine_trial(cfg, n_z) for n_z in grid]
    got = comparable(build_report(result.trials, ald, dataset="digits").to_dict())
    want = comparable(build_report(clean, ald, dataset="digits").to_dict())
    _approx_equal(got, want)


def engine_trial(cfg, n_z=None):
    """One uninterrupted run as a sweep trial record (what ``build_report`` reads)."""
    from ald_tune.sweeps.results import TrialRecord, history_row

    trainer = Trainer(cfg.replace(train={"threads": 1}), fixed_n_z=n_z)
    list(trainer)
    return TrialRecord(
        trial_id=f"clean-{n_z}",
        kind="grid" if n_z else "ald",
        rule=None if n_z else cfg.ald.rule,
        seed=cfg.train.seed,
        n_z_grid=n_z,
        final_n_z=trainer.model.n_z,
        history=[history_row(h["epoch"], h) for h in trainer.history],
    )


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


# ------------------------------------------------------------------ 3. a node goes away
def worker_node(temp: str):
    """The worker node's raylet (socket ``raylet.1`` under the cluster's temp dir) and its id."""
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if any(
            c.startswith("--raylet_socket_name=" + temp) and c.endswith("/raylet.1") for c in cmd
        ):
            node_id = next(c.split("=", 1)[1] for c in cmd if c.startswith("--node_id="))
            return p, node_id
    raise AssertionError(f"no worker raylet under {temp}")


def kill_node(raylet, temp: str) -> None:
    """SIGKILL one node: its raylet, everything under it (workers, agents), its log monitor."""
    import psutil

    victims = [raylet, *raylet.children(recursive=True)]
    victims += [
        p
        for p in psutil.process_iter(["cmdline"])
        if any(temp in c for c in p.info["cmdline"] or [])
        and any("log_monitor.1." in c for c in p.info["cmdline"] or [])
    ]
    for p in victims:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=30)


def sweep_rows(storage: str, prefix: str) -> dict[str, list[dict]]:
    """result.json rows of every trial of the sweeps named ``prefix*`` (partial lines skipped)."""
    import glob

    out = {}
    for path in glob.glob(os.path.join(storage, prefix + "*", "*", "result.json")):
        rows = []
        with open(path) as fh:
            for line in fh:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
        out[os.path.dirname(path)] = rows
    return out


@pytest.mark.slow
def test_a_lost_worker_node_gets_its_trials_rescheduled(two_node_cluster, cache_dir, tmp_path):
    epochs, every, grid = 20, 2, [2, 4]
    temp = two_node_cluster["temp"]
    raylet, worker_id = worker_node(temp)
    run_dir, out = tmp_path / "runs", tmp_path / "report"
    # The comparison with the default tune.max_failures (1): one retry covers a lost node.
    cmd = [
        sys.executable,
        os.path.join(ROOT, "ald_tune", "run.py"),
        "compare",
        "--no-fixed",
        "--baselines",
        "none",
        "--rules",
        "paper",
        "--address",
        two_node_cluster["address"],
        "--run-dir",
        str(run_dir),
        "--space",
        "digits",
        "--out",
        str(out),
    ] + [a for s in tiny(cache_dir, epochs, f"grid.n_z={grid}") for a in ("--set", s)]
    log = open(tmp_path / "driver.log", "w")
    proc = subprocess.Popen(
        cmd,
        env={**two_node_cluster["env"], "PYTHONUNBUFFERED": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(tmp_path),
    )
    storage = str(run_dir / "ray")
    try:
        # Wait until a grid trial on the worker node is past a checkpoint, then kill the node.
        deadline, on_worker = time.monotonic() + 300, None
        while time.monotonic() < deadline and proc.poll() is None and on_worker is None:
            for path, rows in sweep_rows(storage, "grid-").items():
                if any(r.get("node_id") == worker_id and r["epoch"] >= 2 * every for r in rows):
                    on_worker = path
            time.sleep(0.2)
        assert on_worker, open(tmp_path / "driver.log").read()[-3000:]
        kill_node(raylet, temp)
        assert not raylet.is_running()
        rc = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        log.close()
    text = open(tmp_path / "driver.log").read()
    assert rc == 0, text[-4000:]

    # The trial that was on the lost node finished on the head node, from a checkpoint.
    rows = sweep_rows(storage, "grid-")[on_worker]
    lost = [r for r in rows if r["node_id"] == worker_id]
    moved = [r for r in rows if r["node_id"] != worker_id]
    assert lost and moved and rows[-1]["run_over"] and rows[-1]["epoch"] == epochs - 1, text[-3000:]
    assert moved[0]["epoch"] > 0 and moved[0]["epoch"] % every == 0, "not resumed from a checkpoint"
    assert [r["epoch"] for r in moved] == list(range(moved[0]["epoch"], epochs))

    # The report is complete: every grid point and the ALD seed, nothing errored.
    report = json.loads((out / "comparison.json").read_text())
    assert [r["n_z"] for r in report["grid"]["rows"]] == grid
    assert report["grid"]["n_errored"] == 0 and report["ald"]["n_errored"] == 0
    assert len(report["ald"]["seeds"]) == 1 and report["criterion"]["optimum_nz"] in grid
    for name in ("comparison.csv", "comparison.md"):
        assert (out / name).stat().st_size > 100
    if collect_keeps_each_epoch_once():
        # Exact epoch accounting. Until the package keeps each epoch once (see the xfail
        # above), Tune's rows of the moved trial hold some epochs twice or (with a stale
        # experiment snapshot) miss some, depending on timing.
        assert report["cost"]["grid"]["trial_epochs"] == len(grid) * epochs
        assert [r["epochs"] for r in report["grid"]["rows"]] == [epochs] * len(grid)

    # MLflow: one child run per grid trial, every epoch once.
    from mlflow import MlflowClient

    c = MlflowClient("sqlite:///" + str(run_dir / "mlflow.db"))
    exp = c.get_experiment_by_name("ald-tune-digits")
    runs = c.search_runs([exp.experiment_id], max_results=1000)
    grid_runs = [
        r
        for r in runs
        if r.data.tags.get("ald_tune.mode") == "grid" and "mlflow.parentRunId" in r.data.tags
    ]
    assert len(grid_runs) == len(grid)
    for r in grid_runs:
        assert [s for s, _ in logged(c, r.info.run_id)] == list(range(epochs))
