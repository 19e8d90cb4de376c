"""Layer 4, tracking with MLflow: the store (URIs, credentials, reachability), one
parent run per sweep with its kind written once as tags, one nested child run per
trial (:class:`~ald_tune.tracking.trial_logger.TrialLogger`, an engine callback), the
sweep's tracker (:class:`~ald_tune.tracking.tracker.TrackingOptions`,
:class:`~ald_tune.tracking.tracker.MLflowTracker`: what a sweep calls to open and close
its runs) and the sending half of the backfill (:mod:`ald_tune.tracking.fill`).

May import: :mod:`ald_tune.config`, :mod:`ald_tune.data`, :mod:`ald_tune.engine`. Knows
nothing of Ray Tune: the sweeps layer above plugs the tracker in. MLflow itself loads
inside the functions that talk to it.
"""

from ald_tune.config.kinds import SWEEP_TAG
from ald_tune.tracking.runs import (
    COMPLETE_TAG,
    CONFIG_ARTIFACT,
    FILTER_PARAMS,
    FINAL_NZ_TAG,
    NODES_TAG,
    PARENT_TAG,
    TRACKED_METRICS,
    TRIAL_TAG,
    WALL_METRIC,
    filter_params,
    find_child_run,
    find_parent_run,
    finish_run,
    log_params,
    log_sweep_wall,
    run_id_text,
    search_all,
    start_parent_run,
)
from ald_tune.tracking.store import (
    QUIET_HTTP_ENV,
    SECRET_ENV,
    artifact_root,
    check_tracking,
    client,
    default_tracking_uri,
    ensure_experiment,
    git_commit,
    redact_uri,
    resolve_tracking_uri,
    split_credentials,
)

__all__ = [
    "COMPLETE_TAG",
    "CONFIG_ARTIFACT",
    "FILTER_PARAMS",
    "FINAL_NZ_TAG",
    "NODES_TAG",
    "PARENT_TAG",
    "QUIET_HTTP_ENV",
    "SECRET_ENV",
    "SWEEP_TAG",
    "TRACKED_METRICS",
    "TRIAL_TAG",
    "WALL_METRIC",
    "artifact_root",
    "check_tracking",
    "client",
    "default_tracking_uri",
    "ensure_experiment",
    "filter_params",
    "find_child_run",
    "find_parent_run",
    "finish_run",
    "git_commit",
    "log_params",
    "log_sweep_wall",
    "redact_uri",
    "resolve_tracking_uri",
    "run_id_text",
    "search_all",
    "split_credentials",
    "start_parent_run",
]
