"""Shared test set-up: one torch thread, absolute temp paths, offline MLflow."""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest

#: The repository's root (the tests sit in tests/<layer>/).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    """One cache for the classifier FID extractor across the session."""
    return str(tmp_path_factory.mktemp("ald_cache"))


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray runtime for the whole test session (2 CPUs, no dashboard)."""
    import ray

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 (SQLite backend, proxied artifacts), stopped by pid."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
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
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        env=env,
        stdout=open(root / "server.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(1)
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        raise RuntimeError("mlflow server did not answer /health within 120 s")
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _kill_tree_matching(text: str) -> None:
    """Kill every process whose command line mentions ``text``, and their children, by pid."""
    import psutil

    me = os.getpid()
    roots = [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.pid != me and any(text in c for c in (p.info["cmdline"] or []))
    ]
    victims = set()
    for p in roots:
        victims.add(p)
        try:
            victims.update(p.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    for p in victims:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(victims), timeout=20)


@pytest.fixture
def two_node_cluster(tmp_path_factory):
    """A real two-node Ray cluster of local processes: `ray start --head` + `ray start --address`.

    Torn down by pid (every process under its own temp dir and their children), so the
    test session's own Ray runtime survives (`ray stop` would kill every Ray on the machine).
    """
    import subprocess
    import sys

    temp = str(tmp_path_factory.mktemp("raycluster"))
    port = free_port()
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    try:
        subprocess.run(
            [
                ray_bin,
                "start",
                "--head",
                f"--port={port}",
                "--num-cpus=1",
                "--include-dashboard=false",
                f"--temp-dir={temp}",
                "--disable-usage-stats",
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=180,
        )
        subprocess.run(
            [ray_bin, "start", f"--address=127.0.0.1:{port}", "--num-cpus=1"],
            env=env,
            check=True,
            capture_output=True,
            timeout=180,
        )
        yield {"address": f"127.0.0.1:{port}", "env": env, "temp": temp}
    finally:
        _kill_tree_matching(temp)
