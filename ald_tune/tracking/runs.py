"""MLflow runs: one parent run per sweep (its kind written once), one child run per trial.

Finding runs filters in Python over :func:`search_all` (or by a parent run id, which
is checked to be hex), never by pasting a user-given name into an MLflow filter
string. The few config fields people filter by are params (:data:`FILTER_PARAMS`); the
whole config is the parent's ``config.json`` artifact.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from typing import Any

from ald_tune._version import __version__
from ald_tune.config.kinds import SweepKind
from ald_tune.config.tags import (  # noqa: F401  (TRIAL_TAG .. COMPLETE_TAG: read from here too)
    COMPARE_TAG,
    COMPLETE_TAG,
    DATASET_TAG,
    FINAL_NZ_TAG,
    GIT_COMMIT_TAG,
    MAIN_RULE_TAG,
    MODE_TAG,
    NODES_TAG,
    PARENT_TAG,
    RUNNER_TAG,
    SEED_TAG,
    SOURCE_GIT_TAG,
    SOURCE_NAME_TAG,
    SOURCE_TYPE_TAG,
    SPACE_TAG,
    SWEEP_TAG,
    TRIAL_TAG,
    USER_TAG,
    VERSION_TAG,
)
from ald_tune.config.vocabulary import TRACKED
from ald_tune.errors import ConfigError
from ald_tune.tracking.store import (
    check_tracking,
    client,
    ensure_experiment,
    git_commit,
    redact_uri,
)

WALL_METRIC = "sweep_wall_s"  # one value per fit of the sweep (resumes add one)
CONFIG_ARTIFACT = "config.json"  # the whole config, once per sweep
TRACKED_METRICS = TRACKED
#: The few config fields logged as MLflow params, the ones people filter and compare runs
#: by; the whole config is the parent run's ``config.json`` artifact (a run's params
#: table would otherwise bury the image cards under ~60 rows).
FILTER_PARAMS = (
    "data.name",
    "model.arch",
    "model.factory",
    "model.likelihood",
    "train.epochs",
    "train.batch_size",
    "train.lr",
    "train.beta",
    "train.seed",
    "ald.rule",
    "ald.n_z_init",
    "eval.fid_extractor",
    "tune.metric",
    "tune.scheduler",
    "tune.cpus_per_trial",
    "tune.gpus_per_trial",
)


def _params(flat: Mapping[str, Any]) -> list:
    from mlflow.entities import Param

    return [
        Param(k, json.dumps(v) if isinstance(v, (list, dict)) else str(v))
        for k, v in sorted(flat.items())
    ]


def log_params(c, run_id: str, flat: Mapping[str, Any]) -> None:
    params = _params(flat)
    for i in range(0, len(params), 100):  # MLflow caps a batch at 100 params
        c.log_batch(run_id, params=params[i : i + 100])


def filter_params(cfg) -> dict[str, Any]:
    """The :data:`FILTER_PARAMS` of a config, flat."""
    flat = cfg.flat()
    return {k: flat[k] for k in FILTER_PARAMS if flat.get(k) is not None}


def find_parent_run(c, exp_id: str, sweep: str):
    """The newest parent run named ``sweep`` in the experiment, or None.

    Filters in Python rather than in an MLflow filter string, so a sweep name can hold
    any character without being read as part of the filter.
    """
    for run in search_all(c, exp_id, order_by=["attributes.start_time DESC"]):
        if run.data.tags.get(SWEEP_TAG) == sweep and PARENT_TAG not in run.data.tags:
            return run
    return None


def trial_tags(kind: SweepKind, seed: int | str, **extra: str) -> dict[str, str]:
    """The tags of one trial's run, built the same way by every runner (Ray Tune, Optuna,
    ``ald-tune train``): its kind and rule, mode and seed, plus ``extra`` (tag key -> value).

    Example:
        >>> trial_tags(SweepKind("fixed"), 3)["ald_tune.mode"]
        'grid'
    """
    return {**kind.tags(), MODE_TAG: kind.mode, SEED_TAG: str(seed), **extra}


#: The run-context tags a trial's run copies from its sweep's parent run.
CONTEXT_TAGS = (SOURCE_NAME_TAG, SOURCE_TYPE_TAG, USER_TAG, SOURCE_GIT_TAG)


def run_tags(tags: Mapping[str, str], like: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags of a run ald-tune creates: MLflow's run context (``resolve_tags()``, as
    ``mlflow.start_run`` adds it: source name and type, user, git commit, which fill the
    UI's Source and User columns), then the context tags of ``like`` (a trial's parent
    run: the trial's own process is a Ray worker), then ``tags``, which win.

    Example:
        >>> run_tags({"mlflow.user": "ci"})["mlflow.user"]
        'ci'
    """
    from mlflow.tracking.context.registry import resolve_tags

    inherited = {k: v for k, v in (like or {}).items() if k in CONTEXT_TAGS}
    return {**resolve_tags(), **inherited, **tags}


def search_all(c, exp_id: str, filter_string: str = "", order_by: list[str] | None = None):
    """Every run of an experiment matching ``filter_string``, page by page.

    This is MLflow's own paging (``MlflowClient.search_runs`` with ``page_token``),
    lazily: a caller that stops at the first match (:func:`find_parent_run`) reads one
    page. ``mlflow.search_runs(..., output_format="list")`` is not used: it searches
    through a new ``MlflowClient()`` on the process-wide tracking URI (not ``c``, which
    carries this store's URI), and reads every page, up to 100,000 runs, into a list
    before it returns (``get_results_from_paginated_fn``, mlflow 3.17's ``fluent.py``).
    """
    token = None
    while True:
        page = c.search_runs(
            [exp_id],
            filter_string=filter_string,
            max_results=1000,
            order_by=order_by,
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


def start_parent_run(
    uri: str,
    experiment: str,
    sweep: str,
    *,
    kind: SweepKind,
    cfg,
    space: str | None,
    resume: bool,
    compare: str | None = None,
    main_rule: str | None = None,
    runner: str | None = None,
) -> tuple[str, str]:
    """Create the sweep's parent run, or find it again with ``resume``.

    Its kind (and rule) are written here, once, as tags; the few filter params are
    params and the whole config is the ``config.json`` artifact.

    Returns:
        (experiment_id, parent_run_id)
    """

    c = client(uri)
    exp_id = ensure_experiment(c, experiment)
    found = find_parent_run(c, exp_id, sweep) if resume else None
    if found is not None:
        run_id = found.info.run_id
        if found.info.status != "RUNNING":
            c.update_run(run_id, status="RUNNING")
        return exp_id, run_id
    tags = {
        SWEEP_TAG: sweep,
        **kind.tags(),
        MODE_TAG: kind.mode,
        DATASET_TAG: cfg.data.name,
        SPACE_TAG: str(space),
        VERSION_TAG: __version__,
    }
    if compare:
        tags[COMPARE_TAG] = compare
    if main_rule:
        tags[MAIN_RULE_TAG] = main_rule
    if runner:
        tags[RUNNER_TAG] = runner
    commit = git_commit()
    if commit:
        tags[GIT_COMMIT_TAG] = commit
    run = c.create_run(exp_id, tags=run_tags(tags), run_name=sweep)
    log_params(c, run.info.run_id, filter_params(cfg))
    c.log_dict(run.info.run_id, cfg.to_dict(), CONFIG_ARTIFACT)
    return exp_id, run.info.run_id


def log_sweep_wall(uri: str, run_id: str, wall_s: float, step: int) -> None:
    """One fit's wall time on the parent run (its sum is the sweep's wall time); the sweep
    file in Tune's folder holds it too, so a failure here only warns."""
    import time

    from mlflow.entities import Metric

    try:
        check_tracking(uri)  # seconds, where MLflow's own retries would take minutes
        client(uri).log_batch(
            run_id, metrics=[Metric(WALL_METRIC, float(wall_s), int(time.time() * 1000), step)]
        )
    except Exception as exc:
        warnings.warn(
            f"MLflow run {run_id}: the sweep's wall time could not be logged "
            f"({redact_uri(exc)}); it is in the sweep's Tune folder "
            f"(ald_tune_sweep.json).",
            RuntimeWarning,
            stacklevel=2,
        )


def finish_run(uri: str, run_id: str, status: str = "FINISHED") -> bool:
    """Mark a run terminated; warn (never raise) when the server is unreachable."""
    try:
        check_tracking(uri)  # seconds, where MLflow's own retries would take minutes
        client(uri).set_terminated(run_id, status=status)
    except Exception as exc:
        reason = "server unreachable" if isinstance(exc, ConfigError) else redact_uri(exc)
        warnings.warn(
            f"MLflow run {run_id} at {redact_uri(uri)} could not be marked {status} "
            f"({reason}); it shows RUNNING until `ald-tune backfill` (or a --resume) "
            "reaches it.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


def find_child_run(c, experiment_id: str, parent_run_id: str, trial_id: str):
    """The child run of ``trial_id`` under ``parent_run_id``, or None."""
    for run in search_all(
        c, experiment_id, f"tags.`{PARENT_TAG}` = '{run_id_text(parent_run_id)}'"
    ):
        if run.data.tags.get(TRIAL_TAG) == trial_id:
            return run
    return None


def run_id_text(run_id: str) -> str:
    """A run id for an MLflow filter string: MLflow's ids are hex, so anything else is refused
    (it could otherwise end the quoted value and change the filter)."""
    if not re.fullmatch(r"[0-9a-fA-F-]{1,64}", str(run_id)):
        raise ConfigError(f"{run_id!r} is not an MLflow run id (hex digits).")
    return str(run_id)
