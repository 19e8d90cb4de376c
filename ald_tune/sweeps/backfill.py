"""Backfill MLflow from Tune's own results: nothing a trial recorded is lost.

Tune writes every reported epoch of every trial to
``<storage>/<sweep>/<trial dir>/result.json`` (one JSON object per line) and the
trial's config, including the MLflow trial callback with ``{uri, experiment_id,
parent_run_id}``, to ``params.json`` beside it. When the tracking server was
down, :class:`~ald_tune.tracking.trial_logger.TrialLogger` could not send some of it;
:func:`backfill` reads those files (here, beside the Tune code that writes them) and
hands each trial to :func:`ald_tune.tracking.fill.fill_trial_run`, which finds (or
creates) the trial's child run by its ``ald_tune.trial_id`` tag under the sweep's parent
run and logs every step of every tracked metric that the run lacks, plus the final
artifacts a trial kept in ``<trial dir>/mlflow_pending``. Steps already in the run are
skipped, so running it twice adds nothing.

Run it when the sweep is not running (a live trial may still be sending the
same steps). ``run_sweep`` runs it at the end of each tracked sweep; by hand::

    ald-tune backfill --storage runs/ray --name ald-digits-20261125-101500
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from ald_tune.config.kinds import read_sweep_file
from ald_tune.config.schema import Config
from ald_tune.config.trial import SPACE_KEY, TrialParams
from ald_tune.config.vocabulary import PREFIX_KEY, history_row, prefix_curve
from ald_tune.errors import ConfigError, DataError
from ald_tune.sweeps.results import TrialRecord
from ald_tune.tracking.fill import fill_parent_run, fill_trial_run, trial_tracking
from ald_tune.tracking.pending import PENDING_DIR
from ald_tune.tracking.store import check_tracking, redact_uri, resolve_tracking_uri

RESULT_FILE = "result.json"
PARAMS_FILE = "params.json"


@dataclass
class TrialResults:
    """One trial folder's records, read back from Tune's files."""

    folder: str
    config: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def trial_id(self) -> str | None:
        return next((r["trial_id"] for r in self.records if r.get("trial_id")), None)

    @property
    def params(self) -> TrialParams:
        """The trial's config (its ``params.json``), typed."""
        return TrialParams.from_config(self.config)

    @property
    def tracking(self) -> dict[str, Any] | None:
        """``{uri, experiment_id, parent_run_id}`` of a tracked trial (its MLflow callback's
        arguments in the trial's config), else None."""
        return trial_tracking(self.params)

    @property
    def finished(self) -> bool:
        """The trial reported its last epoch (``run_over``)."""
        return bool(self.records and self.records[-1].get("run_over"))

    def to_record(self) -> TrialRecord:
        """This trial as the report sees it (the same record Tune's results give)."""
        rows = [r for _, r in sorted(self.by_epoch().items())]
        last = rows[-1] if rows else {}
        params = self.params
        cfg = Config.from_dict(params.space or {}, source=self.folder)
        kind = params.sweep_kind(cfg)
        return TrialRecord(
            trial_id=str(self.trial_id or os.path.basename(self.folder)),
            kind=kind.kind,
            rule=kind.rule,
            seed=params.seed,
            n_z_grid=params.n_z,
            final_n_z=last.get("final_n_z", last.get("n_z_next", params.n_z)),
            status="TERMINATED" if self.finished else "STOPPED",
            history=[history_row(e, r) for e, r in sorted(self.by_epoch().items())],
            cpus=cfg.tune.cpus_per_trial,
            gpus=cfg.tune.gpus_per_trial,
            nodes=tuple(
                sorted({str(r["node_id"]) for r in rows if isinstance(r.get("node_id"), str)})
            ),
            path=self.folder,
            config={k: v for k, v in self.config.items() if k != SPACE_KEY},
            prefixes=prefix_curve(last.get(PREFIX_KEY)) if self.finished else {},
        )

    def by_epoch(self) -> dict[int, dict[str, Any]]:
        """One record per epoch; a trial retried from a checkpoint repeats epochs, and the
        retry's record (the later line) is the one the run continued from."""
        out = {}
        for r in self.records:
            epoch = r.get("epoch", r.get("training_iteration", 0) - 1)
            if isinstance(epoch, int) and epoch >= 0:
                out[epoch] = r
        return out


def read_trials(experiment_path: str) -> list[TrialResults]:
    """Every trial folder under a Tune experiment folder that has a ``params.json``.

    Raises:
        DataError: the folder does not exist or holds no trial.
    """
    path = os.path.abspath(experiment_path)
    if not os.path.isdir(path):
        raise DataError(
            f"Tune experiment folder {path!r} does not exist. Fix: pass the "
            "--storage and --name the sweep ran with (its folder is STORAGE/NAME)."
        )
    trials = []
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        params = os.path.join(entry.path, PARAMS_FILE)
        if not entry.is_dir() or not os.path.isfile(params):
            continue
        with open(params, encoding="utf-8") as fh:
            config = json.load(fh)
        trials.append(TrialResults(entry.path, config, _read_records(entry.path)))
    if not trials:
        raise DataError(
            f"Tune experiment folder {path!r} holds no trial folders (none has "
            f"{PARAMS_FILE}). Fix: check --storage and --name."
        )
    return trials


def _read_records(folder: str) -> list[dict[str, Any]]:
    results = os.path.join(folder, RESULT_FILE)
    if not os.path.isfile(results):
        return []
    records = []
    with open(results, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a killed process
                warnings.warn(
                    f"{results}: skipping an unreadable line.", RuntimeWarning, stacklevel=2
                )
    return records


def backfill_trial(trial: TrialResults, trial_id: str, uri: str) -> int:
    """Log the steps ``trial``'s child run lacks; returns how many epochs gained a value."""
    records = trial.by_epoch()
    if not records:
        return 0  # the trial never reported an epoch: nothing to log
    tracking = trial.tracking
    if tracking is None:
        raise ConfigError(f"trial {trial_id} in {trial.folder} was not tracked in MLflow.")
    pending = os.path.join(trial.folder, PENDING_DIR)
    return fill_trial_run(uri, tracking, trial.params, trial_id, records, pending)


def backfill(experiment_path: str, uri: str | None = None) -> dict[str, int]:
    """Log into MLflow every metric step that Tune recorded but MLflow lacks.

    Args:
        experiment_path: the sweep's Tune folder, ``<storage>/<sweep name>``.
        uri: tracking URI; default: the one each trial recorded in its params.json.

    Returns:
        ``{trial_id: epochs that gained at least one metric value}`` for every tracked
        trial (0: it was complete).

    Raises:
        DataError: no such experiment folder.
        ConfigError: the tracking server is unreachable (naming it and the fix).

    Example:
        >>> backfill("runs/ray/ald-digits-20261125-101500")   # doctest: +SKIP
        {'4f2a1_00000': 0, '4f2a1_00001': 12}
    """
    added: dict[str, int] = {}
    checked: set[str] = set()
    parents: dict[tuple[str, str], bool] = {}  # (uri, parent run) -> every trial ran to the end
    for trial in read_trials(experiment_path):
        tracking, trial_id = trial.tracking, trial.trial_id
        if not tracking or trial_id is None:
            continue  # untracked sweep, or a trial that never reported
        target = resolve_tracking_uri(uri or tracking["uri"], os.getcwd())
        if target not in checked:
            check_tracking(target, create=False)  # the sweep logged there: it exists
            checked.add(target)
        added[trial_id] = backfill_trial(trial, trial_id, target)
        key = (target, tracking["parent_run_id"])
        parents[key] = parents.get(key, True) and trial.finished
    info = read_sweep_file(experiment_path)
    for (target, parent), finished in parents.items():
        fill_parent_run(target, parent, info, finished)  # what the driver could not send
    return added


def backfill_quietly(experiment_path: str, uri: str | None = None) -> dict[str, int]:
    """:func:`backfill` for the end of a sweep: prints what it added, warns instead of raising."""
    if "://" in experiment_path or not os.path.isdir(experiment_path):
        return {}  # remote storage: run `ald-tune backfill` where the folder is readable
    try:
        added = backfill(experiment_path, uri)
    except Exception as exc:
        storage, name = os.path.split(os.path.abspath(experiment_path))
        reason = "tracking server unreachable" if isinstance(exc, ConfigError) else redact_uri(exc)
        warnings.warn(
            f"MLflow could not be backfilled from {experiment_path} ({reason}). Nothing "
            f"is lost: Tune's results stay in that folder. Fix: run `ald-tune backfill "
            f"--storage {storage} --name {name}` once the tracking server is up.",
            RuntimeWarning,
            stacklevel=2,
        )
        return {}
    if any(added.values()):
        print(
            f"MLflow backfill: {sum(added.values())} epochs added to "
            f"{sum(1 for n in added.values() if n)} trial run(s) from Tune's results."
        )
    return added
