"""A sweep's MLflow tracking as an object the sweep calls: :class:`TrackingOptions` (where
it logs) and :class:`MLflowTracker` (its runs, opened and closed through a few hooks).

The tracker plugs into the sweep, as Ray Tune's ``MLflowLoggerCallback`` is handed to the
``Tuner`` and pythae's ``MLFlowCallback`` to its pipeline: the public
:func:`~ald_tune.sweeps.run.run_sweep` takes ``tracking=TrackingOptions(...)`` beside its
:class:`~ald_tune.sweeps.tuner.SweepOptions`, builds an :class:`MLflowTracker` and calls

- :meth:`~MLflowTracker.check` before Ray starts (the store answers, or one clear line),
- :meth:`~MLflowTracker.start` once Ray is up, before any trial: the sweep's parent run
  (its kind, rule and compare written once as tags); it returns the trial callback
  (:func:`~ald_tune.tracking.trial_logger.trial_callback` and its arguments) that each
  trial adds to its trainer, logging into its own child run,
- :meth:`~MLflowTracker.log_wall` and :meth:`~MLflowTracker.finish` after the fit (every
  trial run gets the status Tune gave its trial, then the parent), or
  :meth:`~MLflowTracker.interrupted` on Ctrl-C or SIGTERM (every run it opened KILLED).

Nothing here knows Ray Tune; tracking never fails a sweep that trained (it warns).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ald_tune.config.constraints import check_name
from ald_tune.config.kinds import SweepKind
from ald_tune.config.schema import Config
from ald_tune.config.tags import STOPPED_BY_TAG
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
from ald_tune.tracking.trial_logger import trial_callback

#: A trial callback as a tracker hands it to the sweep: the factory each trial calls as
#: ``factory(TrialInfo, trainer, **kwargs)``, and those keyword arguments.
TrialCallback = tuple[Callable[..., Any], dict[str, Any]]

#: Tune's trial status -> the MLflow run's. A trial that ended before its last planned
#: epoch in a sweep that was not interrupted (ASHA stopped it, or an ALD run ended after its
#: stop decision) ended as wanted: FINISHED, as Ray's and Optuna's own MLflow integrations
#: end it, tagged with who ended it (KILLED is for interruptions).
RUN_STATUS = {"TERMINATED": "FINISHED", "STOPPED": "FINISHED", "ERROR": "FAILED"}


@dataclass(frozen=True)
class TrackingOptions:
    """Where a sweep logs to MLflow: ``run_sweep(cfg, opts, tracking=TrackingOptions(...))``;
    ``tracking=None`` runs it untracked (``--no-tracking``).

    Attributes:
        uri: the MLflow tracking URI (default: ``$MLFLOW_TRACKING_URI``, else SQLite in the
            sweep's ``run_dir``).
        experiment: the MLflow experiment (default ``ald-tune-<dataset>``).

    Raises:
        ConfigError: an experiment name that cannot name an experiment, naming the fix.
    """

    uri: str | None = None
    experiment: str | None = None

    def __post_init__(self) -> None:
        if self.experiment is not None:
            check_name(self.experiment, "--experiment")


class SweepTracker(Protocol):
    """What a sweep calls on its tracker (:class:`MLflowTracker` is ald-tune's)."""

    uri: str
    experiment_id: str | None
    parent_run_id: str | None

    def check(self) -> None: ...

    def start(
        self,
        cfg: Config,
        sweep: str,
        *,
        kind: SweepKind,
        space: str | None,
        resume: bool,
        compare: str | None,
        main_rule: str | None,
    ) -> tuple[TrialCallback, ...]: ...

    def log_wall(self, wall_s: float, step: int) -> None: ...

    def finish(self, statuses: Mapping[str, str], stopper: str) -> None: ...

    def interrupted(self) -> bool: ...


class MLflowTracker:
    """One sweep's MLflow runs: a parent run, and one child run per trial (opened by the
    trial callback :meth:`start` returns).

    Args:
        options: where to log.
        run_dir: the sweep's ``run_dir`` (the default SQLite store lives there).

    Raises:
        ConfigError: a tracking URI that cannot be used, naming it and the fix.
    """

    def __init__(self, options: TrackingOptions, run_dir: str) -> None:
        self.options = options
        self.uri = resolve_tracking_uri(options.uri, run_dir)
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None

    def check(self) -> None:
        """The store answers (seconds; before Ray starts), else one line naming the fix."""
        check_tracking(self.uri)

    def start(
        self,
        cfg: Config,
        sweep: str,
        *,
        kind: SweepKind,
        space: str | None,
        resume: bool,
        compare: str | None,
        main_rule: str | None,
    ) -> tuple[TrialCallback, ...]:
        """Open (or, with ``resume``, reopen) the sweep's parent run; returns the trial
        callback that logs each trial into its child run under it."""
        self.experiment_id, self.parent_run_id = start_parent_run(
            self.uri,
            self.options.experiment or f"ald-tune-{cfg.data.name}",
            sweep,
            kind=kind,
            cfg=cfg,
            space=space,
            resume=resume,
            compare=compare,
            main_rule=main_rule,
        )
        where = {
            "uri": self.uri,
            "experiment_id": self.experiment_id,
            "parent_run_id": self.parent_run_id,
        }
        return ((trial_callback, where),)

    def log_wall(self, wall_s: float, step: int) -> None:
        """One fit's wall time on the parent run (warns, never raises)."""
        assert self.parent_run_id is not None, "start() opens the parent run first"
        log_sweep_wall(self.uri, self.parent_run_id, wall_s, step=step)

    def finish(self, statuses: Mapping[str, str], stopper: str) -> None:
        """The fit ended: every trial run gets the status Tune gave its trial
        (``statuses``: trial id -> Tune's status; a trial ended early by ``stopper``,
        ``asha`` or the ALD ``rule``, is tagged so), then the parent FINISHED, or FAILED
        when a trial failed."""
        assert self.experiment_id is not None and self.parent_run_id is not None
        close_trial_runs(self.uri, self.experiment_id, self.parent_run_id, statuses, stopper)
        failed = any(s == "ERROR" for s in statuses.values())
        finish_run(self.uri, self.parent_run_id, "FAILED" if failed else "FINISHED")

    def interrupted(self) -> bool:
        """Ctrl-C or SIGTERM: runs left RUNNING (their trials were stopped without a word)
        are marked KILLED, the parent too; ``--resume`` reopens them. False when no run
        was opened yet."""
        if self.experiment_id is None or self.parent_run_id is None:
            return False
        close_trial_runs(self.uri, self.experiment_id, self.parent_run_id)
        finish_run(self.uri, self.parent_run_id, "KILLED")
        return True


def close_trial_runs(
    uri: str,
    experiment_id: str,
    parent_run_id: str,
    statuses: Mapping[str, str] | None = None,
    stopper: str = "asha",
) -> None:
    """Trial runs left RUNNING get the status Tune gave their trial (ASHA stops a trial
    between two reports, before it can close its run); without ``statuses`` (an
    interruption) they are marked KILLED; ``--resume`` reopens them. A trial that ended
    early (``stopper``: ``asha``, or the ALD ``rule``) is FINISHED (its run may have closed
    itself as KILLED when the stop reached it), tagged :data:`STOPPED_BY_TAG`."""
    status = {trial: RUN_STATUS.get(s, "KILLED") for trial, s in (statuses or {}).items()}
    early = {trial for trial, s in (statuses or {}).items() if s == "STOPPED"}
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


def mark_compare_complete(uri: str, parent_run_id: str, sweep: str) -> None:
    """Tag a sweep's parent run: its compare finished (readers pick this set as a whole).
    A store that cannot be reached only warns: ``ald-tune backfill`` copies the fact from
    the sweep file later."""
    try:
        client(uri).set_tag(parent_run_id, COMPLETE_TAG, "true")
    except Exception as exc:
        warnings.warn(
            f"MLflow run {parent_run_id}: cannot mark its compare complete "
            f"({redact_uri(exc)}). Fix: `ald-tune backfill --name {sweep}` "
            "once the server is up.",
            RuntimeWarning,
            stacklevel=3,
        )
