"""Plain Optuna, without Ray: ALD (or the fixed-n_z grid) as an objective for ``study.optimize``.

One Optuna trial is one training run. Every epoch the objective reports the
validation metric to the trial (``trial.report(value, step=epoch)``), so any
Optuna pruner works, and records n_z as trial user attributes (``n_z``, the
growing ``n_z_history``, and ``final_n_z`` at the end). The grid baseline is
Optuna's :class:`~optuna.samplers.GridSampler` over ``cfg.grid.n_z``
(:func:`grid_sampler`). With a tracking URI, trials log to MLflow exactly as
the Ray trainables do: one parent run per study, one child run per trial,
metrics with step = epoch.

Why not ``optuna_integration.MLflowCallback`` (not installed here; read in
optuna/optuna-integration at 981b8cd, ``optuna_integration/mlflow/mlflow.py``): it is
deprecated since optuna-integration 4.9.0, to be removed in 6.0.0. It is a study
callback, called once after a trial ends, that logs the objective value (metric
``value``, no step), the sampled params and the user attributes as tags (cut to
MLflow's tag length): no per-epoch metrics, so no n_z history to plot, and no images,
history or model. It nests only under the calling thread's active fluent run
(``mlflow_kwargs={"nested": True}``), sets the process-wide tracking URI and experiment,
and opens a new run for each trial (or continues the one its ``track_in_mlflow``
decorator opened), not one found again by a trial id tag. So its runs would not have the
layout the report rebuilds from (:mod:`ald_tune.tracking.runs`).

Example:
    >>> import optuna
    >>> from ald_tune.config.schema import load_config
    >>> from ald_tune.integrations.optuna.objective import ALDObjective
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> cfg = load_config("search_spaces/digits.yaml",
    ...                   overrides=["train.epochs=12", "ald.window=6", "ald.patience=2"])
    >>> study = optuna.create_study(direction="minimize")
    >>> from ald_tune.testing.scripted import ScriptedTrainer
    >>> study.optimize(ALDObjective(cfg, trainer=ScriptedTrainer), n_trials=3)
    >>> study.best_trial.user_attrs["n_z_history"][0], study.best_trial.user_attrs["final_n_z"] < 64
    (64, True)
"""

from __future__ import annotations

import math
import os
import threading
import uuid
import warnings
from collections.abc import Mapping
from typing import Any

import optuna

from ald_tune.config.constraints import fail
from ald_tune.config.kinds import SweepKind
from ald_tune.config.schema import Config, tune_constraint
from ald_tune.config.tags import OPTUNA_STUDY_TAG, OPTUNA_TRIAL_TAG, PRUNED_EPOCH_TAG
from ald_tune.config.trial import trial_config
from ald_tune.config.vocabulary import MINIMISED
from ald_tune.engine.callbacks import Cadence, Callback, TrainerView
from ald_tune.engine.trainer import Trainer
from ald_tune.errors import ConfigError
from ald_tune.tracking.runs import (
    filter_params,
    find_child_run,
    finish_run,
    start_parent_run,
    trial_tags,
)
from ald_tune.tracking.store import check_tracking, client, mlflow_env, parse_tracking_uri
from ald_tune.tracking.trial_logger import MLflowCallback, TrialLogger

SEARCHABLE = ("lr", "beta")


class ALDObjective:
    """Callable for ``study.optimize``: one ALD (or fixed-n_z) training per Optuna trial.

    Per trial it builds the trial's config (seed, sampled ``lr``/``beta``, one
    torch thread per CPU of ``tune.cpus_per_trial`` unless ``train.threads`` is
    set), trains epoch by epoch and, each epoch:

    * ``trial.report(record[metric], step=epoch)``, then ``trial.should_prune()``:
      a pruned trial closes its MLflow child run as ``KILLED`` and raises
      :class:`optuna.TrialPruned`;
    * ``trial.set_user_attr("n_z", n)`` and ``"n_z_history"`` (the n_z each
      epoch trained at, epoch 0 first).

    At the end it sets ``final_n_z`` (the model's size after the last
    decision, as in ``history.json``), ``stop_epoch`` and ``seed``, and returns
    the metric at the last epoch. A NaN metric makes Optuna mark the trial
    failed.

    Seeds: an ALD trial without a search uses ``train.seed + trial.number``
    (repeated trials are seeds, as in the Ray ALD sweep); with a search the
    seed stays ``train.seed`` so only the sampled values differ. Grid trials
    use ``train.seed`` (or a ``seed`` grid axis when ``tune.grid_seeds > 1``).

    Args:
        cfg: the search space and every setting of the trials.
        metric: the validation metric to minimise; default ``cfg.tune.metric``.
            One of ``MINIMISED``.
        search: ``{"lr": (lo, hi), "beta": (lo, hi)}`` (either key or both): lr
            is sampled log-uniform, beta uniform. Default: both ranges from
            ``cfg.tune`` when ``cfg.tune.search == "optuna"``, else nothing is
            sampled. Not allowed with ``fixed`` (a given ``search`` raises; the
            config's ``tune.search`` is ignored by the grid).
        fixed: the grid baseline: ``n_z = trial.suggest_categorical("n_z",
            cfg.grid.n_z)`` and no pruning of latent units; use it with
            :func:`grid_sampler`.
        tracking_uri: MLflow URI; default ``$MLFLOW_TRACKING_URI``; neither set
            turns tracking off. SQLite or HTTP only (see
            :func:`ald_tune.tracking.resolve_tracking_uri`).
        experiment: MLflow experiment; default ``ald-tune-<dataset>``.
        study_name: the sweep name (the parent run's ``ald_tune.sweep`` tag);
            default the trial's ``study.study_name``.
        trainer: the trainer class (default the engine's
            :class:`~ald_tune.engine.trainer.Trainer`; fast tests pass
            :class:`ald_tune.testing.scripted.ScriptedTrainer`).

    Raises:
        ConfigError: a bad argument (the message names it, the allowed values
            and the value received), or an unusable tracking store.

    Example (real training on the bundled digits; a few minutes on a CPU):
        >>> import optuna
        >>> from ald_tune.config.schema import load_config
        >>> cfg = load_config("search_spaces/digits.yaml")
        >>> study = optuna.create_study(direction="minimize")
        >>> study.optimize(ALDObjective(cfg), n_trials=3)             # doctest: +SKIP
        >>> study.best_trial.user_attrs["final_n_z"]                  # doctest: +SKIP
        12

    With MLflow, use it as a context manager (or call :meth:`finish`) so the
    study's parent run is closed too; :func:`optimize` does that for you::

        with ALDObjective(cfg, tracking_uri="sqlite:////abs/mlflow.db") as objective:
            study.optimize(objective, n_trials=3)
    """

    def __init__(
        self,
        cfg: Config,
        *,
        metric: str | None = None,
        search: Mapping[str, tuple[float, float]] | None = None,
        fixed: bool = False,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        study_name: str | None = None,
        trainer: type | None = None,
    ) -> None:
        self.cfg = cfg
        self.metric = metric if metric is not None else cfg.tune.metric
        if self.metric not in MINIMISED:
            raise fail("ALDObjective", "metric", f"one of {MINIMISED} (minimised)", self.metric)
        self.trainer_class: Any = trainer or Trainer
        if not hasattr(self.trainer_class, "check") or not hasattr(self.trainer_class, "fit"):
            raise fail(
                "ALDObjective",
                "trainer",
                "a trainer class (like ald_tune.engine.trainer.Trainer)",
                trainer,
            )
        self.fixed = bool(fixed)
        self.mode = "grid" if self.fixed else "ald"
        self.kind = SweepKind.for_sweep(self.mode, cfg.replace(tune={"scheduler": "fifo"}))
        self.search = _check_search(search, cfg, self.fixed)
        self.study_name = study_name
        self.experiment = experiment or f"ald-tune-{cfg.data.name}"
        # Credentials in the URI stay with this objective: os.environ gets them only while
        # it talks to MLflow (mlflow_env), and is as it was after, even when this fails.
        self.tracking_uri, *self._credentials = _resolve_uri(tracking_uri)
        self._parents: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()  # study.optimize(n_jobs>1) calls from several threads
        self._splits: Any = None

    # -- one trial ----------------------------------------------------------------------
    def __call__(self, trial: optuna.trial.BaseTrial) -> float:
        """Train one run for ``trial`` and return the metric at its last epoch.

        Raises:
            optuna.TrialPruned: when the study's pruner stops the trial.
        """
        with mlflow_env(*self._credentials):
            return self._run(trial)

    def _run(self, trial: optuna.trial.BaseTrial) -> float:
        n_z, seed, sampled = self._suggest(trial)
        cpus = self.cfg.train.threads or self.cfg.tune.cpus_per_trial
        cfg = trial_config({"space": self.cfg.to_dict(), "seed": seed, **sampled}, cpus)
        trainer = self._trainer(cfg, n_z)
        trial.set_user_attr("seed", seed)
        reporter = _OptunaReporter(trial, self._value, self.metric)
        callbacks: list[Callback] = [reporter]
        logger = self._logger(trial, cfg, seed, trainer.model.n_z)
        if logger is not None:
            trainer.tracking_run_id = logger.run_id
            trial.set_user_attr("mlflow_run_id", logger.run_id)
            # MLflow first: a pruned trial's last epoch is logged before the pruner stops it.
            callbacks.insert(0, MLflowCallback(logger, end_tags=reporter.end_tags))
        trainer.fit(callbacks, Cadence.from_config(cfg), stop_on=(optuna.TrialPruned,))
        trial.set_user_attr("final_n_z", int(trainer.model.n_z))
        trial.set_user_attr("stop_epoch", trainer.summary()["stop_epoch"])
        return reporter.value

    def _suggest(self, trial) -> tuple[int | None, int, dict[str, float]]:
        """(fixed n_z or None, seed, sampled train values) for this trial."""
        base = self.cfg.train.seed
        if self.fixed:
            n_z = int(trial.suggest_categorical("n_z", list(self.cfg.grid.n_z)))
            seed = base
            if self.cfg.tune.grid_seeds > 1:
                seeds = list(range(base, base + self.cfg.tune.grid_seeds))
                seed = int(trial.suggest_categorical("seed", seeds))
            return n_z, seed, {}
        sampled = {}
        if "lr" in self.search:
            sampled["lr"] = trial.suggest_float("lr", *self.search["lr"], log=True)
        if "beta" in self.search:
            sampled["beta"] = trial.suggest_float("beta", *self.search["beta"])
        return None, base if sampled else base + trial.number, sampled

    def _trainer(self, cfg: Config, n_z: int | None):
        if self._splits is None:
            # The split depends on cfg.data only (not on the seed): load and check it once.
            self._splits = self.trainer_class.check(cfg) or ()
        return self.trainer_class(cfg, fixed_n_z=n_z, splits=self._splits or None)

    def _value(self, record: Mapping[str, Any]) -> float:
        if self.metric not in record:
            raise ConfigError(
                f"The 'metric' parameter of ALDObjective is {self.metric!r}, but the "
                f"epoch record has only {sorted(record)}."
            )
        value = record[self.metric]
        return math.nan if value is None else float(value)

    # -- MLflow -------------------------------------------------------------------------
    def parent_run(self, study_name: str) -> tuple[str, str]:
        """(experiment_id, parent_run_id) of the study's parent run, created or found once.

        An existing parent with the same ``ald_tune.sweep`` tag is reused, so
        optimising the same study again continues its parent run.
        """
        if self.tracking_uri is None:
            raise ConfigError(
                "ALDObjective has no tracking URI. Fix: pass tracking_uri= or "
                "set MLFLOW_TRACKING_URI."
            )
        with self._lock, mlflow_env(*self._credentials):
            if study_name not in self._parents:
                exp_id, parent = start_parent_run(
                    self.tracking_uri,
                    self.experiment,
                    study_name,
                    kind=self.kind,
                    cfg=self.cfg,
                    space=None,
                    resume=True,
                    runner="optuna",
                )
                self._parents[study_name] = (exp_id, parent)
            return self._parents[study_name]

    def finish(self, status: str = "FINISHED") -> None:
        """Close the parent runs this objective opened (``FINISHED``, ``FAILED``, ``KILLED``)."""
        with self._lock:
            parents, self._parents = list(self._parents.values()), {}
        with mlflow_env(*self._credentials):
            for _, parent in parents:
                if self.tracking_uri:
                    finish_run(self.tracking_uri, parent, status)

    def __enter__(self) -> ALDObjective:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(
            "FINISHED"
            if exc_type is None
            else "KILLED"
            if issubclass(exc_type, KeyboardInterrupt)
            else "FAILED"
        )

    def _study_name(self, trial) -> str:
        study = getattr(trial, "study", None)  # FixedTrial has none
        return self.study_name or getattr(study, "study_name", None) or "optuna"

    def _logger(self, trial, cfg: Config, seed: int, n_z_init: int):
        if self.tracking_uri is None:
            return None
        study = self._study_name(trial)
        exp_id, parent = self.parent_run(study)
        tags = trial_tags(
            self.kind, seed, **{OPTUNA_TRIAL_TAG: str(trial.number), OPTUNA_STUDY_TAG: study}
        )
        params = {
            **filter_params(cfg),
            "n_z_init": n_z_init,
            **{f"optuna.{k}": v for k, v in trial.params.items()},
        }
        name = (
            f"grid-nz{n_z_init}-s{seed}-t{trial.number}"
            if self.fixed
            else f"ald-s{seed}-t{trial.number}"
        )
        trial_id = self._child_id(exp_id, parent, f"optuna-{study}-{trial.number}")
        return TrialLogger(self.tracking_uri, exp_id, parent, trial_id, tags, params, name)

    def _child_id(self, exp_id: str, parent: str, trial_id: str) -> str:
        """``trial_id``, unless an earlier study of the same name already used it.

        Ray retries a trial into its own run; Optuna never runs a trial number
        twice in one study, so a child already holding this id belongs to
        another study of the same name (e.g. a new in-memory study) and would
        swallow this trial's epochs as "already logged".
        """
        assert self.tracking_uri is not None  # only called with tracking on
        if find_child_run(client(self.tracking_uri), exp_id, parent, trial_id) is None:
            return trial_id
        fresh = f"{trial_id}-{uuid.uuid4().hex[:8]}"
        warnings.warn(
            f"MLflow parent run {parent} already has a child for {trial_id!r} (an "
            f"earlier study with the same name?); logging this trial as {fresh!r}. "
            "Fix: give each new study its own study_name, or reuse it through "
            "persistent storage (create_study(storage=..., load_if_exists=True)).",
            RuntimeWarning,
            stacklevel=2,
        )
        return fresh


def _check_search(search, cfg: Config, fixed: bool) -> dict[str, tuple[float, float]]:
    if search is None:
        if fixed or cfg.tune.search != "optuna":
            return {}
        lr, beta = cfg.tune.lr_range, cfg.tune.beta_range
        return {"lr": (lr[0], lr[1]), "beta": (beta[0], beta[1])}
    if fixed and search:
        raise fail(
            "ALDObjective",
            "search",
            "empty when fixed=True (the grid samples only n_z)",
            dict(search),
            "drop search=, or use fixed=False for ALD trials",
        )
    if not isinstance(search, Mapping) or set(search) - set(SEARCHABLE):
        raise fail("ALDObjective", "search", f"a dict with keys among {SEARCHABLE}", search)
    out = {}
    for key, rng in search.items():  # the same range rule as tune.lr_range / tune.beta_range
        out[key] = tune_constraint(f"{key}_range").check(rng, f"search['{key}']", "ALDObjective")
    return out


def _resolve_uri(uri: str | None) -> tuple[str | None, str | None, str | None]:
    """(URI, username, password): the given URI, else ``$MLFLOW_TRACKING_URI``, else None
    (tracking off); checked, and ``os.environ`` left as it is."""
    if not (uri or os.environ.get("MLFLOW_TRACKING_URI")):
        return None, None, None
    resolved, user, password = parse_tracking_uri(uri, os.getcwd())
    with mlflow_env(user, password):
        check_tracking(resolved)
    return resolved, user, password


class _OptunaReporter(Callback):
    """Each epoch's metric to ``trial.report`` and n_z to the trial's user attributes;
    raises :class:`optuna.TrialPruned` when the study's pruner says so."""

    def __init__(self, trial: Any, value: Any, metric: str) -> None:
        self.trial, self.read, self.metric = trial, value, metric
        self.value = math.nan
        self.history: list[int] = []
        self.pruned: int | None = None

    def on_epoch_end(self, trainer: TrainerView, result: Any) -> None:
        n_z = int(result.record["n_z"])
        self.value = self.read(result.record)
        self.history.append(n_z)
        self.trial.report(self.value, step=result.epoch)
        self.trial.set_user_attr("n_z", n_z)
        self.trial.set_user_attr("n_z_history", list(self.history))
        if self.trial.should_prune():
            self.pruned = result.epoch
            self.trial.set_user_attr("pruned_epoch", result.epoch)
            raise optuna.TrialPruned(
                f"pruned at epoch {result.epoch} ({self.metric}={self.value:.6g}, n_z={n_z})"
            )

    def end_tags(self, trainer: TrainerView) -> dict[str, str]:
        return {PRUNED_EPOCH_TAG: str(self.pruned)} if self.pruned is not None else {}
