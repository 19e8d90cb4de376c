"""The Ray cluster a sweep runs on: joining or starting it, what it can hold, and a SIGTERM
that stops it together with the driver.

``ray.init`` joins ``--address`` / ``$RAY_ADDRESS`` (or a cluster ``ray start`` left on this
node), else starts a local cluster that lives as long as the command. Such an own cluster
cannot grow, so a trial that asks for more than any node has is refused, where a cluster
joined by address may still grow and only warns.
"""

from __future__ import annotations

import os
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ald_tune.config.schema import Config
from ald_tune.errors import ConfigError
from ald_tune.interrupts import abandon, keep_sigterm_handler, on_sigterm

#: Addresses with which ``ray.init`` starts (or finds on this node) a cluster of its own.
OWN_CLUSTER = ("", "local")


def starts_own_cluster(address: str | None) -> bool:
    """Whether ``ray.init`` with this address (else ``$RAY_ADDRESS``) starts a cluster for this
    command alone (none given, or ``local``): one that will never grow."""
    address = address or os.environ.get("RAY_ADDRESS") or ""
    return address.strip() in OWN_CLUSTER


def check_resources(cfg: Config, local: bool) -> None:
    """A trial's CPUs and GPUs fit on one node of the cluster (Tune would wait forever).

    Args:
        cfg: the sweep's config (``tune.cpus_per_trial``, ``tune.gpus_per_trial``).
        local: the cluster is the command's own (:func:`starts_own_cluster`): it will not
            grow, so a shortfall is refused; on a cluster joined by address it only warns.

    Raises:
        ConfigError: on this machine's own cluster, naming the field, the value and the fix.
    """
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    for field, key, need in (
        ("cpus_per_trial", "CPU", cfg.tune.cpus_per_trial),
        ("gpus_per_trial", "GPU", cfg.tune.gpus_per_trial),
    ):
        best = max((float(n.get(key, 0.0)) for n in nodes), default=0.0)
        if need > best:
            text = (
                f"tune.{field}={need:g}, but no node of the Ray cluster has more than "
                f"{best:g} {key}(s). Fix: --{field.replace('_', '-')} {best:g} or less"
                + (" (or run on a machine with a GPU)" if key == "GPU" else "")
                + "."
            )
            if local:
                raise ConfigError(text)
            warnings.warn(
                text + " Trials wait until the cluster grows.", RuntimeWarning, stacklevel=2
            )


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Probe HOST:PORT before ``ray.init``, which waits minutes for a cluster that is not there.

    Raises:
        ConfigError: naming the address and the fix.
    """
    if address.strip() in ("auto", *OWN_CLUSTER):
        return  # ray.init itself fails fast on these
    host, sep, port = address.split("://", 1)[-1].rpartition(":")  # ray://HOST:PORT or HOST:PORT
    if not sep or not port.isdigit():
        raise ConfigError(
            f"Ray address {address!r} must look like HOST:PORT (e.g. 127.0.0.1:6379) "
            "or ray://HOST:10001. Fix: pass --address with the address that "
            "`ray start --head` printed."
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address!r} ({exc}). Fix: start it "
            "with `ray start --head`, or drop --address to run locally."
        ) from None


def init_ray(address: str | None) -> None:
    """Join ``address`` (or ``$RAY_ADDRESS`` / a running local cluster), else start one."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        check_ray_address(address)
    try:
        # ray.init replaces the SIGTERM handler; the command's (SIGTERM = Ctrl-C) comes back.
        with keep_sigterm_handler():
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                # Ray 2.60 has no option to bind its gRPC servers to loopback; they listen
                # on every interface and refuse clients without the cluster's token (Ray's
                # token authentication, on by default, which ald-tune never turns off).
                ray.init(include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address!r} ({exc}). Fix: start it "
            "with `ray start --head`, or drop --address to run locally."
        ) from None


#: How long a lost cluster gives the sweep to end through Tune before the command ends
#: without it (Tune saves its state first thing on the signal: well under a second here).
LOST_GRACE_S = 5.0


@contextmanager
def end_if_cluster_lost(on_lost: Callable[[], str]) -> Iterator[None]:
    """Around a sweep's ``fit``: a SIGTERM that stops the Ray cluster too still ends the
    command as an interruption.

    ``timeout``, systemd and Slurm signal every process of the command, Ray's own with it:
    the trials and the cluster stop at once, and Tune, told to stop, waits a minute for a
    cluster that is gone before Ray ends the process with exit code 1, its MLflow runs left
    RUNNING. So on SIGTERM a thread watches the cluster's GCS; when it stops answering and
    the sweep has not ended within :data:`LOST_GRACE_S`, ``on_lost`` runs (it closes the
    runs and returns the line to print) and the process exits 143. Tune saved its state on
    the signal, so ``--resume`` continues the sweep from its checkpoints.
    """
    import ray

    try:
        gcs = ray.get_runtime_context().gcs_address
    except Exception:  # a connection that does not know it (Ray client): nothing to watch
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            if not _answers(gcs):
                if not done.wait(LOST_GRACE_S):
                    abandon(on_lost)
                return

    def start_watch() -> None:
        threading.Thread(target=watch, name="ald-tune-cluster-watch", daemon=True).start()

    with on_sigterm(start_watch):
        try:
            yield
        finally:
            done.set()


def _answers(address: str, timeout: float = 1.0) -> bool:
    """Whether something listens at HOST:PORT."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError):
        return False
    return True
