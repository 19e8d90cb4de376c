"""Shared test set-up: one torch thread, absolute temp paths, offline MLflow, the tiers.

Three tiers, named by markers (registered in setup.cfg):

- fast (no marker): mocked trainables, tiny nets, no servers, no subprocess interpreters,
  one shared local Ray runtime (``ray_session``). ``make test-fast``.
- ``integration``: real MLflow servers, the notebook, the UI, the end-to-end compare,
  fresh-interpreter imports, kills, retry-from-checkpoint sweeps. ``make test-integration``.
- ``slow``: real training to a result. ``make test`` runs all three.

A fast test that starts a subprocess interpreter or a known server program, listens on a
socket, asks for a server fixture, or points a Ray Tune trial at anything but a test double
fails with a line saying to mark it (:func:`fast_tier_guard`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest
from work_units import (  # noqa: F401  (hooks: pytest registers them from here)
    CLUSTER_FILES,
    CLUSTER_SCOPE,
    RAY_FILES,
    RAY_SCOPE,
    heaviest_first,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_xdist_make_scheduler,
    shared_scope,
    store_durations,
)

#: The repository's root (the tests sit in tests/<layer>/).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Set on the sweeps of tests that check what a sweep records, not trials side by side: its
#: trials run one after another in one worker process. Each further trial process spends 6-9
#: CPU-seconds importing torch, torchmetrics, MLflow and its SQL store before its first epoch,
#: about a fifth of a small compare's CPU on two cores (scripted compare: 117 -> 90 CPU-s).
#: Trials side by side stay tested where that is the point: tests/sweeps/test_tuner.py,
#: test_sweeps_real, test_fault_tracking, test_fault_tolerance, test_interruptions and the
#: two-node cluster.
ONE_AT_A_TIME = "tune.max_concurrent_trials=1"


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    """One cache for the classifier FID extractor across the session, shared by the
    pytest-xdist workers of a run (their base folders' parent): the first to need a
    classifier trains it, the others wait and load it (the extractor's lock)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this run's, not an earlier run's
    path = base / "ald_cache"
    path.mkdir(exist_ok=True)
    return str(path)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray runtime for the whole test session (2 CPUs, no dashboard)."""
    import ray
    import ray.tune  # loaded here: the fast tier's guard watches the trials it runs

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not ray.is_initialized():
        with processes_allowed():  # the one shared start, whichever tier first asks for it
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
def two_node_cluster():
    """A real two-node Ray cluster of local processes: `ray start --head` + `ray start --address`.

    Torn down by pid (every process under its own temp dir and their children), so the
    test session's own Ray runtime survives (`ray stop` would kill every Ray on the machine).
    Its temp dir is a short one in /tmp: Ray's socket paths (temp dir, session folder,
    ``sockets/plasma_store``) must stay under 107 bytes, which pytest's folders exceed
    under pytest-xdist (``.../popen-gw0/raycluster0``: 114).
    """
    import shutil
    import subprocess
    import sys
    import tempfile

    temp = tempfile.mkdtemp(prefix="rc", dir="/tmp")
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
        shutil.rmtree(temp, ignore_errors=True)


# -- a fresh MLflow SQLite store costs one copy, not a schema migration ------------------------


@pytest.fixture(autouse=True, scope="session")
def _migrated_sqlite_template(tmp_path_factory):
    """New SQLite stores made in this process get their tables copied from one migrated store.

    MLflow runs its ~50 Alembic migrations on every new SQLite file (about a second of CPU
    each time, most of the fast tier's store set-up). The same MLflow migrates one empty
    template per session and SQLite's backup API copies it into each new file, so every store
    has exactly the schema a user's store gets; MLflow's own start-up (the default
    experiment, the schema check) runs as usual. Stores made by other processes (Ray trials,
    subprocesses) open the file this process made, or migrate as usual.
    """
    import sqlite3

    from mlflow.store.db import utils

    real = utils._initialize_tables
    template: list[str] = []

    def initialize(engine):
        if engine.url.get_backend_name() != "sqlite" or engine.url.database in (
            None,
            "",
            ":memory:",
        ):
            return real(engine)
        if not template:
            path = str(tmp_path_factory.mktemp("mlflow_template") / "mlflow.db")
            source = utils.create_sqlalchemy_engine_with_retry(f"sqlite:///{path}")
            real(source)
            source.dispose()
            template.append(path)
        raw, src = engine.raw_connection(), sqlite3.connect(template[0])
        try:
            src.backup(raw.driver_connection)
        finally:
            src.close()
            raw.close()

    utils._initialize_tables = initialize
    yield
    utils._initialize_tables = real


# -- the fast tier's guard ----------------------------------------------------------------------

#: The markers of the tiers that may start servers, subprocess interpreters and real trials.
HEAVY_TIERS = ("integration", "slow")
#: Fixtures that start servers or clusters.
SERVER_FIXTURES = {"mlflow_server", "two_node_cluster"}
#: Programs a fast test must not start (besides any Python interpreter).
SERVER_PROGRAMS = {"ray", "mlflow", "ald-tune", "jupyter", "gunicorn", "uvicorn", "raylet"}
_allowed = [0]


@contextlib.contextmanager
def processes_allowed():
    """Lets shared session set-up (the one Ray start) start processes inside a fast test."""
    _allowed[0] += 1
    try:
        yield
    finally:
        _allowed[0] -= 1


def is_fast(item: pytest.Item) -> bool:
    return not any(item.get_closest_marker(m) for m in HEAVY_TIERS)


def _program(args, kwargs) -> str:
    cmd = kwargs.get("args", args[0] if args else "")
    exe = kwargs.get("executable") or (
        cmd.split()[0] if isinstance(cmd, str) and cmd else (list(cmd) or [""])[0]
    )
    return os.path.basename(str(exe))


@contextlib.contextmanager
def fast_tier_guard():
    """Fail a fast test that starts what only the integration and slow tiers may start."""
    import socket

    seen: list[str] = []
    fix = "; mark the test @pytest.mark.integration (or slow), see tests/conftest.py"

    def caught(what: str):
        seen.append(what)
        pytest.fail(f"a fast test {what}{fix}", pytrace=False)

    real_popen, real_listen = subprocess.Popen.__init__, socket.socket.listen

    def popen(self, *args, **kwargs):
        name = _program(args, kwargs)
        if not _allowed[0] and (name.startswith("python") or name in SERVER_PROGRAMS):
            caught(f"started the program {name!r} in a subprocess")
        real_popen(self, *args, **kwargs)

    def listen(self, *args):
        if not _allowed[0]:
            caught("listened on a socket (a server)")
        return real_listen(self, *args)

    patches = [(subprocess.Popen, "__init__", popen), (socket.socket, "listen", listen)]
    tuner = sys.modules.get("ray.tune")
    if tuner is not None:
        real_tuner = tuner.Tuner.__init__

        def tuner_init(self, *args, **kwargs):
            space = kwargs.get("param_space")  # none when Tuner.restore builds one
            trainer = str(space.get("trainer", "")) if space is not None else None
            if trainer is not None and not trainer.startswith("ald_tune.testing."):
                caught(f"ran Ray Tune trials with the trainer {trainer!r} (not a test double)")
            real_tuner(self, *args, **kwargs)

        patches.append((tuner.Tuner, "__init__", tuner_init))
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, new in patches:
        setattr(obj, name, new)
    try:
        yield
    finally:
        for obj, name, old in saved:
            setattr(obj, name, old)
    if seen:  # also when the test caught the failure itself
        pytest.fail(f"a fast test {seen[0]}{fix}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    if not is_fast(item):
        return (yield)
    servers = SERVER_FIXTURES & set(item.fixturenames)
    if servers:
        pytest.fail(
            f"a fast test uses the server fixture {sorted(servers)}; mark it "
            "@pytest.mark.integration (or slow)",
            pytrace=False,
        )
    if "ray_session" in item.fixturenames and shared_scope(item.nodeid) != RAY_SCOPE:
        pytest.fail(
            "a fast test uses ray_session outside RAY_FILES; add its file to RAY_FILES in "
            "tests/work_units.py (one Ray runtime per fast run) or mark it "
            "@pytest.mark.integration",
            pytrace=False,
        )
    with fast_tier_guard():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if not is_fast(item):
        return (yield)
    with fast_tier_guard():
        return (yield)
