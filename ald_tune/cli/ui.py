"""``ald-tune ui``: the MLflow UI (an ``mlflow server`` on 127.0.0.1 with the job runner off),
with links that open each experiment's runs; the server stops with the command."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys

from ald_tune.errors import ConfigError, shown
from ald_tune.tracking.store import (
    artifact_root,
    check_tracking,
    client,
    redact_uri,
    resolve_tracking_uri,
)


def experiment_links(uri: str, base: str, only: str | None = None) -> list[str]:
    """Deep links that open each experiment on MLflow 3's runs view (not the GenAI page)."""

    exps = client(uri).search_experiments(max_results=200)
    return [
        f"{e.name}: {base}/#/experiments/{e.experiment_id}?workflowType=machine_learning"
        for e in exps
        if only is None or e.name == only
    ]


def run(args: argparse.Namespace) -> int:
    """``ald-tune ui``: the server, until Ctrl-C or SIGTERM (which stop it too)."""

    uri = resolve_tracking_uri(args.tracking_uri, args.run_dir)
    if uri.startswith(("http://", "https://")):  # a server serves its own UI: nothing to start
        check_tracking(uri)  # a server that does not answer: one line within seconds
        print(f"{redact_uri(uri)} is an MLflow tracking server: it serves the UI itself.")
        for line in experiment_links(uri, redact_uri(uri), args.experiment):
            print("  " + line)
        return 0
    check_address(args.host, args.port)
    check_tracking(uri)  # a folder or a file that is not SQLite: one line, not the server's trace
    base = f"http://{args.host}:{args.port}"
    print(f"MLflow UI for {redact_uri(uri)} on {base} (Ctrl-C to stop)")
    # No job runner and its worker processes (MLflow 3 starts 7 unless told not to).
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        "1",
    ]
    root = artifact_root(uri)
    if root:
        cmd += ["--default-artifact-root", root]
    try:
        for line in experiment_links(uri, base, args.experiment):
            print("  " + line)
    except Exception:  # a new, empty store: MLflow creates its tables at server start
        pass
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (the command's one signal path)
        return 0
    finally:
        _stop_group(proc)  # the server's whole process group stops with us


def check_address(host: str, port: int) -> None:
    """The server can listen on HOST:PORT: a port in [1, 65535] that nothing else holds.

    ``mlflow server`` itself prints a traceback for either and still exits 0.

    Raises:
        ConfigError: naming the address and the fix.
    """
    if not 1 <= port <= 65535:
        raise ConfigError(
            f"--port must be an int in [1, 65535]. Got {port} instead. Fix: e.g. --port 5000."
        )
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            probe.bind(address)
    except OSError as exc:  # in use, not an address of this machine, an unknown name
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"the UI cannot listen on {shown(f'{host}:{port}')} ({reason}). Fix: pass another "
            "--port, or a --host of this machine (default 127.0.0.1)."
        ) from None


def _stop_group(proc) -> None:

    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
