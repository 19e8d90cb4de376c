"""``ald-tune ui``: the server it starts, the links it prints, and how it stops."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from ald_tune.cli import ui as ui_cmd
from ald_tune.cli.main import main

TINY = [
    "--set",
    "train.epochs=6",
    "--set",
    "ald.window=4",
    "--set",
    "ald.patience=2",
    "--set",
    "model.hidden=[32, 32]",
    "--set",
    "ald.n_z_init=10",
    "--set",
    "eval.n_fid=40",
]


@pytest.mark.integration
def test_ui_serves_the_default_store_on_loopback_and_sigterm_stops_it_all(tmp_path):
    import psutil
    from conftest import free_port

    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ald_tune.cli",
            "ui",
            "--run-dir",
            str(tmp_path),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def server_pids():
        return [
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if str(port) in " ".join(p.info["cmdline"] or []) and p.pid != proc.pid
        ]

    try:
        deadline, ok = time.time() + 90, False
        while time.time() < deadline and not ok:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    ok = r.status == 200
            except OSError:
                time.sleep(1)
        assert ok, "ald-tune ui did not answer on 127.0.0.1"
        assert server_pids(), "no server process found"
        proc.send_signal(15)  # SIGTERM to ald-tune ui alone
        proc.wait(timeout=40)
        deadline = time.time() + 20
        while server_pids() and time.time() < deadline:
            time.sleep(0.5)
        assert not server_pids(), "the MLflow server outlived ald-tune ui"
    finally:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


# -- what `ald-tune` itself answers, before anything trains -------------------------------------


def test_ui_runs_a_server_without_job_runner_and_prints_the_runs_view_link(
    tmp_path, monkeypatch, capsys
):
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    exp = MlflowClient(f"sqlite:///{db}").create_experiment("ald-tune-digits")
    seen = {}

    class FakeServer:
        pid = 0

        def __init__(self, cmd, env, **kw):
            seen.update(cmd=cmd, env=env, kw=kw)

        def wait(self):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeServer)
    assert main(["ui", "--run-dir", str(tmp_path), "--port", "5077"]) == 0
    cmd = seen["cmd"]
    assert cmd[2:4] == ["mlflow", "server"] and cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert seen["env"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert seen["kw"]["start_new_session"] is True
    out = capsys.readouterr().out
    assert (
        f"ald-tune-digits: http://127.0.0.1:5077/#/experiments/{exp}?workflowType=machine_learning"
    ) in out


def test_links_open_the_runs_view_of_each_experiment(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/m.db"
    MlflowClient(uri).create_experiment("a")
    links = ui_cmd.experiment_links(uri, "http://h:1")
    assert any(
        x.startswith("a: http://h:1/#/experiments/")
        and x.endswith("?workflowType=machine_learning")
        for x in links
    )
    assert ui_cmd.experiment_links(uri, "http://h:1", only="zzz") == []


@pytest.mark.integration  # a server socket / a signal to the process
def test_an_address_the_server_cannot_listen_on_is_one_line_before_anything_starts(
    tmp_path, capsys, monkeypatch
):
    """``mlflow server`` prints a traceback for these and exits 0."""
    import socket

    def no_server(*args, **kwargs):
        raise AssertionError("the MLflow server was started")

    monkeypatch.setattr(subprocess, "Popen", no_server)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for argv, needle in (
            (["--port", "99999"], "--port must be an int in [1, 65535]. Got 99999"),
            (["--port", "0"], "--port must be an int in [1, 65535]. Got 0"),
            (
                ["--port", str(port)],
                f"cannot listen on '127.0.0.1:{port}' (Address already in use)",
            ),
            (["--host", "no-such-host.invalid"], "cannot listen on 'no-such-host.invalid:5000'"),
        ):
            assert main(["ui", "--run-dir", str(tmp_path / "runs"), *argv]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and needle in err and "Fix:" in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.integration  # a real `mlflow server`
def test_a_tracking_server_serves_its_own_ui_nothing_starts(mlflow_server, capsys, monkeypatch):
    """``ui --tracking-uri http://...`` (or $MLFLOW_TRACKING_URI) returns at once with the
    server's own links; it used to start a second server on that URI and hang."""
    from mlflow import MlflowClient

    MlflowClient(mlflow_server).create_experiment("ui-own")
    started = []
    monkeypatch.setattr(ui_cmd.subprocess, "Popen", lambda *a, **k: started.append(a))
    assert main(["ui", "--tracking-uri", mlflow_server, "--experiment", "ui-own"]) == 0
    out = capsys.readouterr().out
    assert "is an MLflow tracking server: it serves the UI itself" in out
    assert f"ui-own: {mlflow_server}/#/experiments/" in out and not started
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    assert main(["ui", "--experiment", "ui-own"]) == 0 and not started
