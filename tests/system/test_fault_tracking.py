"""The tracking server is down: a clear error at start; mid-sweep, training goes on,
logging is retried, and whatever could not be sent is backfilled from Tune's results.

Fast tests: the start-up check, TrialLogger against a dead or flaky store, and backfill
of a scripted sweep on SQLite. Slow: a scripted sweep into a real `mlflow server` that
is killed and restarted (same port, same database) while the trials run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
import warnings

import pytest
from conftest import free_port

from ald_tune import tracking as trk
from ald_tune.config.schema import load_config
from ald_tune.errors import ConfigError
from ald_tune.sweeps.backfill import backfill, read_trials
from ald_tune.sweeps.run import run_sweep
from ald_tune.sweeps.tuner import SweepOptions
from ald_tune.testing import SCRIPTED
from ald_tune.testing.scripted import ScriptedTrainer
from ald_tune.tracking import trial_logger as tl
from ald_tune.tracking.pending import PENDING_DIR
from ald_tune.tracking.tracker import TrackingOptions

EPOCHS = 30


def cfg_for(*extra):
    return load_config(
        "search_spaces/digits.yaml",
        overrides=[
            f"train.epochs={EPOCHS}",
            "tune.num_samples=1",
            "tune.checkpoint_every=5",
            "tune.checkpoint_min_s=0",
            "tune.grid_seeds=1",
            "ald.final_share=0",  # runs exactly EPOCHS long
            *extra,
        ],
    )


def child_runs(uri, exp_id, parent):
    from mlflow import MlflowClient

    c = MlflowClient(uri)
    runs = c.search_runs([exp_id], max_results=1000)
    return c, [r for r in runs if r.data.tags.get(trk.PARENT_TAG) == parent]


def assert_every_step_once(c, run_id, keys=("n_z", "recon_loss", "removed")):
    for key in keys:
        steps = sorted(m.step for m in c.get_metric_history(run_id, key))
        assert steps == list(range(EPOCHS)), (key, steps)


# -- at start: fail fast, naming the URI and the fix ------------------------------------------


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (a hung server)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@pytest.mark.parametrize(
    "hung",
    [False, pytest.param(True, marks=pytest.mark.integration)],  # a listening socket
    ids=["refused", "no-answer"],
)
def test_unreachable_server_at_start_is_a_clear_error_within_seconds(tmp_path, hung, request):
    port = request.getfixturevalue("silent_port") if hung else free_port()
    uri = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as err:  # before Ray starts: no ray_session needed
        run_sweep(
            cfg_for(),
            SweepOptions(mode="ald", run_dir=str(tmp_path), trainer=SCRIPTED, verbose=False),
            TrackingOptions(uri=uri),
        )
    assert time.perf_counter() - t0 < 10
    msg = str(err.value)
    assert uri in msg and "unreachable" in msg
    assert "Fix: start it" in msg and "--no-tracking" in msg and "--tracking-uri" in msg
    assert not os.path.exists(tmp_path / "ray")


def test_cli_reports_the_unreachable_server_and_exits_2(tmp_path, capsys):
    from ald_tune.cli.main import main

    uri = f"http://127.0.0.1:{free_port()}"
    code = main(["ald", "--tracking-uri", uri, "--run-dir", str(tmp_path), "--name", "x"])
    err = capsys.readouterr().err
    assert code == 2 and uri in err and "--no-tracking" in err


# -- mid-trial: TrialLogger never raises, keeps everything, retries ----------------------------


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(tl, "FLUSH_BACKOFF_S", (0.01, 0.01))


def scripted_trainer(epochs=12):
    cfg = load_config(
        "search_spaces/digits.yaml",
        overrides=[f"train.epochs={epochs}", "ald.window=4", "ald.patience=2", "ald.final_share=0"],
    )
    return ScriptedTrainer(cfg)


def test_trial_logger_never_raises_while_the_server_is_down(tmp_path, quick_retries, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{free_port()}"  # nobody listens
    trainer = scripted_trainer()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = tl.TrialLogger(uri, "1", "parent", "t_00000", {}, {"a": 1}, "run")
        for result in trainer:
            logger.log_epoch(result.epoch, result.record)
            logger.log_images(trainer.images(), result.epoch)
            if result.epoch % 5 == 4:
                assert logger.flush() is False
        logger.log_final(trainer)
        logger.finish()
    assert time.perf_counter() - t0 < 20
    assert logger.run_id is None and len(logger.images) == 2 * 12  # samples + reconstructions
    assert sorted({m.step for m in logger.buffer}) == list(range(12))  # nothing dropped
    assert logger.final_dir and os.path.isfile(os.path.join(logger.final_dir, "model.safetensors"))
    texts = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert 1 <= len(texts) <= 3, texts  # warned once, then the final artifacts and the summary
    assert any("ald-tune backfill" in t for t in texts) and all(uri in t for t in texts)


def test_trial_logger_delivers_everything_once_after_an_outage(
    tmp_path, quick_retries, monkeypatch
):
    uri = trk.default_tracking_uri(str(tmp_path))
    c = trk.client(uri)
    exp_id = trk.ensure_experiment(c, "outage")
    parent = c.create_run(exp_id).info.run_id
    down = {"on": True}
    real_find = trk.find_child_run

    def flaky_find(*args):
        if down["on"]:
            raise ConnectionError("server down (test)")
        return real_find(*args)

    monkeypatch.setattr(tl, "find_child_run", flaky_find)
    trainer = scripted_trainer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger = tl.TrialLogger(uri, exp_id, parent, "t_00001", {"k": "v"}, {"a": 1}, "run")
        assert logger.run_id is None  # started during the outage: the run comes later
        for result in trainer:
            logger.log_epoch(result.epoch, result.record)
            if result.epoch == 5:
                assert logger.flush() is False
                down["on"] = False  # the server is back
            if result.epoch == 8:
                assert logger.flush() is True and not logger.buffer
            if result.epoch == 9:  # a second outage, now inside log_batch
                with pytest.MonkeyPatch.context() as mp:
                    mp.setattr(logger.client, "log_batch", _raise)
                    assert logger.flush() is False and logger.buffer
        logger.log_final(trainer)
        logger.finish()
    run = c.get_run(logger.run_id)
    assert run.data.params == {"a": "1"} and run.data.tags[trk.TRIAL_TAG] == "t_00001"
    assert run.info.status == "FINISHED" and run.data.tags["ald_tune.final_n_z"]
    for key in ("n_z", "recon_loss"):
        assert sorted(m.step for m in c.get_metric_history(logger.run_id, key)) == list(range(12))
    assert {"history.json", "model.safetensors", "history.png"} <= {
        a.path for a in c.list_artifacts(logger.run_id)
    }
    # A retry of the same trial finds the run and skips the steps it holds.
    again = tl.TrialLogger(uri, exp_id, parent, "t_00001", {}, {"a": 1}, "run")
    assert again.run_id == logger.run_id and again.logged_steps == set(range(12))


def _raise(*args, **kwargs):
    raise ConnectionError("server down (test)")


def test_quiet_http_env_is_set_for_trial_processes(tmp_path, monkeypatch):
    for key in trk.QUIET_HTTP_ENV:
        monkeypatch.delenv(key, raising=False)
    with pytest.warns(RuntimeWarning, match="cannot open its MLflow run"):
        tl.TrialLogger(f"http://127.0.0.1:{free_port()}", "1", "p", "t", {}, {}, "r")
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    assert int(os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"]) <= 10


# -- backfill from Tune's results ---------------------------------------------------------------


@pytest.mark.integration
def test_backfill_restores_lost_steps_and_lost_runs(ray_session, tmp_path, capsys):
    result = run_sweep(
        cfg_for("tune.num_samples=2"),
        SweepOptions(mode="ald", run_dir=str(tmp_path), trainer=SCRIPTED, verbose=False, name="bf"),
    )
    c, children = child_runs(result.tracking_uri, result.experiment_id, result.parent_run_id)
    assert len(children) == 2
    assert set(backfill(result.path).values()) == {0}  # complete: nothing to add
    lost, gone = children[0].info.run_id, children[1]
    db = result.tracking_uri[len("sqlite:///") :]
    with sqlite3.connect(db) as con:  # steps 17.. of one run never reached the store
        con.execute("DELETE FROM metrics WHERE run_uuid = ? AND step >= 17", (lost,))
    c.delete_run(gone.info.run_id)  # the other trial's run never existed
    from ald_tune.cli.main import main

    assert main(["backfill", "--storage", os.path.dirname(result.path), "--name", "bf"]) == 0
    out = capsys.readouterr().out
    assert "13 epochs added" in out and "30 epochs added" in out
    _, children = child_runs(result.tracking_uri, result.experiment_id, result.parent_run_id)
    assert len(children) == 2
    for child in children:
        assert_every_step_once(c, child.info.run_id, trk.TRACKED_METRICS[:9])
    new = next(r for r in children if r.info.run_id != lost)
    assert new.data.tags[trk.TRIAL_TAG] == gone.data.tags[trk.TRIAL_TAG]
    assert new.data.tags["ald_tune.mode"] == "ald" and new.data.params["ald.n_z_init"] == "64"
    assert new.info.status == "FINISHED"
    assert set(backfill(result.path).values()) == {0}  # idempotent


def test_backfill_at_the_end_of_a_sweep_warns_with_the_command_when_the_server_is_down(tmp_path):
    from ald_tune.sweeps.backfill import backfill_quietly

    trial = tmp_path / "ray" / "sweep1" / "train_trial_x_00000"
    trial.mkdir(parents=True)
    tracking = {
        "uri": f"http://127.0.0.1:{free_port()}",
        "experiment_id": "1",
        "parent_run_id": "p",
    }
    (trial / "params.json").write_text(
        json.dumps({"callbacks": [[tl.TRIAL_CALLBACK, tracking]], "space": {}})
    )
    (trial / "result.json").write_text(json.dumps({"trial_id": "x_00000", "epoch": 0}) + "\n")
    with pytest.warns(
        RuntimeWarning,
        match=r"unreachable.*Nothing is lost.*ald-tune backfill "
        rf"--storage {tmp_path / 'ray'} --name sweep1",
    ):
        assert backfill_quietly(str(tmp_path / "ray" / "sweep1")) == {}
    with pytest.raises(ConfigError, match="unreachable"):
        backfill(str(tmp_path / "ray" / "sweep1"))


def test_backfill_names_a_missing_folder(tmp_path):
    from ald_tune.errors import DataError

    with pytest.raises(DataError, match=r"does not exist.*Fix: pass the --storage and --name"):
        read_trials(str(tmp_path / "nope"))


# -- a real server that dies and comes back mid-sweep (slow) --------------------------------------

_SERVERS: dict[int, subprocess.Popen] = {}  # pid -> process, to reap what the tests started


def start_server(root: str, port: int, timeout: float = 180) -> int:
    """`mlflow server` on 127.0.0.1:port with root/mlflow.db; returns its pid once healthy."""
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root}/mlflow.db",
            "--artifacts-destination",
            f"{root}/artifacts",
            "--workers",
            "1",
        ],
        env=env,
        stdout=open(f"{root}/server.log", "a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _SERVERS[proc.pid] = proc
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc.pid
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {open(f'{root}/server.log').read()[-2000:]}")
    stop_server(proc.pid)
    raise RuntimeError(f"mlflow server did not answer /health within {timeout} s")


def stop_server(pid: int) -> None:
    """SIGKILL, like a crash: no clean shutdown."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc = _SERVERS.pop(pid, None)
    if proc is not None:
        proc.wait(timeout=30)


@pytest.fixture
def restartable_server(tmp_path):
    """A function-scoped server the test may kill and restart on the same port and database."""
    root = tmp_path / "server"
    root.mkdir()
    state = {"root": str(root), "port": free_port(), "pid": None}
    state["pid"] = start_server(state["root"], state["port"])
    yield state
    for pid in list(_SERVERS):
        stop_server(pid)


def outage_callback(state_file: str, plan: list[tuple[int, str]]):
    """A Tune callback (run on the driver) that acts on the server when a trial reports
    the epochs of ``plan``: ``down`` kills it, ``up`` restarts it (blocking the driver, so
    trials wait at their next report). State lives in a JSON file: Tune may copy callbacks."""
    from ray.tune import Callback

    class Outage(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            with open(state_file) as fh:
                state = json.load(fh)
            if state["step"] >= len(plan) or result.get("epoch", -1) < plan[state["step"]][0]:
                return
            action = plan[state["step"]][1]
            if action == "down":
                stop_server(state["pid"])
            else:
                state["pid"] = start_server(state["root"], state["port"])
            state["step"] += 1
            state["log"].append([action, result["epoch"]])
            with open(state_file, "w") as fh:
                json.dump(state, fh)

    return Outage()


@pytest.mark.slow
def test_server_down_mid_sweep_training_goes_on_and_nothing_is_lost(
    ray_session, restartable_server, tmp_path
):
    state_file = str(tmp_path / "outage.json")
    with open(state_file, "w") as fh:
        json.dump({**restartable_server, "step": 0, "log": []}, fh)
    cb = outage_callback(state_file, [(6, "down"), (16, "up"), (26, "down")])
    uri = f"http://127.0.0.1:{restartable_server['port']}"
    t0 = time.perf_counter()
    result = run_sweep(
        cfg_for(),
        SweepOptions(
            mode="ald",
            run_dir=str(tmp_path),
            trainer=SCRIPTED,
            verbose=False,
            name="outage",
            callbacks=(cb,),
        ),
        TrackingOptions(uri=uri),
    )
    wall = time.perf_counter() - t0
    with open(state_file) as fh:
        state = json.load(fh)
    assert [a for a, _ in state["log"]] == ["down", "up", "down"]  # the outages happened
    assert all(t.status == "TERMINATED" for t in result.trials)  # training went on
    assert result.trials[0].epochs == EPOCHS
    assert wall < 240
    start_server(state["root"], state["port"])  # back for good
    c, children = child_runs(uri, result.experiment_id, result.parent_run_id)
    assert len(children) == 1
    run_id = children[0].info.run_id
    # The first outage (epochs ~6-16) was retried live: all steps up to the flush after it.
    before = sorted(m.step for m in c.get_metric_history(run_id, "n_z"))
    assert before[:20] == list(range(20))
    # The second outage covered the end: backfill adds what is still missing, once.
    assert len(before) < EPOCHS
    pending = os.path.join(result.trials[0].path, PENDING_DIR)
    assert os.path.isfile(os.path.join(pending, "model.safetensors"))  # kept for backfill
    assert c.get_run(result.parent_run_id).info.status == "RUNNING"  # the driver could not end it
    added = backfill(result.path)
    assert added == {children[0].data.tags[trk.TRIAL_TAG]: EPOCHS - len(before)}
    assert_every_step_once(c, run_id, trk.TRACKED_METRICS[:9])
    run = c.get_run(run_id)
    assert {"history.json", "model.safetensors", "history.png"} <= {
        a.path for a in c.list_artifacts(run_id)
    }
    assert run.data.tags.get("ald_tune.final_n_z") and run.info.status == "FINISHED"
    assert not os.path.exists(pending)
    (model,) = c.search_logged_models([result.experiment_id])  # the model too, once
    assert model.source_run_id == run_id
    assert model.params["n_z"] == run.data.tags["ald_tune.final_n_z"]
    assert c.get_run(result.parent_run_id).info.status == "FINISHED"
    assert backfill(result.path) == {children[0].data.tags[trk.TRIAL_TAG]: 0}


@pytest.mark.slow
def test_two_sweeps_started_together_on_a_new_store_both_finish(tmp_path):
    """Two commands on a new ``runs/mlflow.db``: the second died after Ray started ("table
    datasets already exists"), and a second sharing the first's default name wrote into its
    Tune folder. Real CLI, real Ray, real SQLite store."""
    from mlflow import MlflowClient

    args = [
        sys.executable,
        "-m",
        "ald_tune.cli",
        "grid",
        "--run-dir",
        str(tmp_path / "runs"),
        "--set",
        "train.epochs=3",
        "--set",
        "grid.n_z=[2]",
        "--set",
        "tune.grid_seeds=1",
        "--set",
        "model.hidden=[16]",
        "--set",
        "eval.n_fid=40",
    ]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # Two local Ray clusters start at once: on a loaded 2-core machine a raylet can take
    # longer than Ray's 60 s to register, which is not what this test is about.
    env["RAY_raylet_start_wait_time_s"] = "300"
    procs = [
        subprocess.Popen(
            args,
            cwd=str(tmp_path),
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    c = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    runs = c.search_runs([c.get_experiment_by_name("ald-tune-digits").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2 and len({r.info.run_name for r in parents}) == 2
    assert {r.info.status for r in runs} == {"FINISHED"} and len(runs) == 4
    assert len(os.listdir(tmp_path / "runs" / "ray")) == 2
