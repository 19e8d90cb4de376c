"""Filling in MLflow runs from what a sweep recorded elsewhere: the sending half of the
backfill (:mod:`ald_tune.sweeps.backfill` reads Tune's files and calls these).

:func:`fill_trial_run` finds (or creates, as the trial would have) a trial's child run
by its ``ald_tune.trial_id`` tag under the sweep's parent run and logs every step of
every tracked metric the run lacks, the nested prefix curve, the Ray nodes, and the final
artifacts the trial kept in its ``mlflow_pending`` folder; :func:`fill_parent_run` adds
the sweep's facts its driver could not send. Steps already in a run are skipped, so
filling twice adds nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ald_tune.config.trial import TrialParams
from ald_tune.config.vocabulary import PREFIX_KEY
from ald_tune.errors import ConfigError
from ald_tune.tracking.pending import send_pending
from ald_tune.tracking.runs import (
    COMPLETE_TAG,
    NODES_TAG,
    TRACKED_METRICS,
    WALL_METRIC,
    find_child_run,
)
from ald_tune.tracking.store import QUIET_HTTP_ENV, client, redact_uri
from ald_tune.tracking.trial_logger import TRIAL_CALLBACK, prefix_metrics, trial_logger


def trial_tracking(params: TrialParams) -> dict[str, Any] | None:
    """``{uri, experiment_id, parent_run_id}`` of a tracked trial (its MLflow callback's
    arguments in the trial's config, as :meth:`MLflowTracker.start
    <ald_tune.tracking.tracker.MLflowTracker.start>` gave them), else None."""
    for path, kwargs in params.callbacks:
        if path == TRIAL_CALLBACK:
            return dict(kwargs)
    return None


@contextlib.contextmanager
def _env_restored(keys: Iterable[str]) -> Iterator[None]:
    """TrialLogger quiets MLflow's HTTP retries for trial processes; not for the driver."""
    saved = {k: os.environ.get(k) for k in keys}
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _open_child_run(
    uri: str, tracking: Mapping[str, Any], params: TrialParams, trial_id: str, first_n_z: int
) -> str:
    """The trial's child run id, created exactly as the trainable would create it."""
    c = client(uri)
    found = find_child_run(c, tracking["experiment_id"], tracking["parent_run_id"], trial_id)
    if found is not None:
        return found.info.run_id
    # The trainable names, tags and params the run from its config and its first n_z.
    with _env_restored(QUIET_HTTP_ENV):
        logger = trial_logger(
            params,
            trial_id,
            params.config(),
            first_n_z,
            uri,
            tracking["experiment_id"],
            tracking["parent_run_id"],
        )
    if logger.run_id is None:
        raise ConfigError(
            f"cannot create the MLflow run of trial {trial_id} at "
            f"{redact_uri(uri)}. Fix: check that the server is up."
        )
    return logger.run_id


def fill_trial_run(
    uri: str,
    tracking: Mapping[str, Any],
    params: TrialParams,
    trial_id: str,
    records: Mapping[int, Mapping[str, Any]],
    pending: str,
) -> int:
    """Log the steps a trial's child run lacks; returns how many epochs gained a value.

    Args:
        uri: the tracking URI to send to.
        tracking: where the trial logged (:func:`trial_tracking`).
        params: the trial's config.
        trial_id: Ray's trial id.
        records: one record per epoch (Tune's reported values), by epoch.
        pending: the trial's folder of final artifacts it could not send.
    """
    from mlflow.entities import Metric

    first = records[min(records)]
    c, run_id = client(uri), _open_child_run(uri, tracking, params, trial_id, first["n_z"])
    metrics, epochs = [], set()
    for key in TRACKED_METRICS:
        have = {m.step for m in c.get_metric_history(run_id, key)}
        for epoch, r in sorted(records.items()):
            v = r.get(key)
            if epoch in have or not isinstance(v, (int, float)):
                continue
            stamp = int(float(r.get("timestamp", 0)) * 1000)  # Tune's report time, seconds
            metrics.append(Metric(key, float(v), stamp, epoch))
            epochs.add(epoch)
    last = max(records)
    curve = prefix_metrics(  # a nested run's prefix curve (its last epoch's record)
        records[last].get(PREFIX_KEY),
        int(float(records[last].get("timestamp", 0)) * 1000),
        have=lambda key: {m.step for m in c.get_metric_history(run_id, key)},
    )
    if curve:
        metrics += curve
        epochs.add(last)
    for i in range(0, len(metrics), 1000):  # MLflow caps a batch at 1,000 metrics
        c.log_batch(run_id, metrics=metrics[i : i + 1000])
    _fill_nodes(c, run_id, records)
    if os.path.isdir(pending):
        send_pending(c, run_id, pending)
    if records[last].get("run_over") and c.get_run(run_id).info.status == "RUNNING":
        c.set_terminated(run_id, status="FINISHED")
    return len(epochs)


def _fill_nodes(c: Any, run_id: str, records: Mapping[int, Mapping[str, Any]]) -> None:
    """The Ray nodes the trial ran on, added to the run's nodes tag."""
    nodes = sorted(
        {str(r["node_id"]) for r in records.values() if isinstance(r.get("node_id"), str)}
    )
    have_nodes = c.get_run(run_id).data.tags.get(NODES_TAG, "")
    if nodes and set(have_nodes.split(",")) != set(nodes):
        c.set_tag(
            run_id,
            NODES_TAG,
            ",".join(sorted(set(nodes) | {n for n in have_nodes.split(",") if n})),
        )


def fill_parent_run(uri: str, parent: str, info: Mapping[str, Any], finished: bool) -> None:
    """What the driver could not tell the sweep's parent run at its end, from the sweep
    file ``info``: its wall time, and that its compare finished; a parent a driver left
    RUNNING (it died with the server down) is FINISHED when every trial ran to its end."""
    from mlflow.entities import Metric

    c = client(uri)
    if info.get("wall_s") and not c.get_metric_history(parent, WALL_METRIC):
        c.log_batch(parent, metrics=[Metric(WALL_METRIC, float(info["wall_s"]), 0, 0)])
    if info.get("complete") and c.get_run(parent).data.tags.get(COMPLETE_TAG) != "true":
        c.set_tag(parent, COMPLETE_TAG, "true")
    if finished and c.get_run(parent).info.status == "RUNNING":
        c.set_terminated(parent, status="FINISHED")
