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

import glob
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ald_tune.config.constraints import check_name
from ald_tune.config.kinds import SweepKind, default_stamp, read_sweep_file, write_sweep_file
from ald_tune.config.schema import Config, check_ald_schedule
from ald_tune.config.trial import (
    BETA_KEY,
    LR_KEY,
    N_Z_KEY,
    SEED_KEY,
    SPACE_KEY,
    TrialParams,
)
from ald_tune.config.vocabulary import PREFIX_KEY
from ald_tune.errors import ConfigError, shown
from ald_tune.interrupts import keep_ctrl_c_handler
from ald_tune.sweeps.cluster import (
    check_resources,
    end_if_cluster_lost,
    init_ray,
    starts_own_cluster,
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
from ald_tune.sweeps.trainable import DEFAULT_TRAINER, load_object, object_path, train_trial
from ald_tune.tracking.tracker import SweepTracker

MODES = ("ald", "grid")
#: Seconds between two snapshots of a sweep's experiment state when no trial checkpoints
#: in between (``$TUNE_GLOBAL_CHECKPOINT_S`` overrides it; see ``_quiet_tune_env``).
SNAPSHOT_S = 5.0


@dataclass(frozen=True)
class SweepOptions:
    """Where and how a sweep runs (everything that is not the search space).

    Attributes:
        mode: ``ald`` or ``grid``.
        space: the search-space file (recorded as a tag).
        name: sweep name; default ``<kind>-<dataset>-<time>`` (``--resume`` finds the latest).
        run_dir: folder for the default storage and SQLite store (default ``./runs``).
        storage: Tune storage path or URI (default ``$ALD_TUNE_STORAGE`` or ``<run_dir>/ray``);
            shared on clusters.
        resume: continue an interrupted sweep with ``Tuner.restore``.
        address: Ray address (default: ``$RAY_ADDRESS``, a running local cluster, or a new one).
        trainer: the trainer class as ``"module:Class"`` (imported in each trial); default
            the engine's :class:`~ald_tune.engine.trainer.Trainer`. Tests and benchmarks
            pass the doubles of :mod:`ald_tune.testing`.
        trial_callbacks: ``(factory, kwargs)`` pairs, the factory a module-level function
            or its path ``"module:factory"``; each trial calls ``factory(TrialInfo,
            trainer, **kwargs)`` for an engine callback. (Where the sweep is tracked in
            MLflow is not an option of the sweep: ``run_sweep(..., tracking=...)``.)
        verbose: print the sweep's progress (False: nothing).
        epoch_lines: print one line per trial result too (``--verbose``); by default a
            status line per trial start and end (done, running, pending, best, ETA).
        label: the default name's prefix instead of the kind's label (a name only).
        callbacks: extra ``ray.tune.Callback`` objects (run on the driver).
        kind: ``fixed`` for the fixed runs at ALD's n_z; default: from the mode and config
            (``grid``, ``asha`` under ``tune.scheduler=asha``, ``ald``).
        compare: the name of the ``compare`` run this sweep belongs to (in its sweep file,
            where a resumed compare finds it, and a tag of its parent run when tracked).
        main_rule: that compare's main rule (likewise).
    """

    mode: str = "ald"
    space: str | None = None
    name: str | None = None
    run_dir: str = "runs"
    storage: str | None = None
    resume: bool = False
    address: str | None = None
    trainer: str = DEFAULT_TRAINER
    trial_callbacks: tuple[tuple[str | Callable[..., Any], dict], ...] = ()
    verbose: bool = True
    epoch_lines: bool = False
    label: str | None = None
    callbacks: tuple = ()
    kind: str | None = None
    compare: str | None = None
    main_rule: str | None = None

    def sweep_kind(self, cfg: Config) -> SweepKind:
        """What the sweep is (its tags say so, once)."""
        return SweepKind.for_sweep(self.mode, cfg, self.kind)


#: What :func:`ald_tune.sweeps.run.run_sweep` returns.
SweepResult = SweepRecord


@dataclass(frozen=True)
class Plan:
    """What :func:`prepare` settled before anything starts."""

    name: str
    storage: str
    path: str
    kind: SweepKind


def storage_path(opts: SweepOptions) -> str:
    """--storage, else ``$ALD_TUNE_STORAGE`` (set on cluster nodes), else RUN_DIR/ray."""
    storage = opts.storage or os.environ.get("ALD_TUNE_STORAGE")
    if storage:
        return storage if "://" in storage else os.path.abspath(storage)
    return os.path.join(os.path.abspath(opts.run_dir), "ray")


def sweep_name(cfg: Config, opts: SweepOptions, storage: str) -> str:
    """The given name; with --resume the newest sweep of this kind and dataset."""
    if opts.name:
        return opts.name
    kind = opts.sweep_kind(cfg)
    prefix = f"{opts.label or kind.label}-{cfg.data.name}-"
    if opts.resume and "://" not in storage:
        labels = (opts.label,) if opts.label else (kind.label, *kind.old_labels)
        found = sorted(
            (
                folder
                for label in labels
                for folder in glob.glob(os.path.join(storage, f"{label}-{cfg.data.name}-*"))
            ),
            key=os.path.getmtime,
        )
        if not found:
            raise ConfigError(
                f"--resume: no {opts.mode} sweep on {cfg.data.name} under {storage!r}. "
                "Fix: pass --name of the sweep, or the same --storage as before."
            )
        return os.path.basename(found[-1])
    return prefix + default_stamp()


def validate_before_start(cfg: Config, opts: SweepOptions) -> None:
    """Everything that can fail cheaply fails here, before Ray starts a trial."""
    if opts.mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}. Got {opts.mode!r} instead.")
    if opts.sweep_kind(cfg).mode != opts.mode:
        raise ConfigError(f"a {opts.kind!r} sweep cannot run in mode {opts.mode!r}.")
    if opts.mode == "ald":
        check_ald_schedule(cfg)
    nested = opts.sweep_kind(cfg).kind == "nested"
    if nested != cfg.train.nested_dropout:
        raise ConfigError(
            f"train.nested_dropout={str(cfg.train.nested_dropout).lower()} in a "
            f"{opts.sweep_kind(cfg)} sweep: nested dropout trains the nested sweep's runs "
            "only. Fix: "
            + (
                "set train.nested_dropout=true for it."
                if nested
                else "drop train.nested_dropout (run it as `ald-tune compare --baselines "
                "nested`, or `ald-tune train --fixed-nz N`)."
            )
        )
    if cfg.tune.search == "optuna" and opts.mode == "grid":
        raise ConfigError(
            "tune.search=optuna applies to ALD sweeps; the grid is a grid. "
            "Fix: use tune.search=none for grid sweeps."
        )
    # The trainer's own checks on the data (the engine's loads it and checks the
    # evaluation sizes; a scripted one has none).
    load_object(opts.trainer).check(cfg)


def prepare(cfg: Config, opts: SweepOptions) -> Plan:
    """Validate and settle the name and folder (no Ray yet).

    Raises:
        ConfigError: a bad name, or a storage folder that is a file or not writable.
    """
    for flag, value in (("--name", opts.name), ("the compare's name", opts.compare)):
        if value is not None:
            check_name(value, flag)
    validate_before_start(cfg, opts)
    storage = storage_path(opts)
    check_storage(storage)
    name = check_name(sweep_name(cfg, opts, storage), "--name")
    path = os.path.join(storage, name) if "://" not in storage else f"{storage.rstrip('/')}/{name}"
    return Plan(name, storage, path, opts.sweep_kind(cfg))


def check_storage(storage: str) -> None:
    """A local storage folder exists (or can be made) and is writable; remote storage is
    checked by Tune.

    Raises:
        ConfigError: naming the folder and the fix.
    """
    if "://" in storage:
        return
    fix = "Fix: pass --storage (or --run-dir) with a writable folder."
    if os.path.exists(storage) and not os.path.isdir(storage):
        raise ConfigError(f"Tune storage {shown(storage)} is a file, not a folder. {fix}")
    missing = []  # the folders that would be made, deepest first
    folder = storage
    while not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    try:  # made and removed again: proof it can be made, and nothing is left behind
        _probe(storage)
    except OSError as exc:
        raise ConfigError(
            f"Tune storage {shown(storage)} cannot be written ({exc.strerror or exc}). {fix}"
        ) from None
    finally:
        for made in missing:
            try:
                os.rmdir(made)
            except OSError:
                break


def _probe(storage: str, tries: int = 5) -> None:
    """Makes `storage` (and a probe folder in it, removed again). A second sweep started at
    the same moment on the same new folder may remove it between our makedirs and our probe
    (its own clean-up): that is a race, not an unwritable folder, so it is tried again."""
    for attempt in range(tries):
        os.makedirs(storage, exist_ok=True)
        try:
            os.rmdir(tempfile.mkdtemp(dir=storage, prefix=".ald-tune-probe-"))
            return
        except FileNotFoundError:
            if attempt == tries - 1:
                raise


def uses_asha(cfg: Config, opts: SweepOptions) -> bool:
    """ASHA runs on grid sweeps only (ALD trials end themselves; a nested run's answer
    comes at its last epoch)."""
    return (
        opts.mode == "grid"
        and opts.sweep_kind(cfg).kind != "nested"
        and cfg.tune.scheduler == "asha"
    )


def param_space(cfg: Config, opts: SweepOptions) -> dict[str, Any]:
    """Ray Tune's param space: the trial settings every trial shares (a
    :class:`~ald_tune.config.trial.TrialParams` as a dict) plus the searched ones
    (``n_z``, ``seed``, ``lr``, ``beta``) as Tune search values under the same keys."""
    from ray import tune

    kind = opts.sweep_kind(cfg).kind
    space: dict[str, Any] = TrialParams(
        space=cfg.to_dict(),
        mode=opts.mode,
        kind=kind,
        trainer=opts.trainer,
        callbacks=tuple((object_path(f), kwargs) for f, kwargs in opts.trial_callbacks),
        # ASHA may stop a trial at any report: an epoch trained ahead of it would be wasted.
        report_ahead=cfg.tune.report_ahead and not uses_asha(cfg, opts),
    ).to_dict()
    seed0 = cfg.train.seed
    if kind == "nested":  # one wide run per seed, as many seeds as ALD
        space[N_Z_KEY] = nested_width(cfg)
        space[SEED_KEY] = tune.grid_search(list(range(seed0, seed0 + cfg.tune.num_samples)))
    elif opts.mode == "grid":
        space[N_Z_KEY] = tune.grid_search(list(cfg.grid.n_z))
        space[SEED_KEY] = tune.grid_search(list(range(seed0, seed0 + cfg.tune.grid_seeds)))
    elif cfg.tune.search == "optuna":
        space[SEED_KEY] = seed0
        space[LR_KEY] = tune.loguniform(*cfg.tune.lr_range)
        space[BETA_KEY] = tune.uniform(*cfg.tune.beta_range)
    else:
        space[SEED_KEY] = tune.grid_search(list(range(seed0, seed0 + cfg.tune.num_samples)))
    return space


def planned_trials(cfg: Config, opts: SweepOptions) -> int:
    """How many trials the sweep runs: one per grid point and grid seed, else one per
    seed (``tune.num_samples``)."""
    if opts.mode == "grid" and opts.sweep_kind(cfg).kind != "nested":
        return len(cfg.grid.n_z) * cfg.tune.grid_seeds
    return cfg.tune.num_samples


def nested_width(cfg: Config) -> int:
    """The n_z of a nested-dropout run: the grid's widest, so every grid n_z is one of
    its prefixes and the curve lines up with the grid point for point."""
    return max(cfg.grid.n_z)


def tune_config(cfg: Config, opts: SweepOptions):
    from ray import tune

    # One worker process serves trial after trial (tune.reuse_actors): a new trial process
    # spends ~7 s importing torch, torchmetrics and MLflow before its first epoch, as long
    # as 30 of its epochs on digits (benchmarks/bench_sweeps.py). The trainable gives a
    # stopped trial time to close its MLflow run before the actor is reset (REUSE_WAIT_ENV).
    kwargs: dict[str, Any] = {"num_samples": 1, "reuse_actors": cfg.tune.reuse_actors}
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
