"""A run's final outputs on their way to MLflow: written to a folder of their own first
(:func:`write_pending`: ``history.json``, the n_z/metrics plot, the model and a
``pending.json`` saying what to send), sent from it (:func:`send_pending`), and, when the
server is away at the end, kept in the Tune trial's folder (``<trial>/mlflow_pending``:
:func:`keep_for_backfill`), where ``ald-tune backfill`` finds them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import warnings

from ald_tune.engine.artifacts import MODEL_FILE, plot_history
from ald_tune.engine.callbacks import TrainerView
from ald_tune.tracking.models import log_model
from ald_tune.tracking.runs import FINAL_NZ_TAG

PENDING_DIR = "mlflow_pending"  # final artifacts not yet sent, kept in the trial's folder
PENDING_FILE = "pending.json"


def write_pending(trainer: TrainerView, trial_id: str) -> str:
    """Write the run's final outputs and what to send of them to a new temporary folder;
    returns it. A folder left half-written by an error is removed before it is raised."""
    folder = tempfile.mkdtemp(prefix="ald-tune-final-")
    try:
        paths = trainer.save_outputs(folder)
        plot = plot_history(
            trainer.history, os.path.join(folder, "history.png"), title=f"{trainer.mode} run"
        )
        files = [os.path.basename(p) for p in (paths["history"], paths["model"], plot)]
        with open(os.path.join(folder, PENDING_FILE), "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "trial_id": trial_id,
                    "files": files,
                    "tags": {FINAL_NZ_TAG: str(trainer.model.n_z)},
                    "step": trainer.history[-1]["epoch"] if trainer.history else 0,
                },
                fh,
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def send_pending(c, run_id: str, folder: str) -> str | None:
    """Log the final artifacts and tags kept in ``folder`` (:func:`write_pending`) and the
    model as an MLflow logged model, then delete the folder; returns the logged model's id."""
    with open(os.path.join(folder, PENDING_FILE), encoding="utf-8") as fh:
        pending = json.load(fh)
    for name in pending["files"]:
        c.log_artifact(run_id, os.path.join(folder, name))
    for key, value in pending.get("tags", {}).items():
        c.set_tag(run_id, key, value)
    model_id = None
    if MODEL_FILE in pending["files"]:  # a retry finds the model logged before, if it was
        model_id = log_model(c, run_id, os.path.join(folder, MODEL_FILE), pending.get("step"))
    shutil.rmtree(folder, ignore_errors=True)
    return model_id


def keep_for_backfill(folder: str, trial_dir: str | None) -> str:
    """Move ``folder`` to ``<trial_dir>/mlflow_pending`` (replacing an older one), where
    backfill looks; without a trial folder it stays where it is. Returns where it is."""
    if trial_dir is None:
        return folder
    target = os.path.join(trial_dir, PENDING_DIR)
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(folder, target)
    return target


def tune_trial_dir() -> str | None:
    """The running Tune trial's folder when it is a local path (not inside Tune: None)."""
    if "ray" not in sys.modules:  # never import Ray just to find out
        return None
    try:
        from ray import tune

        with warnings.catch_warnings():  # outside a trial Ray warns and returns None
            warnings.simplefilter("ignore")
            folder = tune.get_context().get_trial_dir()
    except Exception:
        return None
    return folder if folder and "://" not in folder and os.path.isdir(folder) else None


def backfill_hint(trial_dir: str | None) -> str:
    """The exact ``ald-tune backfill`` command for a trial folder ``<storage>/<name>/<trial>``."""
    if not trial_dir:
        return "`ald-tune backfill --storage STORAGE --name SWEEP` once the server is back"
    sweep = os.path.dirname(os.path.abspath(trial_dir))
    return (
        f"`ald-tune backfill --storage {os.path.dirname(sweep)} --name "
        f"{os.path.basename(sweep)}` once the server is back"
    )
