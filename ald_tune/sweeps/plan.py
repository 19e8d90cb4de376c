"""What a sweep is before Ray starts: its options, its plan, and every check on them.

:class:`SweepOptions` (where and how a sweep runs) and :func:`prepare` (checks the config,
the data and the storage in seconds, then names the sweep: a :class:`Plan`) come first, so
bad input is refused before anything is started; :func:`param_space` is the Tune param space
the plan's trials take. :mod:`ald_tune.sweeps.tuner` runs the plan under Ray Tune.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ald_tune.config.constraints import check_name
from ald_tune.config.kinds import SweepKind, default_stamp
from ald_tune.config.schema import Config, check_ald_schedule
from ald_tune.config.trial import (
    BETA_KEY,
    LR_KEY,
    N_Z_KEY,
    SEED_KEY,
    TrialParams,
)
from ald_tune.errors import ConfigError, shown
from ald_tune.sweeps.results import SweepRecord
from ald_tune.sweeps.trainable import DEFAULT_TRAINER, load_object, object_path

MODES = ("ald", "grid")


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
