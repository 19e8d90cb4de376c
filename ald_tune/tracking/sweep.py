"""A sweep under Ray Tune, tracked in MLflow: the public :func:`run_sweep`.

Order of work, so nothing is recorded for a sweep that cannot start: every check on
the config, the data and the tracking store first (seconds, before Ray), then Ray, then
the sweep's parent run (its kind, rule and compare written once as tags), then the
trials, each logging into its own child run through the MLflow trial callback. At the
end: a backfill of what the trials could not send (a server outage), the sweep's wall
time, and the parent's status. Tracking never fails a sweep that trained.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

from ald_tune.config.kinds import read_sweep_file
from ald_tune.config.schema import Config
from ald_tune.config.tags import STOPPED_BY_TAG
from ald_tune.errors import Interrupted
from ald_tune.sweeps.results import SweepRecord
from ald_tune.sweeps.tuner import Plan, SweepOptions, fit_sweep, prepare
from ald_tune.sweeps.tuner import mark_complete as mark_files_complete
from ald_tune.tracking.backfill import backfill_quietly
from ald_tune.tracking.runs import (
    COMPLETE_TAG,
    PARENT_TAG,
    TRIAL_TAG,
    finish_run,
    log_sweep_wall,
    run_id_text,
    search_all,
    start_parent_run,
)
from ald_tune.tracking.store import check_tracking, client, redact_uri, resolve_tracking_uri
from ald_tune.tracking.trial_logger import TRIAL_CALLBACK


def run_sweep(cfg: Config, opts: SweepOptions) -> SweepRecord:
    """Run (or resume) one ALD or grid sweep, logged to MLflow unless ``opts.tracking`` is
    False, and return its trial records.

    Args:
        cfg: the search space and every setting of the trials.
        opts: where and how to run (:class:`~ald_tune.sweeps.tuner.SweepOptions`).

    Returns:
        A :class:`~ald_tune.sweeps.results.SweepRecord`: one record per trial, the wall
        time, and where Tune and MLflow keep it.

    Raises:
        ConfigError, DataError: bad input or an unusable tracking store, before Ray starts.

    Example:
        >>> from ald_tune.config import load_config
        >>> cfg = load_config("search_spaces/digits.yaml")
        >>> result = run_sweep(cfg, SweepOptions(mode="ald"))   # doctest: +SKIP
        >>> print(result.table())                                 # doctest: +SKIP
    """
    plan = prepare(cfg, opts)
    if not opts.tracking:
        return _untracked(cfg, opts, plan)
    uri = resolve_tracking_uri(opts.tracking_uri, opts.run_dir)
    check_tracking(uri)
    parent: dict[str, str] = {}

    def open_parent(plan: Plan) -> tuple:  # once Ray is up, before any trial
        exp_id, run_id = start_parent_run(
            uri,
            opts.experiment or f"ald-tune-{cfg.data.name}",
            plan.name,
            kind=plan.kind,
            cfg=cfg,
            space=opts.space,
            resume=opts.resume,
            compare=opts.compare,
            main_rule=opts.main_rule,
        )
        parent.update(experiment_id=exp_id, run_id=run_id)
        return ((TRIAL_CALLBACK, {"uri": uri, "experiment_id": exp_id, "parent_run_id": run_id}),)

    def close_all() -> str:  # every run this sweep opened is closed: none stays RUNNING
        if parent:
            _close_interrupted(uri, parent["experiment_id"], parent["run_id"])
        return str(_interrupted(plan, tracked=bool(parent)))

    try:
        result = fit_sweep(cfg, opts, plan, on_started=open_parent, on_lost=close_all)
    except KeyboardInterrupt:  # outside Tune's own handling (or a second signal)
        raise Interrupted(close_all()) from None
    return _close_tracked(
        replace(
            result,
            tracking_uri=uri,
            experiment_id=parent["experiment_id"],
            parent_run_id=parent["run_id"],
        ),
        plan,
    )


def _untracked(cfg: Config, opts: SweepOptions, plan: Plan) -> SweepRecord:
    """The sweep with ``--no-tracking``: Tune's files only."""
    try:
        result = fit_sweep(cfg, opts, plan)
    except KeyboardInterrupt:  # outside Tune's own handling (or a second signal)
        raise _interrupted(plan, tracked=False) from None
    if result.interrupted:
        raise _interrupted(plan, tracked=False)
    return result


def _close_tracked(result: SweepRecord, plan: Plan) -> SweepRecord:
    """After a tracked fit: what trials could not send is backfilled, the fit's wall time
    logged, and every run closed (KILLED when interrupted, which raises)."""
    uri, exp_id, run_id = result.tracking_uri, result.experiment_id, result.parent_run_id
    assert uri is not None and exp_id is not None and run_id is not None
    if result.path:
        backfill_quietly(result.path, uri)  # what trials could not send while the server was down
    info = read_sweep_file(result.path or "")
    log_sweep_wall(
        uri,
        run_id,
        float(info.get("last_fit_s", result.wall_s)),
        step=int(info.get("fits", 1)) - 1,
    )  # warns, never raises
    if result.interrupted:
        _close_interrupted(uri, exp_id, run_id)
        raise _interrupted(plan, tracked=True)
    _close_trial_runs(uri, exp_id, run_id, result.trials, stopper=_stopper(result))
    failed = any(t.errored for t in result.trials)
    finish_run(uri, run_id, "FAILED" if failed else "FINISHED")
    return result


def _interrupted(plan: Plan, tracked: bool) -> Interrupted:
    """The one line an interrupted sweep ends with: what is kept and how to resume."""
    kept = (
        "; what the trials reported is kept in Tune's storage and MLflow (runs marked KILLED)"
        if tracked
        else ""
    )
    return Interrupted(
        f"{plan.kind} sweep {plan.name} interrupted{kept}. Resume with the same command "
        f"and `--resume --name {plan.name}`."
    )


#: Tune's trial status -> the MLflow run's. A trial that ended before its last planned
#: epoch in a sweep that was not interrupted (ASHA stopped it, or an ALD run ended after its
#: stop decision) ended as wanted: FINISHED, as Ray's and Optuna's own MLflow integrations
#: end it, tagged with who ended it (KILLED is for interruptions).
RUN_STATUS = {"TERMINATED": "FINISHED", "STOPPED": "FINISHED", "ERROR": "FAILED"}


def _stopper(result: SweepRecord) -> str:
    """Who ends a trial of this sweep before its last planned epoch."""
    return "asha" if result.kind.kind == "asha" else "rule"


def _close_trial_runs(
    uri: str,
    experiment_id: str,
    parent_run_id: str,
    trials: list | None = None,
    stopper: str = "asha",
) -> None:
    """Trial runs left RUNNING get the status Tune gave their trial (ASHA stops a trial
    between two reports, before it can close its run); without ``trials`` (an
    interruption) they are marked KILLED; ``--resume`` reopens them. A trial that ended
    early (``stopper``: ``asha``, or the ALD ``rule``) is FINISHED (its run may have closed
    itself as KILLED when the stop reached it), tagged :data:`STOPPED_BY_TAG`."""
    status = {t.trial_id: RUN_STATUS.get(t.status, "KILLED") for t in trials or []}
    early = {t.trial_id for t in trials or [] if t.status == "STOPPED"}
    try:
        check_tracking(uri)  # seconds, where MLflow's own retries would take minutes
        c = client(uri)
        for run in search_all(
            c, experiment_id, f"tags.`{PARENT_TAG}` = '{run_id_text(parent_run_id)}'"
        ):
            trial = run.data.tags.get(TRIAL_TAG)
            if trial in early:
                c.set_tag(run.info.run_id, STOPPED_BY_TAG, stopper)
            if run.info.status == "RUNNING" or (trial in early and run.info.status == "KILLED"):
                c.set_terminated(run.info.run_id, status=status.get(trial, "KILLED"))
    except Exception as exc:
        warnings.warn(
            f"MLflow trial runs left RUNNING could not be closed ({redact_uri(exc)}).",
            RuntimeWarning,
            stacklevel=2,
        )


def _close_interrupted(uri: str, experiment_id: str, parent_run_id: str) -> None:
    """Runs the interruption left RUNNING (their trials were stopped without a word) are
    marked KILLED, the parent too; ``--resume`` reopens them."""
    _close_trial_runs(uri, experiment_id, parent_run_id)
    finish_run(uri, parent_run_id, "KILLED")


def mark_complete(sweeps: list[SweepRecord]) -> None:
    """Every sweep of one compare has finished: say so in each sweep file and on each
    parent run, so readers pick this set as a whole (``ald-tune report``, ``recommend``,
    the notebook). A store that cannot be reached only warns: ``ald-tune backfill``
    copies the fact from the sweep file later."""
    mark_files_complete(sweeps)
    for s in sweeps:
        if s.tracking_uri and s.parent_run_id:
            try:
                client(s.tracking_uri).set_tag(s.parent_run_id, COMPLETE_TAG, "true")
            except Exception as exc:
                warnings.warn(
                    f"MLflow run {s.parent_run_id}: cannot mark its compare complete "
                    f"({redact_uri(exc)}). Fix: `ald-tune backfill --name {s.name}` "
                    "once the server is up.",
                    RuntimeWarning,
                    stacklevel=2,
                )
