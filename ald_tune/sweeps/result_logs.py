"""Tune's files kept whole: per-trial results on retries, and the experiment state when
the driver is killed.

**Result files** (``result.json``, ``progress.csv``).

Ray 2.60's ``JsonLoggerCallback`` and ``CSVLoggerCallback`` copy the trial's file
from storage over the driver's own copy each time a trial restarts from a
checkpoint (``LoggerCallback._restore_from_remote``). The driver writes its copy
first and syncs it to storage only now and then (every ``SyncConfig.sync_period``,
or at a trial checkpoint), so the storage copy can be older: a retried
trial then lost the rows reported since the last sync, at times every row from
before the failure, and with them the report's epochs and cost for that trial.
The two loggers here copy from storage only when the driver has no copy of its
own (a sweep restored by a new driver with ``--resume``), which is the one case
where the storage copy is the newest. Tune uses them instead of its defaults
because it adds a default logger only when none of that type was passed.

This is Ray's open issue https://github.com/ray-project/ray/issues/41668 ("Worker fault
tolerance recovery can result in gaps in reported metric logs"); the download came with
https://github.com/ray-project/ray/pull/38598. Ray has no public switch for it:
``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1`` drops the loggers altogether (and with them
``result.json``, which ``ResultGrid``'s dataframes, ``ald-tune backfill`` and the report
read), and ``RunConfig(callbacks=...)`` is how these two replace Tune's. So they override
the private ``LoggerCallback._restore_from_remote`` (Ray 2.60);
``tests/sweeps/test_result_logs.py`` fails when Ray fixes the issue (then drop them) or
renames the method.

**The experiment state** (``experiment_state-*.json``, what ``Tuner.restore`` reads).
Tune rewrites it in place at every step and copies it into storage, so a driver killed
while it writes leaves it cut short; ``--resume`` then cannot restore the sweep and
Tune starts it again without its trials (seen here: 2 of 5 killed drivers under load).
:class:`StateBackup` keeps a copy of the last state that parses
(``<file>.last-good``), and :func:`repair_experiment_state` puts it back before a
restore when the state itself does not parse.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import warnings

from ray.tune import Callback
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

STATE_GLOB = "experiment_state-*.json"
BACKUP_SUFFIX = ".last-good"


def _parses(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            json.load(fh)
    except (OSError, ValueError):
        return False
    return True


class StateBackup(Callback):
    """After each step, copy the experiment state (when it changed and parses) aside.

    Args:
        path: the sweep's Tune folder (local storage; remote storage is left to Tune).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.seen: dict[str, float] = {}

    def on_step_end(self, iteration, trials, **info) -> None:
        if "://" in self.path:
            return
        for state in glob.glob(os.path.join(self.path, STATE_GLOB)):
            try:
                mtime = os.path.getmtime(state)
            except OSError:
                continue
            if self.seen.get(state) == mtime or not _parses(state):
                continue
            tmp = state + BACKUP_SUFFIX + ".tmp"
            shutil.copyfile(state, tmp)
            os.replace(tmp, state + BACKUP_SUFFIX)
            self.seen[state] = mtime


def repair_experiment_state(path: str) -> list[str]:
    """Before a restore: put back the last good copy of every state file that does not
    parse; returns the files repaired (each also warned about)."""
    repaired = []
    for state in glob.glob(os.path.join(path, STATE_GLOB)):
        backup = state + BACKUP_SUFFIX
        if not _parses(state) and os.path.exists(backup) and _parses(backup):
            shutil.copyfile(backup, state)
            repaired.append(state)
            warnings.warn(
                f"{state} was cut short (the driver was killed while writing it); "
                "the sweep resumes from its last good copy.",
                RuntimeWarning,
                stacklevel=2,
            )
    return repaired


class _KeepDriverCopy:
    """Restore a trial's result file from storage only if the driver holds none."""

    def _restore_from_remote(self, file_name: str, trial) -> None:
        if os.path.exists(os.path.join(trial.local_path, file_name)):
            return  # the driver's copy is the newest: storage is synced from it
        super()._restore_from_remote(file_name, trial)  # type: ignore[misc]


class JsonLogger(_KeepDriverCopy, JsonLoggerCallback):
    """Tune's ``result.json`` logger, without the overwrite on retry (see module doc)."""


class CSVLogger(_KeepDriverCopy, CSVLoggerCallback):
    """Tune's ``progress.csv`` logger, without the overwrite on retry (see module doc)."""


def result_loggers() -> list:
    """The logger callbacks every ald-tune sweep passes to ``RunConfig(callbacks=...)``."""
    return [JsonLogger(), CSVLogger()]
