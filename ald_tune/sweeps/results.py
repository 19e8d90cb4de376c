"""The typed record of one finished trial, and the numbers the report reads from it.

:class:`TrialRecord` is what every producer returns and the report consumes: Ray
Tune's results (:func:`ald_tune.sweeps.tuner.collect`), the MLflow rebuild
(:mod:`ald_tune.report.mlflow_rebuild`) and Tune's result files (:mod:`ald_tune.sweeps.backfill`).
Its history holds the tracked keys only (:data:`ald_tune.config.vocabulary.TRACKED`), as
floats, so two producers reading the same trial give the same record, and the same
report, number for number.

NaN stands for "missing" throughout, so a metric an engine did not record, or a
value MLflow returned as text, never breaks a mean; :func:`clean` turns the result
JSON-ready. Used by :mod:`ald_tune.report.criterion` and :mod:`ald_tune.report`.
"""

from __future__ import annotations

import math
import re
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ald_tune.config.vocabulary import history_row, prefix_curve

__all__ = [  # history_row and prefix_curve live in the vocabulary now; kept importable here
    "NAN",
    "STATUSES",
    "SweepRecord",
    "TrialRecord",
    "error_text",
    "finite",
    "history_row",
    "num",
    "prefix_curve",
    "sort_trials",
    "trial_seconds",
]

NAN = math.nan
#: TERMINATED: ran to its last epoch; STOPPED: stopped early by a scheduler (ASHA);
#: ERROR: failed (after its retries).
STATUSES = ("TERMINATED", "STOPPED", "ERROR")


@dataclass
class TrialRecord:
    """One trial as the report sees it.

    Attributes:
        trial_id: Ray's trial id (or the Optuna/train run's id).
        kind: the sweep's kind (:data:`ald_tune.config.kinds.KINDS`).
        rule: the ALD rule, None for fixed-size trials.
        seed: ``train.seed`` of the trial.
        n_z_grid: the fixed n_z of a grid/fixed/nested trial (the grid point's size:
            its param space's ``n_z``, :attr:`ald_tune.config.trial.TrialParams.n_z`,
            which the trainer was built with as ``fixed_n_z``); None for ALD.
        final_n_z: the model's n_z after the last decision.
        status: one of :data:`STATUSES`.
        history: one dict per epoch (0-based ``epoch`` plus the tracked keys, floats).
        cpus: CPUs the trial held (``tune.cpus_per_trial``).
        gpus: the GPU share it held (``tune.gpus_per_trial``).
        nodes: the Ray nodes it ran on.
        run_id: its MLflow run, when tracked.
        path: its Tune folder (or MLflow artifact URI).
        config: the trial's own settings (Tune's param space without the space).
        prefixes: a nested-dropout trial's metrics at each prefix length k (its last
            epoch, :func:`~ald_tune.config.vocabulary.prefix_curve`); empty for every other trial.
        error: a failed trial's error with its traceback, as Tune recorded it (Ray's
            ``Result.error``); None when it did not fail or when rebuilt from MLflow.
    """

    trial_id: str
    kind: str = "ald"
    rule: str | None = None
    seed: int | None = None
    n_z_grid: int | None = None
    final_n_z: int | None = None
    status: str = "TERMINATED"
    history: list[dict[str, float]] = field(default_factory=list)
    cpus: float = 1.0
    gpus: float = 0.0
    nodes: tuple[str, ...] = ()
    run_id: str | None = None
    path: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    prefixes: dict[int, dict[str, float]] = field(default_factory=dict)
    error: str | None = field(default=None, compare=False)

    @property
    def finished(self) -> bool:
        """Ran to its last epoch."""
        return self.status == "TERMINATED"

    @property
    def errored(self) -> bool:
        return self.status == "ERROR"

    @property
    def epochs(self) -> int:
        return len(self.history)

    @property
    def metrics(self) -> dict[str, float]:
        """The last epoch's record."""
        return dict(self.history[-1]) if self.history else {}

    @property
    def time_s(self) -> float:
        """The trial's own seconds: training plus evaluation, summed over its epochs."""
        return trial_seconds(self.history)

    @property
    def nz(self) -> int:
        """The n_z the trial answers: its fixed size, else its final size."""
        return int(self.n_z_grid) if self.n_z_grid is not None else int(num(self.final_n_z))


def trial_seconds(history: Iterable[Mapping[str, Any]]) -> float:
    """A trial's own seconds over these epochs: training plus evaluation, summed."""
    return sum(sum(finite((h.get("train_time_s"), h.get("eval_time_s")))) for h in history)


def num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return NAN


def finite(vals: Iterable[Any]) -> list[float]:
    return [x for x in map(num, vals) if math.isfinite(x)]


@dataclass
class SweepRecord:
    """One sweep: what it is, where it is recorded, and its trials.

    Returned by :func:`ald_tune.sweeps.run.run_sweep` and rebuilt from MLflow by
    :func:`ald_tune.report.mlflow_rebuild.sweeps_from_mlflow`.

    Attributes:
        kind: what the sweep is (:class:`ald_tune.config.kinds.SweepKind`).
        name: its name (the Tune folder and the parent run's ``ald_tune.sweep`` tag).
        trials: one record per trial, sorted by (n_z, seed, trial id).
        wall_s: the sweep's wall time in seconds (every ``fit`` of it, resumes included).
        dataset: ``data.name``.
        compare: the ``compare`` run that made it, if any.
        main_rule: that compare's main rule.
        path: its Tune folder (None when rebuilt from MLflow).
        tracking_uri, experiment_id, parent_run_id: where MLflow has it (None untracked).
        interrupted: the sweep was stopped (Ctrl-C) with trials unfinished.
        result_grid: Ray Tune's own ``ResultGrid`` of the run that returned this record
            (``result_grid.get_dataframe()``, ``.errors``, each ``Result``'s checkpoint
            and metrics); None when rebuilt from MLflow or from Tune's files.
    """

    kind: Any
    name: str
    trials: list[TrialRecord] = field(default_factory=list)
    wall_s: float = NAN
    dataset: str = ""
    compare: str | None = None
    main_rule: str | None = None
    path: str | None = None
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None
    interrupted: bool = False
    result_grid: Any = field(default=None, repr=False, compare=False)

    @property
    def mode(self) -> str:
        return self.kind.mode

    @property
    def wall_time_s(self) -> float:
        return self.wall_s

    def table(self) -> str:
        """A plain-text summary table, one row per trial."""
        head = (
            f"{'trial':<24}{'seed':>5}{'n_z':>6}{'epochs':>8}{'recon':>9}{'fid_gen':>9}"
            f"{'fid_rec':>9}{'sil':>7}{'time_s':>8}  status"
        )
        rows = [head, "-" * len(head)]
        for t in self.trials:
            m = t.metrics
            rows.append(
                f"{t.trial_id:<24}{t.seed!s:>5}{t.final_n_z!s:>6}{t.epochs:>8}"
                f"{m.get('recon_loss', NAN):>9.3f}{m.get('fid_gen', NAN):>9.2f}"
                f"{m.get('fid_recon', NAN):>9.2f}{m.get('silhouette', NAN):>7.3f}"
                f"{t.time_s:>8.1f}  {t.status}"
            )
        return "\n".join(rows)


def error_text(error: BaseException | None) -> str | None:
    """A failed trial's error as text, its traceback included (None: it did not fail).

    Tune hands back the trial's exception as Ray wrapped it (a ``RayTaskError``, which
    keeps the worker's frames in ``traceback_str``); any other exception gets its own
    traceback. Ray's terminal colour codes are dropped.
    """
    if error is None:
        return None
    text = getattr(error, "traceback_str", None)
    if not isinstance(text, str) or not text:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def sort_trials(trials: Iterable[TrialRecord]) -> list[TrialRecord]:
    """The order every producer returns: by fixed n_z, seed, trial id."""
    return sorted(trials, key=lambda t: (t.n_z_grid or 0, t.seed or 0, t.trial_id))
