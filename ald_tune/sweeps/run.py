"""One sweep under Ray Tune, tracked in MLflow when asked: the public :func:`run_sweep`.

Order of work, so nothing is recorded for a sweep that cannot start: every check on
the config, the data and the tracking store first (seconds, before Ray), then Ray, then
the tracker's start (the sweep's parent run, its kind, rule and compare written once as
tags), then the trials, each logging into its own child run through the trial callback
the tracker handed over. At the end: a backfill of what the trials could not send (a
server outage), the sweep's wall time, and the runs' status. Tracking never fails a
sweep that trained.

The tracker plugs into the sweep (as Ray Tune's ``MLflowLoggerCallback`` into the
``Tuner``): :class:`~ald_tune.tracking.tracker.TrackingOptions` say where it logs,
:class:`~ald_tune.tracking.tracker.MLflowTracker` opens and closes the runs, and this
module calls it; the tracking layer knows nothing of Ray Tune.
"""

from __future__ import annotations

from dataclasses import replace

from ald_tune.config.kinds import read_sweep_file
from ald_tune.config.schema import Config
from ald_tune.errors import Interrupted
from ald_tune.sweeps.backfill import backfill_quietly
from ald_tune.sweeps.results import SweepRecord
from ald_tune.sweeps.tuner import Plan, SweepOptions, fit_sweep, prepare
from ald_tune.sweeps.tuner import mark_complete as mark_files_complete
from ald_tune.tracking.tracker import (
    MLflowTracker,
    SweepTracker,
    TrackingOptions,
    mark_compare_complete,
)

#: The default of :func:`run_sweep`'s ``tracking``: MLflow at ``$MLFLOW_TRACKING_URI``, else
#: SQLite in the sweep's run_dir, experiment ``ald-tune-<dataset>``.
DEFAULT_TRACKING = TrackingOptions()


def run_sweep(
    cfg: Config, opts: SweepOptions, tracking: TrackingOptions | None = DEFAULT_TRACKING
) -> SweepRecord:
    """Run (or resume) one ALD or grid sweep, logged to MLflow unless ``tracking`` is
    None, and return its trial records.

    Args:
        cfg: the search space and every setting of the trials.
        opts: where and how to run (:class:`~ald_tune.sweeps.tuner.SweepOptions`).
        tracking: where it is logged (:class:`~ald_tune.tracking.tracker.TrackingOptions`;
            default: the default store and experiment); None: untracked
            (``--no-tracking``).

    Returns:
        A :class:`~ald_tune.sweeps.results.SweepRecord`: one record per trial, the wall
        time, and where Tune and MLflow keep it.

    Raises:
        ConfigError, DataError: bad input or an unusable tracking store, before Ray starts.
        Interrupted: Ctrl-C or SIGTERM (the runs it opened are marked KILLED).

    Example:
        >>> from ald_tune.config import load_config
        >>> cfg = load_config("search_spaces/digits.yaml")
        >>> result = run_sweep(cfg, SweepOptions(mode="ald"))   # doctest: +SKIP
        >>> print(result.table())                                 # doctest: +SKIP
    """
    plan = prepare(cfg, opts)
    tracker = None if tracking is None else MLflowTracker(tracking, opts.run_dir)
    if tracker is not None:
        tracker.check()

    def lost() -> str:  # every run this sweep opened is closed: none stays RUNNING
        return str(_interrupted(plan, tracked=tracker is not None and tracker.interrupted()))

    try:
        result = fit_sweep(cfg, opts, plan, tracker=tracker, on_lost=lost)
    except KeyboardInterrupt:  # outside Tune's own handling (or a second signal)
        raise Interrupted(lost()) from None
    if tracker is None:
        if result.interrupted:
            raise _interrupted(plan, tracked=False)
        return result
    return _close_tracked(tracker, result, plan)


def _close_tracked(tracker: SweepTracker, result: SweepRecord, plan: Plan) -> SweepRecord:
    """After a tracked fit: what trials could not send is backfilled (unless interrupted),
    the fit's wall time logged, and every run closed (KILLED when interrupted, which
    raises)."""
    result = replace(
        result,
        tracking_uri=tracker.uri,
        experiment_id=tracker.experiment_id,
        parent_run_id=tracker.parent_run_id,
    )
    # What trials could not send (server down). Not after an interruption: Tune returns
    # while the stopped trials still send what they buffered, and a backfill then logged
    # an epoch twice; the resumed sweep's end (or `ald-tune backfill`) sends what is missing.
    if result.path and not result.interrupted:
        backfill_quietly(result.path, tracker.uri)
    info = read_sweep_file(result.path or "")
    tracker.log_wall(
        float(info.get("last_fit_s", result.wall_s)), step=int(info.get("fits", 1)) - 1
    )  # warns, never raises
    if result.interrupted:
        tracker.interrupted()
        raise _interrupted(plan, tracked=True)
    tracker.finish({t.trial_id: t.status for t in result.trials}, stopper=_stopper(result))
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


def _stopper(result: SweepRecord) -> str:
    """Who ends a trial of this sweep before its last planned epoch."""
    return "asha" if result.kind.kind == "asha" else "rule"


def mark_complete(sweeps: list[SweepRecord]) -> None:
    """Every sweep of one compare has finished: say so in each sweep file and on each
    parent run, so readers pick this set as a whole (``ald-tune report``, ``recommend``,
    the notebook). A store that cannot be reached only warns: ``ald-tune backfill``
    copies the fact from the sweep file later."""
    mark_files_complete(sweeps)
    for s in sweeps:
        if s.tracking_uri and s.parent_run_id:
            mark_compare_complete(s.tracking_uri, s.parent_run_id, s.name)
