"""Scripted trainables drive the real tuners on a real Ray runtime into real MLflow on
SQLite (no training). Each sweep costs seconds of Tune and trial start-up (a new trial
process ~5 CPU-seconds of imports), so the fast tier keeps one ALD sweep, its two trials in
one reused process; the grid sweep, a failed trial, ASHA, checkpoint cadence, retries and
kills are in the integration tier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ald_tune.config.schema import load_config
from ald_tune.sweeps.run import run_sweep
from ald_tune.sweeps.tuner import SweepOptions
from ald_tune.testing import SCRIPTED
from ald_tune.testing.faults import fail_once, slow_end
from ald_tune.testing.scripted import BEST_N_Z, ScriptedTrainer
from ald_tune.tracking.tracker import TrackingOptions

EPOCHS = 30


def cfg_for(*extra):
    return load_config(
        "search_spaces/digits.yaml",
        overrides=[
            f"train.epochs={EPOCHS}",
            "grid.n_z=[2, 8, 16]",
            "tune.num_samples=2",
            "tune.checkpoint_every=5",
            "tune.checkpoint_min_s=0",
            "ald.final_share=0",  # runs exactly EPOCHS long (no extension after a late stop)
            "tune.grid_seeds=1",  # one trial per grid n_z
            *extra,
        ],
    )


def opts(tmp_path, mode, **kw):
    return SweepOptions(
        mode=mode,
        run_dir=str(tmp_path),
        trainer=SCRIPTED,
        space="search_spaces/digits.yaml",
        **{"verbose": False, **kw},
    )


def mlflow_runs(result):
    from mlflow import MlflowClient

    c = MlflowClient(result.tracking_uri)
    runs = c.search_runs([result.experiment_id], max_results=1000)
    parent = [r for r in runs if r.info.run_id == result.parent_run_id]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    return c, parent, children


def steps(c, run_id, key="n_z"):
    hist = c.get_metric_history(run_id, key)
    return sorted(m.step for m in hist), {m.step: m.value for m in hist}


def test_ald_sweep_logs_nested_runs_with_complete_n_z_history(ray_session, tmp_path):
    # One trial at a time: the second trial runs after the first in its reused process
    # (tune.reuse_actors), which must open a run of its own. Trials side by side: the
    # integration tier's sweeps.
    result = run_sweep(cfg_for("tune.max_concurrent_trials=1"), opts(tmp_path, "ald"))
    assert len(result.trials) == 2 and {t.seed for t in result.trials} == {0, 1}
    # one worker process served both (Tune fills in each result's pid); two CPUs would have
    # run them side by side, in two
    assert result.result_grid.get_dataframe()["pid"].nunique() == 1
    c, parent, children = mlflow_runs(result)
    assert len(parent) == 1 and len(children) == 2
    p = parent[0]
    assert p.data.tags["ald_tune.mode"] == "ald" and p.data.tags["ald_tune.dataset"] == "digits"
    assert p.data.params["train.epochs"] == str(EPOCHS) and p.info.status == "FINISHED"
    for child in children:
        assert child.data.tags["ald_tune.mode"] == "ald" and "ald_tune.trial_id" in child.data.tags
        assert child.data.params["ald.n_z_init"] == "64"
        got, values = steps(c, child.info.run_id)
        assert got == list(range(EPOCHS))  # every epoch exactly once
        path = [values[s] for s in got]
        assert path[0] == 64 and path == sorted(path, reverse=True) and path[-1] < 64
        arts = {a.path for a in c.list_artifacts(child.info.run_id)}
        assert {"history.json", "history.png", "model.safetensors"} <= arts
        assert any(a.startswith("images") for a in arts)
        hist = json.loads(open(c.download_artifacts(child.info.run_id, "history.json")).read())
        assert hist["final_n_z"] == path[-1] or hist["final_n_z"] < path[-1]
    for t in result.trials:
        assert t.finished and t.final_n_z < 64
        assert t.config["report_ahead"] is True  # tune.report one epoch behind
        assert [h["epoch"] for h in t.history] == list(range(EPOCHS))
    # Tune's own ResultGrid comes back too (a failed trial's: the integration tier)
    assert len(result.result_grid.get_dataframe()) == 2 and result.result_grid.num_errors == 0


def test_the_sweeps_trials_at_once_are_tunes_max_concurrent_trials(tmp_path):
    from ald_tune.sweeps.tuner import tune_config

    assert tune_config(cfg_for(), opts(tmp_path, "grid")).max_concurrent_trials is None  # 0
    got = tune_config(cfg_for("tune.max_concurrent_trials=3"), opts(tmp_path, "ald"))
    assert got.max_concurrent_trials == 3 and got.reuse_actors is True


@pytest.mark.integration
def test_grid_sweep_expands_in_order_and_stays_flat(ray_session, tmp_path):
    import signal

    ctrl_c = signal.getsignal(signal.SIGINT)
    result = run_sweep(cfg_for(), opts(tmp_path, "grid"))
    # Tune's fit leaves a handler that only logs: Ctrl-C after a sweep would end nothing.
    assert signal.getsignal(signal.SIGINT) is ctrl_c
    assert [t.n_z_grid for t in result.trials] == [2, 8, 16]
    c, parent, children = mlflow_runs(result)
    assert len(children) == 3 and parent[0].data.tags["ald_tune.mode"] == "grid"
    for child in children:
        got, values = steps(c, child.info.run_id)
        assert got == list(range(EPOCHS)) and len(set(values.values())) == 1
    best = min(result.trials, key=lambda t: t.metrics["recon_loss"])
    assert best.n_z_grid >= BEST_N_Z


@pytest.mark.integration
def test_asha_on_the_grid_stops_weak_points_early(ray_session, tmp_path):
    # Largest first, so the strong points reach ASHA's first rung before the weak ones.
    cfg = cfg_for("tune.scheduler=asha", "tune.asha_grace=3", "grid.n_z=[16, 8, 2, 1]")
    result = run_sweep(cfg, opts(tmp_path, "grid"))
    epochs = {t.n_z_grid: t.epochs for t in result.trials}
    assert epochs[16] == EPOCHS and epochs[1] < EPOCHS and epochs[2] < EPOCHS
    # ASHA may stop a trial at any report: no epoch is trained ahead of it.
    assert all(t.config["report_ahead"] is False for t in result.trials)
    # A trial ASHA stopped ended as its scheduler wanted: FINISHED, tagged with who stopped it
    _, _, children = mlflow_runs(result)
    stopped = {t.trial_id for t in result.trials if t.status == "STOPPED"}
    assert stopped and {r.info.status for r in children} == {"FINISHED"}
    assert {
        r.data.tags["ald_tune.trial_id"]
        for r in children
        if r.data.tags.get("ald_tune.stopped_by") == "asha"
    } == stopped


@pytest.mark.integration
def test_a_trial_asha_stops_at_max_t_logs_its_final_files_all_the_same(ray_session, tmp_path):
    # ASHA stops every trial at max_t, its last epoch's report; the sweep then ends and Ray
    # ends the trial's process. Its end takes 3 s here (a large model's upload): the final
    # files and model reach MLflow all the same (the last report comes after them).
    cfg = cfg_for("tune.scheduler=asha", "tune.asha_grace=3", "grid.n_z=[16]")
    result = run_sweep(cfg, opts(tmp_path, "grid", trial_callbacks=(slow_end(3),)))
    (trial,) = result.trials
    assert trial.epochs == EPOCHS and trial.finished
    c, _, (run,) = mlflow_runs(result)
    files = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"history.json", "history.png", "model.safetensors"} <= files, files
    assert run.data.tags.get("ald_tune.final_n_z") == "16" and run.info.status == "FINISHED"


@pytest.mark.integration
@pytest.mark.parametrize(
    "min_s, expected",
    [(0, ["checkpoint_000005"]), (3600, ["checkpoint_000000"])],
)
def test_checkpoints_come_every_n_epochs_but_no_closer_than_checkpoint_min_s(
    ray_session, tmp_path, min_s, expected
):
    """Scripted epochs take microseconds: with a floor of an hour the only checkpoint is the
    final one; without a floor one every 5 of the 30 epochs, the last the sixth (Tune
    numbers them in order and keeps the newest: num_to_keep=1)."""
    cfg = cfg_for("tune.num_samples=1", f"tune.checkpoint_min_s={min_s}")
    result = run_sweep(cfg, opts(tmp_path, "ald"), tracking=None)
    (trial,) = result.trials
    assert sorted(d for d in os.listdir(trial.path) if d.startswith("checkpoint_")) == expected
    assert trial.finished and trial.epochs == EPOCHS


@pytest.mark.integration
def test_injected_failure_is_retried_from_checkpoint_into_the_same_run(
    ray_session, tmp_path, capsys
):
    marker = str(tmp_path / "failed")
    result = run_sweep(
        cfg_for("tune.checkpoint_every=5", "tune.num_samples=1"),
        opts(tmp_path, "ald", trial_callbacks=(fail_once(12, marker),), verbose=True),
    )
    assert os.path.exists(marker + ".ald.0")  # the failure did happen
    out = capsys.readouterr().out
    assert "failed: RuntimeError: injected failure at epoch 12 (test hook); Ray retries it" in out
    assert "FAILED" not in out  # the retry finished it
    assert result.trials[0].status == "TERMINATED"
    c, _, children = mlflow_runs(result)
    assert len(children) == 1  # retried into the same MLflow run
    got, values = steps(c, children[0].info.run_id)
    assert got == list(range(EPOCHS))
    # Same trajectory as an uninterrupted run of the same seed: the scripted trainer is
    # deterministic, so that run is its epochs in this process (a second sweep of the same
    # trial through Ray and MLflow logs exactly these, and costs seconds).
    clean = ScriptedTrainer(cfg_for("tune.num_samples=1"))
    assert {r.epoch: float(r.record["n_z"]) for r in clean} == values


@pytest.mark.integration
def test_resume_after_the_driver_is_killed(ray_session, tmp_path):
    """Kill a driver process mid-sweep, then --resume: no duplicate runs, all epochs once."""
    address = ray_session.get_runtime_context().gcs_address
    script = textwrap.dedent(f"""
        import ray
        ray.init(address={address!r}, log_to_driver=False,
                 runtime_env={{"env_vars": {{"ALD_TUNE_SCRIPTED_EPOCH_S": "0.1"}}}})
        from ald_tune.config.schema import load_config
        from ald_tune.sweeps.tuner import SweepOptions
        from ald_tune.testing import SCRIPTED
        from ald_tune.sweeps.run import run_sweep
        cfg = load_config("search_spaces/digits.yaml", overrides=[
            "train.epochs={EPOCHS}", "grid.n_z=[2, 8, 16]", "tune.num_samples=2",
            "tune.grid_seeds=1", "ald.final_share=0"])
        run_sweep(cfg, SweepOptions(mode="grid", run_dir={str(tmp_path)!r}, trainer=SCRIPTED,
                                    name="interrupted", verbose=True, epoch_lines=True))
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ},
    )
    seen = 0
    try:
        for line in proc.stdout:  # wait until trials are mid-way
            seen += "epoch" in line
            if seen >= 25:
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert seen >= 25
    result = run_sweep(cfg_for(), opts(tmp_path, "grid", name="interrupted", resume=True))
    assert [t.n_z_grid for t in result.trials] == [2, 8, 16]
    assert all(t.status == "TERMINATED" for t in result.trials)
    c, parent, children = mlflow_runs(result)
    assert len(parent) == 1 and len(children) == 3  # no duplicate runs
    for child in children:
        assert steps(c, child.info.run_id)[0] == list(range(EPOCHS))


def test_bad_tracking_server_fails_fast(ray_session, tmp_path):
    from ald_tune.errors import ConfigError

    with pytest.raises(ConfigError, match=r"127.0.0.1:9.*unreachable.*--no-tracking"):
        run_sweep(cfg_for(), opts(tmp_path, "ald"), TrackingOptions(uri="http://127.0.0.1:9"))
    with pytest.raises(ConfigError, match="file store is deprecated"):
        run_sweep(cfg_for(), opts(tmp_path, "ald"), TrackingOptions(uri=str(tmp_path / "mlruns")))


@pytest.mark.integration  # a server socket / a signal to the process
def test_sigterm_mid_sweep_stops_it_as_ctrl_c_does(ray_session, tmp_path):
    """``kill PID`` on the driver: Tune stops the trials and returns, every run is KILLED, the
    line says how to resume and the exit code is 143 (Ray's own handler would abort)."""
    import signal

    from ray import tune

    from ald_tune.errors import Interrupted
    from ald_tune.interrupts import exit_code, sigterm_as_interrupt

    class SigtermOnFirstResult(tune.Callback):
        def on_trial_result(self, *args, **kwargs):
            if not getattr(self, "sent", False):
                self.sent = True
                signal.raise_signal(signal.SIGTERM)  # Tune's callbacks run on the main thread

    cfg = cfg_for("train.epochs=500")
    with pytest.raises(Interrupted, match=r"sweep term interrupted.*--resume --name term"):
        with sigterm_as_interrupt():
            run_sweep(cfg, opts(tmp_path, "ald", name="term", callbacks=(SigtermOnFirstResult(),)))
    assert exit_code() == 143
    from mlflow import MlflowClient

    c = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = c.search_runs([c.get_experiment_by_name("ald-tune-digits").experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"KILLED"}


def test_resume_finds_the_newest_sweep_of_its_rule_under_its_old_name_too(tmp_path):
    """ALD sweep names say their rule (``aldpaper-``, ``aldtune-``); a paper-rule sweep
    named by 0.2 (``ald-``) is still found by ``--resume``, and never one of another rule."""
    import time

    from ald_tune.sweeps.tuner import sweep_name

    cfg = load_config("search_spaces/digits.yaml", overrides=["ald.rule=paper"])
    (tmp_path / "aldtune-digits-20260101-000000-aaaa").mkdir()
    (tmp_path / "ald-digits-20260101-000000-bbbb").mkdir()
    resume = SweepOptions(mode="ald", resume=True)
    assert sweep_name(cfg, resume, str(tmp_path)) == "ald-digits-20260101-000000-bbbb"
    time.sleep(0.01)
    (tmp_path / "aldpaper-digits-20260102-000000-cccc").mkdir()
    assert sweep_name(cfg, resume, str(tmp_path)) == "aldpaper-digits-20260102-000000-cccc"
    assert sweep_name(cfg, SweepOptions(mode="ald"), str(tmp_path)).startswith("aldpaper-digits-")


@pytest.mark.integration
def test_the_sweep_keeps_tunes_result_grid_and_each_failed_trials_traceback(
    ray_session, tmp_path, capsys
):
    """The Python API hands back Tune's ResultGrid (a dataframe, Tune's errors) and the
    traceback of a trial that failed with no retry left; the console says why it failed."""
    marker = str(tmp_path / "failed")
    result = run_sweep(
        cfg_for("tune.num_samples=1", "tune.max_failures=0"),
        opts(tmp_path, "ald", trial_callbacks=(fail_once(3, marker),), verbose=True),
        tracking=None,
    )
    (trial,) = result.trials
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if "FAILED" in ln]
    assert "FAILED: RuntimeError: injected failure at epoch 3 (test hook) (no retry left: " in line
    assert "tune.max_failures=0); the whole traceback: " in line and line.endswith("error.txt")
    assert trial.status == "ERROR" and os.path.exists(marker + ".ald.0")
    # The worker's frames down to the one that raised, and the error itself, uncoloured
    assert 'faults.py", line' in trial.error and "in on_epoch_end" in trial.error
    assert "RuntimeError: injected failure at epoch 3" in trial.error
    assert "\x1b[" not in trial.error
    frame = result.result_grid.get_dataframe()
    assert len(frame) == 1 and "training_iteration" in frame.columns
    assert len(result.result_grid.errors) == 1 and result.result_grid.num_errors == 1
    assert "injected failure" in str(result.result_grid.errors[0])


def test_error_text_of_an_exception_raised_here_holds_its_own_traceback():
    from ald_tune.sweeps.results import error_text

    try:
        raise ValueError("bad value")
    except ValueError as exc:
        text = error_text(exc)
    assert text.startswith("Traceback (most recent call last)") and "ValueError: bad value" in text
    assert error_text(None) is None
