"""Plain Optuna, the study side: the grid sampler, the study, and :func:`optimize`.

:mod:`ald_tune.integrations.optuna.objective` holds the objective (one Optuna trial = one
training run); this module builds the study it runs in, the way the Ray tuners
do: a :class:`~optuna.samplers.GridSampler` over ``cfg.grid.n_z`` for the grid
baseline, seeded TPE for ALD, successive halving when ``tune.scheduler`` is
``asha``; and :func:`optimize`, which runs either under MLflow's parent run.
All three, and the objective, are exported by :mod:`ald_tune.integrations.optuna`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import optuna

from ald_tune.config.constraints import fail
from ald_tune.config.schema import Config
from ald_tune.config.tags import OPTUNA_STUDY_TAG, read
from ald_tune.errors import ConfigError
from ald_tune.integrations.optuna.objective import ALDObjective
from ald_tune.tracking.runs import search_all
from ald_tune.tracking.store import client, redact_uri

MODES = ("ald", "grid")


def grid_sampler(cfg: Config) -> optuna.samplers.GridSampler:
    """Optuna's grid over ``cfg.grid.n_z`` (and seeds when ``tune.grid_seeds > 1``).

    The sampler works out from the study's stored trials which grid points are
    done and stops the study once all are: ``study.optimize`` needs no exact
    ``n_trials``.

    Example:
        >>> from ald_tune.config.schema import load_config
        >>> grid_sampler(load_config("search_spaces/digits.yaml",
        ...                          overrides=["grid.n_z=[2, 8]"]))._search_space
        {'n_z': [2, 8]}
    """
    space: dict[str, list[int]] = {"n_z": list(cfg.grid.n_z)}
    if cfg.tune.grid_seeds > 1:
        space["seed"] = list(range(cfg.train.seed, cfg.train.seed + cfg.tune.grid_seeds))
    return optuna.samplers.GridSampler(space, seed=cfg.train.seed)


def make_study(
    cfg: Config,
    mode: str = "ald",
    *,
    study_name: str | None = None,
    storage: str | None = None,
    load_if_exists: bool = False,
) -> optuna.Study:
    """The study :func:`optimize` creates: minimise; GridSampler (grid) or seeded TPE (ALD).

    The pruner mirrors the Ray tuners: Optuna's successive halving for a grid
    with ``tune.scheduler == "asha"`` (grace ``tune.asha_grace`` epochs), else
    none (ALD trials change size while they train, so early epochs of two
    trials do not compare).

    Args:
        cfg: the configuration.
        mode: ``ald`` or ``grid``.
        study_name: default ``<mode>-<dataset>-<time>-<random>``.
        storage: an Optuna storage URL (e.g. ``sqlite:////abs/optuna.db``) to
            resume the study later; default in memory.
        load_if_exists: continue the study of that name in ``storage``.

    Raises:
        ConfigError: an unknown mode.
    """
    _check_mode(mode)
    if mode == "grid":
        sampler: optuna.samplers.BaseSampler = grid_sampler(cfg)
    else:
        sampler = optuna.samplers.TPESampler(seed=cfg.train.seed)
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if mode == "grid" and cfg.tune.scheduler == "asha":
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=min(cfg.tune.asha_grace, cfg.train.epochs), reduction_factor=4
        )
    name = (
        study_name
        or f"{mode}-{cfg.data.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    )
    return optuna.create_study(
        direction="minimize",
        sampler=sampler,
        pruner=pruner,
        study_name=name,
        storage=storage,
        load_if_exists=load_if_exists,
    )


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise fail("optimize", "mode", f"one of {MODES}", mode)


def _check_study(study: optuna.Study, mode: str) -> None:
    if len(study.directions) != 1 or study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise fail(
            "optimize",
            "study",
            "a single-objective study with direction='minimize'",
            [d.name for d in study.directions],
        )
    if mode == "grid" and not isinstance(study.sampler, optuna.samplers.GridSampler):
        raise fail(
            "optimize",
            "study",
            "a study whose sampler is optuna.samplers.GridSampler when mode='grid'",
            type(study.sampler).__name__,
            "create it with sampler=ald_tune.integrations.optuna.objective.grid_sampler(cfg)",
        )


def optimize(
    cfg: Config,
    *,
    mode: str = "ald",
    n_trials: int | None = None,
    tracking_uri: str | None = None,
    study: optuna.Study | None = None,
    trainer: type | None = None,
    experiment: str | None = None,
    **optimize_kwargs: Any,
) -> optuna.Study:
    """Run an ALD or grid sweep under plain Optuna and return the study.

    Args:
        cfg: the search space and every setting of the trials.
        mode: ``ald`` (self-shrinking trials; seeds, or TPE over lr/beta with
            ``tune.search: optuna``) or ``grid`` (one fixed-n_z trial per grid point).
        n_trials: default ``tune.num_samples`` (ALD) or the grid's size (grid;
            the GridSampler stops the study earlier when a resumed grid has
            fewer points left).
        tracking_uri: MLflow URI; default ``$MLFLOW_TRACKING_URI``; none: no tracking.
        study: a study to continue or to use with your own pruner; default
            :func:`make_study`. Must minimise; for ``grid`` its sampler must be a
            GridSampler.
        trainer: the trainer class (default the engine's; fast tests pass
            :class:`ald_tune.testing.scripted.ScriptedTrainer`).
        experiment: MLflow experiment; default ``ald-tune-<dataset>``.
        **optimize_kwargs: passed to ``study.optimize`` (``timeout``, ``n_jobs``,
            ``callbacks``...).

    Returns:
        The study; each trial's user attributes hold ``n_z_history`` and ``final_n_z``.

    Raises:
        ConfigError: a bad argument or an unusable tracking store, before any trial.

    Example:
        >>> from ald_tune.config.schema import load_config
        >>> cfg = load_config("search_spaces/digits.yaml",
        ...                   overrides=["train.epochs=12", "ald.window=6", "grid.n_z=[2, 8, 16]"])
        >>> from ald_tune.testing.scripted import ScriptedTrainer
        >>> study = optimize(cfg, mode="grid", trainer=ScriptedTrainer)
        >>> sorted(t.params["n_z"] for t in study.trials)
        [2, 8, 16]
    """
    _check_mode(mode)
    objective = ALDObjective(
        cfg, fixed=mode == "grid", tracking_uri=tracking_uri, experiment=experiment, trainer=trainer
    )
    study = study if study is not None else make_study(cfg, mode)
    _check_study(study, mode)
    if n_trials is None:
        n_trials = (
            len(cfg.grid.n_z) * cfg.tune.grid_seeds if mode == "grid" else cfg.tune.num_samples
        )
    if objective.tracking_uri is not None:
        objective.parent_run(study.study_name)  # on the main thread, before any trial
    with objective:
        study.optimize(objective, n_trials=n_trials, **optimize_kwargs)
    return study


def study_runs(tracking_uri: str, study_name: str, experiment: str) -> list:
    """The MLflow runs of a study's trials, newest first, in stores of every version.

    ald-tune 0.2 wrote the study's name under a tag key its module move had renamed
    (``ald_tune.integrations.optuna.study``); later versions write
    ``ald_tune.optuna_study`` again. Both are read (:func:`ald_tune.config.tags.read`),
    filtered in Python, so a study name is never pasted into an MLflow filter.

    Args:
        tracking_uri: the MLflow store the study logged to.
        study_name: the study's name (``optimize`` uses ``study.study_name``).
        experiment: the MLflow experiment (default of ``optimize``: ``ald-tune-<dataset>``).

    Raises:
        ConfigError: no such experiment in that store.
    """
    c = client(tracking_uri)
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        raise ConfigError(
            f"MLflow store {redact_uri(tracking_uri)!r} has no experiment {experiment!r}. "
            "Fix: pass the experiment the study logged to (default ald-tune-<dataset>)."
        )
    runs = search_all(c, exp.experiment_id, order_by=["attributes.start_time DESC"])
    return [r for r in runs if read(r.data.tags, OPTUNA_STUDY_TAG) == study_name]
