"""The two tuners under Ray Tune: ALD trials (seeds, optionally Optuna over lr/β) and the grid.

Both read one :class:`~ald_tune.config.schema.Config` and run under the same Ray Tune
machinery (storage, ``FailureConfig``, checkpoints, ``Tuner.restore``). A tracker plugs
in from the tracking layer below: :func:`fit_sweep` calls its ``start`` once Ray is up,
and adds the trial callback it returns to every trial (the public
:func:`ald_tune.sweeps.run.run_sweep` builds it from ``TrackingOptions``).

Example:
    >>> from ald_tune.config import load_config
    >>> from ald_tune.sweeps.run import run_sweep
    >>> cfg = load_config("search_spaces/digits.yaml")
    >>> result = run_sweep(cfg, SweepOptions(mode="grid"))   # doctest: +SKIP
    >>> result.table()                                         # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ald_tune.config.kinds import SweepKind, read_sweep_file, write_sweep_file
from ald_tune.config.schema import Config
from ald_tune.config.trial import SPACE_KEY, TrialParams
from ald_tune.config.vocabulary import PREFIX_KEY
from ald_tune.errors import ConfigError
from ald_tune.interrupts import keep_ctrl_c_handler
from ald_tune.sweeps.cluster import (
    check_resources,
    end_if_cluster_lost,
    init_ray,
    starts_own_cluster,
)
from ald_tune.sweeps.plan import (  # noqa: F401  (the plan, importable from here as before)
    MODES,
    Plan,
    SweepOptions,
    check_storage,
    nested_width,
    param_space,
    planned_trials,
    prepare,
    storage_path,
    sweep_name,
    uses_asha,
    validate_before_start,
)
from ald_tune.sweeps.progress import ProgressCallback
from ald_tune.sweeps.result_logs import StateBackup, repair_experiment_state, result_loggers
from ald_tune.sweeps.results import (
    SweepRecord,
    TrialRecord,
    error_text,
    history_row,
    num,
    prefix_curve,
    sort_trials,
)
from ald_tune.sweeps.trainable import train_trial
from ald_tune.tracking.tracker import SweepTracker

#: Seconds between two snapshots of a sweep's experiment state when no trial checkpoints
#: in between (``$TUNE_GLOBAL_CHECKPOINT_S`` overrides it; see ``_quiet_tune_env``).
SNAPSHOT_S = 5.0


def tune_config(cfg: Config, opts: SweepOptions):
    from ray import tune

    # One worker process serves trial after trial (tune.reuse_actors): a new trial process
    # spends ~7 s importing torch, torchmetrics and MLflow before its first epoch, as long
    # as 30 of its epochs on digits (benchmarks/bench_sweeps.py). The trainable gives a
    # stopped trial time to close its MLflow run before the actor is reset (REUSE_WAIT_ENV).
    kwargs: dict[str, Any] = {
        "num_samples": 1,
        "reuse_actors": cfg.tune.reuse_actors,
        "max_concurrent_trials": cfg.tune.max_concurrent_trials or None,
    }
    if opts.mode == "ald" and cfg.tune.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        kwargs.update(
            num_samples=cfg.tune.num_samples,
            search_alg=OptunaSearch(metric=cfg.tune.metric, mode="min", seed=cfg.train.seed),
        )
    if uses_asha(cfg, opts):
        from ray.tune.schedulers import ASHAScheduler

        kwargs["scheduler"] = ASHAScheduler(
            time_attr="training_iteration",
            metric=cfg.tune.metric,
            mode="min",
            max_t=cfg.train.epochs,
            grace_period=min(cfg.tune.asha_grace, cfg.train.epochs),
        )
    return tune.TuneConfig(**kwargs)


def fit_sweep(
    cfg: Config,
    opts: SweepOptions,
    plan: Plan | None = None,
    tracker: SweepTracker | None = None,
    on_lost: Callable[[], str] | None = None,
) -> SweepRecord:
    """Run (or resume) one ALD or grid sweep under Ray Tune.

    Args:
        cfg: the search space and every setting of the trials.
        opts: where and how to run (see :class:`SweepOptions`).
        plan: what :func:`prepare` settled (default: prepared here).
        tracker: started once Ray is up and the sweep file written, before any trial
            (:meth:`~ald_tune.tracking.tracker.MLflowTracker.start` opens the sweep's
            parent run); the trial callbacks it returns are added to every trial.
        on_lost: called when a SIGTERM stopped the Ray cluster with the driver, so the sweep
            cannot end through Tune (:func:`~ald_tune.sweeps.cluster.end_if_cluster_lost`):
            closes what the caller opened and returns the line to end with.

    Returns:
        A :class:`~ald_tune.sweeps.results.SweepRecord` with one record per trial.

    Raises:
        ConfigError, DataError: bad input, before Ray starts any trial.
    """
    plan = plan or prepare(cfg, opts)
    _quiet_tune_env()
    init_ray(opts.address)
    check_resources(cfg, local=starts_own_cluster(opts.address))
    info = _start_sweep_file(cfg, opts, plan)
    if tracker is not None:
        opts = replace(
            opts, trial_callbacks=(*opts.trial_callbacks, *_start(tracker, cfg, opts, plan))
        )
    t0 = time.perf_counter()
    tuner = _tuner(cfg, opts, plan)
    resume = f"Resume with the same command and `--resume --name {plan.name}`."
    lost = on_lost or (lambda: f"{plan.kind} sweep {plan.name} interrupted. {resume}")
    with keep_ctrl_c_handler(), end_if_cluster_lost(lost):
        grid = tuner.fit()  # on Ctrl-C or SIGTERM: Tune stops the trials, saves, returns
    fit_s = time.perf_counter() - t0
    trials = collect(grid, plan.kind, cfg)
    info = _end_sweep_file(plan, info, fit_s)
    return SweepRecord(
        kind=plan.kind,
        name=plan.name,
        trials=trials,
        wall_s=info["wall_s"],
        dataset=cfg.data.name,
        compare=opts.compare,
        main_rule=opts.main_rule,
        path=plan.path,
        interrupted=_interrupted(grid, trials, cfg, opts),
        result_grid=grid,  # kept for Python users: get_dataframe(), errors, checkpoints
    )


def _start(
    tracker: SweepTracker, cfg: Config, opts: SweepOptions, plan: Plan
) -> tuple[tuple[Callable[..., Any], dict], ...]:
    """The tracker's start (the sweep's parent run): its trial callbacks."""
    return tracker.start(
        cfg,
        plan.name,
        kind=plan.kind,
        space=opts.space,
        resume=opts.resume,
        compare=opts.compare,
        main_rule=opts.main_rule,
    )


def _quiet_tune_env() -> None:
    """Tune's settings for every sweep (set unless the user set them)."""
    # Tune warns about experiment-state snapshots each time a trial checkpoints; with
    # num_to_keep=1 that is by design here, and the warning buries the progress lines.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # The experiment state (what --resume restores) is snapshotted at every trial
    # checkpoint (num_to_keep=1 forces one: CheckpointConfig below) and else at most every
    # SNAPSHOT_S. Every controller step (0, tried before) cost the driver ~20 ms of CPU
    # per trial epoch (the state, ~40 KB of JSON per trial, rewritten 10 times a second
    # and backed up), taken from the trials on a 2-core machine; a resumed trial still
    # starts from its newest checkpoint, and one that finished in the last SNAPSHOT_S
    # before the driver was killed restarts at its final checkpoint and ends at once.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", str(SNAPSHOT_S))
    # Tune's default loggers are CSV, JSON and TensorBoard; ald-tune passes its own CSV and
    # JSON (result_logs) and has MLflow for charts, so the TensorBoard one is not added: it
    # cost the driver 3-4 ms of CPU per result (cProfile, digits), which a 2-core machine
    # takes from the trials.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Ray's new output engine prints its "Configuration for experiment" box and "View
    # detailed results here" even at verbose=0 (ray/tune/experimental/output.py): once per
    # sweep, five times in a compare. The legacy engine at verbose=0 prints nothing; the
    # progress a user reads is ald-tune's own (sweeps/progress.py).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # "Wrote the latest version of all result files ..." after every fit: INFO for Ray's devs.
    logging.getLogger("ray.tune").setLevel(logging.WARNING)


def _start_sweep_file(cfg: Config, opts: SweepOptions, plan: Plan) -> dict[str, Any]:
    """What the sweep is, written beside Tune's own files (its wall time so far kept)."""
    info = {
        "kind": plan.kind.kind,
        "rule": plan.kind.rule,
        "compare": opts.compare,
        "main_rule": opts.main_rule,
        "dataset": cfg.data.name,
        "name": plan.name,
        **{k: v for k, v in read_sweep_file(plan.path).items() if k in ("wall_s", "fits")},
    }
    write_sweep_file(plan.path, info)
    return info


def _end_sweep_file(plan: Plan, info: dict[str, Any], fit_s: float) -> dict[str, Any]:
    """The sweep file after one fit: its wall time and fits so far."""
    fits = info["fits"] if isinstance(info.get("fits"), int) else 0
    info = {
        **info,
        "wall_s": float(info.get("wall_s") or 0.0) + fit_s,
        "fits": fits + 1,
        "last_fit_s": fit_s,
    }
    write_sweep_file(plan.path, info)
    return info


def _tuner(cfg: Config, opts: SweepOptions, plan: Plan):
    """A new ``tune.Tuner``, or the one restored from ``plan.path`` on ``--resume``."""
    from ray import tune

    resources = {"cpu": cfg.tune.cpus_per_trial, "gpu": cfg.tune.gpus_per_trial}
    trainable = tune.with_resources(train_trial, resources)
    if opts.resume:
        repair_experiment_state(plan.path)
    if opts.resume and tune.Tuner.can_restore(plan.path):
        return tune.Tuner.restore(
            plan.path, trainable, resume_unfinished=True, restart_errored=True
        )
    if opts.resume:
        raise ConfigError(
            f"--resume: nothing to restore at {plan.path!r}. Fix: check --storage and --name."
        )
    return tune.Tuner(
        trainable,
        param_space=param_space(cfg, opts),
        tune_config=tune_config(cfg, opts),
        run_config=tune.RunConfig(
            name=plan.name,
            storage_path=plan.storage,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=cfg.tune.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[
                ProgressCallback(
                    verbose=opts.verbose,
                    epoch_lines=opts.epoch_lines,
                    name=plan.name,
                    planned=planned_trials(cfg, opts),
                    epochs=cfg.train.epochs,
                    metric=cfg.tune.metric,
                ),
                *result_loggers(),
                StateBackup(plan.path),
                *opts.callbacks,
            ],
        ),
    )


def _interrupted(grid: Any, trials: list, cfg: Config, opts: SweepOptions) -> bool:
    """The sweep was interrupted (Ctrl-C: Tune stops every trial and returns) when a trial
    neither ran to its end nor failed, and no scheduler stops trials early on purpose."""
    states = [
        t.status for t in getattr(getattr(grid, "_experiment_analysis", None), "trials", None) or ()
    ]
    return any(state not in ("TERMINATED", "ERROR") for state in states) or (
        not uses_asha(cfg, opts) and any(t.status == "STOPPED" for t in trials)
    )


def _once_per_epoch(rows: list[dict]) -> list[dict]:
    """One row per epoch, the last reported: a trial restored from a checkpoint (retry or
    --resume) re-reports the epochs after it, and Tune's files then hold them twice."""
    last: dict[Any, dict] = {}
    for i, row in enumerate(rows):
        last[row.get("training_iteration", i + 1)] = row
    return [last[k] for k in sorted(last)]


def collect(grid, kind: SweepKind, cfg: Config) -> list[TrialRecord]:
    """Turn Tune's ResultGrid into trial records (one row per epoch, tracked keys only)."""
    out = []
    for r in grid:
        m = dict(r.metrics or {})
        df = r.metrics_dataframe
        rows = _once_per_epoch([] if df is None else df.to_dict("records"))
        cfgd = r.config or {}
        params = TrialParams.from_config(cfgd)
        space = (params.space or {}).get("tune", {})
        history = [history_row(int(num(row.get("epoch", i))), row) for i, row in enumerate(rows)]
        status = "ERROR" if r.error else ("TERMINATED" if m.get("run_over") else "STOPPED")
        out.append(
            TrialRecord(
                trial_id=str(m.get("trial_id", os.path.basename(r.path or ""))),
                kind=kind.kind,
                rule=kind.rule,
                seed=params.seed,
                n_z_grid=params.n_z,
                final_n_z=m.get("final_n_z", m.get("n_z_next", params.n_z)),
                status=status,
                history=history,
                cpus=float(space.get("cpus_per_trial", cfg.tune.cpus_per_trial)),
                gpus=float(space.get("gpus_per_trial", cfg.tune.gpus_per_trial)),
                nodes=tuple(
                    sorted(
                        {str(row["node_id"]) for row in rows if isinstance(row.get("node_id"), str)}
                    )
                ),
                path=r.path,
                config={k: v for k, v in cfgd.items() if k != SPACE_KEY},
                prefixes=prefix_curve(m.get(PREFIX_KEY)) if m.get("run_over") else {},
                error=error_text(r.error),
            )
        )
    return sort_trials(out)


def mark_complete(sweeps: list[SweepRecord]) -> None:
    """Every sweep of one compare has finished: say so in each sweep file
    (:func:`ald_tune.sweeps.run.mark_complete` tells MLflow too)."""
    for s in sweeps:
        if s.path:
            write_sweep_file(s.path, {**read_sweep_file(s.path), "complete": True})
