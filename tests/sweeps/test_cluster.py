"""The Ray cluster of a sweep: which clusters can grow, what a trial may ask of one, the SIGTERM
handler ``ray.init`` would take, and a SIGTERM that stops the cluster with the driver."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from ald_tune.config.schema import load_config
from ald_tune.errors import ConfigError
from ald_tune.interrupts import sigterm_as_interrupt
from ald_tune.sweeps import cluster


@pytest.fixture(autouse=True)
def python_ctrl_c():
    """Python's own Ctrl-C handler during each test, whatever an earlier test left."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize(
    "address, env, own",
    [
        (None, None, True),
        ("local", None, True),
        (None, "local", True),
        (" local ", None, True),
        ("auto", None, False),
        ("127.0.0.1:6379", None, False),
        (None, "ray://head:10001", False),
    ],
)
def test_local_and_no_address_start_a_cluster_of_the_commands_own(address, env, own, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if env is not None:
        monkeypatch.setenv("RAY_ADDRESS", env)
    assert cluster.starts_own_cluster(address) is own


@pytest.fixture
def two_cpus(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True, "Resources": {"CPU": 2.0}}])


def test_an_own_cluster_refuses_what_no_node_has_and_a_joined_one_warns(two_cpus, monkeypatch):
    """``--address local`` starts a cluster that never grows: 64 CPUs per trial would wait
    forever, so it is refused as on the default path."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cfg = load_config("search_spaces/digits.yaml", overrides=["tune.cpus_per_trial=64"])
    for address in (None, "local"):
        with pytest.raises(ConfigError, match=r"tune.cpus_per_trial=64, but no node.*Fix:"):
            cluster.check_resources(cfg, local=cluster.starts_own_cluster(address))
    with pytest.warns(RuntimeWarning, match="Trials wait until the cluster grows"):
        cluster.check_resources(cfg, local=cluster.starts_own_cluster("10.0.0.1:6379"))


def test_ray_init_does_not_take_the_commands_sigterm_handler(monkeypatch):
    """``ray.init`` installs a handler that exits (and, below Python, one that aborts)."""
    import ray

    def rays_init(**kwargs):
        signal.signal(signal.SIGTERM, lambda *a: os._exit(99))

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", rays_init)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt():
            cluster.init_ray(None)
            signal.raise_signal(signal.SIGTERM)  # to this thread: handled before the next line
            pytest.fail("Ray's handler, not the command's, took the signal")


class FakeContext:
    def __init__(self, address: str) -> None:
        self.gcs_address = address


def watched(monkeypatch, address: str, wait: float = 5.0):
    """Run a SIGTERM through ``end_if_cluster_lost`` with Tune's handler stood in for by one
    that only records; return the endings ``abandon`` was given."""
    import ray

    ended: list[str] = []
    monkeypatch.setattr(ray, "get_runtime_context", lambda: FakeContext(address))
    monkeypatch.setattr(cluster, "abandon", lambda ending: ended.append(ending()))
    monkeypatch.setattr(cluster, "LOST_GRACE_S", 0.2)
    previous = signal.signal(signal.SIGINT, lambda *a: None)  # Tune's: stop, return later
    try:
        with sigterm_as_interrupt():
            with cluster.end_if_cluster_lost(lambda: "sweep s interrupted."):
                signal.raise_signal(signal.SIGTERM)
                deadline = time.monotonic() + wait
                while not ended and time.monotonic() < deadline:
                    time.sleep(0.05)
    finally:
        signal.signal(signal.SIGINT, previous)
    return ended


def test_a_sigterm_that_stops_the_cluster_too_ends_the_command_without_tune(monkeypatch):
    """``timeout``, systemd, Slurm: the signal reaches Ray's processes too; Tune would wait a
    minute for the dead cluster, then Ray would end the process with exit 1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once closed
    assert watched(monkeypatch, dead) == ["sweep s interrupted."]


@pytest.mark.integration  # a server socket / a signal to the process
def test_a_sigterm_to_the_driver_alone_is_left_to_tune(monkeypatch):
    with socket.socket() as gcs:
        gcs.bind(("127.0.0.1", 0))
        gcs.listen()
        assert watched(monkeypatch, f"127.0.0.1:{gcs.getsockname()[1]}", wait=1.5) == []
